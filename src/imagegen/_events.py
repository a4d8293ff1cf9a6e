"""Events: what hooks and the debug log hear about generations, attempts and breakers."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ._models import Event

__all__ = ["Events", "Hook"]

logger = logging.getLogger("imagegen")

Hook = Callable[[Event], Any]
"""A callable taking one :class:`Event`; sync or async. Exceptions are logged, not raised."""


class Events:
    """Hands events to the hooks (sync or async) and to the ``imagegen`` debug log.

    A hook that raises is logged and skipped: a broken dashboard must not break
    image generation.
    """

    __slots__ = ("hooks",)

    def __init__(self, hooks: tuple[Hook, ...]) -> None:
        self.hooks = hooks

    async def emit(
        self,
        kind: str,
        generation_id: str | None,
        provider: str | None,
        data: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    ) -> None:
        """Build and send one event, only when a hook or the debug log wants it.

        ``data`` may be a callable, so the hot path builds nothing nobody reads.
        """
        if self.hooks or logger.isEnabledFor(logging.DEBUG):
            if callable(data):
                data = data()
            await self.send(
                Event(kind=kind, generation_id=generation_id, provider=provider, data=data)
            )

    async def send(self, event: Event) -> None:
        """Send a ready event (breakers build their own)."""
        logger.debug(
            "%s %s %s %s", event.kind, event.generation_id, event.provider or "", dict(event.data)
        )
        for hook in self.hooks:
            try:
                outcome = hook(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("hook %r failed on %s", hook, event.kind)
