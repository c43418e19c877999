"""The ``croct-pandas`` command: demo, export, funnel, cache and emulator.

Exit codes: 0 done; 1 the API or the disk failed; 2 bad usage or input (one line on stderr, no
traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A mistake in the command line or its input: exit 2 with one line."""


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr (exit 2), with where to find help, not the whole
    usage block; the sub-commands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Examples
    --------
    >>> import tempfile
    >>> main(["cache", "info", "--cache", tempfile.mkdtemp()])
    the cache is empty
    0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        print("croct-pandas: error: a command is needed (see above)", file=sys.stderr)
        return EXIT_USAGE
    from croct_pandas.errors import CroctError, InvalidArgumentError

    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("croct-pandas: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, InvalidArgumentError, ValueError) as error:
        print(f"croct-pandas: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (CroctError, OSError) as error:
        print(f"croct-pandas: failed: {error}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    from croct_pandas import __version__

    parser = _Parser(
        prog="croct-pandas",
        description="Croct's event data in pandas: export, cache, funnels and a local emulator.",
    )
    parser.add_argument("--version", action="version", version=f"croct-pandas {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = sub.add_parser("demo", help="the whole product against the embedded emulator")
    demo.add_argument("--users", type=int, default=3000, help="users in the store (3000)")
    demo.add_argument("--days", type=int, default=28, help="days of events (28)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--cache", default="croct-cache", help="cache folder (./croct-cache)")
    demo.add_argument("--output", default="funnel.png", help="funnel chart (./funnel.png)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.set_defaults(run=_run_demo)

    export = sub.add_parser("export", help="export events to Parquet, CSV or JSON Lines")
    export.add_argument("--start", required=True, help="inclusive: ISO date/time or epoch ms")
    export.add_argument("--end", required=True, help="exclusive: ISO date/time or epoch ms")
    export.add_argument("--events", nargs="+", metavar="TYPE", help="event types (default all)")
    export.add_argument("--output", required=True, help="FILE.parquet, FILE.csv or FILE.jsonl")
    export.add_argument("--base-url", help="API host (default $CROCT_API_URL or Croct's)")
    export.add_argument("--page-size", type=int, default=1000)
    export.add_argument("--workers", type=int, default=4)
    export.add_argument("--cache", help="cache folder (default: the user cache)")
    export.add_argument("--no-cache", action="store_true", help="do not read or write a cache")
    export.add_argument("--no-progress", action="store_true")
    export.set_defaults(run=_run_export)

    funnel = sub.add_parser("funnel", help="count a funnel over an exported file")
    funnel.add_argument("file", help="a .parquet or .jsonl file written by `export`")
    funnel.add_argument("--steps", required=True, help="comma-separated event types, a,b,c")
    funnel.add_argument("--within", default="7D", help="conversion window (7D; 'none': unbounded)")
    funnel.add_argument("--by", default="userId", help="entity column (userId or sessionId)")
    funnel.add_argument("--order", default="ordered", choices=["ordered", "strict", "any"])
    funnel.add_argument("--breakdown", help="column to break the funnel down by")
    funnel.set_defaults(run=_run_funnel)

    cache = sub.add_parser("cache", help="see or clear the local cache")
    cache_sub = cache.add_subparsers(title="actions", metavar="ACTION")
    info = cache_sub.add_parser("info", help="what the cache holds")
    info.add_argument("--cache", help="cache folder (default: the user cache)")
    info.set_defaults(run=_run_cache_info)
    clear = cache_sub.add_parser("clear", help="delete cached data")
    clear.add_argument("--cache", help="cache folder (default: the user cache)")
    clear.add_argument("--application", help="only this application's data")
    clear.set_defaults(run=_run_cache_clear)
    cache.set_defaults(run=lambda args: _usage("cache needs an action: info or clear"))

    from croct_pandas.emulator import cli as emulator_cli

    emulator = sub.add_parser("emulator", help="serve a local Croct Export API")
    emulator_cli.add_arguments(emulator)
    emulator.set_defaults(run=emulator_cli.run)
    return parser


def _usage(message: str) -> int:
    raise UsageError(message)


def _cache_arg(value: str | None) -> Any:
    return True if value is None else value


# -- export ----------------------------------------------------------------------------------


def _run_export(args: argparse.Namespace) -> int:
    from croct_pandas.export import read_croct_events

    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in (".parquet", ".csv", ".jsonl"):
        raise UsageError(f"--output {args.output!r}: the file must end in .parquet, .csv or .jsonl")
    cache: Any = False if args.no_cache else _cache_arg(args.cache)
    frame = read_croct_events(
        _time_arg(args.start),
        _time_arg(args.end),
        args.events,
        base_url=args.base_url,
        page_size=args.page_size,
        workers=args.workers,
        progress=not args.no_progress,
        cache=cache,
    )
    write_frame(frame, args.output)
    print(f"{len(frame):,} events -> {args.output}")
    return EXIT_OK


def _time_arg(value: str) -> Any:
    return int(value) if value.isdigit() else value


def write_frame(frame: Any, path: str) -> None:
    """Write a frame by the file's suffix: Parquet, CSV (lists as JSON) or JSON Lines events."""
    import orjson

    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        import pyarrow as pa

        out = frame.copy()
        for name, dtype in out.dtypes.items():
            if "list<" in str(dtype):
                values = pa.array(out[name], from_pandas=True).to_pylist()
                out[name] = [None if v is None else orjson.dumps(v).decode() for v in values]
        out.to_csv(path, index=False)
    else:
        with open(path, "wb") as f:
            for event in frame.croct.to_events():
                f.write(orjson.dumps(event) + b"\n")


def read_frame(path: str) -> Any:
    """Read a file written by ``export``: Parquet as is, JSON Lines through the normaliser."""
    import orjson

    suffix = os.path.splitext(path)[1].lower()
    if not os.path.exists(path):
        raise UsageError(f"{path!r}: no such file")
    if suffix == ".parquet":
        from croct_pandas.frame import read_parquet_frame

        return read_parquet_frame(path)
    if suffix == ".jsonl":
        from croct_pandas.frame import build_frame
        from croct_pandas.normalize import normalize_items

        with open(path, "rb") as f:
            events = [orjson.loads(line) for line in f if line.strip()]
        return build_frame(normalize_items(events).tables.items())
    raise UsageError(f"{path!r}: funnel reads .parquet or .jsonl files written by `export`")


# -- funnel ----------------------------------------------------------------------------------


def _run_funnel(args: argparse.Namespace) -> int:
    import croct_pandas  # noqa: F401  (registers df.croct)

    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if len(steps) < 2:
        raise UsageError("--steps needs two or more comma-separated event types, such as a,b,c")
    within = None if args.within.lower() in ("none", "unbounded") else args.within
    frame = read_frame(args.file)
    result = frame.croct.funnel(
        steps, within=within, by=args.by, order=args.order, breakdown=args.breakdown
    )
    print(_table_text(result.table))
    return EXIT_OK


def _table_text(table: Any) -> str:
    shown = table.copy()
    for name in ("conversion", "conversion_low", "conversion_high", "step_conversion"):
        if name in shown:
            shown[name] = shown[name].map(lambda v: "" if v != v else f"{v:.1%}")
    return shown.to_string(index=False)


# -- cache -----------------------------------------------------------------------------------


def _run_cache_info(args: argparse.Namespace) -> int:
    from croct_pandas.cache import cache_info

    info = cache_info(_cache_arg(args.cache))
    if info.empty:
        print("the cache is empty")
    else:
        print(info.to_string(index=False))
    return EXIT_OK


def _run_cache_clear(args: argparse.Namespace) -> int:
    from croct_pandas.cache import clear_cache

    clear_cache(_cache_arg(args.cache), application=args.application)
    print("cleared")
    return EXIT_OK


def _run_demo(args: argparse.Namespace) -> int:
    from croct_pandas.demo import run_demo

    return run_demo(
        users=args.users,
        days=args.days,
        seed=args.seed,
        cache=args.cache,
        output=args.output,
        progress=not args.no_progress,
    )


if __name__ == "__main__":
    sys.exit(main())
