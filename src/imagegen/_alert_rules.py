"""The alert rules: :class:`Alerts`, a hook that turns the generator's events into alerts.

It hands an :class:`~imagegen.Alert` to its sinks once per transition: a breaker
that opens alerts once, and again only after it has closed; a success rate that
falls below the threshold alerts once, and again only after it has recovered.
The sinks that deliver the alerts are in ``_alert_sinks``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import collections
import datetime as dt
import inspect
import logging
from collections.abc import Awaitable, Iterable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Final

import anyio
import anyio.abc

from ._alert import Alert, AlertKind, AlertSink
from ._alert_checks import check_clock, check_positive_int, check_rate, check_seconds
from ._clock import Clock
from ._errors import InvalidConfig
from ._models import Event

__all__ = ["Alerts"]

logger = logging.getLogger("imagegen.alerts")

_BUCKETS: Final = 10  # the sliding window's resolution, as in the circuit breaker
_SINK_GRACE: Final = 5.0  # seconds async sinks still running get when Alerts exits


class _Window:
    """Successes and calls over a sliding window of ``_BUCKETS`` time buckets."""

    __slots__ = ("buckets", "low")

    def __init__(self) -> None:
        self.buckets: collections.deque[list[int]] = collections.deque()  # [index, ok, calls]
        self.low = False  # whether success_rate_low fired and recovery has not

    def add(self, index: int, *, success: bool) -> tuple[int, int]:
        """Count one call in bucket ``index``; the window's (successes, calls) after it."""
        buckets = self.buckets
        while buckets and buckets[0][0] <= index - _BUCKETS:
            buckets.popleft()
        if buckets and buckets[-1][0] == index:
            bucket = buckets[-1]
        else:
            bucket = [index, 0, 0]
            buckets.append(bucket)
        bucket[1] += success
        bucket[2] += 1
        return sum(b[1] for b in buckets), sum(b[2] for b in buckets)


