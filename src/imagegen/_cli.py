"""The ``imagegen`` command: generate, serve, check the providers, statistics, settings.

Configuration comes from the environment, as for ``ImageGenerator.from_env()``:
with no provider key set it runs offline on the placeholder provider, storing
under ``./imagegen-data``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn, TextIO

import anyio

from . import (
    AllProvidersFailed,
    CircuitOpen,
    Event,
    ImageGenerator,
    ImageGenError,
    ImageRequest,
    InvalidConfig,
    InvalidRequest,
    LocalStorage,
)

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: easy to read and to grep.
        self.exit(2, f"imagegen: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="imagegen", description="Prompt in, stored image out.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = commands.add_parser("generate", help="make one image and print where it went")
    gen.add_argument("prompt", help="what to draw")
    gen.add_argument("--width", type=int, default=1024, help="pixels, 64-4096, a multiple of 8")
    gen.add_argument("--height", type=int, default=1024, help="pixels, 64-4096, a multiple of 8")
    gen.add_argument("--seed", type=int, default=None, help="0 to 2**32-1")
    gen.add_argument("--format", default="png", help="png, jpeg or webp")
    gen.add_argument("--out", metavar="DIR", default=None, help="store the image under DIR")
    gen.add_argument("--timeout", type=float, default=None, help="overall deadline, seconds")
    gen.add_argument("--json", action="store_true", help="print the result as JSON")

    serve = commands.add_parser(
        "serve", help="run the HTTP API with uvicorn (needs the 'server' extra)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")

    doctor = commands.add_parser(
        "doctor", help="check each configured provider's key (nothing is generated or billed)"
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")

    stats = commands.add_parser("stats", help="print per-day, per-provider statistics")
    stats.add_argument("--since", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD")
    stats.add_argument("--until", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD")
    stats.add_argument("--provider", default=None, help="only this provider")
    stats.add_argument("--json", action="store_true", help="print JSON")

    config = commands.add_parser(
        "config", help="show or change the run-time settings shared through the state backend"
    )
    actions = config.add_subparsers(dest="action", required=True, parser_class=_Parser)
    actions.add_parser("show", help="print the settings as JSON")
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
    return parser


class _Progress:
    """Live progress on a terminal: which providers run, fail and win."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        line = None
        if event.kind == "attempt_started":
            line = f"  … {event.provider} started (try {event.data.get('try')})"
        elif event.kind == "attempt_finished":
            outcome = event.data.get("outcome")
            if outcome == "success":
                line = f"  ✓ {event.provider} won"
            elif outcome == "cancelled":
                line = f"  · {event.provider} cancelled"
            else:
                line = f"  ✗ {event.provider} failed: {event.data.get('error')}"
        elif event.kind == "retry_scheduled":
            line = f"  ↻ {event.provider} retry in {event.data.get('delay', 0):.1f}s"
        if line is not None:
            print(line, file=self.stream, flush=True)


def _where(gen: ImageGenerator, key: str | None, url: str | None) -> str:
    if key is not None and isinstance(gen.storage, LocalStorage):
        return str(gen.storage.path_for(key))
    return url or "(not stored)"


async def _generate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    request = ImageRequest(
        prompt=args.prompt,
        width=args.width,
        height=args.height,
        seed=args.seed,
        output_format=args.format,
    )
    overrides: dict[str, Any] = {}
    if args.out is not None:
        overrides["storage"] = LocalStorage(args.out)
    if not args.json and err.isatty():
        overrides["hooks"] = [_Progress(err)]
    async with ImageGenerator.from_env(**overrides) as gen:
        # Passed per call: it wins over any shared timeout `imagegen config set` left.
        result = await gen.generate(request, timeout=args.timeout)
        if args.json:
            payload = result.to_dict()
            payload["path"] = _where(gen, result.key, result.url)
            print(json.dumps(payload, indent=2), file=out)
        else:
            note = " (default image)" if result.is_default else ""
            print(_where(gen, result.key, result.url), file=out)
            print(
                f"{result.width}x{result.height} {result.content_type} from {result.provider}"
                f"{note} in {result.elapsed:.2f}s",
                file=err,
            )
    return 0


