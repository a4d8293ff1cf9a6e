"""Circuit breakers: stop calling a provider that keeps failing, try it again later.

The settings are a frozen :class:`CircuitBreaker`; each provider gets a
:class:`ProviderBreaker` whose state lives in the generator's
:class:`~imagegen.state.StateBackend` (so processes sharing a backend share it),
stamped with wall-clock time, which processes agree on.

States: ``closed`` (calls go through; failures are counted in a sliding window
of ten buckets), ``open`` (calls are skipped until the next trial time),
``half_open`` (the trial time has passed: up to ``half_open_max_calls`` calls
go through; a success closes, a failure opens again). Forced states hold until
``reset()``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio

from .._clock import Clock
from .._errors import (
    ImageGenError,
    InvalidConfig,
    ProviderError,
    StorageError,
)
from .._models import Event
from .._request import surrogate_problem
from ..state import StateBackend
from ._breaker_settings import BreakerSnapshot, BreakerState, CircuitBreaker

__all__ = ["ProviderBreaker"]

logger = logging.getLogger("imagegen")

_BUCKETS = 10
_WARN_EVERY = 60.0  # seconds between warnings that a breaker cannot reach its state
#: Seconds a breaker seen closed is trusted before its state is read again: calls to a
#: healthy provider cost no state read, and a breaker another process opened is seen
#: within this (well inside the two seconds shared breakers promise).
CLOSED_STALENESS = 1.0
#: Seconds a call waits for its breaker's state before going through regardless.
READ_BOUND = 0.25
#: Longest ``reason`` a breaker can be forced with, in characters.
MAX_REASON = 1000
_T = TypeVar("_T")


def _check_reason(reason: object) -> str:
    """A forced state's ``reason``: a string of at most ``MAX_REASON`` characters, valid
    Unicode (a lone surrogate, as JSON's ``"\\ud800"`` gives, cannot be encoded for
    the HTTP API, the log or a backend: refused before anything is stored).

    Raises:
        InvalidConfig: Naming ``reason``.
    """
    if not isinstance(reason, str):
        raise InvalidConfig(f"reason must be a string, not {type(reason).__name__}", field="reason")
    if len(reason) > MAX_REASON:
        raise InvalidConfig(
            f"reason must be at most {MAX_REASON} characters (got {len(reason)})", field="reason"
        )
    problem = surrogate_problem(reason, "reason")
    if problem is not None:
        raise InvalidConfig(problem, field="reason")
    return reason


def _utc(ts: float | None) -> dt.datetime | None:
    if ts is None or math.isinf(ts):
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


class ProviderBreaker:
    """The breaker of one provider: what ``gen.breaker_for(name)`` returns.

    Every method is async, since the state may live in a shared backend.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: Callable[[], CircuitBreaker],
        state: StateBackend,
        clock: Clock,
        emit: Callable[[Event], Awaitable[None]],
        prefix: str = "",
    ) -> None:
        self.name = name
        self._settings = settings
        self._state = state
        self._clock = clock
        self._emit = emit
        self._key = f"{prefix}breaker:{name}"
        #: The state last read, for the sync ``providers_status()``.
        self.last_state: BreakerState = "closed"
        self._warned_at = -math.inf
        self._closed_until = -math.inf  # monotonic time until which "closed" is trusted
        self._in_a_row = 0  # counted failures since this process last saw a success
        self._reading = False  # an allow() is reading the state (the others trust closed)
        self._in_flight: set[anyio.CancelScope] = set()  # calls cut short if it opens

    # -- stored state -------------------------------------------------------------

    async def _load(self) -> dict[str, Any]:
        raw = await self._state.get(self._key)
        data: dict[str, Any] = {"state": "closed"} if raw is None else json.loads(raw)
        self._seen(self._effective(data))
        return data

    def _seen(self, state: BreakerState) -> None:
        """Remember ``state`` as the latest; a closed one is trusted for a while."""
        self.last_state = state
        closed = state == "closed"
        self._closed_until = self._clock.monotonic() + CLOSED_STALENESS if closed else -math.inf

    async def _store(self, data: dict[str, Any], *, reason: str, previous: str) -> None:
        await self._state.set(self._key, json.dumps(data).encode())
        new = self._effective(data)
        self._seen(new)
        if new != previous:
            await self._emit(
                Event(
                    kind="breaker_state_changed",
                    provider=self.name,
                    data={"from": previous, "to": new, "reason": reason},
                )
            )

    def _effective(self, data: dict[str, Any]) -> BreakerState:
        if data["state"] == "open":
            retry_at = data.get("retry_at")
            if retry_at is not None and self._clock.time() >= retry_at:
                return "half_open"
            return "open"
        return "closed"

    def _bucket(self, settings: CircuitBreaker) -> tuple[int, float]:
        width = settings.window / _BUCKETS
        return int(self._clock.time() // width), width

    async def _window_sum(self, kind: str, settings: CircuitBreaker) -> int:
        current, _ = self._bucket(settings)
        total = 0
        for bucket in range(current - _BUCKETS + 1, current + 1):
            raw = await self._state.get(f"{self._key}:{kind}:{bucket}")
            total += int(raw) if raw else 0
        return total

    async def _clear_window(self, settings: CircuitBreaker) -> None:
        current, _ = self._bucket(settings)
        for kind in ("f", "n"):
            for bucket in range(current - _BUCKETS + 1, current + 1):
                await self._state.delete(f"{self._key}:{kind}:{bucket}")

    # -- the generator's side -----------------------------------------------------

    async def _tolerant(self, what: str, call: Callable[[], Awaitable[_T]], *, fallback: _T) -> _T:
        """``call()`` within ``READ_BOUND``, or ``fallback`` when the state backend fails
        or does not answer it (logged, now and then).

        A breaker that cannot reach its state fails open: a backend blip must not stop
        image generation, and the provider's own errors still end each call.
        """
        done: list[_T] = []  # a list: the type checker cannot see a scope swallow its cut
        problem = f"no answer within {READ_BOUND:g}s"
        with self._clock.deadline_scope(self._clock.monotonic() + READ_BOUND):
            try:
                done.append(await call())
            except (StorageError, ValueError, KeyError, TypeError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
        if done:
            return done[0]
        now = self._clock.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "breaker of %s could not %s (%s); letting calls through", self.name, what, problem
            )
        return fallback

    async def allow(self) -> bool:
        """Whether a call may go through now; claims a half-open trial slot if needed.

        A breaker seen closed less than ``CLOSED_STALENESS`` seconds ago answers
        without reading its state, and so does one seen closed whose state is being
        read for another call at that moment (one read, not one per call in flight:
        closed is trusted at most ``CLOSED_STALENESS`` plus ``READ_BOUND``); True
        when the state backend cannot answer (the breaker fails open).
        """
        if self._clock.monotonic() < self._closed_until:
            return True
        if self._reading and self.last_state == "closed":
            return True
        self._reading = True
        try:
            return await self._tolerant("read its state", self._allow, fallback=True)
        finally:
            self._reading = False

    async def _allow(self) -> bool:
        data = await self._load()
        state = self.last_state
        if state == "closed":
            return True
        if state == "open":
            return False
        settings = self._settings()
        slot = await self._state.incr(
            f"{self._key}:trial:{data.get('since')}", ttl=max(settings.reset_timeout, 60.0) * 4
        )
        if slot == 1:
            await self._emit(
                Event(
                    kind="breaker_state_changed",
                    provider=self.name,
                    data={"from": "open", "to": "half_open", "reason": "trial time reached"},
                )
            )
        return slot <= settings.half_open_max_calls

    @contextmanager
    def watching(self) -> Iterator[anyio.CancelScope]:
        """A cancel scope for one call to this provider, cancelled if the breaker opens
        while the call runs (see ``CircuitBreaker.cut_in_flight``)."""
        with anyio.CancelScope() as scope:
            self._in_flight.add(scope)
            try:
                yield scope
            finally:
                self._in_flight.discard(scope)

    async def next_trial(self) -> float | None:
        """Wall-clock time an open breaker next lets a call through (None: closed or forced,
        or the state backend cannot answer)."""
        return await self._tolerant("read its trial time", self._next_trial, fallback=None)

    async def _next_trial(self) -> float | None:
        data = await self._load()
        retry_at = data.get("retry_at") if data["state"] == "open" else None
        return None if retry_at is None or math.isinf(retry_at) else float(retry_at)

    async def record_success(self) -> None:
        """A call succeeded: a half-open breaker closes (logged, not raised, if the state
        backend fails). Nothing to do, and no state call, for a breaker seen closed
        lately that does not count calls (no ``failure_rate``)."""
        self._in_a_row = 0
        fresh = self._clock.monotonic() < self._closed_until
        if fresh and self._settings().failure_rate is None:
            return
        await self._tolerant("record a success", self._record_success, fallback=None)

    async def _record_success(self) -> None:
        settings = self._settings()
        if settings.failure_rate is not None:
            current, width = self._bucket(settings)
            await self._state.incr(f"{self._key}:n:{current}", ttl=settings.window + width)
        data = await self._load()
        if data["state"] == "open" and not data.get("forced"):
            await self._close(
                settings, reason="trial call succeeded", previous=self._effective(data)
            )

    async def record_failure(self, error: ImageGenError) -> None:
        """A call failed: count it if it says something about health; maybe open (logged,
        not raised, if the state backend fails)."""
        await self._tolerant("record a failure", lambda: self._record_failure(error), fallback=None)

    async def _record_failure(self, error: ImageGenError) -> None:
        settings = self._settings()
        data = await self._load()
        previous = self._effective(data)
        if data.get("forced"):
            return
        if not settings.counts(error):
            if previous == "half_open":
                # The provider answered, if unhelpfully: it is up.
                await self._close(
                    settings, reason=f"trial call answered ({error.kind})", previous=previous
                )
            return
        assert isinstance(error, ProviderError)  # noqa: S101 - counts() said so
        if previous == "half_open":
            await self._open(settings, error, failures=data.get("failures", 1), previous=previous)
            return
        if previous == "open":
            return
        self._in_a_row += 1
        in_a_row = settings.consecutive_failures
        if in_a_row is not None and self._in_a_row >= in_a_row:
            reason = f"{self._in_a_row} failures in a row, last: {error.kind}"
            await self._open(
                settings, error, failures=self._in_a_row, previous=previous, reason=reason
            )
            return
        current, width = self._bucket(settings)
        ttl = settings.window + width
        await self._state.incr(f"{self._key}:f:{current}", ttl=ttl)
        if settings.failure_rate is not None:
            await self._state.incr(f"{self._key}:n:{current}", ttl=ttl)
        failures = await self._window_sum("f", settings)
        if failures < settings.failure_threshold:
            return
        if settings.failure_rate is not None:
            calls = await self._window_sum("n", settings)
            if calls < settings.minimum_calls or failures / calls < settings.failure_rate:
                return
        await self._open(settings, error, failures=failures, previous=previous)

    async def _open(
        self,
        settings: CircuitBreaker,
        error: ProviderError,
        *,
        failures: int,
        previous: str,
        reason: str | None = None,
    ) -> None:
        now = self._clock.time()
        wait = max(settings.reset_timeout, error.retry_after or 0.0)
        if reason is None:
            reason = f"{failures} failure(s) within {settings.window:g}s, last: {error.kind}"
        if previous == "half_open":
            reason = f"trial call failed: {error.kind}"
        self._in_a_row = 0
        if settings.cut_in_flight:
            for scope in self._in_flight:
                scope.cancel()
        data = {
            "state": "open",
            "since": now,
            "retry_at": now + wait,
            "reason": reason,
            "failures": failures,
        }
        await self._store(data, reason=reason, previous=previous)

    async def _close(self, settings: CircuitBreaker, *, reason: str, previous: str) -> None:
        await self._clear_window(settings)
        await self._store(
            {"state": "closed", "since": self._clock.time(), "reason": reason},
            reason=reason,
            previous=previous,
        )

    # -- the operator's side ------------------------------------------------------

    async def state(self) -> BreakerState:
        """``"closed"``, ``"open"`` or ``"half_open"``."""
        await self._load()
        return self.last_state

    async def snapshot(self) -> BreakerSnapshot:
        """State, since when, why, failures counted, next trial time."""
        data = await self._load()
        state = self.last_state
        failures = data.get("failures", 0)
        if state == "closed" and not data.get("forced"):
            failures = await self._window_sum("f", self._settings())
        return BreakerSnapshot(
            provider=self.name,
            state=state,
            since=_utc(data.get("since")),
            reason=data.get("reason"),
            failures=int(failures),
            next_trial=_utc(data.get("retry_at")) if state != "closed" else None,
            forced=bool(data.get("forced", False)),
        )

    async def force_open(self, reason: str = "forced open") -> None:
        """Skip this provider until ``force_close()`` or ``reset()``.

        Raises:
            InvalidConfig: ``reason`` is not a string of at most ``MAX_REASON``
                characters of valid Unicode; nothing is changed.
        """
        reason = _check_reason(reason)
        data = await self._load()
        new = {
            "state": "open",
            "since": self._clock.time(),
            "retry_at": math.inf,
            "reason": reason,
            "forced": True,
        }
        await self._store(new, reason=reason, previous=self._effective(data))

    async def force_close(self, reason: str = "forced closed") -> None:
        """Call this provider whatever happens, until ``reset()``.

        Raises:
            InvalidConfig: ``reason`` is not a string of at most ``MAX_REASON``
                characters of valid Unicode; nothing is changed.
        """
        reason = _check_reason(reason)
        data = await self._load()
        await self._clear_window(self._settings())
        new = {"state": "closed", "since": self._clock.time(), "reason": reason, "forced": True}
        await self._store(new, reason=reason, previous=self._effective(data))

    async def reset(self) -> None:
        """Back to closed with nothing counted, and no longer forced."""
        data = await self._load()
        await self._close(self._settings(), reason="reset", previous=self._effective(data))

    def __repr__(self) -> str:
        return f"ProviderBreaker({self.name!r}, last_state={self.last_state!r})"