class Alerts:
    """A hook that turns events into alerts, once per transition.

    - A breaker that opens fires ``breaker_opened``; one that closes fires
      ``breaker_closed``. Half-opening says nothing, and a breaker that re-opens
      after a failed trial call has not closed, so it does not alert again.
    - The success rate, per provider (its attempts: success or error; cancelled
      attempts are not counted) and over all generations (provider None; a
      generation succeeds when it returns a provider's image, not the default
      one), is measured over a sliding ``window`` of seconds. Once at least
      ``min_calls`` are in the window and the rate falls below
      ``success_rate_below``, ``success_rate_low`` fires; nothing more fires until
      the rate is back at or above the threshold (``success_rate_recovered``).

    Sync sinks are called inline and must be quick (both built-in ones are).
    Async sinks run in the background while the ``Alerts`` is entered, inline
    otherwise. Entering it also enters the sinks that are async context managers
    (an :class:`AlertWebhook` starts delivering); it may be entered by several
    holders at once (``async with alerts, ImageGenerator(..., hooks=[alerts])``),
    and stops when the last one leaves.

    Args:
        sinks: Where alerts go: callables taking an :class:`Alert`.
        success_rate_below: The threshold, in (0, 1].
        window: Seconds the success rate looks back over.
        min_calls: Calls needed in the window before the rate is judged.
        clock: Time source (default: the system clock).

    Raises:
        InvalidConfig: An argument broke a rule; ``field`` names it.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        sinks: Iterable[AlertSink],
        *,
        success_rate_below: float = 0.9,
        window: float = 300.0,
        min_calls: int = 20,
        clock: Clock | None = None,
    ) -> None:
        given: object = sinks  # checked as the object it is, not as annotated
        if isinstance(given, str) or not isinstance(given, Iterable):
            raise InvalidConfig("sinks must be a list of callables taking an Alert", field="sinks")
        self.sinks: tuple[AlertSink, ...] = tuple(sinks)
        if not self.sinks or not all(callable(sink) for sink in self.sinks):
            raise InvalidConfig(
                "sinks must list at least one callable taking an Alert", field="sinks"
            )
        self.success_rate_below = check_rate("success_rate_below", success_rate_below)
        self.window = check_seconds("window", window)
        self.min_calls = check_positive_int("min_calls", min_calls)
        self._clock = check_clock(clock)
        self._width = self.window / _BUCKETS
        self._windows: dict[str | None, _Window] = {}
        self._breaker_open: dict[str, bool] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._depth = 0  # one Alerts may serve several generators, each entering it
        self._running = 0  # async sink calls at work in the background
        self._idle: anyio.Event | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Alerts:
        self._depth += 1
        if self._depth > 1:
            return self
        stack = AsyncExitStack()
        try:
            for sink in self.sinks:
                if hasattr(sink, "__aenter__") and hasattr(sink, "__aexit__"):
                    await stack.enter_async_context(sink)
        except BaseException:
            self._depth -= 1
            await stack.aclose()
            raise
        group = anyio.create_task_group()
        await group.__aenter__()
        self._stack, self._group = stack, group
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._depth = max(0, self._depth - 1)
        if self._depth:
            return
        group, stack = self._group, self._stack
        self._group = self._stack = None
        if group is None or stack is None:  # never entered
            return
        # Async sinks still at work get a few seconds, then are cancelled.
        if self._running:
            self._idle = anyio.Event()
            with self._clock.deadline_scope(self._clock.monotonic() + _SINK_GRACE):
                await self._idle.wait()
        group.cancel_scope.cancel()
        await group.__aexit__(None, None, None)
        await stack.aclose()

    # -- the hook -----------------------------------------------------------------

    def __call__(self, event: Event) -> Awaitable[None] | None:
        """Look at one event; hand any alert it causes to the sinks."""
        kind = event.kind
        if kind == "attempt_finished" and event.provider is not None:
            outcome = event.data.get("outcome")
            if outcome not in ("success", "error"):
                return None
            alert = self._count(event.provider, success=outcome == "success")
        elif kind == "generation_finished":
            succeeded = event.data.get("status") == "succeeded"
            alert = self._count(None, success=succeeded and not event.data.get("is_default"))
        elif kind == "breaker_state_changed" and event.provider is not None:
            alert = self._breaker(event.provider, event.data)
        else:
            return None
        return None if alert is None else self._send(alert)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock.time(), tz=dt.UTC)

    def _breaker(self, provider: str, data: Mapping[str, Any]) -> Alert | None:
        to = data.get("to")
        was_open = self._breaker_open.get(provider)
        if to == "open" and not was_open:
            self._breaker_open[provider] = True
            kind: AlertKind = "breaker_opened"
        elif to == "closed" and was_open is not False:
            # Unknown counts as open: a breaker this process saw only closing was
            # opened elsewhere or before it started, and the recovery is news.
            self._breaker_open[provider] = False
            kind = "breaker_closed"
        else:
            return None
        reason = str(data.get("reason") or "")
        verb = "opened" if kind == "breaker_opened" else "closed"
        return Alert(
            kind=kind,
            provider=provider,
            message=f"{provider}'s circuit breaker {verb}: {reason}",
            data={"from": data.get("from"), "to": to, "reason": reason},
            at=self._now(),
        )

    def _count(self, key: str | None, *, success: bool) -> Alert | None:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        index = int(self._clock.monotonic() // self._width)
        successes, calls = window.add(index, success=success)
        if calls < self.min_calls:
            return None
        rate = successes / calls
        threshold = self.success_rate_below
        if not window.low and rate < threshold:
            window.low = True
            kind: AlertKind = "success_rate_low"
            verb = "fell below"
        elif window.low and rate >= threshold:
            window.low = False
            kind = "success_rate_recovered"
            verb = "is back at or above"
        else:
            return None
        what = "all generations" if key is None else key
        return Alert(
            kind=kind,
            provider=key,
            message=(
                f"success rate of {what} {verb} {threshold:.0%}: {rate:.1%} "
                f"({successes}/{calls}) over the last {self.window:g}s"
            ),
            data={
                "success_rate": rate,
                "threshold": threshold,
                "successes": successes,
                "calls": calls,
                "window": self.window,
            },
            at=self._now(),
        )

    def _send(self, alert: Alert) -> Awaitable[None] | None:
        inline: list[tuple[AlertSink, Awaitable[Any]]] = []
        for sink in self.sinks:
            try:
                outcome = sink(alert)
            except Exception:
                logger.exception("alert sink %r failed on %s", sink, alert.kind)
                continue
            if not inspect.isawaitable(outcome):
                continue
            if self._group is not None:
                self._running += 1
                self._group.start_soon(self._background, sink, outcome, alert.kind)
            else:
                inline.append((sink, outcome))
        if not inline:
            return None
        return self._await_all(inline, alert.kind)

    @classmethod
    async def _await_all(cls, pending: list[tuple[AlertSink, Awaitable[Any]]], kind: str) -> None:
        index = 0
        try:
            for index, (sink, awaitable) in enumerate(pending):  # noqa: B007 - read in finally
                await cls._finish(sink, awaitable, kind)
            index = len(pending)
        finally:
            # Cancelled midway: close the coroutines never started, so none is left
            # "never awaited".
            for _, awaitable in pending[index + 1 :]:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()

    @staticmethod
    async def _finish(sink: AlertSink, awaitable: Awaitable[Any], kind: str) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("alert sink %r failed on %s", sink, kind)

    async def _background(self, sink: AlertSink, awaitable: Awaitable[Any], kind: str) -> None:
        try:
            await self._finish(sink, awaitable, kind)
        finally:
            self._running -= 1
            if not self._running and self._idle is not None:
                self._idle.set()

    def __repr__(self) -> str:
        return (
            f"Alerts(sinks={list(self.sinks)!r}, success_rate_below={self.success_rate_below!r}, "
            f"window={self.window!r}, min_calls={self.min_calls!r})"
        )
