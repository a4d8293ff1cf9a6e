"""Alerts: a breaker opened or closed, the success rate fell or recovered.

:class:`Alerts` is a hook (``ImageGenerator(hooks=[Alerts([...])])``) that watches
the generator's events and hands an :class:`Alert` to its sinks, once per
transition: a breaker that opens alerts once, and again only after it has closed;
a success rate that falls below the threshold alerts once, and again only after
it has recovered. Sinks are callables taking an ``Alert``: :class:`LogAlerts`
writes to the ``imagegen.alerts`` logger, :class:`AlertWebhook` POSTs signed JSON
from a background task, so a slow receiver never delays a generation.

.. versionadded:: 0.1
"""

from __future__ import annotations

import collections
import datetime as dt
import inspect
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import anyio.abc
import attrs
import httpx

from ._clock import Clock, SystemClock
from ._errors import InvalidConfig, WebhookVerificationError
from ._http_headers import parse_retry_after, user_agent
from ._models import Event
from ._webhooks import _standard_webhook_key, sign_standard_webhook
from .strategies import Retry

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["Alert", "AlertKind", "AlertSink", "AlertWebhook", "Alerts", "LogAlerts"]

logger = logging.getLogger("imagegen.alerts")

AlertKind = Literal[
    "breaker_opened", "breaker_closed", "success_rate_low", "success_rate_recovered"
]

_BUCKETS: Final = 10  # the sliding window's resolution, as in the circuit breaker
_SINK_GRACE: Final = 5.0  # seconds async sinks still running get when Alerts exits
_MAX_RETRY_AFTER: Final = 60.0  # a receiver's Retry-After is honoured up to this
_MIN_SECRET_BYTES: Final = 16
_BAD_NEWS: Final = frozenset({"breaker_opened", "success_rate_low"})


def _utc(value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidConfig("at must be a timezone-aware datetime", field="at")
    return value.astimezone(dt.UTC)


@attrs.frozen(kw_only=True)
class Alert:
    """Something an operator should hear about.

    Args:
        kind: ``"breaker_opened"``, ``"breaker_closed"``, ``"success_rate_low"`` or
            ``"success_rate_recovered"``.
        provider: The provider concerned; None for the success rate of all
            generations.
        message: One human-readable line.
        data: Details, JSON-ready: ``from``/``to``/``reason`` for a breaker;
            ``success_rate``, ``threshold``, ``successes``, ``calls``, ``window``
            for a success rate.
        at: When it happened, in UTC.

    .. versionadded:: 0.1
    """

    kind: AlertKind
    provider: str | None
    message: str
    data: Mapping[str, Any] = attrs.field(factory=dict)
    at: dt.datetime = attrs.field(converter=_utc)

    @property
    def bad_news(self) -> bool:
        """True for an opened breaker or a low success rate, False for a recovery."""
        return self.kind in _BAD_NEWS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``at`` in ISO 8601); the webhook's body."""
        return {
            "kind": self.kind,
            "provider": self.provider,
            "message": self.message,
            "data": dict(self.data),
            "at": self.at.isoformat(),
        }


AlertSink = Callable[[Alert], Any]
"""A callable taking one :class:`Alert`; sync or async. Its exceptions are logged.

A sink that is also an async context manager is entered and exited with the
:class:`Alerts` that holds it.
"""


class LogAlerts:
    """A sink that logs each alert: WARNING for bad news, INFO for recoveries.

    The record carries the alert's :meth:`Alert.to_dict` as ``extra`` under
    ``imagegen_alert``, for structured log handlers.

    Args:
        logger: Where to log; default the ``imagegen.alerts`` logger.

    .. versionadded:: 0.1
    """

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        if logger is not None and not isinstance(logger, logging.Logger):
            raise InvalidConfig("logger must be a logging.Logger or None", field="logger")
        self.logger = logger if logger is not None else logging.getLogger("imagegen.alerts")

    def __call__(self, alert: Alert) -> None:
        """Log one alert."""
        self.logger.log(
            logging.WARNING if alert.bad_news else logging.INFO,
            "alert %s: %s",
            alert.kind,
            alert.message,
            extra={"imagegen_alert": alert.to_dict()},
        )

    def __repr__(self) -> str:
        return f"LogAlerts(logger={self.logger.name!r})"


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


