"""`imagegen` with its state backend down: one line naming it and why, never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_support import SMALL
from cli_support import run_cli as run


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A local port bound but not listening: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(params=["redis", "data-dir"])
def down(request: pytest.FixtureRequest, tmp_path: Path, closed_port: int) -> dict[str, str]:
    """A Redis that refuses connections, or a data directory under a regular file."""
    if request.param == "redis":
        pytest.importorskip("redis")
        return {"IMAGEGEN_REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"}
    (tmp_path / "a-file").write_text("not a directory")
    return {"IMAGEGEN_DATA_DIR": str(tmp_path / "a-file" / "data")}


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


def _backend_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line: names the backend and the reason."""
    _no_traceback(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("imagegen: error: state backend ")
    assert "RedisState(" in line or "SQLiteState(" in line
    assert "Error" in line  # the reason: ConnectionError, NotADirectoryError...
    return line


def test_doctor_reports_state_fail(tmp_path: Path, down: dict[str, str]) -> None:
    """`doctor` prints `state: FAIL <reason>` and exits 1."""
    proc = run(tmp_path, "doctor", **down)
    _no_traceback(proc)
    assert proc.returncode == 1
    state = [line for line in proc.stdout.splitlines() if line.startswith("state: ")]
    assert len(state) == 1, proc.stdout
    assert state[0].startswith("state: FAIL ")
    assert "Error" in state[0]


def test_doctor_json_has_the_reason(tmp_path: Path, down: dict[str, str]) -> None:
    """`doctor --json` says degraded, with the reason under state_error."""
    proc = run(tmp_path, "doctor", "--json", **down)
    _no_traceback(proc)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["status"] == "degraded"
    assert "Error" in report["state_error"]


def test_stats_one_line(tmp_path: Path, down: dict[str, str]) -> None:
    """`stats` exits 1 with one line naming the backend and the reason."""
    proc = run(tmp_path, "stats", **down)
    assert proc.returncode == 1
    assert proc.stdout == ""
    _backend_line(proc)


@pytest.mark.parametrize("action", [["show"], ["set", "timeout=20"], ["reset"]])
def test_config_one_line(tmp_path: Path, down: dict[str, str], action: list[str]) -> None:
    """`config show|set|reset` exit 1 naming the backend, not the local defaults with 0."""
    proc = run(tmp_path, "config", *action, **down)
    assert proc.returncode == 1
    assert proc.stdout == ""
    _backend_line(proc)


def test_generate_warns_in_single_lines(tmp_path: Path, down: dict[str, str]) -> None:
    """`generate` logs one-line warnings; it exits 0 with the image or 1 with one error line."""
    proc = run(tmp_path, "generate", "x", *SMALL, **down)
    _no_traceback(proc)
    lines = [line for line in proc.stderr.splitlines() if " from placeholder in " not in line]
    assert lines
    # Each warning on a line of its own, marked as the command's.
    assert all(line.startswith("imagegen") for line in lines), proc.stderr
    if "IMAGEGEN_REDIS_URL" in down:
        # Images go to ./imagegen-data: made anyway, only its records are lost.
        assert proc.returncode == 0, proc.stderr
        assert Path(proc.stdout.strip()).is_file()
    else:
        # The images would go under the same broken directory: the error names it.
        assert proc.returncode == 1
        errors = [line for line in lines if line.startswith("imagegen: error:")]
        assert len(errors) == 1
        assert str(tmp_path / "a-file" / "data" / "images") in errors[0]
