"""The extension point for choosing providers inside a tier: :class:`Selection` and :class:`Tier`.

A selection decides how one tier's providers are launched and when the next one
starts; the generator hands it a :class:`Tier` for each generation, which runs
one provider (breaker, retry, deadline, bookkeeping included) when asked. The
built-ins are small subclasses: Race, Hedge and Fallback. A user's subclass
passed as ``strategy=`` works the same way; its ``kind`` names it in the
settings JSON (``{"kind": "...", ...fields}``) once its module is imported.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import attrs

from .._errors import InvalidConfig

if TYPE_CHECKING:
    from .._clock import Clock
    from ..providers import Provider
    from ._hedge import HedgeBudget
    from ._latency import LatencyWindow

__all__ = ["Selection", "Tier", "selection_kinds"]


def _at_once(_: Provider) -> float | None:
    return 0.0


def _always() -> bool:
    return True


class Tier(abc.ABC):
    """One tier's providers for one generation, as a :class:`Selection` sees them.

    The generator makes it; a selection calls :meth:`attempt` (one provider) or
    :meth:`run` (several, staggered) and returns. The first provider that delivers
    wins: :meth:`attempt` answers True for it, and the generator stores its image.
    """

    @property
    @abc.abstractmethod
    def providers(self) -> tuple[Provider, ...]:
        """The tier's providers whose breakers let a call through, in priority order."""

    @property
    @abc.abstractmethod
    def clock(self) -> Clock:
        """The generator's clock: read deadlines and sleep on it, never on the wall."""

    @property
    @abc.abstractmethod
    def budget(self) -> HedgeBudget:
        """The generator's budget of extra (hedged) calls, shared by its generations."""

    @abc.abstractmethod
    def share(self, stages: int = 1) -> float:
        """The deadline of the next ``stages`` stages of this tier, on ``clock.monotonic()``.

        The time left is divided fairly between these stages and the stages of the
        tiers after this one, so a slow provider cannot eat a fallback's time. A tier
        run as one stage (raced, hedged) asks for ``share(1)``; a chain of ``n``
        providers gives the first ``share(n)``, the next ``share(n - 1)`` and so on.
        """

    @abc.abstractmethod
    def latency(self, provider: Provider) -> LatencyWindow:
        """Recent latencies of ``provider`` in this generator (successes; lost hedges too)."""

    @abc.abstractmethod
    async def attempt(self, provider: Provider, *, deadline: float) -> bool:
        """Call ``provider`` (retried, breaker-gated) until ``deadline``; True when it won.

        Never raises but for cancellation: a failure is recorded in the generation's
        attempts and answers False. Cancelling it (another provider won) cancels the
        provider's remote work too.
        """

    async def run(
        self,
        providers: Sequence[Provider] | None = None,
        *,
        deadline: float | None = None,
        launch_delay: Callable[[Provider], float | None] = _at_once,
        may_launch: Callable[[], bool] = _always,
    ) -> bool:
        """Start ``providers`` (default: all) in order, staggered; the first success wins.

        After starting one, the next starts as soon as a running one has failed, or
        once ``launch_delay(started)`` seconds have passed (0: at once; None: only
        after a failure). A start due to a delay, not a failure, asks
        ``may_launch()`` first, and again after each further delay while it says no.
        When one wins, the others are cancelled.

        Args:
            providers: Who to start, in order.
            deadline: When every call must end; default ``share(1)``.
            launch_delay: Seconds after a start before the next one starts regardless.
            may_launch: Whether a delay-triggered (extra) start may happen now.

        Returns:
            Whether a provider won.
        """
        candidates = self.providers if providers is None else tuple(providers)
        if not candidates:
            return False
        until = self.share(1) if deadline is None else deadline
        if len(candidates) == 1:
            # Nothing to race against: skip the task group.
            return await self.attempt(candidates[0], deadline=until)
        won = False
        failures = 0
        wake = anyio.Event()
        clock = self.clock

        async with anyio.create_task_group() as tg:

            async def call(provider: Provider) -> None:
                nonlocal won, failures
                if await self.attempt(provider, deadline=until):
                    won = True
                    tg.cancel_scope.cancel()
                    return
                failures += 1
                wake.set()

            for index, provider in enumerate(candidates):
                seen = failures
                tg.start_soon(call, provider)
                if index == len(candidates) - 1:
                    break
                delay = launch_delay(provider)
                if delay == 0:
                    continue
                # Wait for a failure among the running calls, or for the delay.
                while failures == seen:
                    wake = anyio.Event()
                    if delay is None:
                        await wake.wait()
                        continue
                    with clock.deadline_scope(clock.monotonic() + delay) as scope:
                        await wake.wait()
                    if scope.cancelled_caught and may_launch():
                        break
                    # Not allowed yet: ask again one delay later, so that a call still
                    # running then (one of the slowest) gets its extra start once allowed.
        return won


class Selection(abc.ABC):
    """How a tier's providers are launched: subclass it and write :meth:`select`.

    A selection is a value: configure it in ``__init__`` (frozen attrs classes
    are the easy way) and keep what it learns in the :class:`Tier` it is given
    (latencies, the extra-call budget), never on itself, so one instance can be
    shared by generators and swapped by ``configure()`` at any time.

    ``kind`` names the class in the settings JSON (default: the class name in
    lower case); for attrs classes the fields travel too, so
    ``PATCH /admin/config`` and shared settings can choose a user's selection in
    every process that has imported it.
    """

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("kind"):
            cls.kind = cls.__name__.lower()

    @abc.abstractmethod
    async def select(self, tier: Tier) -> None:
        """Call the tier's providers until one wins or there is nothing left to try."""

    def stages(self, providers: int) -> int:
        """How many shares of the deadline a tier of ``providers`` takes (1: all at once)."""
        return 1

    def lost(self, tier: Tier, provider: Provider, elapsed: float) -> None:  # noqa: B027
        """Learn from a call that was cut off after ``elapsed`` seconds because another won.

        The default learns nothing; :class:`Hedge` counts it as a latency of at
        least ``elapsed`` (the slow calls are the ones that lose).
        """

    def to_dict(self) -> dict[str, Any]:
        """The settings JSON of this selection: ``kind`` and, for attrs classes, its fields."""
        fields = attrs.asdict(self) if attrs.has(type(self)) else {}  # type: ignore[arg-type]
        return {"kind": self.kind, **fields}


def selection_kinds() -> dict[str, type[Selection]]:
    """Every concrete :class:`Selection` subclass imported so far, by ``kind``.

    Raises:
        InvalidConfig: Two classes share one ``kind`` (set ``kind`` on one of them).
    """
    found: dict[str, type[Selection]] = {}
    pending = deque(Selection.__subclasses__())
    while pending:
        cls = pending.popleft()
        pending.extend(cls.__subclasses__())
        if getattr(cls, "__abstractmethods__", None):
            continue
        other = found.setdefault(cls.kind, cls)
        if (other.__module__, other.__qualname__) == (cls.__module__, cls.__qualname__):
            # attrs' slotted classes replace the class they were made from, which may
            # linger among the subclasses until collected: the later one is the real one.
            found[cls.kind] = cls
        elif other is not cls:
            raise InvalidConfig(
                f"two Selection classes have kind {cls.kind!r} ({other.__qualname__} and "
                f"{cls.__qualname__}); give one of them its own `kind`",
                field="strategy.kind",
            )
    return found
