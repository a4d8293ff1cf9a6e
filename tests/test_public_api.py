"""The public surface: __all__ lists, re-exports, version and packaging markers."""

from __future__ import annotations

import importlib.metadata
import types
from pathlib import Path

import pytest

import imagegen
import imagegen.providers
import imagegen.state
import imagegen.storage
import imagegen.strategies
import imagegen.testing

MODULES = [
    imagegen,
    imagegen.providers,
    imagegen.strategies,
    imagegen.storage,
    imagegen.state,
    imagegen.testing,
]
by_name = pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff RUF022's isort-style order: CONSTANTS, then Classes, then everything else."""
    if len(name) > 1 and name.isupper():
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


class TestAll:
    @by_name
    def test_sorted(self, module: types.ModuleType) -> None:
        """__all__ is in ruff's isort-style order (CONSTANTS, Classes, functions; each A-Z)."""
        assert module.__all__ == sorted(module.__all__, key=_isort_key)

    @by_name
    def test_no_duplicates(self, module: types.ModuleType) -> None:
        """No name is listed twice."""
        assert len(set(module.__all__)) == len(module.__all__)

    @by_name
    def test_every_name_importable(self, module: types.ModuleType) -> None:
        """Every name in __all__ exists on the module (so `from m import *` works)."""
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == []

    @by_name
    def test_every_public_definition_listed(self, module: types.ModuleType) -> None:
        """Each public attribute defined in this module or its private submodules is in __all__."""
        prefix = module.__name__ + "."
        unlisted = []
        for name in dir(module):
            obj = getattr(module, name)
            if name.startswith("_") or isinstance(obj, types.ModuleType):
                continue
            owner = getattr(obj, "__module__", None) or ""
            if (owner == module.__name__ or owner.startswith(prefix)) and name not in (
                module.__all__
            ):
                unlisted.append(name)
        assert unlisted == []

    @by_name
    def test_no_private_names(self, module: types.ModuleType) -> None:
        """__all__ names nothing with a leading underscore."""
        assert [name for name in module.__all__ if name.startswith("_")] == []


class TestModule:
    def test_version_matches_metadata(self) -> None:
        """imagegen.__version__ is the installed distribution's version."""
        assert imagegen.__version__ == importlib.metadata.version("imagegen-failover")

    @pytest.mark.parametrize("name", ["does_not_exist", "Replicate_", "version"])
    def test_unknown_attribute(self, name: str) -> None:
        """An unknown attribute raises AttributeError naming it."""
        with pytest.raises(AttributeError, match=name):
            getattr(imagegen, name)

    def test_py_typed(self) -> None:
        """The package ships a py.typed marker beside __init__.py."""
        assert (Path(imagegen.__file__).parent / "py.typed").is_file()
