"""The distribution name: one name, free of the unrelated ``imagegen`` on the package index,
used by every install hint the library, its docs and its examples give."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from imagegen._distribution import DISTRIBUTION, install_hint, installed_version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# ``pip install 'name[extra]'`` (any quoting), as a hint or a docs line gives it.
HINT = re.compile(r"""pip install\s+["']?([A-Za-z0-9_.-]*)\[([a-z0-9,-]+)\]""")


def texts() -> list[Path]:
    places = [ROOT / "README.md", *(ROOT / d for d in ("src", "docs", "examples"))]
    found: list[Path] = []
    for place in places:
        if place.is_file():
            found.append(place)
        else:
            found += [p for p in place.rglob("*") if p.suffix in {".py", ".md"}]
    return found


def test_the_project_is_published_under_the_free_name() -> None:
    """pyproject and the code agree; the taken name is not used."""
    assert PROJECT["name"] == DISTRIBUTION == "imagegen-failover"
    assert installed_version() == PROJECT["version"]


def test_every_install_hint_names_the_distribution_and_a_real_extra() -> None:
    """``pip install 'X[extra]'`` anywhere: X is the distribution (or ``.``, a checkout),
    and each extra exists."""
    extras = set(PROJECT["optional-dependencies"])
    hints = []
    for path in texts():
        for name, wanted in HINT.findall(path.read_text(encoding="utf-8")):
            hints.append((path.relative_to(ROOT), name))
            assert name in {DISTRIBUTION, "."}, f"{path}: pip install {name}[{wanted}]"
            assert set(wanted.split(",")) <= extras, f"{path}: no extra in {wanted}"
    assert len(hints) >= 10  # the pattern does find the hints


@pytest.mark.parametrize(
    ("extras", "more", "expected"),
    [
        ("server", (), "pip install 'imagegen-failover[server]'"),
        ("server", ("fastapi",), "pip install 'imagegen-failover[server]' fastapi"),
    ],
)
def test_install_hint(extras: str, more: tuple[str, ...], expected: str) -> None:
    assert install_hint(extras, *more) == expected
