"""The name the library is installed under, and what follows from it.

The import name is ``imagegen``; the distribution on the package index is
``imagegen-failover`` (``imagegen`` there is an unrelated project), so every
install hint, version lookup and User-Agent goes through here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["DISTRIBUTION", "install_hint", "installed_version"]

DISTRIBUTION = "imagegen-failover"


def install_hint(extras: str, *more: str) -> str:
    """The pip command that installs the distribution with ``extras``, then ``more``."""
    return " ".join((f"pip install '{DISTRIBUTION}[{extras}]'", *more))


def installed_version() -> str | None:
    """The installed distribution's version; None in a source tree never installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return None
