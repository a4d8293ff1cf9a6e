"""Running the real `imagegen` entry point in a fresh process, offline, for CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: Provider keys a developer's shell may hold: never passed on, so the CLI runs offline.
PROVIDER_KEYS = ("REPLICATE_API_TOKEN", "FAL_KEY", "UNSPLASH_ACCESS_KEY", "OPENAI_API_KEY")
#: Small images: the placeholder draws them in milliseconds.
SMALL = ["--width", "64", "--height", "64"]


def run_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m imagegen *args`` in ``cwd``, without provider keys or ``IMAGEGEN_*``
    settings from the environment, with ``env`` on top; bounded to 30 seconds."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in PROVIDER_KEYS and not k.startswith("IMAGEGEN_")
    }
    return subprocess.run(
        [sys.executable, "-m", "imagegen", *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
