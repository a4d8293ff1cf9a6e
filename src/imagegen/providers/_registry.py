"""The built-in vendors, in the order ``ImageGenerator.from_env()`` tries them.

Each class knows its key variable and its other settings (``env_var``,
``env_settings``, :meth:`~imagegen.providers.HTTPProvider.from_env`); adding a
vendor to ``from_env`` is one line here.
"""

from __future__ import annotations

from ._bfl import BlackForestLabs
from ._fal import Fal
from ._google import Google
from ._http import HTTPProvider
from ._openai import OpenAIImages
from ._replicate import Replicate
from ._unsplash import Unsplash

__all__ = ["BUILT_IN"]

#: The hosted vendors ``from_env`` builds, one per key found: AI first, stock photos last.
BUILT_IN: tuple[type[HTTPProvider], ...] = (
    Replicate,
    Fal,
    OpenAIImages,
    Google,
    BlackForestLabs,
    Unsplash,
)
