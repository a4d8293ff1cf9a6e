"""The facade's settings: what generations run with, read and changed.

A part of :class:`~imagegen.ImageGenerator` (its base), kept apart from the
generation calls: every member here reads or changes the :class:`Config` in force
(``_live_config``), or shares it through the state backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from ._clock import Clock
from ._default_image import DefaultImage
from ._guarded_state import bounded_read
from ._live_config import LiveConfig
from ._runtime import Runtime
from ._spending import SpendingCap
from .providers import Provider
from .strategies import CircuitBreaker, Retry, Selection

__all__ = ["Configuring"]

_T = TypeVar("_T")


class Configuring:
    """The settings members of :class:`~imagegen.ImageGenerator`."""

    clock: Clock
    _live: LiveConfig
    _rt: Runtime

    @property
    def providers(self) -> tuple[Provider, ...]:
        """The providers, in priority order."""
        return self._live.current.providers

    @property
    def max_in_flight(self) -> int | None:
        """At most this many provider calls run at once (None: no limit)."""
        return self._rt.slots.limit

    @property
    def timeout(self) -> float:
        """The current overall deadline, seconds."""
        return self._live.current.timeout

    @property
    def strategy(self) -> Selection:
        """The selection in force (``configure(strategy=...)`` changes it)."""
        return self._live.current.strategy

    @property
    def retry(self) -> Retry:
        """The retry policy in force."""
        return self._live.current.retry

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit-breaker settings in force (each provider's breaker: :meth:`breaker_for`)."""
        return self._live.current.breaker

    @property
    def default_image(self) -> DefaultImage:
        """What is served when every provider fails (``DEFAULT``, bytes, a Provider, None)."""
        return self._live.current.default_image

    @property
    def spending_cap(self) -> SpendingCap | None:
        """The daily spending caps (None: none)."""
        return self._rt.spending.cap

    @property
    def config_ttl(self) -> float:
        """Seconds between looks at the settings shared through the state backend."""
        return self._live.ttl

    def configure(self, **changes: Any) -> None:
        """Change settings for the next generations, atomically; a bad change changes nothing.

        Takes ``strategy``, ``retry``, ``breaker``, ``timeout``, ``default_image``,
        ``enabled={name: bool}`` and ``priority=[names]`` (listed names first, in
        that order; the rest keep theirs).

        Raises:
            InvalidConfig: Unknown setting or provider name, or a bad value.
        """
        self._live.configure(changes)

    def update_settings(self, settings: Mapping[str, Any]) -> None:
        """:meth:`configure` from settings JSON (the shape :meth:`settings` returns).

        ``strategy`` is ``{"kind": ..., fields}``; ``retry`` and ``breaker`` are
        objects of their fields; ``timeout``, ``enabled`` and ``priority`` as in
        ``configure()``; ``default_image`` may only repeat what :meth:`settings` says,
        so ``update_settings(settings())`` changes nothing. What
        ``PATCH /admin/config`` and ``imagegen config set`` use.

        Raises:
            InvalidConfig: Naming the field, dotted for nested ones (``retry.attempts``).
        """
        self._live.update(settings)

    def settings(self) -> dict[str, Any]:
        """The run-time settings as JSON (what :meth:`configure` and PATCH /admin/config change).

        ``strategy`` (``{"kind": ..., fields}``), ``timeout``, ``retry``, ``breaker``,
        ``enabled``, ``priority``, and ``default_image`` described in a word
        (``"placeholder"``, ``"bytes"``, ``"provider:<name>"`` or None). No secrets.
        """
        return self._live.settings()

    async def refresh_config(self) -> None:
        """Publish pending :meth:`configure` changes, or adopt newer shared settings, now.

        Generators do this by themselves at most every ``config_ttl`` seconds.
        """
        await self._live.refresh(now=True)

    async def publish_config(self) -> None:
        """Write the current settings to the state backend for every generator sharing it.

        Others pick them up within their ``config_ttl``. ``configure()`` changes are
        published by the next generation anyway; call this to publish at once.
        """
        await self._read("the settings", self._live.publish)

    async def shared_settings(self) -> dict[str, Any]:
        """The settings shared through the state backend, as JSON (``{}``: none): those
        changed (:meth:`configure`, ``imagegen config set``...) and not reset since.

        Raises:
            StorageError: The state backend failed or did not answer.
        """
        return await self._read("the settings", self._live.shared)

    async def reset_settings(self, *names: str) -> None:
        """Remove settings from the shared ones (all when none are named): every generator
        on the backend goes back to its own values (the others within ``config_ttl``).

        Raises:
            InvalidConfig: A name is not a shared setting (``strategy``, ``timeout``,
                ``retry``, ``breaker``, ``enabled``, ``priority``).
            StorageError: The state backend failed or did not answer.
        """
        await self._read("the settings", lambda: self._live.reset(names))

    def _read(self, what: str, read: Callable[[], Awaitable[_T]]) -> Awaitable[_T]:
        return bounded_read(self.clock, what, read)
