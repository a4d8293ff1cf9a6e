"""The import-linter contracts in pyproject.toml cover every module, and are checked."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SRC = ROOT / "src" / "imagegen"
VALUES = {
    "_errors",
    "_models",
    "_request",
    "_shape",
    "_clock",
    "_image",
    "_inputs",
    "_previews",
    "_experiments",
}


def contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def root_private_modules() -> set[str]:
    return {
        f"imagegen.{p.stem}" for p in SRC.glob("_*.py") if p.stem not in ("__init__", "__main__")
    }


class TestContracts:
    def test_the_face_may_import_no_private_module(self) -> None:
        """Every private module of the package is forbidden to the server and the CLI, but
        the distribution's name (packaging, not API: the CLI's install hints say it)."""
        forbidden = set(contracts()["face"]["forbidden_modules"])
        allowed = {"imagegen._cli", "imagegen._cli_parser", "imagegen._distribution"}
        assert forbidden == root_private_modules() - allowed

    def test_values_depend_on_nothing_else(self) -> None:
        """The values contract names every other module and package as forbidden."""
        contract = contracts()["values"]
        assert set(contract["source_modules"]) == {f"imagegen.{v}" for v in VALUES}
        others = root_private_modules() - {f"imagegen.{v}" for v in VALUES}
        packages = {f"imagegen.{p.name}" for p in SRC.iterdir() if (p / "__init__.py").exists()}
        assert set(contract["forbidden_modules"]) == others | packages | {
            "imagegen.server",
            "imagegen.testing",
        }

    def test_vendors_and_strategies_keep_off_the_pipeline(self) -> None:
        """The facade and the pipeline's modules are forbidden to vendors and to strategies."""
        pipeline = {"_generator", "_pipeline", "_tiers", "_attempt", "_runtime", "_store", "_jobs"}
        for name in ("vendors", "strategies"):
            forbidden = set(contracts()[name]["forbidden_modules"])
            assert {f"imagegen.{m}" for m in pipeline} <= forbidden

    def test_strategies_see_no_provider_module_but_the_contract(self) -> None:
        """Every module of imagegen.providers but the contract (_base, and the context a
        call gets: _context) is forbidden to strategies."""
        forbidden = set(contracts()["strategies"]["forbidden_modules"])
        contract = {"__init__", "_base", "_context"}
        modules = {p.stem for p in (SRC / "providers").glob("_*.py")} - contract
        assert {f"imagegen.providers.{m}" for m in modules} <= forbidden

    @pytest.mark.skipif(
        not (Path(sys.executable).parent / "lint-imports").exists(),
        reason="lint-imports is not installed next to this Python (the lint group has it)",
    )
    def test_lint_imports_keeps_every_contract(self) -> None:
        """lint-imports finds every contract kept."""
        done = subprocess.run(
            [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout[-3000:]
        assert "0 broken" in done.stdout
