"""The examples in examples/ run as documented, offline."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
KEYS = (
    "REPLICATE_API_TOKEN",
    "FAL_KEY",
    "FAL_KEY_ID",
    "FAL_KEY_SECRET",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "BFL_API_KEY",
    "IMAGEGEN_BEDROCK_MODEL",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "TOGETHER_API_KEY",
    "XAI_API_KEY",
    "STABILITY_API_KEY",
    "HF_TOKEN",
    "UNSPLASH_ACCESS_KEY",
    "IMAGEGEN_REDIS_URL",
    "IMAGEGEN_R2_BUCKET",
)


def run(path: Path) -> object:
    """Run a script as __main__; its exit code (None when it just ends)."""
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exit_:  # the keyless examples exit early
        return exit_.code
    return None


class TestExamples:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("quickstart.py", "succeeded"),
            ("sync_script.py", "placeholder: 2 images today"),
            ("spending_cap.py", "spent today: premium $0.08, budget $0.06"),
            ("previews.py", "preview 2 from sketcher"),
            ("custom_provider.py", "paintbot:"),
            ("custom_strategy.py", "mid won after: budget (error), mid (success)"),
            ("testing_with_fakes.py", "all three checks passed"),
            ("faulty_backends.py", "50/50 records succeeded"),
            ("hooks_and_breakers.py", "flaky's breaker: open"),
            ("openai_provider.py", "OPENAI_API_KEY is not set"),
            ("fal_provider.py", "FAL_KEY"),
            ("google_provider.py", "GEMINI_API_KEY is not set"),
            ("bfl_provider.py", "BFL_API_KEY is not set"),
            ("stability_provider.py", "STABILITY_API_KEY is not set"),
            ("huggingface_provider.py", "HF_TOKEN is not set"),
            ("openai_dialects.py", "TOGETHER_API_KEY or XAI_API_KEY is set"),
            (
                "bedrock_provider.py",
                "IMAGEGEN_BEDROCK_MODEL (or AWS_BEARER_TOKEN_BEDROCK) is not set",
            ),
            ("unsplash_provider.py", "UNSPLASH_ACCESS_KEY"),
            ("replicate_provider.py", "REPLICATE_API_TOKEN"),
            ("r2_and_redis.py", "IMAGEGEN_REDIS_URL"),
            ("jobs.py", "submitted 3 jobs"),
            ("embed_in_starlette.py", "200 placeholder"),
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
        """Each example runs to completion offline and prints what its docstring promises.

        Hosted-provider examples, without their key, explain what to set and exit.
        """
        for key in KEYS:
            monkeypatch.delenv(key, raising=False)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [name])
        assert run(EXAMPLES / name) in (None, 0)
        assert expected in capsys.readouterr().out

    @pytest.mark.parametrize(
        ("name", "module", "hint"),
        [
            ("embed_in_starlette.py", "starlette", "pip install 'imagegen-failover[server]'"),
            ("fastapi_app.py", "fastapi", "pip install 'imagegen-failover[server]' fastapi"),
        ],
    )
    def test_a_missing_extra_is_named(
        self, name: str, module: str, hint: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without the packages an example needs, it says which to install, no traceback."""
        # None in sys.modules makes an import fail, for the package and any submodule
        # an earlier test imported.
        for loaded in [m for m in sys.modules if m == module or m.startswith(f"{module}.")]:
            monkeypatch.setitem(sys.modules, loaded, None)
        monkeypatch.setitem(sys.modules, module, None)
        with pytest.raises(SystemExit) as info:
            runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        assert hint in str(info.value.code)
        assert module in str(info.value.code)

    def test_docs_show_the_strategy_example_as_it_is(self) -> None:
        """docs/strategies.md shows the example strategy line for line."""
        docs = (EXAMPLES.parent / "docs" / "strategies.md").read_text()
        section = docs.split("## Write your own strategy", 1)[1]
        shown = section.split("```python\n", 1)[1].split("```", 1)[0]
        example = (EXAMPLES / "custom_strategy.py").read_text()
        cls = shown[shown.index("@attrs.frozen") :]
        assert cls in example
        assert len(cls.splitlines()) < 60
