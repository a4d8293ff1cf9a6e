"""The command line: ``python -m benchmarks.emulator [--host] [--port] [--config] [--backend]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anyio

from ._profiles import ProviderProfile, default_profiles
from ._server import Emulator


def load_profiles(path: str | None) -> dict[str, ProviderProfile]:
    """Profiles from a JSON file ``{"providers": {name: profile}}``; None: the defaults."""
    if path is None:
        return default_profiles()
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {n: ProviderProfile.from_dict(p) for n, p in data["providers"].items()}


async def _serve(profiles: dict[str, ProviderProfile], host: str, port: int) -> None:
    import signal  # noqa: PLC0415 - only the command line needs it

    async with Emulator(profiles, host=host, port=port) as emu:
        print(f"imagegen emulator listening on {emu.origin}", flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                return


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.emulator``: serve until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description="imagegen's local provider emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--config", help='JSON file: {"providers": {name: profile}}')
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args(argv)
    anyio.run(_serve, load_profiles(args.config), args.host, args.port, backend=args.backend)
