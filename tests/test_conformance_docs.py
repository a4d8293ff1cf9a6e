"""The conformance-suite examples in the docs run as they are, and pass.

Each page's "Check it with the conformance suite" section has a complete test module;
it is written to a fresh directory and run by pytest there, as a user would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parent.parent / "docs"
SECTION = "Check it with the conformance suite"


def example(page: str) -> str:
    """The first Python block after the page's conformance-suite heading."""
    text = (DOCS / page).read_text(encoding="utf-8")
    heading = re.search(rf"^#+ {SECTION}$", text, re.M)
    assert heading is not None, f"{page} has no '{SECTION}' section"
    block = re.search(r"^```python\n(.*?)^```", text[heading.end() :], re.M | re.S)
    assert block is not None, f"{page}'s '{SECTION}' section has no Python example"
    return block[1]


@pytest.mark.parametrize("page", ["state.md", "storage.md", "providers.md"])
def test_example_passes(pytester: pytest.Pytester, page: str) -> None:
    """The page's example module runs every check of its suite, on asyncio and trio, and passes."""
    pytester.makepyfile(test_example=example(page))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 16  # every check, on both event loops
    assert set(outcomes) == {"passed"}, result.stdout.str()[-3000:]