def _rate(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
        raise InvalidConfig(f"{name} must be a number in (0, 1] (got {value!r})", field=name)
    return float(value)


def _seconds(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < math.inf:
        raise InvalidConfig(f"{name} must be seconds > 0 (got {value!r})", field=name)
    return float(value)


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidConfig(f"{name} must be an integer >= 1 (got {value!r})", field=name)
    return value


def _clock(value: object) -> Clock:
    if value is None:
        return SystemClock()
    if not isinstance(value, Clock):
        raise InvalidConfig("clock must be a Clock (or None for the system clock)", field="clock")
    return value


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
        self.success_rate_below = _rate("success_rate_below", success_rate_below)
        self.window = _seconds("window", window)
        self.min_calls = _positive_int("min_calls", min_calls)
        self._clock = _clock(clock)
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


def _redacted(url: httpx.URL) -> str:
    """The URL without userinfo, query or fragment, which may hold credentials."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}{url.path}"


class AlertWebhook:
    """A sink that POSTs each alert as JSON to a URL, signed, retried, in the background.

    Calling it only puts the alert in a bounded queue, so it never waits and never
    raises: when the queue is full, or the webhook is not running (not entered
    with ``async with``, directly or through the :class:`Alerts` holding it), the
    alert is logged and dropped. A worker task delivers the queue in order.

    Each delivery is signed the Standard Webhooks way (the scheme Replicate and
    Svix use) with the shared ``whsec_...`` secret: headers ``webhook-id`` (the
    same on every retry of one alert, so receivers can drop duplicates),
    ``webhook-timestamp`` and ``webhook-signature``. Receivers check them with any
    Standard Webhooks library, or the dozen lines of stdlib Python in
    ``docs/observability.md``.

    A 2xx answer delivers. 429, 5xx, connection errors and timeouts are retried
    with exponential backoff (honouring ``Retry-After`` up to a minute), up to
    ``attempts`` tries in all; other answers (4xx, 3xx) drop the alert at once.
    Leaving the ``async with`` delivers what is queued for at most
    ``drain_timeout`` seconds, then drops the rest.

    Args:
        url: The receiver, http or https. Its userinfo and query string are never
            logged.
        secret: The shared signing secret, ``whsec_`` and base64 of 16 bytes or more.
        http: An ``httpx.AsyncClient`` you own; otherwise one is made and closed.
        attempts: Tries per alert, the first included.
        timeout: Seconds each POST may take.
        queue_size: Alerts waiting at most; more are dropped.
        drain_timeout: Seconds leaving the ``async with`` may spend delivering.
        clock: Time source (default: the system clock).

    Raises:
        InvalidConfig: An argument broke a rule; ``field`` names it (never the
            secret's value).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str,
        http: httpx.AsyncClient | None = None,
        attempts: int = 5,
        timeout: float = 5.0,
        queue_size: int = 100,
        drain_timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self._url = self._check_url(url)
        self.url = _redacted(self._url)
        self._secret = self._check_secret(secret)
        if http is not None and not isinstance(http, httpx.AsyncClient):
            raise InvalidConfig("http must be an httpx.AsyncClient or None", field="http")
        self._http = http
        self._owns_http = http is None
        self._retry = Retry(attempts=_positive_int("attempts", attempts), initial=1.0, maximum=30.0)
        self.timeout = _seconds("timeout", timeout)
        self.drain_timeout = _seconds("drain_timeout", drain_timeout)
        self.queue_size = _positive_int("queue_size", queue_size)
        self._clock = _clock(clock)
        self._send_stream: MemoryObjectSendStream[Alert] | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._drained: anyio.Event | None = None
        self._depth = 0  # entered by each Alerts (and generator) that holds it
        self.delivered = 0
        self.dropped = 0

    @staticmethod
    def _check_url(url: object) -> httpx.URL:
        rule = "url must be an http:// or https:// URL with a host"
        if not isinstance(url, str):
            raise InvalidConfig(rule, field="url")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise InvalidConfig(rule, field="url") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidConfig(rule, field="url")
        return parsed

    @staticmethod
    def _check_secret(secret: object) -> str:
        rule = (
            f"secret must be 'whsec_' followed by base64 of at least {_MIN_SECRET_BYTES} bytes "
            "(a Standard Webhooks signing secret)"
        )
        if not isinstance(secret, str) or not secret.startswith("whsec_"):
            raise InvalidConfig(rule, field="secret")
        try:
            key = _standard_webhook_key(secret)
        except WebhookVerificationError:
            raise InvalidConfig(rule, field="secret") from None
        if len(key) < _MIN_SECRET_BYTES:
            raise InvalidConfig(rule, field="secret")
        return secret

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> AlertWebhook:
        self._depth += 1
        if self._depth > 1:
            return self
        send, receive = anyio.create_memory_object_stream[Alert](self.queue_size)
        if self._http is None:
            self._http = httpx.AsyncClient(
                headers={"User-Agent": user_agent()}, follow_redirects=False
            )
        group = anyio.create_task_group()
        await group.__aenter__()
        self._send_stream, self._group = send, group
        self._drained = anyio.Event()
        group.start_soon(self._work, receive)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._depth = max(0, self._depth - 1)
        if self._depth:
            return
        send, self._send_stream = self._send_stream, None
        group, self._group = self._group, None
        if send is None or group is None or self._drained is None:
            return
        send.close()  # the worker ends once it has delivered what is queued
        with self._clock.deadline_scope(self._clock.monotonic() + self.drain_timeout):
            await self._drained.wait()
        if not self._drained.is_set():
            logger.warning(
                "alert webhook %s: still delivering after %gs; giving up on what is left",
                self.url,
                self.drain_timeout,
            )
        group.cancel_scope.cancel()
        await group.__aexit__(None, None, None)
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- the sink -----------------------------------------------------------------

    def __call__(self, alert: Alert) -> None:
        """Queue one alert for delivery; never waits, never raises."""
        send = self._send_stream
        if send is None:
            self.dropped += 1
            logger.warning(
                "alert webhook %s is not running (enter it with `async with`); dropped %s",
                self.url,
                alert.kind,
            )
            return
        try:
            send.send_nowait(alert)
        except anyio.WouldBlock:
            self.dropped += 1
            logger.warning(
                "alert webhook %s: queue full (%d waiting); dropped %s",
                self.url,
                self.queue_size,
                alert.kind,
            )

    async def _work(self, receive: MemoryObjectReceiveStream[Alert]) -> None:
        assert self._drained is not None  # noqa: S101 - set before the worker starts
        try:
            async with receive:
                async for alert in receive:
                    try:
                        await self._deliver(alert)
                    except Exception:
                        self.dropped += 1
                        logger.exception("alert webhook %s: delivery failed", self.url)
        finally:
            self._drained.set()

    async def _deliver(self, alert: Alert) -> None:
        body = json.dumps(alert.to_dict(), separators=(",", ":")).encode()
        msg_id = f"msg_{uuid.uuid4().hex}"
        tries = 0
        while True:
            tries += 1
            retry_after: float | None = None
            problem, response = await self._post(msg_id, body)
            if problem is None:
                self.delivered += 1
                logger.debug("alert webhook %s: delivered %s (%s)", self.url, alert.kind, msg_id)
                return
            if response is not None:
                now = dt.datetime.fromtimestamp(self._clock.time(), tz=dt.UTC)
                retry_after = parse_retry_after(response.headers, now=now)
                code = response.status_code
                retryable = code == 429 or code >= 500
            else:
                retryable = True
            if not retryable or tries >= self._retry.attempts:
                self.dropped += 1
                logger.warning(
                    "alert webhook %s: %s; dropped %s after %d tr%s",
                    self.url,
                    problem,
                    alert.kind,
                    tries,
                    "y" if tries == 1 else "ies",
                )
                return
            if retry_after is not None:
                retry_after = min(retry_after, _MAX_RETRY_AFTER)
            delay = self._retry.backoff(tries, retry_after)
            logger.info("alert webhook %s: %s; retrying in %.1fs", self.url, problem, delay)
            await self._clock.sleep(delay)

    async def _post(self, msg_id: str, body: bytes) -> tuple[str | None, httpx.Response | None]:
        """One signed POST: (None, response) when delivered, else (what went wrong, response)."""
        http = self._http
        assert http is not None  # noqa: S101 - made in __aenter__
        timestamp = int(self._clock.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard_webhook(self._secret, msg_id, timestamp, body),
        }
        response: httpx.Response | None = None
        with self._clock.deadline_scope(self._clock.monotonic() + self.timeout) as scope:
            try:
                response = await http.post(
                    self._url, content=body, headers=headers, timeout=self.timeout
                )
            except httpx.TimeoutException:
                return f"no answer within {self.timeout:g}s", None
            except httpx.TransportError as exc:
                # The class only: some messages repeat the URL, query string included.
                return f"{type(exc).__name__}", None
        if scope.cancelled_caught or response is None:
            return f"no answer within {self.timeout:g}s", None
        if response.is_success:
            return None, response
        return f"answered {response.status_code}", response

    def __repr__(self) -> str:
        return f"AlertWebhook(url={self.url!r}, secret='whsec_***')"
