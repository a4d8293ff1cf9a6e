"""The ``imagegen`` command: generate, serve, check the providers, statistics, settings.

Configuration comes from the environment, as for ``ImageGenerator.from_env()``:
with no provider key set it runs offline on the placeholder provider, storing
under ``./imagegen-data``. Every library error ends as one line on stderr and an
exit status (2: bad input, 1: a failure), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

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
    MemoryState,
    StorageError,
)
from ._cli_parser import parse_args
from ._distribution import install_hint

__all__ = ["main"]


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


class _StateDown(Exception):
    """The state backend failed: one line naming it and the reason, exit 1."""

    def __init__(self, gen: ImageGenerator, exc: StorageError) -> None:
        reason = str(exc).removeprefix("the state backend ")
        super().__init__(f"state backend {gen.state!r}: {reason}")


@contextlib.contextmanager
def _state_calls(gen: ImageGenerator) -> Iterator[None]:
    """Inside it, a StorageError comes from the state backend: say which one."""
    try:
        yield
    except StorageError as exc:
        raise _StateDown(gen, exc) from None


def _data_dir_missing() -> bool:
    """The default SQLite state would be made in ``./imagegen-data``, which is not there."""
    return (
        not os.environ.get("IMAGEGEN_REDIS_URL")
        and not os.environ.get("IMAGEGEN_DATA_DIR")
        and not Path("imagegen-data").exists()
    )


def _check_out(directory: str) -> None:
    """``--out DIR`` is (or can be made) a directory a file can be written in.

    Raises:
        InvalidConfig: It cannot, naming it and why.
    """
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InvalidConfig(
            f"--out: cannot write to the directory {directory!r}: {why}", field="--out"
        ) from None


def _request(args: argparse.Namespace) -> ImageRequest:
    # Only the sides given are passed: the others follow --aspect-ratio and
    # --resolution, or default.
    sides = {k: v for k, v in (("width", args.width), ("height", args.height)) if v is not None}
    return ImageRequest(
        prompt=args.prompt,
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        seed=args.seed,
        n=args.n,
        output_format=args.format,
        **sides,
    )


async def _generate(
    args: argparse.Namespace, request: ImageRequest, out: TextIO, err: TextIO
) -> int:
    overrides: dict[str, Any] = {}
    if args.out is not None:
        overrides["storage"] = LocalStorage(args.out)
        if _data_dir_missing():
            # Nothing of this run goes to ./imagegen-data: do not make it for the records.
            overrides["state"] = MemoryState()
    if not args.json and err.isatty():
        overrides["hooks"] = [_Progress(err)]
    async with ImageGenerator.from_env(**overrides) as gen:
        try:
            # Passed per call: it wins over any shared timeout `imagegen config set` left.
            result = await gen.generate(request, timeout=args.timeout)
        except StorageError as exc:
            if not isinstance(gen.storage, LocalStorage):
                raise
            print(
                f"imagegen: error: could not store the image under {gen.storage.directory}: {exc}",
                file=err,
            )
            return 1
        if args.json:
            payload = result.to_dict()
            payload["path"] = _where(gen, result.key, result.url)
            for shown, image in zip(payload["images"], result.images, strict=True):
                shown["path"] = _where(gen, image.key, image.url)
            print(json.dumps(payload, indent=2), file=out)
        else:
            note = " (default image)" if result.is_default else ""
            for image in result.images:  # one line each: where to find it
                print(_where(gen, image.key, image.url), file=out)
            print(
                f"{result.width}x{result.height} {result.content_type} from {result.provider}"
                f"{note} in {result.elapsed:.2f}s",
                file=err,
            )
        for warning in result.warnings:  # what was not made as asked: one line each
            print(f"imagegen: warning: {warning}", file=err)
    return 0


async def _stats(args: argparse.Namespace, out: TextIO) -> int:
    async with ImageGenerator.from_env() as gen:
        with _state_calls(gen):
            rows = await gen.stats(since=args.since, until=args.until, provider=args.provider)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2), file=out)
        return 0
    print(
        f"{'day':<10}  {'provider':<16} {'req':>6} {'ok':>6} {'fail':>6} {'p50':>7} {'p99':>7}"
        f" {'cost $':>9}",
        file=out,
    )
    for r in rows:
        p50 = f"{r.p50:.2f}s" if r.p50 is not None else "-"
        p99 = f"{r.p99:.2f}s" if r.p99 is not None else "-"
        # A cost with calls of unknown price is a floor: marked with a "+".
        cost = f"{r.cost:.4f}{'+' if r.cost_unknown else ''}"
        print(
            f"{r.day.isoformat():<10}  {r.provider:<16} {r.requests:>6} {r.successes:>6} "
            f"{r.failures:>6} {p50:>7} {p99:>7} {cost:>9}",
            file=out,
        )
    return 0


async def _doctor(args: argparse.Namespace, out: TextIO) -> int:
    async with ImageGenerator.from_env() as gen:
        report = await gen.health(deep=True)
        state = f"ok ({gen.state!r})"
        if report["state"] != "ok":
            # The report names the failure's kind only; a read gives the reason.
            reason = f"{report['state']}"
            try:
                await gen.shared_settings()
            except StorageError as exc:
                reason = str(_StateDown(gen, exc)).removeprefix("state backend ")
            state = f"FAIL {reason}"
            report["state_error"] = reason
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        for name, result in report["checks"].items():
            mark = {"ok": "ok ", "unchecked": "?  "}.get(result, "FAIL")
            print(f"{mark} {name}: {result}", file=out)
        print(f"state: {state}", file=out)
        storage = report["storage"]
        if storage == "ok":
            print("storage: ok (a probe written, read back and deleted)", file=out)
        elif storage is not None:
            print(f"storage: FAIL {storage}", file=out)
    return 0 if report["status"] == "ok" else 1


_ALLOW_OPTIONS_VAR = "IMAGEGEN_ALLOW_PROVIDER_OPTIONS"
# Addresses meaning "every interface": no client can reach a server by them.
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - compared, not bound


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


def _own_url(host: str, port: int) -> str | None:
    """``http://host:port`` as a client would write it; None for a wildcard address."""
    if host in _WILDCARD_HOSTS:
        return None
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _serve(args: argparse.Namespace, err: TextIO) -> int:
    try:
        import uvicorn  # noqa: PLC0415 - the optional 'server' extra
        from starlette.applications import Starlette  # noqa: PLC0415
        from starlette.routing import Mount  # noqa: PLC0415

        from .server import create_app  # noqa: PLC0415
    except ImportError:
        print(
            f"imagegen: error: serve needs the server extra: {install_hint('server')}",
            file=err,
        )
        return 2
    gen = ImageGenerator.from_env()
    storage = gen.storage
    local = isinstance(storage, LocalStorage)
    if isinstance(storage, LocalStorage) and storage.base_url is None:
        # Nothing serves the data directory: the app does, at /files/, and the images'
        # URLs say so (file:// URLs are of no use to an HTTP client).
        own = _own_url(args.host, args.port)
        if own is None:
            print(
                f"imagegen: error: serve --host {args.host} listens on every address, so "
                "the images' URLs cannot name one: set IMAGEGEN_PUBLIC_BASE_URL to the "
                "URL clients reach this server's /files/ at",
                file=err,
            )
            return 2
        files = LocalStorage(storage.directory, base_url=f"{own}/files/")
        gen = ImageGenerator.from_env(storage=files)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Entering the generator gives jobs and background cancels their task group.
        async with gen:
            yield

    api = create_app(
        gen,
        admin_token=os.environ.get("IMAGEGEN_ADMIN_TOKEN") or None,
        allow_provider_options=_allowed_options(os.environ.get(_ALLOW_OPTIONS_VAR, "")),
        serve_files=local,
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


def _sources(gen: ImageGenerator, shared: dict[str, Any]) -> dict[str, str]:
    """Where each setting comes from: ``shared``, ``env`` or ``default``."""
    env = {
        "strategy": bool(os.environ.get("IMAGEGEN_STRATEGY")),
        "timeout": bool(os.environ.get("IMAGEGEN_TIMEOUT")),
        # The providers (and so which are enabled, in what order) come from the keys set.
        "enabled": any(p.name != "placeholder" for p in gen.providers),
        "priority": any(p.name != "placeholder" for p in gen.providers),
        "default_image": bool(os.environ.get("IMAGEGEN_DEFAULT_IMAGE")),
    }
    return {
        name: "shared" if name in shared else "env" if env.get(name) else "default"
        for name in gen.settings()
    }


async def _config(args: argparse.Namespace, out: TextIO) -> int:
    async with ImageGenerator.from_env() as gen:
        with _state_calls(gen):
            if args.action == "reset":
                await gen.reset_settings(*args.names)
            # Read first: a backend that is down is an error here, not the defaults shown.
            shared = await gen.shared_settings()
            await gen.refresh_config()  # the settings other processes published
            if args.action == "set":
                gen.update_settings(_parse_settings(args.settings))
                await gen.publish_config()
                shared = await gen.shared_settings()
        settings = gen.settings()
        print(json.dumps({**settings, "sources": _sources(gen, shared)}, indent=2), file=out)
    return 0


class _OneLine(logging.Formatter):
    """The library's warnings on stderr, one line each: an exception as its type and message."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message = f"{message} ({type(exc).__name__}: {exc})"
        return f"imagegen [{record.levelname.lower()}]: " + " ".join(message.splitlines())


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


@contextlib.contextmanager
def _logging() -> Iterator[None]:
    """Warnings to stderr, one line each, unless logging is set up already."""
    logger = logging.getLogger("imagegen")
    if logger.handlers or logging.getLogger().handlers:
        yield
        return
    handler = _Stderr(logging.WARNING)
    handler.setFormatter(_OneLine())
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.command == "generate":
        request = _request(args)
        if args.out is not None:
            _check_out(args.out)
        return anyio.run(_generate, args, request, out, err)
    if args.command == "serve":
        return _serve(args, err)
    if args.command == "doctor":
        return anyio.run(_doctor, args, out)
    if args.command == "config":
        return anyio.run(_config, args, out)
    return anyio.run(_stats, args, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad arguments)."""
    args = parse_args(argv)
    out, err = sys.stdout, sys.stderr
    with _logging():
        try:
            return _run(args, out, err)
        except (InvalidRequest, InvalidConfig) as exc:
            print(f"imagegen: error: {exc}", file=err)
            return 2
        except _StateDown as exc:
            print(f"imagegen: error: {exc}", file=err)
            return 1
        except (AllProvidersFailed, CircuitOpen) as exc:
            print(f"imagegen: {exc}", file=err)
            return 1
        except ImageGenError as exc:
            print(f"imagegen: {type(exc).__name__}: {exc}", file=err)
            return 1
        except KeyboardInterrupt:
            return 130
