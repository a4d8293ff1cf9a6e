"""Alert sinks: :class:`LogAlerts` logs each alert, :class:`AlertWebhook` POSTs it.

:class:`LogAlerts` writes to the ``imagegen.alerts`` logger. :class:`AlertWebhook`
POSTs signed JSON from a background task, retried with backoff, so a slow
receiver never delays a generation.

.. versionadded:: 0.1
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc
import httpx

from ._alert import Alert
from ._alert_checks import check_clock, check_positive_int, check_seconds
from ._clock import Clock
from ._errors import InvalidConfig, WebhookVerificationError
from ._http_headers import parse_retry_after, user_agent
from ._webhooks import hidden_in_logs, sign_standard_webhook, standard_webhook_key
from .strategies import Retry

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["AlertWebhook", "LogAlerts"]

logger = logging.getLogger("imagegen.alerts")

_MAX_RETRY_AFTER: Final = 60.0  # a receiver's Retry-After is honoured up to this
_MIN_SECRET_BYTES: Final = 16


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
            logged: the userinfo is sent as ``Authorization: Basic`` (not in the
            URL), and the query's values are masked in httpx's log while a
            delivery runs.
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
        parsed = self._check_url(url)
        # The credentials go in a header, not in the URL httpx logs; Basic auth is what
        # httpx would have made of them.
        self._auth: httpx.BasicAuth | None = None
        if parsed.username or parsed.password:
            self._auth = httpx.BasicAuth(parsed.username, parsed.password)
        self._url = parsed.copy_with(username=None, password=None)
        self._hidden = (url,)  # its query values, masked in httpx's log
        self.url = _redacted(self._url)
        self._secret = self._check_secret(secret)
        if http is not None and not isinstance(http, httpx.AsyncClient):
            raise InvalidConfig("http must be an httpx.AsyncClient or None", field="http")
        self._http = http
        self._owns_http = http is None
        self._retry = Retry(
            attempts=check_positive_int("attempts", attempts), initial=1.0, maximum=30.0
        )
        self.timeout = check_seconds("timeout", timeout)
        self.drain_timeout = check_seconds("drain_timeout", drain_timeout)
        self.queue_size = check_positive_int("queue_size", queue_size)
        self._clock = check_clock(clock)
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
            key = standard_webhook_key(secret)
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
        with (
            self._clock.deadline_scope(self._clock.monotonic() + self.timeout) as scope,
            hidden_in_logs(urls=self._hidden),
        ):
            try:
                response = await http.post(
                    self._url,
                    content=body,
                    headers=headers,
                    timeout=self.timeout,
                    auth=httpx.USE_CLIENT_DEFAULT if self._auth is None else self._auth,
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
