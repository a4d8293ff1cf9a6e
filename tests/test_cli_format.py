"""`imagegen generate --format`: a format the offline placeholder cannot draw is said so
(the result's warnings, one stderr line each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import SMALL
from cli_support import run_cli as run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "jpg"])
def test_unhonoured_format_is_noted(tmp_path: Path, fmt: str) -> None:
    """The placeholder's PNG comes back, exit 0, with one warning line saying why."""
    proc = run(tmp_path, "generate", "a fox", *SMALL, "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path.read_bytes().startswith(PNG_MAGIC)
    notes = [line for line in proc.stderr.splitlines() if line.startswith("imagegen: warning:")]
    expected = (
        "imagegen: warning: output_format: the offline placeholder draws PNG only (placeholder)"
    )
    assert notes == [expected]
    assert "Traceback" not in proc.stderr


def test_note_with_json(tmp_path: Path) -> None:
    """With --json the warning is on stderr and in the JSON, stdout one JSON document."""
    proc = run(tmp_path, "generate", "a fox", *SMALL, "--format", "webp", "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["content_type"] == "image/png"
    assert payload["warnings"] == [
        {
            "field": "output_format",
            "message": "the offline placeholder draws PNG only",
            "provider": "placeholder",
        }
    ]
    assert proc.stderr.count("imagegen: warning:") == 1


@pytest.mark.parametrize("argv", [[], ["--format", "png"]], ids=["default", "png"])
def test_png_says_nothing(tmp_path: Path, argv: list[str]) -> None:
    """PNG asked for (or by default) and made: no warning."""
    proc = run(tmp_path, "generate", "a fox", *SMALL, *argv)
    assert proc.returncode == 0, proc.stderr
    assert "warning:" not in proc.stderr
    assert "image/png from placeholder" in proc.stderr


def test_shape_and_tier_on_the_command_line(tmp_path: Path) -> None:
    """--aspect-ratio and --resolution make the size; a bad tier is exit 2 naming it."""
    proc = run(
        tmp_path, "generate", "a fox", "--aspect-ratio", "4:1", "--resolution", "1k", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert (payload["width"], payload["height"]) == (2048, 512)
    assert payload["warnings"] == []
    proc = run(tmp_path, "generate", "a fox", "--resolution", "8K")
    assert proc.returncode == 2
    assert "resolution must be one of 1K, 2K, 4K" in proc.stderr
