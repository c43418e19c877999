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
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from croct_pandas.emulator.dialect import DIALECTS
from croct_pandas.emulator.faults import Faults
from croct_pandas.emulator.server import Emulator
from croct_pandas.errors import InvalidArgumentError

__all__ = ["OPTIONS", "add_arguments", "day_range", "port_number", "run"]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

#: Python parameter -> option, to word the errors of Faults and Emulator for the command line
OPTIONS = {
    "error_rate": "--error-rate",
    "rate_limit": "--rate-limit",
    "reset_rate": "--reset-rate",
    "truncate_rate": "--truncate-rate",
    "slow_rate": "--slow-rate",
    "slow_s": "--slow",
    "latency_s": "--latency",
    "repeat_rate": "--repeat-rate",
    "api_key": "--api-key",
    "users": "--users",
    "days": "--days",
    "seed": "--seed",
    "start": "--start",
    "port": "--port",
    "dialect": "--dialect",
    "events": "--events",
}
_EVENTS_FORM = (
    "it must hold wire events (objects with an integer 'timestamp', as `croct-pandas export "
    "--output FILE.jsonl` writes them), one JSON object per line or a JSON array"
)


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
        type=port_number,
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


def port_number(text: str) -> int:
    """An ``argparse`` type: a TCP port from 0 to 65535, checked before any store is made.

    Examples
    --------
    >>> port_number("8765")
    8765
    """
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to 65535")
    return port


def day_range(events: list[dict[str, Any]]) -> str:
    """The first and last UTC day of time-sorted wire events, as a banner shows them.

    Examples
    --------
    >>> day_range([{"timestamp": 1767225600000}, {"timestamp": 1767830399999}])
    'from 2026-01-01 to 2026-01-07 UTC: --start 2026-01-01 --end 2026-01-08 holds them all'
    >>> day_range([])
    'no events'
    """
    if not events:
        return "no events"
    day = 86_400_000
    first, last = events[0]["timestamp"] // day, events[-1]["timestamp"] // day
    shown = [str(date.fromordinal(_EPOCH_ORDINAL + d)) for d in (first, last, last + 1)]
    return f"from {shown[0]} to {shown[1]} UTC: --start {shown[0]} --end {shown[2]} holds them all"


def _load(path: Path) -> list[dict[str, Any]]:
    where = f"--events {str(path)!r}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidArgumentError(f"{where}: no such file; {_EVENTS_FORM}") from None
    except IsADirectoryError:
        raise InvalidArgumentError(f"{where} is a folder; {_EVENTS_FORM}") from None
    except OSError as exc:
        raise InvalidArgumentError(f"{where}: cannot be read ({exc.strerror})") from None
    if data.lstrip().startswith(b"["):
        try:
            events: Any = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{where}: not JSON ({exc}); {_EVENTS_FORM}") from None
    else:
        events = []
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise InvalidArgumentError(
                    f"{where}: line {number} is not JSON ({exc}); {_EVENTS_FORM}"
                ) from None
    for index, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("timestamp"), int):
            raise InvalidArgumentError(
                f"{where}: event {index + 1} is not an object with an integer 'timestamp'; "
                f"{_EVENTS_FORM}"
            )
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
            from croct_pandas.cli_terms import cli_terms

            message = " ".join(cli_terms(str(exc), OPTIONS).split())
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
        print(f"Events {day_range(emulator.events)}.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        code = 130
    finally:
        emulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return code