async def _stats(args: argparse.Namespace, out: TextIO) -> int:
    async with ImageGenerator.from_env() as gen:
        rows = await gen.stats(since=args.since, until=args.until, provider=args.provider)
    if args.json:
        payload: list[dict[str, Any]] = [
            {
                "day": r.day.isoformat(),
                "provider": r.provider,
                "requests": r.requests,
                "successes": r.successes,
                "failures": r.failures,
                "cancelled": r.cancelled,
                "failures_by_kind": dict(r.failures_by_kind),
                "p50": r.p50,
                "p90": r.p90,
                "p99": r.p99,
            }
            for r in rows
        ]
        print(json.dumps(payload, indent=2), file=out)
        return 0
    print(
        f"{'day':<10}  {'provider':<16} {'req':>6} {'ok':>6} {'fail':>6} {'p50':>7} {'p99':>7}",
        file=out,
    )
    for r in rows:
        p50 = f"{r.p50:.2f}s" if r.p50 is not None else "-"
        p99 = f"{r.p99:.2f}s" if r.p99 is not None else "-"
        print(
            f"{r.day.isoformat():<10}  {r.provider:<16} {r.requests:>6} {r.successes:>6} "
            f"{r.failures:>6} {p50:>7} {p99:>7}",
            file=out,
        )
    return 0


async def _doctor(args: argparse.Namespace, out: TextIO) -> int:
    async with ImageGenerator.from_env() as gen:
        report = await gen.health(deep=True)
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        for name, result in report["checks"].items():
            mark = "ok " if result == "ok" else "FAIL"
            print(f"{mark} {name}: {result}", file=out)
        print(f"state backend: {report['state']}", file=out)
        if report["storage"] is not None:
            print(f"storage (write, read, delete a probe): {report['storage']}", file=out)
    return 0 if report["status"] == "ok" else 1


_ALLOW_OPTIONS_VAR = "IMAGEGEN_ALLOW_PROVIDER_OPTIONS"


def _allowed_options(raw: str) -> Any:
    """``IMAGEGEN_ALLOW_PROVIDER_OPTIONS``: JSON ``{"provider": ["key", ...]}``, or unset.

    The shape is checked by ``create_app``; this only reads the JSON.

    Raises:
        InvalidConfig: The value is not JSON.
    """
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise InvalidConfig(
            f'{_ALLOW_OPTIONS_VAR} must be JSON like {{"openai": ["background"]}} (got {raw!r})',
            field=_ALLOW_OPTIONS_VAR,
        ) from None


def _serve(args: argparse.Namespace, err: TextIO) -> int:
    try:
        import uvicorn  # noqa: PLC0415 - the optional 'server' extra
        from starlette.applications import Starlette  # noqa: PLC0415
        from starlette.routing import Mount  # noqa: PLC0415

        from .server import create_app  # noqa: PLC0415
    except ImportError:
        print(
            "imagegen: error: serve needs the server extra: pip install 'imagegen[server]'",
            file=err,
        )
        return 2
    gen = ImageGenerator.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Entering the generator gives jobs and background cancels their task group.
        async with gen:
            yield

    api = create_app(
        gen,
        admin_token=os.environ.get("IMAGEGEN_ADMIN_TOKEN") or None,
        allow_provider_options=_allowed_options(os.environ.get(_ALLOW_OPTIONS_VAR, "")),
    )
    app = Starlette(routes=[Mount("/", app=api)], lifespan=lifespan)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _parse_settings(pairs: Sequence[str]) -> dict[str, Any]:
    """NAME=JSON pairs as one JSON object; a bare word that is not JSON is taken as a string."""
    data: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise InvalidConfig(f"settings are NAME=VALUE (got {pair!r})", field="settings")
        try:
            data[name] = json.loads(raw)
        except json.JSONDecodeError:
            raise InvalidConfig(
                f"{name}: the value must be JSON (got {raw!r})", field=name
            ) from None
    return data


async def _config(args: argparse.Namespace, out: TextIO) -> int:
    async with ImageGenerator.from_env() as gen:
        await gen.refresh_config()  # the settings other processes published
        if args.action == "set":
            gen.update_settings(_parse_settings(args.settings))
            await gen.publish_config()
        print(json.dumps(gen.settings(), indent=2), file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad arguments)."""
    args = _parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        if args.command == "generate":
            return anyio.run(_generate, args, out, err)
        if args.command == "serve":
            return _serve(args, err)
        if args.command == "doctor":
            return anyio.run(_doctor, args, out)
        if args.command == "config":
            return anyio.run(_config, args, out)
        return anyio.run(_stats, args, out)
    except (InvalidRequest, InvalidConfig) as exc:
        print(f"imagegen: error: {exc}", file=err)
        return 2
    except (AllProvidersFailed, CircuitOpen) as exc:
        print(f"imagegen: {exc}", file=err)
        return 1
    except ImageGenError as exc:
        print(f"imagegen: {type(exc).__name__}: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        return 130
