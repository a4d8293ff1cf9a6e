"""The ``imagegen`` command line: generate, stats, errors and progress output."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli_support import PROVIDER_KEYS, SMALL
from imagegen import Event, Placeholder, ProviderAuthError
from imagegen._cli import _Progress, main


def _clean_env(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    return {
        k: v for k, v in environ.items() if k not in PROVIDER_KEYS and not k.startswith("IMAGEGEN_")
    }


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run every test in an empty directory with no provider key and no IMAGEGEN_* setting."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name in PROVIDER_KEYS or name.startswith("IMAGEGEN_"):
            monkeypatch.delenv(name)
    return tmp_path


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("imagegen: error:")
    return lines[0]


def _generate_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["generate", "a red fox", *SMALL, *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


class TestGenerate:
    def test_default_prints_path_of_a_1024_png(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """`generate PROMPT` exits 0 and prints the path of a 1024x1024 PNG in ./imagegen-data."""
        assert main(["generate", "a lighthouse at dusk"]) == 0
        out, err = capsys.readouterr()
        lines = out.splitlines()
        assert len(lines) == 1
        path = Path(lines[0])
        assert path.is_file()
        assert path.resolve().is_relative_to((tmp_path / "imagegen-data" / "images").resolve())
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (1024, 1024)
        assert "1024x1024 image/png from placeholder" in err

    def test_size_and_seed(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--width/--height set the size; the same prompt and --seed give the same bytes."""
        argv = ["generate", "a lighthouse", "--width", "512", "--height", "256", "--seed", "7"]
        paths = []
        for _ in range(2):
            assert main(argv) == 0
            paths.append(Path(capsys.readouterr().out.strip()))
        assert paths[0] != paths[1]
        with Image.open(paths[0]) as image:
            assert image.size == (512, 256)
        assert paths[0].read_bytes() == paths[1].read_bytes()

    def test_json_output(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints the result fields plus the file path, without the image bytes."""
        payload = _generate_json(capsys)
        assert payload["provider"] == "placeholder"
        assert isinstance(payload["id"], str)
        assert payload["id"]
        assert "data" not in payload
        path = Path(str(payload["path"]))
        assert path.is_file()
        assert payload["url"] == path.as_uri()
        assert (payload["width"], payload["height"]) == (64, 64)
        assert payload["is_default"] is False

    def test_out_directory(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """--out DIR stores the image under DIR instead of the data directory."""
        payload = _generate_json(capsys, "--out", "elsewhere")
        path = Path(str(payload["path"]))
        assert path.is_file()
        assert path.resolve().is_relative_to((tmp_path / "elsewhere").resolve())
        assert not (tmp_path / "imagegen-data" / "images").exists()

    def test_namespace_from_imagegen_env(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """IMAGEGEN_ENV prefixes the stored key with the environment's name."""
        monkeypatch.setenv("IMAGEGEN_ENV", "staging")
        payload = _generate_json(capsys)
        assert str(payload["key"]).startswith("staging/")

    def test_no_progress_when_stderr_is_not_a_terminal(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without a terminal, stderr gets only the one summary line."""
        assert main(["generate", "x", *SMALL]) == 0
        assert len(capsys.readouterr().err.splitlines()) == 1

    def test_progress_on_a_terminal(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """On a terminal, stderr shows the attempt starting and winning before the summary."""

        class Tty(io.StringIO):
            def isatty(self) -> bool:
                return True

        out, err = io.StringIO(), Tty()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        assert main(["generate", "x", *SMALL]) == 0
        lines = err.getvalue().splitlines()
        assert lines[:2] == ["  … placeholder started (try 1)", "  ✓ placeholder won"]
        assert lines[2].startswith("64x64 image/png from placeholder")
        assert Path(out.getvalue().strip()).is_file()


class TestBadArguments:
    @pytest.mark.parametrize(
        "argv",
        [
            pytest.param(["paint", "x"], id="unknown-command"),
            pytest.param(["generate"], id="missing-prompt"),
            pytest.param(["generate", "x", "--width", "abc"], id="width-not-int"),
            pytest.param(["generate", "x", "--seed", "1.5"], id="seed-not-int"),
            pytest.param(["generate", "x", "--bogus"], id="unknown-option"),
            pytest.param(["stats", "--since", "yesterday"], id="since-not-date"),
            pytest.param(["generate", "x", "--timeout", "0"], id="timeout-zero"),
        ],
    )
    def test_parse_errors_exit_2(
        self, argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """An argument argparse rejects exits 2 with one `imagegen: error:` line, nothing made."""
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        out, err = capsys.readouterr()
        assert out == ""
        _one_error_line(err)
        assert not (tmp_path / "imagegen-data").exists()

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            pytest.param(["x", "--width", "100"], "width", id="width-not-multiple-of-8"),
            pytest.param(["x", "--height", "8"], "height", id="height-too-small"),
            pytest.param(["x", "--seed", "-1"], "seed", id="seed-negative"),
            pytest.param(["x", "--format", "gif"], "output_format", id="format-gif"),
            pytest.param(["   "], "prompt", id="prompt-only-spaces"),
        ],
    )
    def test_invalid_values_return_2(
        self, args: list[str], field: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A value the library refuses returns 2 and one error line naming it; nothing stored."""
        assert main(["generate", *args]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert field in _one_error_line(err)
        assert not (tmp_path / "imagegen-data" / "images").exists()

    @pytest.mark.parametrize("command", [["generate", "x"], ["stats"]])
    def test_bad_environment_returns_2(
        self,
        command: list[str],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A bad IMAGEGEN_TIMEOUT returns 2 with one error line naming the variable."""
        monkeypatch.setenv("IMAGEGEN_DEFAULT_IMAGE", "none")
        monkeypatch.setenv("IMAGEGEN_TIMEOUT", "abc")
        assert main(command) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert "IMAGEGEN_TIMEOUT" in _one_error_line(err)


class TestDoctor:
    def test_offline_providers_are_fine(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Offline, doctor checks the placeholder and the state backend and exits 0."""
        assert main(["doctor"]) == 0
        out = capsys.readouterr().out
        assert "ok  placeholder: ok" in out
        assert "state: ok (SQLiteState(" in out
        assert "storage: ok (a probe written, read back and deleted)" in out

    def test_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints the deep health report."""
        assert main(["doctor", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["status"] == "ok"
        assert report["checks"] == {"placeholder": "ok"}

    def test_a_failed_check_exits_1(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A provider whose check fails is reported with its error, and the exit code is 1."""

        async def refuse(self: Placeholder, ctx: object) -> None:
            raise ProviderAuthError("key refused", provider="placeholder", status=401)

        monkeypatch.setattr(Placeholder, "check", refuse)
        assert main(["doctor"]) == 1
        assert "FAIL placeholder: ProviderAuthError: key refused" in capsys.readouterr().out


class TestStats:
    @pytest.fixture
    def two_generations(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Two images generated in the current directory's data dir."""
        for prompt in ("one", "two"):
            assert main(["generate", prompt, *SMALL]) == 0
        capsys.readouterr()

    @pytest.mark.usefixtures("two_generations")
    def test_table(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`stats` prints a header and a placeholder row with 2 requests, 2 ok, 0 failed."""
        assert main(["stats"]) == 0
        header, *rows = capsys.readouterr().out.splitlines()
        assert header.split()[:5] == ["day", "provider", "req", "ok", "fail"]
        assert len(rows) == 1
        fields = rows[0].split()
        assert fields[1:5] == ["placeholder", "2", "2", "0"]

    @pytest.mark.usefixtures("two_generations")
    def test_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`stats --json` lists one row per day and provider with the counters."""
        assert main(["stats", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert len(rows) == 1
        row = rows[0]
        assert row["provider"] == "placeholder"
        assert (row["requests"], row["successes"], row["failures"], row["cancelled"]) == (
            2,
            2,
            0,
            0,
        )
        assert row["failures_by_kind"] == {}
        assert row["p50"] is not None
        assert row["p50"] <= row["p90"] <= row["p99"]

    @pytest.mark.usefixtures("two_generations")
    @pytest.mark.parametrize(
        ("filters", "rows"),
        [
            pytest.param(["--provider", "placeholder"], 1, id="provider-match"),
            pytest.param(["--provider", "replicate"], 0, id="provider-other"),
            pytest.param(["--since", "2999-01-01"], 0, id="since-future"),
            pytest.param(["--until", "2000-01-01"], 0, id="until-past"),
            pytest.param(["--since", "2000-01-01", "--until", "2999-12-31"], 1, id="window"),
        ],
    )
    def test_filters(
        self, filters: list[str], rows: int, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--provider, --since and --until select the rows shown."""
        assert main(["stats", "--json", *filters]) == 0
        assert len(json.loads(capsys.readouterr().out)) == rows

    def test_empty(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With nothing generated, `stats --json` prints an empty list."""
        assert main(["stats", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == []


class TestConsoleScript:
    def test_python_dash_m(self, tmp_path: Path) -> None:
        """`python -m imagegen generate` runs in a fresh process and writes a PNG."""
        proc = subprocess.run(
            [sys.executable, "-m", "imagegen", "generate", "x", *SMALL],
            cwd=tmp_path,
            env=_clean_env(os.environ),
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        path = Path(proc.stdout.strip())
        if not path.is_absolute():
            path = tmp_path / path
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (64, 64)


class TestProgress:
    @pytest.mark.parametrize(
        ("event", "line"),
        [
            pytest.param(
                Event(kind="attempt_started", provider="p", data={"try": 1}),
                "  … p started (try 1)",
                id="started",
            ),
            pytest.param(
                Event(kind="attempt_finished", provider="p", data={"outcome": "success"}),
                "  ✓ p won",
                id="won",
            ),
            pytest.param(
                Event(kind="attempt_finished", provider="p", data={"outcome": "cancelled"}),
                "  · p cancelled",
                id="cancelled",
            ),
            pytest.param(
                Event(
                    kind="attempt_finished",
                    provider="p",
                    data={"outcome": "error", "error": "timeout"},
                ),
                "  ✗ p failed: timeout",
                id="failed",
            ),
            pytest.param(
                Event(kind="retry_scheduled", provider="p", data={"try": 1, "delay": 2.0}),
                "  ↻ p retry in 2.0s",
                id="retry",
            ),
        ],
    )
    def test_line_per_event(self, event: Event, line: str) -> None:
        """Attempt and retry events each write one line naming the provider."""
        stream = io.StringIO()
        _Progress(stream)(event)
        assert stream.getvalue() == line + "\n"

    @pytest.mark.parametrize(
        "kind", ["generation_started", "generation_finished", "breaker_state_changed"]
    )
    def test_other_events_are_silent(self, kind: str) -> None:
        """Events other than attempts and retries write nothing."""
        stream = io.StringIO()
        _Progress(stream)(Event(kind=kind, provider="p"))
        assert stream.getvalue() == ""


class TestConfig:
    """`imagegen config show|set`: the settings shared through the state backend."""

    def test_show(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The offline defaults: race, 30 s, the placeholder enabled."""
        assert main(["config", "show"]) == 0
        settings = json.loads(capsys.readouterr().out)
        assert settings["strategy"]["kind"] == "race"
        assert settings["timeout"] == 30.0
        assert settings["enabled"] == {"placeholder": True}
        assert settings["default_image"] == "placeholder"

    def test_set_is_shared_with_later_processes(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A change is published to the backend: the next `show` (a new generator) sees it."""
        assert (
            main(["config", "set", "timeout=12.5", 'strategy={"kind": "hedge", "delay": 0.5}']) == 0
        )
        changed = json.loads(capsys.readouterr().out)
        assert changed["timeout"] == 12.5
        assert main(["config", "show"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["timeout"] == 12.5
        assert (shown["strategy"]["kind"], shown["strategy"]["delay"]) == ("hedge", 0.5)
        assert main(["generate", "a fox", *SMALL, "--json"]) == 0  # runs on them
        capsys.readouterr()

    @pytest.mark.parametrize(
        ("setting", "field"),
        [
            ("timeout", "settings"),
            ("timeout=soon", "timeout"),
            ("timeout=-1", "timeout"),
            ('retry={"attempts": 0}', "retry.attempts"),
            ("colour=1", "colour"),
        ],
    )
    def test_bad_settings_change_nothing(
        self, capsys: pytest.CaptureFixture[str], setting: str, field: str
    ) -> None:
        """A bad setting exits 2 with one line naming it; the shared settings stay as they were."""
        assert main(["config", "set", "timeout=20", setting]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert field.split(".", maxsplit=1)[0] in line
        assert main(["config", "show"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["timeout"] == 30.0
        assert shown["sources"]["timeout"] == "default"
