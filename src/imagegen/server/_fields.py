"""Every refused field of a generation request at once, by the library's own rules.

:class:`~imagegen.ImageRequest` (and ``generate()``/``submit()``) stop at the first
bad field; an HTTP caller should learn about all of them from one 422. The rules
stay the library's: each field the caller sent is checked alone, on top of a valid
baseline, by ``submit()`` of a generator that is never entered. ``submit()``
validates the request, ``experiment_key`` and ``timeout`` before anything else
and, for a valid one, raises :class:`~imagegen.NotRunning` without starting any
work, so nothing is generated, sent or stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import ImageGenerator, InvalidRequest, NotRunning, Placeholder

__all__ = ["FieldCheck"]

#: The prompt the other fields are checked beside: valid under every rule.
_BASELINE_PROMPT = "a field check"


class FieldCheck:
    """Checks each field of a generation request alone, by the library's rules."""

    def __init__(self) -> None:
        # Never entered: submit() refuses to run anything (NotRunning) once the
        # fields pass, and holds no resources (no task group, no HTTP client).
        self._probe = ImageGenerator(providers=[Placeholder()])

    async def refusals(self, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(field, message)`` for each field the library refuses, in ``fields``' order.

        ``fields`` are the body's members as ``generate()`` takes them (``prompt``
        among them when given); a missing prompt is not reported here.
        """
        refused: list[tuple[str, str]] = []
        for name, value in fields.items():
            if name == "prompt":
                error = await self._refusal(value, {})
            else:
                error = await self._refusal(_BASELINE_PROMPT, {name: value})
            if error is not None:
                refused.append((error.field, str(error)))
        return refused

    async def _refusal(self, prompt: Any, fields: dict[str, Any]) -> InvalidRequest | None:
        try:
            await self._probe.submit(prompt, **fields)
        except InvalidRequest as error:
            return error
        except NotRunning:
            pass  # valid: submit() got as far as needing a running generator
        return None
