"""docs/emulator.md's two commands, run as a user runs them, each in a process of its own.

The emulator starts from the checkout as the page says (``python -m benchmarks.emulator``, on
a free port: ``--port 0``, its URL read from the line it prints), and the real ``imagegen``
entry point runs against it with the page's environment variables and nothing else (plus a
proxy on a closed port for every host but 127.0.0.1, so a request meant for a vendor's real
host fails instead of leaving the machine). The commands and variables are read from the page
itself, so what it documents is what is tested.
"""

from __future__ import annotations

import json
import re
import select
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from benchmarks.emulator import APIS, closed_port_url, image_bytes

from cli_support import run_cli

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "emulator.md").read_text(encoding="utf-8")
DOCUMENTED_ORIGIN = "http://127.0.0.1:8765"
#: What the emulator's instances serve (the default profiles: 64x64 PNGs).
PNG = image_bytes("png", 64)


def assignments(words: list[str]) -> dict[str, str]:
    """``NAME=value`` words, as a mapping."""
    pairs = [word.split("=", 1) for word in words]
    assert all(len(pair) == 2 and re.fullmatch(r"[A-Z_]+", pair[0]) for pair in pairs), words
    return dict(pairs)  # type: ignore[arg-type]


def documented_command() -> tuple[dict[str, str], list[str]]:
    """The page's ``imagegen generate`` block: its variables, and the command's arguments."""
    blocks = re.findall(r"^```bash\n(.*?)^```", PAGE, re.M | re.S)
    block = next(b for b in blocks if "imagegen generate" in b and "S3" not in b)
    words = shlex.split(block.replace("\\\n", " "))
    at = words.index("imagegen")
    return assignments(words[:at]), words[at + 1 :]


def documented_instances() -> dict[str, dict[str, str]]:
    """The page's table: instance -> the variables it gives for ``imagegen``."""
    rows = re.findall(r"^\| `([a-z]+)` \| .*? \| `([^`]+)` \|$", PAGE, re.M)
    return {name: assignments(shlex.split(variables)) for name, variables in rows}


def at(origin: str, variables: dict[str, str]) -> dict[str, str]:
    """``variables`` with the page's port replaced by the running emulator's."""
    return {k: v.replace(DOCUMENTED_ORIGIN, origin) for k, v in variables.items()}


def loopback_only() -> dict[str, str]:
    """Proxy settings that send every host but 127.0.0.1 to a port where nothing listens."""
    proxy = closed_port_url()
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    return {
        **dict.fromkeys(names, proxy),
        **{n.lower(): proxy for n in names},
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """The first command, from the checkout, with ``--port 0``: the origin it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.emulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        match = re.fullmatch(r"imagegen emulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, f"the emulator did not start: {line!r}"
        yield match[1]
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


def stats(origin: str, instance: str) -> dict[str, int]:
    """An instance's counters, from the emulator's control API."""
    answer = httpx.get(f"{origin}/_emulator/stats/{instance}", timeout=5)
    answer.raise_for_status()
    data: dict[str, int] = answer.json()
    return data


def test_the_page_documents_every_instance() -> None:
    """The table covers the twelve default instances; the command is the Replicate row's, with
    IMAGEGEN_DOWNLOAD_ALLOW."""
    instances = documented_instances()
    assert set(instances) == set(APIS)
    variables, args = documented_command()
    assert variables == {**instances["replicate"], "IMAGEGEN_DOWNLOAD_ALLOW": "http,private"}
    assert args[0] == "generate"
    assert "python -m benchmarks.emulator --port 8765\n" in PAGE


def test_the_documented_command(emulator: str, tmp_path: Path) -> None:
    """The second command, as written: it prints the path of an image the emulator's Replicate
    made (the emulator's bytes, not the placeholder's), and says so on stderr."""
    variables, args = documented_command()
    before = stats(emulator, "replicate")
    done = run_cli(tmp_path, *args, **at(emulator, variables), **loopback_only())
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.is_relative_to(tmp_path / "imagegen-data")
    assert path.read_bytes() == PNG
    assert "from replicate" in done.stderr
    after = stats(emulator, "replicate")
    assert (after["billed"], after["downloads"]) == (before["billed"] + 1, before["downloads"] + 1)


@pytest.mark.parametrize("instance", APIS)
def test_each_instance(emulator: str, tmp_path: Path, instance: str) -> None:
    """Each row of the table, with IMAGEGEN_DOWNLOAD_ALLOW: ``imagegen generate --json`` makes
    the image with that provider, from the emulator; ``imagegen doctor`` finds its key good."""
    variables = {
        **at(emulator, documented_instances()[instance]),
        "IMAGEGEN_DOWNLOAD_ALLOW": "http,private",
        **loopback_only(),
    }
    before = stats(emulator, instance)
    done = run_cli(tmp_path, "generate", "a fox", "--json", **variables)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["provider"], result["is_default"]) == (instance, False)
    assert stats(emulator, instance)["billed"] == before["billed"] + 1
    if instance == "unsplash":  # hotlinked: the emulator's URL, nothing stored
        assert result["path"].startswith(f"{emulator}/unsplash/files/image/")
    else:
        made = image_bytes("jpeg") if instance == "xai" else PNG  # xAI makes JPEG
        assert Path(result["path"]).read_bytes() == made
    if instance in ("replicate", "fal", "bfl"):  # downloaded from the emulator
        assert result["source_url"].startswith(f"{emulator}/{instance}/files/image/")
    doctor = run_cli(tmp_path, "doctor", **variables)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"{instance}: ok" in doctor.stdout
