"""``croct-pandas emulator``: serve a local Croct Export API until stopped.

The top-level command builds the sub-parser and calls :func:`add_arguments` on it, then
:func:`run` with the parsed arguments. The first line printed is the URL alone (flushed at once,
so a parent process can read it); the key is printed only when it was generated here.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from croct_pandas.emulator.dialect import DIALECTS
from croct_pandas.emulator.faults import Faults
from croct_pandas.emulator.server import Emulator
from croct_pandas.errors import InvalidArgumentError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="croct-pandas emulator")
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--port", "0", "--users", "10", "--error-rate", "0.1"])
    >>> args.port, args.users, args.error_rate, args.dialect
    (0, 10, 0.1, '0.7.1')
    """
    parser.add_argument(
        "--port",
        type=int,
        default=8765,
        help="TCP port on 127.0.0.1 (default: %(default)s; 0: any free one)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="the key clients must send; default: $CROCT_API_KEY, else a random key (printed)",
    )
    store = parser.add_argument_group("the store")
    store.add_argument("--users", type=int, default=1000, help="visitors (default: %(default)s)")
    store.add_argument("--days", type=int, default=7, help="days of traffic (default: %(default)s)")
    store.add_argument("--seed", type=int, default=0, help="seed of the store and the faults")
    store.add_argument("--start", default="2026-01-01", help="first day (YYYY-MM-DD)")
    store.add_argument(
        "--events",
        type=Path,
        default=None,
        metavar="FILE",
        help="serve these wire events (JSON Lines, or a JSON array) instead of generating",
    )
    store.add_argument("--dialect", choices=DIALECTS, default="0.7.1", help="wire dialect")
    store.add_argument(
        "--tail-cursor",
        action="store_true",
        help="the last page still carries a cursor; the next call returns no items",
    )
    faults = parser.add_argument_group("faults (each a share of requests from 0 to 1)")
    faults.add_argument("--error-rate", type=float, default=0.0, help="500/502/503 answers")
    faults.add_argument(
        "--rate-limit", type=float, default=None, help="requests per second per key (429 over it)"
    )
    faults.add_argument(
        "--no-retry-after", action="store_true", help="send 429 without Retry-After"
    )
    faults.add_argument("--reset-rate", type=float, default=0.0, help="connections reset mid-body")
    faults.add_argument("--truncate-rate", type=float, default=0.0, help="JSON bodies cut short")
    faults.add_argument("--slow-rate", type=float, default=0.0, help="answers delayed by --slow")
    faults.add_argument("--slow", type=float, default=0.0, metavar="S", help="seconds of delay")
    faults.add_argument(
        "--latency", type=float, default=0.0, metavar="S", help="seconds added to every answer"
    )
    faults.add_argument(
        "--repeat-rate", type=float, default=0.0, help="cursor pages re-sending earlier items"
    )


def _load(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if data.lstrip().startswith(b"["):
        events = orjson.loads(data)
    else:
        events = [orjson.loads(line) for line in data.splitlines() if line.strip()]
    if not isinstance(events, list):
        raise InvalidArgumentError(f"--events: {path} holds no list of events")
    return events


def _build(args: argparse.Namespace) -> tuple[Emulator, str]:
    faults = Faults(
        seed=args.seed,
        error_rate=args.error_rate,
        rate_limit=args.rate_limit,
        reset_rate=args.reset_rate,
        truncate_rate=args.truncate_rate,
        slow_rate=args.slow_rate,
        slow_s=args.slow,
        latency_s=args.latency,
        repeat_rate=args.repeat_rate,
        retry_after=not args.no_retry_after,
    )
    key, origin = args.api_key, "as given with --api-key"
    if not key and os.environ.get("CROCT_API_KEY"):
        key, origin = os.environ["CROCT_API_KEY"], "the value of CROCT_API_KEY"
    emulator = Emulator(
        _load(args.events) if args.events is not None else None,
        users=args.users,
        days=args.days,
        seed=args.seed,
        start=args.start,
        api_key=key or None,
        dialect=args.dialect,
        faults=faults if faults != Faults(seed=args.seed) else None,
        tail_cursor=args.tail_cursor,
        port=args.port,
    )
    return emulator, (origin if key else emulator.api_key)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (exit code 130) or SIGTERM (exit code 0).

    Returns 2 for bad options or an unusable port, with one line on stderr.
    """
    try:
        emulator, key_hint = _build(args)
        emulator.start()
    except (InvalidArgumentError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            message = f"port {args.port} is in use; choose another with --port (0: any free one)"
        else:
            message = str(exc)
        print(f"croct-pandas emulator: error: {message}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous: Any = None
    # outside the main thread no handler can be set: only Ctrl-C or the caller stops it then
    with contextlib.suppress(ValueError):
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    code = 0
    try:
        print(emulator.url, flush=True)
        print(f"API key: {key_hint}", flush=True)
        print(
            f"Serving {len(emulator.events):,} events (dialect {emulator.dialect}) at "
            f"{emulator.url}/export/events; Ctrl-C to stop.",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        code = 130
    finally:
        emulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return code
