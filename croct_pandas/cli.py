"""The ``croct-pandas`` command: demo, export, funnel, cache and emulator.

Exit codes: 0 done; 1 the API or the disk failed; 2 bad usage or input (one line on stderr, no
traceback); 130 interrupted. Everything a command can check is checked before its first request.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from croct_pandas.cli_files import OUTPUT_SUFFIXES, check_output, read_frame, write_frame
from croct_pandas.cli_terms import OPTIONS as OPTIONS  # importable from here as before
from croct_pandas.cli_terms import UsageError, cli_terms, one_line, options_for, rephrase

__all__ = ["cli_terms", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXIT_CODES = """exit codes:
  0    done
  1    the API or the disk failed
  2    bad usage or input (one line on stderr)
  130  interrupted (an export with a cache resumes when run again)"""
KEY_NOTE = (
    "The API key is read from the CROCT_API_KEY environment variable, never from an option:\n"
    "command lines end up in shell history."
)


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
        # the cache keeps every page it stored and each slice's cursor
        again = "; run the same command again to resume" if getattr(args, "resumable", 0) else ""
        print(f"croct-pandas: interrupted{again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, InvalidArgumentError, ValueError) as error:
        message = cli_terms(str(error), options_for(args))
        print(f"croct-pandas: error: {one_line(message)}", file=sys.stderr)
        return EXIT_USAGE
    except (CroctError, OSError) as error:
        # the API's own words stay as they are; only the hints about the key are reworded
        print(f"croct-pandas: failed: {one_line(rephrase(str(error)))}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    from croct_pandas import __version__
    from croct_pandas.demo import DEMO_PORT
    from croct_pandas.emulator import cli as emulator_cli

    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="croct-pandas",
        description="Croct's event data in pandas: export, cache, funnels and a local emulator.\n\n"
        + KEY_NOTE,
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"croct-pandas {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="the whole product against the embedded emulator",
        description="Serve a generated store on 127.0.0.1, export it through the real client "
        "into a cache,\ncount a funnel, draw it, and read the window again from the cache. "
        "It needs no API key:\nthe store is its own.",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    demo.add_argument("--users", type=_above_zero, default=3000, help="users in the store (3000)")
    demo.add_argument("--days", type=_above_zero, default=28, help="days of events (28)")
    demo.add_argument(
        "--seed", type=int, default=7, help="seed of the store and its injected faults (7)"
    )
    demo.add_argument("--cache", default="croct-cache", help="cache folder (./croct-cache)")
    demo.add_argument(
        "--output", default="funnel.png", help="funnel chart, .png, .svg, .pdf... (./funnel.png)"
    )
    demo.add_argument(
        "--port",
        type=emulator_cli.port_number,
        default=DEMO_PORT,
        help="the emulator's port, kept from run to run so a rerun reads its cache; "
        "when taken, any free one (%(default)s)",
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.set_defaults(run=_run_demo)

    export = sub.add_parser(
        "export",
        help="export events to Parquet, CSV or JSON Lines",
        description="Export the events of [--start, --end) from Croct's Export API to a file.\n\n"
        + KEY_NOTE,
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    export.add_argument("--start", required=True, help="inclusive: ISO date/time or epoch ms")
    export.add_argument("--end", required=True, help="exclusive: ISO date/time or epoch ms")
    export.add_argument(
        "--events",
        nargs="+",
        metavar="TYPE",
        help="event types, space- or comma-separated: a b or a,b (default: every type)",
    )
    export.add_argument("--output", required=True, help="FILE.parquet, FILE.csv or FILE.jsonl")
    export.add_argument("--base-url", help="API host (default $CROCT_API_URL or Croct's)")
    export.add_argument(
        "--page-size", type=int, default=1000, help="events per request, 1-1000 (1000)"
    )
    export.add_argument(
        "--workers", type=int, default=4, help="time slices fetched at once, 1-64 (4)"
    )
    export.add_argument("--cache", help="cache folder (default: the user cache)")
    export.add_argument("--no-cache", action="store_true", help="do not read or write a cache")
    export.add_argument("--no-progress", action="store_true", help="hide the progress bar")
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

    emulator = sub.add_parser("emulator", help="serve a local Croct Export API")
    emulator_cli.add_arguments(emulator)
    emulator.set_defaults(run=emulator_cli.run)
    return parser


def _usage(message: str) -> int:
    raise UsageError(message)


def _above_zero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return value


def _cache_arg(value: str | None) -> Any:
    return True if value is None else value


# -- export ----------------------------------------------------------------------------------


def _run_export(args: argparse.Namespace) -> int:
    from croct_pandas.export import read_croct_events

    check_output("--output", args.output, OUTPUT_SUFFIXES, "FILE.parquet, FILE.csv or FILE.jsonl")
    events = None
    if args.events is not None:
        # both `--events a b` and `--events a,b`, as --steps takes commas
        events = [name.strip() for value in args.events for name in value.split(",")]
        events = [name for name in events if name]
        if not events:
            raise UsageError("--events needs event types; leave it out for every type")
    cache: Any = False if args.no_cache else _cache_arg(args.cache)
    args.resumable = cache is not False
    frame = read_croct_events(
        _time_arg(args.start),
        _time_arg(args.end),
        events,
        base_url=args.base_url,
        page_size=args.page_size,
        workers=args.workers,
        progress=not args.no_progress,
        cache=cache,
    )
    write_frame(frame, args.output)
    # the API says nothing of the range it holds without another request: only a hint
    empty = (
        f" (no event in this window: check --start and --end{' and --events' if events else ''})"
    )
    print(f"{len(frame):,} events -> {args.output}{empty if frame.empty else ''}")
    return EXIT_OK


def _time_arg(value: str) -> Any:
    return int(value) if value.isdigit() else value


# -- funnel ----------------------------------------------------------------------------------


def _run_funnel(args: argparse.Namespace) -> int:
    import croct_pandas  # noqa: F401  (registers df.croct)
    from croct_pandas.funnel import is_bare_number

    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if len(steps) < 2:
        raise UsageError("--steps needs two or more comma-separated event types, such as a,b,c")
    within = None if args.within.lower() in ("none", "unbounded") else args.within
    if within is not None and is_bare_number(within):
        # checked before the file is read; funnel() would refuse it too, once the file is in
        raise UsageError(f"--within {within}: give a unit, such as {within.strip()}D or 7D")
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
    from croct_pandas.cache_paths import cache_dir
    from croct_pandas.demo import chart_suffixes, run_demo

    suffixes = chart_suffixes()
    shown = ", ".join(sorted(suffixes))
    check_output("--output", args.output, suffixes, f"a chart file ending in one of {shown}")
    # a cache the demo could not write fails now, not after the store is made
    cache_dir(args.cache, writable=True)
    args.resumable = True
    return run_demo(
        users=args.users,
        days=args.days,
        seed=args.seed,
        cache=args.cache,
        output=args.output,
        progress=not args.no_progress,
        port=args.port,
    )


if __name__ == "__main__":
    sys.exit(main())
