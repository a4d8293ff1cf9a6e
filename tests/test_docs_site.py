"""The docs site's configuration, checked in a second instead of a full docs build.

`mkdocs build --strict` (scripts/check) fails on broken links and anchors, missing nav
targets, pages left out of the nav and docstrings mkdocstrings cannot read, but only as
long as mkdocs.yml asks for those checks. It never notices a configuration that fetches
fonts or assets at build time (which only fails offline). These tests pin the settings,
say which page is missing from the nav by name, and check that the API reference covers
every public package.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG: dict[str, Any] = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
PUBLIC_PACKAGES = (
    "imagegen",
    "imagegen.providers",
    "imagegen.strategies",
    "imagegen.storage",
    "imagegen.state",
    "imagegen.testing",
    "imagegen.server",
)
# Plugins that download at build time (Google Fonts, social cards, external assets).
ONLINE_PLUGINS = {"social", "material/social", "privacy", "material/privacy", "optimize"}


def nav_pages(entries: Any) -> Iterator[str]:
    """Every page path in a mkdocs nav, at any depth."""
    if isinstance(entries, str):
        yield entries
    elif isinstance(entries, list):
        for entry in entries:
            yield from nav_pages(entry)
    elif isinstance(entries, dict):
        for value in entries.values():
            yield from nav_pages(value)


def plugin_names() -> set[str]:
    """The names of the configured plugins (plain strings or one-key mappings)."""
    names = set()
    for plugin in CONFIG.get("plugins", []):
        names.update([plugin] if isinstance(plugin, str) else plugin)
    return names


def reference_targets() -> dict[str, str]:
    """``module -> page`` for every ``::: module`` line under docs/reference/."""
    targets = {}
    for page in sorted((DOCS / "reference").glob("*.md")):
        for match in re.finditer(r"^:::\s+(\S+)", page.read_text(encoding="utf-8"), re.M):
            targets[match[1]] = page.relative_to(DOCS).as_posix()
    return targets


class TestNav:
    """The nav and the pages in docs/ agree."""

    def test_every_page_is_in_the_nav(self) -> None:
        """Every Markdown file under docs/ is reachable from the nav (a new page needs an entry)."""
        pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
        missing = sorted(pages - set(nav_pages(CONFIG["nav"])))
        assert not missing, f"add these pages to the nav in mkdocs.yml: {missing}"

    def test_nav_has_no_duplicates(self) -> None:
        """No page is listed twice, so the previous/next links walk each page once."""
        listed = list(nav_pages(CONFIG["nav"]))
        assert len(listed) == len(set(listed))


class TestBuildSettings:
    """The build needs no network and stays strict about links."""

    def test_material_fetches_no_fonts(self) -> None:
        """theme.font is false: material would otherwise link Google Fonts."""
        assert CONFIG["theme"]["name"] == "material"
        assert CONFIG["theme"].get("font") is False

    def test_no_plugin_downloads_at_build_time(self) -> None:
        """No social-card, privacy or optimize plugin: each downloads while building."""
        assert not plugin_names() & ONLINE_PLUGINS

    def test_strict_validation_covers_anchors_and_nav(self) -> None:
        """Broken anchors, unknown links and unlisted pages warn, so --strict fails on them."""
        assert CONFIG["validation"]["nav"]["omitted_files"] == "warn"
        links = CONFIG["validation"]["links"]
        assert links["anchors"] == "warn"
        assert links["not_found"] == "warn"
        assert links["unrecognized_links"] == "warn"


class TestApiReference:
    """docs/reference/ documents every public package, through mkdocstrings."""

    def test_every_public_package_has_a_page(self) -> None:
        """Each public package has a ``::: module`` page, and each page is in the nav."""
        targets = reference_targets()
        assert set(PUBLIC_PACKAGES) <= set(targets)
        assert set(targets.values()) <= set(nav_pages(CONFIG["nav"]))

    @pytest.mark.parametrize("module", sorted(reference_targets()))
    def test_targets_import(self, module: str) -> None:
        """Every ``:::`` target is an importable module with a docstring to render."""
        assert importlib.import_module(module).__doc__

    def test_python_handler_reads_src_with_google_docstrings(self) -> None:
        """mkdocstrings reads src/ statically with the Google docstring style the code uses."""
        mkdocstrings = next(
            p["mkdocstrings"]
            for p in CONFIG["plugins"]
            if isinstance(p, dict) and "mkdocstrings" in p
        )
        python = mkdocstrings["handlers"]["python"]
        assert python["paths"] == ["src"]
        assert python["options"]["docstring_style"] == "google"
