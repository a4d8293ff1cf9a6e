"""The ``imagegen`` command's arguments: the parser and the checks argparse runs on values."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["parse_args"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: easy to read and to grep.
        self.exit(2, f"imagegen: error: {message}\n")


def _seconds(raw: str) -> float:
    """A finite number of seconds > 0 (``--timeout``)."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        msg = f"must be a finite number of seconds > 0 (got {raw!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def _port(raw: str) -> int:
    """A TCP port, 1-65535 (``serve --port``)."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535 (got {raw!r})")
    return value


def _date(raw: str) -> dt.date:
    """A calendar date, YYYY-MM-DD (``stats --since/--until``)."""
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        why = "" if "isoformat" in str(exc) else f": {exc}"
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD (got {raw!r}{why})") from None


def _version() -> str:
    from . import __version__  # noqa: PLC0415 - read from the metadata only when asked

    return f"imagegen {__version__}"


class _Version(argparse.Action):
    """``--version``: the version is read from the package metadata only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(_version(), file=sys.stdout)
        parser.exit(0)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="imagegen", description="Prompt in, stored image out.")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=False, parser_class=_Parser
    )

    gen = commands.add_parser("generate", help="make one image and print where it went")
    gen.add_argument("prompt", help="what to draw")
    gen.add_argument(
        "--width", type=int, default=None, help="pixels, 64-4096, a multiple of 8 (1024)"
    )
    gen.add_argument(
        "--height", type=int, default=None, help="pixels, 64-4096, a multiple of 8 (1024)"
    )
    gen.add_argument(
        "--aspect-ratio",
        default=None,
        metavar="W:H",
        help="a shape such as 16:9 instead of --width/--height (about a megapixel)",
    )
    gen.add_argument(
        "--resolution",
        default=None,
        metavar="TIER",
        help="1K, 2K or 4K: about 1, 4 or 16 megapixels (with --aspect-ratio, of that shape)",
    )
    gen.add_argument("--seed", type=int, default=None, help="0 to 2**32-1")
    gen.add_argument("-n", type=int, default=1, metavar="N", help="how many images, 1-10")
    gen.add_argument("--format", default="png", help="png, jpeg or webp")
    gen.add_argument("--out", metavar="DIR", default=None, help="store the image under DIR")
    gen.add_argument(
        "--timeout", type=_seconds, default=None, help="overall deadline, seconds (finite, > 0)"
    )
    gen.add_argument("--json", action="store_true", help="print the result as JSON")

    serve = commands.add_parser(
        "serve", help="run the HTTP API with uvicorn (needs the 'server' extra)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on, 1-65535")

    doctor = commands.add_parser(
        "doctor",
        help="check each provider's key, the state backend and the storage (nothing billed)",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")

    stats = commands.add_parser("stats", help="print per-day, per-provider statistics")
    stats.add_argument("--since", type=_date, default=None, help="YYYY-MM-DD, from this day")
    stats.add_argument("--until", type=_date, default=None, help="YYYY-MM-DD, to this day")
    stats.add_argument("--provider", default=None, help="only this provider")
    stats.add_argument("--json", action="store_true", help="print JSON")

    config = commands.add_parser(
        "config", help="show or change the run-time settings shared through the state backend"
    )
    actions = config.add_subparsers(dest="action", required=True, parser_class=_Parser)
    actions.add_parser("show", help="print the settings and where each comes from, as JSON")
    change = actions.add_parser(
        "set",
        help="change settings for every process on the same state backend",
        description=(
            "Each SETTING is NAME=VALUE with a JSON value, e.g. timeout=20 "
            'strategy=\'{"kind": "hedge", "delay": 0.5}\' enabled=\'{"fal": false}\' '
            "priority='[\"fal\"]' retry='{\"attempts\": 2}'. A bad setting changes nothing."
        ),
    )
    change.add_argument("settings", nargs="+", metavar="SETTING", help="NAME=JSON")
    reset = actions.add_parser(
        "reset",
        help="drop shared settings (all, or those named): each process's own apply again",
    )
    reset.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="strategy, timeout, retry, breaker, enabled or priority (none: all)",
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, checked; exits 2 with one ``imagegen: error:`` line when they are bad.

    No command prints the help on stderr and exits 2.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        parser.exit(2)
    if args.command == "stats" and args.since and args.until and args.since > args.until:
        parser.error(
            f"--since ({args.since.isoformat()}) is after --until ({args.until.isoformat()})"
        )
    return args
