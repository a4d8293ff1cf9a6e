"""The built-in vendors, in the order ``ImageGenerator.from_env()`` tries them.

Each class knows its key variable and its other settings (``env_var``,
``env_settings``, :meth:`~imagegen.providers.HTTPProvider.from_env`); adding a
vendor to ``from_env`` is one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ._azure import AzureOpenAI
from ._base import Provider
from ._bedrock import Bedrock
from ._bfl import BlackForestLabs
from ._fal import Fal
from ._google import Google
from ._huggingface import HuggingFace
from ._openai import OpenAIImages
from ._openai_like import XAI, Together
from ._replicate import Replicate
from ._stability import Stability
from ._unsplash import Unsplash

__all__ = ["BUILT_IN", "Vendor"]


class Vendor(Protocol):
    """A built-in vendor's class: it builds itself from environment variables."""

    def from_env(self, environ: Mapping[str, str]) -> Provider | None:
        """The provider ``environ`` configures; None when it does not opt in."""
        ...


#: The hosted vendors ``from_env`` builds, one per key found: AI first, stock photos last.
BUILT_IN: tuple[Vendor, ...] = (
    Replicate,
    Fal,
    OpenAIImages,
    AzureOpenAI,
    Google,
    BlackForestLabs,
    Bedrock,
    Stability,
    Together,
    XAI,
    HuggingFace,
    Unsplash,
)
