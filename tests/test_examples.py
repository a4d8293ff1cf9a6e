"""The examples in examples/ run as documented, offline."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


class TestExamples:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("quickstart.py", "succeeded"),
            ("custom_provider.py", "paintbot:"),
            ("testing_with_fakes.py", "all three checks passed"),
            ("hooks_and_breakers.py", "flaky's breaker: open"),
        ],
    )
    def test_example_runs(
        self,
        name: str,
        expected: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Each example runs to completion and prints what its docstring promises."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [name])
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        assert expected in capsys.readouterr().out
