"""`imagegen` arguments: --version, no command, bad values in one line, and --out."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from cli_support import SMALL
from cli_support import run_cli as run


def test_version(tmp_path: Path) -> None:
    """--version prints the installed version and exits 0."""
    proc = run(tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"imagegen {importlib.metadata.version('imagegen-failover')}"


def test_no_command_prints_usage(tmp_path: Path) -> None:
    """Bare `imagegen` prints the usage with the commands on stderr and exits 2."""
    proc = run(tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("usage: imagegen")
    for command in ("generate", "serve", "doctor", "stats", "config"):
        assert command in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        pytest.param(["serve", "--port", "99999"], ["--port", "1-65535", "99999"], id="port-high"),
        pytest.param(["serve", "--port", "0"], ["--port", "1-65535"], id="port-zero"),
        pytest.param(
            ["stats", "--since", "2026-13-01"], ["--since", "2026-13-01", "month"], id="month-13"
        ),
        pytest.param(
            ["stats", "--until", "2026-02-30"], ["--until", "2026-02-30"], id="february-30"
        ),
        pytest.param(
            ["stats", "--since", "2026-02-01", "--until", "2026-01-31"],
            ["--since", "--until", "2026-02-01", "2026-01-31", "after"],
            id="since-after-until",
        ),
        *(
            pytest.param(
                ["generate", "x", f"--timeout={value}"],
                ["--timeout", "finite number of seconds > 0", value],
                id=f"timeout-{value}",
            )
            for value in ("inf", "nan", "0", "-1", "soon")
        ),
    ],
)
def test_bad_values_one_line(tmp_path: Path, argv: list[str], words: list[str]) -> None:
    """A bad value exits 2 with one line naming the option, the value and the rule."""
    proc = run(tmp_path, *argv)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("imagegen: error:")
    for word in words:
        assert word in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_out_unwritable_names_the_directory(tmp_path: Path) -> None:
    """--out under a regular file: exit 2, one line naming the directory, nothing made."""
    (tmp_path / "a-file").write_text("not a directory")
    proc = run(tmp_path, "generate", "x", *SMALL, "--out", "a-file/pictures")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("imagegen: error: --out")
    assert "a-file/pictures" in lines[0]
    assert not (tmp_path / "imagegen-data").exists()


def test_out_makes_no_data_directory(tmp_path: Path) -> None:
    """--out DIR with no ./imagegen-data: the image in DIR, and ./imagegen-data not made."""
    proc = run(tmp_path, "generate", "x", *SMALL, "--out", "pictures")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path.is_file()
    assert path.resolve().is_relative_to((tmp_path / "pictures").resolve())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pictures"]


def test_out_records_in_an_existing_data_directory(tmp_path: Path) -> None:
    """With ./imagegen-data there already, an --out generation is recorded in it."""
    (tmp_path / "imagegen-data").mkdir()
    proc = run(tmp_path, "generate", "x", *SMALL, "--out", "pictures")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "imagegen-data" / "images").exists()
    stats = run(tmp_path, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    rows = json.loads(stats.stdout)
    assert [(r["provider"], r["requests"]) for r in rows] == [("placeholder", 1)]
