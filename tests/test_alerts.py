"""Alerts: breaker and success-rate transitions, once each; log and webhook sinks."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import runpy
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

from imagegen import (
    Alert,
    Alerts,
    AlertWebhook,
    CircuitBreaker,
    Event,
    ImageGenerator,
    InvalidConfig,
    LogAlerts,
    ProviderUnavailable,
    Retry,
)
from imagegen._webhooks import verify_standard_webhook
from imagegen.testing import FakeClock, FakeProvider, failing, instant

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
URL = "https://alerts.example.test/hook"
EXAMPLES = Path(__file__).parent.parent / "examples"


class Recorder:
    """A sync sink keeping every alert."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def __call__(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(a.kind, a.provider) for a in self.alerts]


def attempt(provider: str, outcome: str) -> Event:
    return Event(
        kind="attempt_finished", generation_id="g", provider=provider, data={"outcome": outcome}
    )


def finished(status: str, *, is_default: bool = False) -> Event:
    return Event(
        kind="generation_finished",
        generation_id="g",
        provider="default" if is_default else "a",
        data={"status": status, "is_default": is_default},
    )


def breaker(provider: str, to: str, frm: str = "closed") -> Event:
    return Event(
        kind="breaker_state_changed",
        provider=provider,
        data={"from": frm, "to": to, "reason": "because"},
    )


def alert(kind: Any = "breaker_opened", **data: Any) -> Alert:
    return Alert(
        kind=kind,
        provider="p",
        message="m",
        data=data,
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


class TestAlert:
    """The Alert value."""

    def test_to_dict_is_json(self) -> None:
        """to_dict() round-trips through JSON with `at` in ISO 8601."""
        value = alert(reason="x")
        assert json.loads(json.dumps(value.to_dict())) == {
            "kind": "breaker_opened",
            "provider": "p",
            "message": "m",
            "data": {"reason": "x"},
            "at": "2026-01-01T00:00:00+00:00",
        }

    def test_at_is_utc(self) -> None:
        """An aware time in another zone is stored in UTC."""
        plus2 = dt.timezone(dt.timedelta(hours=2))
        value = Alert(
            kind="breaker_closed",
            provider=None,
            message="m",
            at=dt.datetime(2026, 1, 1, 2, tzinfo=plus2),
        )
        assert value.at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        assert value.at.tzinfo is dt.UTC

    def test_naive_at_refused(self) -> None:
        """A naive datetime is refused, naming the field."""
        with pytest.raises(InvalidConfig) as caught:
            Alert(kind="breaker_opened", provider=None, message="m", at=dt.datetime(2026, 1, 1))  # noqa: DTZ001
        assert caught.value.field == "at"

    @pytest.mark.parametrize(
        ("kind", "bad"),
        [
            ("breaker_opened", True),
            ("success_rate_low", True),
            ("breaker_closed", False),
            ("success_rate_recovered", False),
        ],
    )
    def test_bad_news(self, kind: str, bad: bool) -> None:
        """Openings and low rates are bad news; closings and recoveries are not."""
        assert alert(kind).bad_news is bad


class TestValidation:
    """Bad arguments raise InvalidConfig naming the field."""

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"sinks": "log"}, "sinks"),
            ({"sinks": 5}, "sinks"),
            ({"sinks": []}, "sinks"),
            ({"sinks": [print, 1]}, "sinks"),
            ({"success_rate_below": 0}, "success_rate_below"),
            ({"success_rate_below": 1.5}, "success_rate_below"),
            ({"success_rate_below": True}, "success_rate_below"),
            ({"success_rate_below": "0.9"}, "success_rate_below"),
            ({"success_rate_below": float("nan")}, "success_rate_below"),
            ({"window": 0}, "window"),
            ({"window": float("inf")}, "window"),
            ({"window": "5"}, "window"),
            ({"min_calls": 0}, "min_calls"),
            ({"min_calls": 2.5}, "min_calls"),
            ({"min_calls": True}, "min_calls"),
            ({"clock": "now"}, "clock"),
        ],
    )
    def test_alerts(self, kwargs: dict[str, Any], field: str) -> None:
        """Alerts checks sinks, threshold, window, min_calls and clock."""
        args = {"sinks": [print], **kwargs}
        with pytest.raises(InvalidConfig) as caught:
            Alerts(**args)
        assert caught.value.field == field

    def test_threshold_of_one_allowed(self) -> None:
        """success_rate_below=1 (any failure alerts) is allowed."""
        assert Alerts([print], success_rate_below=1).success_rate_below == 1.0

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"url": "ftp://alerts.example.test/"}, "url"),
            ({"url": "https://"}, "url"),
            ({"url": "/relative/path"}, "url"),
            ({"url": 5}, "url"),
            ({"url": "http://[::1"}, "url"),
            ({"secret": "not-a-secret"}, "secret"),
            ({"secret": "whsec_!!!not base64!!!"}, "secret"),
            ({"secret": "whsec_" + base64.b64encode(b"short").decode()}, "secret"),
            ({"secret": None}, "secret"),
            ({"http": "client"}, "http"),
            ({"attempts": 0}, "attempts"),
            ({"timeout": 0}, "timeout"),
            ({"timeout": float("inf")}, "timeout"),
            ({"queue_size": 0}, "queue_size"),
            ({"drain_timeout": -1}, "drain_timeout"),
            ({"clock": object()}, "clock"),
        ],
    )
    def test_webhook(self, kwargs: dict[str, Any], field: str) -> None:
        """AlertWebhook checks every argument; the message never shows the secret."""
        args = {"url": URL, "secret": SECRET, **kwargs}
        with pytest.raises(InvalidConfig) as caught:
            AlertWebhook(**args)
        assert caught.value.field == field
        assert SECRET not in str(caught.value)
        if isinstance(args["secret"], str):
            assert args["secret"].removeprefix("whsec_") not in str(caught.value)

    def test_log_alerts_logger(self) -> None:
        """LogAlerts takes a Logger or None."""
        with pytest.raises(InvalidConfig) as caught:
            LogAlerts("imagegen")  # type: ignore[arg-type]
        assert caught.value.field == "logger"


class TestBreakerAlerts:
    """A breaker alerts once when it opens and once when it closes."""

    async def test_once_per_transition(self, clock: FakeClock) -> None:
        """Open, re-open after a failed trial, close: exactly one opened and one closed."""
        recorder = Recorder()
        flaky = FakeProvider("flaky", errors=[ProviderUnavailable] * 3)
        gen = ImageGenerator(
            providers=[flaky, instant("backup", tier=1)],
            retry=Retry(attempts=1),
            breaker=CircuitBreaker(failure_threshold=2, reset_timeout=30.0),
            clock=clock,
            hooks=[Alerts([recorder], min_calls=1000, clock=clock)],
        )
        for _ in range(3):
            await gen.generate("a fox")
        assert recorder.kinds() == [("breaker_opened", "flaky")]
        clock.advance(31.0)
        await gen.generate("a fox")  # the trial call fails: open again, no new alert
        assert await gen.breaker_for("flaky").state() == "open"
        clock.advance(31.0)
        result = await gen.generate("a fox")  # the trial call succeeds: closed
        assert result.provider == "flaky"
        for _ in range(3):
            await gen.generate("a fox")
        assert recorder.kinds() == [("breaker_opened", "flaky"), ("breaker_closed", "flaky")]
        opened, closed = recorder.alerts
        assert opened.data == {
            "from": "closed",
            "to": "open",
            "reason": "2 failure(s) within 60s, last: ProviderUnavailable",
        }
        assert "flaky's circuit breaker opened" in opened.message
        assert closed.data["from"] == "half_open"
        assert opened.at == dt.datetime.fromtimestamp(clock.time() - 62.0, tz=dt.UTC)

    def test_half_open_says_nothing(self) -> None:
        """Half-opening alerts nothing; a close first seen without an open still alerts once."""
        recorder = Recorder()
        alerts = Alerts([recorder], clock=FakeClock())
        alerts(breaker("p", "half_open", "open"))
        alerts(breaker("p", "closed", "half_open"))
        alerts(breaker("p", "closed", "open"))
        alerts(breaker("p", "open"))
        alerts(breaker("p", "open", "half_open"))
        alerts(breaker("q", "open"))
        assert recorder.kinds() == [
            ("breaker_closed", "p"),
            ("breaker_opened", "p"),
            ("breaker_opened", "q"),
        ]


class TestSuccessRate:
    """The success rate alerts once when it falls and once when it recovers."""

    def test_min_calls_then_once_each_way(self) -> None:
        """Nothing before min_calls; one low alert; one recovery; then low again once."""
        recorder = Recorder()
        alerts = Alerts([recorder], success_rate_below=0.9, min_calls=5, clock=FakeClock())
        for _ in range(4):
            alerts(attempt("a", "error"))
        assert recorder.alerts == []
        alerts(attempt("a", "error"))
        assert recorder.kinds() == [("success_rate_low", "a")]
        for _ in range(44):  # 44 of 49 = 0.898 < 0.9: still low, no news
            alerts(attempt("a", "success"))
        assert len(recorder.alerts) == 1
        alerts(attempt("a", "success"))  # 45 of 50 = 0.9: recovered
        for _ in range(10):
            alerts(attempt("a", "success"))
        assert recorder.kinds() == [("success_rate_low", "a"), ("success_rate_recovered", "a")]
        for _ in range(10):
            alerts(attempt("a", "error"))
        assert recorder.kinds()[-1] == ("success_rate_low", "a")
        assert len(recorder.alerts) == 3
        low, recovered, _ = recorder.alerts
        assert low.data == {
            "success_rate": 0.0,
            "threshold": 0.9,
            "successes": 0,
            "calls": 5,
            "window": 300.0,
        }
        assert recovered.data["success_rate"] == pytest.approx(0.9)
        assert "fell below 90%" in low.message
        assert "is back at or above 90%" in recovered.message

    def test_cancelled_attempts_not_counted(self) -> None:
        """Cancelled (and skipped) attempts never count as failures or calls."""
        recorder = Recorder()
        alerts = Alerts([recorder], min_calls=2, clock=FakeClock())
        for _ in range(10):
            alerts(attempt("a", "cancelled"))
            alerts(attempt("a", "skipped"))
        alerts(attempt("a", "success"))
        alerts(attempt("a", "error"))
        assert recorder.kinds() == [("success_rate_low", "a")]
        assert recorder.alerts[0].data["calls"] == 2

    def test_overall_rate_counts_default_images_as_failures(self) -> None:
        """Over all generations, a default image or a failure is not a success."""
        recorder = Recorder()
        alerts = Alerts([recorder], success_rate_below=0.5, min_calls=4, clock=FakeClock())
        alerts(finished("succeeded"))
        alerts(finished("succeeded", is_default=True))
        alerts(finished("failed"))
        alerts(finished("succeeded"))
        assert recorder.alerts == []  # 2 of 4 = 0.5, not below
        alerts(finished("failed"))
        assert recorder.kinds() == [("success_rate_low", None)]
        assert "all generations" in recorder.alerts[0].message

    def test_window_slides(self) -> None:
        """Old failures age out: once the window has passed, fresh successes recover."""
        clock = FakeClock()
        recorder = Recorder()
        alerts = Alerts([recorder], window=100.0, min_calls=3, clock=clock)
        for _ in range(3):
            alerts(attempt("a", "error"))
        assert recorder.kinds() == [("success_rate_low", "a")]
        clock.advance(50.0)
        for _ in range(3):
            alerts(attempt("a", "success"))
        assert len(recorder.alerts) == 1  # the failures are still in the window: 3 of 6
        clock.advance(55.0)  # t=105: the first bucket (t<10) has left the window
        alerts(attempt("a", "success"))
        assert recorder.kinds()[-1] == ("success_rate_recovered", "a")
        assert recorder.alerts[-1].data["calls"] == 4
        assert recorder.alerts[-1].at == dt.datetime.fromtimestamp(clock.time(), tz=dt.UTC)

    def test_unrelated_events_ignored(self) -> None:
        """Other kinds, and events without a provider, alert nothing."""
        recorder = Recorder()
        alerts = Alerts([recorder], min_calls=1, clock=FakeClock())
        assert alerts(Event(kind="attempt_started", provider="a")) is None
        assert alerts(Event(kind="attempt_finished", data={"outcome": "error"})) is None
        assert alerts(Event(kind="breaker_state_changed", data={"to": "open"})) is None
        assert recorder.alerts == []

    async def test_from_real_generations(self, clock: FakeClock) -> None:
        """A failing provider behind a good one: its rate alerts, the overall rate does not."""
        recorder = Recorder()
        gen = ImageGenerator(
            providers=[failing("bad", ProviderUnavailable), instant("good", tier=1)],
            retry=Retry(attempts=1),
            breaker=CircuitBreaker(failure_threshold=100, consecutive_failures=None),
            clock=clock,
            hooks=[Alerts([recorder], min_calls=3, clock=clock)],
        )
        for _ in range(6):
            await gen.generate("a fox")
        assert recorder.kinds() == [("success_rate_low", "bad")]


class AsyncSink:
    """An async sink that takes `delay` virtual seconds per alert."""

    def __init__(self, clock: FakeClock, delay: float = 0.0, *, fail: bool = False) -> None:
        self.clock = clock
        self.delay = delay
        self.fail = fail
        self.done: list[str] = []

    async def __call__(self, alert: Alert) -> None:
        await self.clock.sleep(self.delay)
        if self.fail:
            raise RuntimeError("sink broke")
        self.done.append(alert.kind)


class LaterSink:
    """A sink returning an awaitable that is not a coroutine."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.done: list[str] = []

    def __call__(self, alert: Alert) -> Any:
        sink = self

        class Later:
            def __await__(self) -> Any:
                yield from sink.clock.sleep(10.0).__await__()
                sink.done.append(alert.kind)

        return Later()


class LifecycleSink(Recorder):
    """A sync sink that is also an async context manager."""

    def __init__(self, log: list[str], *, fail: bool = False) -> None:
        super().__init__()
        self.log = log
        self.fail = fail

    async def __aenter__(self) -> LifecycleSink:
        if self.fail:
            raise RuntimeError("cannot start")
        self.log.append("enter")
        return self

    async def __aexit__(self, *_: object) -> None:
        self.log.append("exit")


class TestSinks:
    """Sinks: sync inline, async in the background once entered, failures logged."""

    def test_failing_sink_does_not_stop_the_others(self, caplog: pytest.LogCaptureFixture) -> None:
        """A sink that raises is logged; the next sink still gets the alert."""

        def broken(_: Alert) -> None:
            raise RuntimeError("boom")

        recorder = Recorder()
        alerts = Alerts([broken, recorder], clock=FakeClock())
        with caplog.at_level(logging.ERROR, logger="imagegen.alerts"):
            alerts(breaker("p", "open"))
        assert recorder.kinds() == [("breaker_opened", "p")]
        assert "alert sink" in caplog.text
        assert "boom" in caplog.text

    async def test_async_sink_inline_when_not_entered(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Not entered, async sinks are awaited through the hook; their errors are logged."""
        good, bad = AsyncSink(clock, 1.0), AsyncSink(clock, fail=True)
        alerts = Alerts([good, bad], clock=clock)
        pending = alerts(breaker("p", "open"))
        assert pending is not None
        assert good.done == []
        with caplog.at_level(logging.ERROR, logger="imagegen.alerts"):
            await pending
        assert good.done == ["breaker_opened"]
        assert "sink broke" in caplog.text

    async def test_inline_awaits_closed_when_cancelled(self, clock: FakeClock) -> None:
        """Cancelled while awaiting inline sinks, the rest are closed, not left unawaited."""
        first, second = AsyncSink(clock, 10.0), AsyncSink(clock, 10.0)
        later = LaterSink(clock)
        alerts = Alerts([first, later, second], clock=clock)
        pending = alerts(breaker("p", "open"))
        assert pending is not None
        with clock.deadline_scope(clock.monotonic() + 1.0):
            await pending
        assert first.done == second.done == later.done == []

    async def test_exit_without_enter(self, clock: FakeClock) -> None:
        """Leaving an Alerts that was never entered does nothing."""
        log: list[str] = []
        alerts = Alerts([LifecycleSink(log)], clock=clock)
        await alerts.__aexit__(None, None, None)
        assert log == []

    async def test_async_sink_in_background_never_delays(self, clock: FakeClock) -> None:
        """Entered, a slow async sink runs in the background; generate() returns at once."""
        slow_sink = AsyncSink(clock, 3.0)
        alerts = Alerts([slow_sink], min_calls=1000, clock=clock)
        flaky = failing("flaky", ProviderUnavailable)
        async with (
            alerts,
            ImageGenerator(
                providers=[flaky, instant("backup", tier=1)],
                retry=Retry(attempts=1),
                breaker=CircuitBreaker(failure_threshold=1),
                clock=clock,
                hooks=[alerts],
            ) as gen,
        ):
            await gen.generate("a fox")
            assert clock.monotonic() == 0.0
            assert slow_sink.done == []
        assert slow_sink.done == ["breaker_opened"]
        assert clock.monotonic() == pytest.approx(3.0)

    async def test_exit_bounds_hanging_async_sinks(self, clock: FakeClock) -> None:
        """Leaving waits a few seconds for async sinks still at work, then cancels them."""
        stuck, quick = AsyncSink(clock, 3600.0), AsyncSink(clock, 1.0, fail=True)
        alerts = Alerts([stuck, quick], clock=clock)
        async with alerts:
            assert alerts(breaker("p", "open")) is None
        assert stuck.done == []
        assert clock.monotonic() == pytest.approx(5.0)

    async def test_sinks_entered_and_exited(self, clock: FakeClock) -> None:
        """Sinks that are async context managers live as long as the Alerts, entered once."""
        log: list[str] = []
        sink = LifecycleSink(log)
        alerts = Alerts([sink], clock=clock)
        async with alerts:
            async with alerts:  # a second generator sharing it
                assert log == ["enter"]
            assert log == ["enter"]
            alerts(breaker("p", "open"))
        assert log == ["enter", "exit"]
        assert sink.kinds() == [("breaker_opened", "p")]

    async def test_failed_enter_unwinds(self, clock: FakeClock) -> None:
        """If one sink cannot start, those already entered are exited and the error shows."""
        log: list[str] = []
        alerts = Alerts([LifecycleSink(log), LifecycleSink(log, fail=True)], clock=clock)
        with pytest.raises(RuntimeError, match="cannot start"):
            async with alerts:
                log.append("body ran")
        assert log == ["enter", "exit"]
        with pytest.raises(RuntimeError, match="cannot start"):  # not left half-entered
            async with alerts:
                pass
        assert log == ["enter", "exit", "enter", "exit"]

    def test_log_alerts_levels(self, caplog: pytest.LogCaptureFixture) -> None:
        """Bad news at WARNING, recoveries at INFO, on imagegen.alerts, with the alert attached."""
        sink = LogAlerts()
        assert repr(sink) == "LogAlerts(logger='imagegen.alerts')"
        with caplog.at_level(logging.INFO, logger="imagegen.alerts"):
            sink(alert("breaker_opened"))
            sink(alert("success_rate_recovered"))
        opened, recovered = caplog.records
        assert (opened.name, opened.levelno) == ("imagegen.alerts", logging.WARNING)
        assert (recovered.levelno, recovered.getMessage()) == (
            logging.INFO,
            "alert success_rate_recovered: m",
        )
        assert opened.imagegen_alert["kind"] == "breaker_opened"  # type: ignore[attr-defined]

    def test_log_alerts_custom_logger(self, caplog: pytest.LogCaptureFixture) -> None:
        """A given logger is used instead."""
        sink = LogAlerts(logging.getLogger("ops.pager"))
        with caplog.at_level(logging.WARNING, logger="ops.pager"):
            sink(alert())
        assert [r.name for r in caplog.records] == ["ops.pager"]

    def test_repr(self) -> None:
        """Alerts shows its settings."""
        alerts = Alerts([LogAlerts()], window=60, min_calls=3)
        assert repr(alerts) == (
            "Alerts(sinks=[LogAlerts(logger='imagegen.alerts')], success_rate_below=0.9, "
            "window=60.0, min_calls=3)"
        )


def verified(request: httpx.Request, clock: FakeClock) -> str:
    """The delivery's webhook-id, after checking its signature as a receiver would."""
    return verify_standard_webhook(SECRET, request.headers, request.content, now=clock.time())


class TestWebhook:
    """AlertWebhook: signed JSON, retried in the background, never blocking."""

    async def test_signed_retried_then_delivered(self, clock: FakeClock) -> None:
        """503, then 429 with Retry-After, then 200: one delivery, same id, valid signatures."""
        hook = AlertWebhook(URL, secret=SECRET, clock=clock)
        sent = alert(reason="because")
        with respx.mock() as mock:
            route = mock.post(URL).mock(
                side_effect=[
                    httpx.Response(503),
                    httpx.Response(429, headers={"Retry-After": "7"}),
                    httpx.Response(204),
                ]
            )
            async with hook:
                hook(sent)
                await clock.sleep(60.0)  # time for the retries
        assert route.call_count == 3
        ids = {verified(call.request, clock) for call in route.calls}
        assert len(ids) == 1
        assert ids.pop().startswith("msg_")
        request = route.calls.last.request
        assert json.loads(request.content) == sent.to_dict()
        assert request.headers["content-type"] == "application/json"
        assert clock.monotonic() >= 7.0  # Retry-After was honoured
        assert (hook.delivered, hook.dropped) == (1, 0)

    async def test_connection_errors_and_timeouts_retried(self, clock: FakeClock) -> None:
        """A refused connection and a read timeout are retried like a 5xx."""
        hook = AlertWebhook(URL, secret=SECRET, clock=clock)
        with respx.mock() as mock:
            route = mock.post(URL).mock(
                side_effect=[httpx.ConnectError, httpx.ReadTimeout, httpx.Response(200)]
            )
            async with hook:
                hook(alert())
        assert route.call_count == 3
        assert hook.delivered == 1

    async def test_client_error_not_retried(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A 400 drops the alert after one try; the log shows the URL without its secrets."""
        url = "https://ops:hunter2@alerts.example.test/hook?token=abc123"
        hook = AlertWebhook(url, secret=SECRET, clock=clock)
        with respx.mock() as mock, caplog.at_level(logging.DEBUG, logger="imagegen.alerts"):
            route = mock.post(url__startswith="https://alerts.example.test/hook").mock(
                return_value=httpx.Response(400)
            )
            async with hook:
                hook(alert())
        assert route.call_count == 1
        assert (hook.delivered, hook.dropped) == (0, 1)
        assert "answered 400; dropped breaker_opened after 1 try" in caplog.text
        assert "https://alerts.example.test/hook" in caplog.text
        for secret in ("hunter2", "abc123", SECRET, SECRET.removeprefix("whsec_")):
            assert secret not in caplog.text
            assert secret not in repr(hook)

    async def test_gives_up_after_attempts(self, clock: FakeClock) -> None:
        """Always 500: dropped after `attempts` tries."""
        hook = AlertWebhook(URL, secret=SECRET, attempts=3, clock=clock)
        with respx.mock() as mock:
            route = mock.post(URL).mock(return_value=httpx.Response(500))
            async with hook:
                hook(alert())
        assert route.call_count == 3
        assert (hook.delivered, hook.dropped) == (0, 1)

    async def test_each_post_bounded_by_timeout(self, clock: FakeClock) -> None:
        """A receiver that never answers costs `timeout` seconds per try."""

        calls: list[httpx.Request] = []

        async def never(request: httpx.Request) -> httpx.Response:
            calls.append(request)
            await anyio.sleep_forever()
            return httpx.Response(200)  # never reached: the sleep is cancelled

        hook = AlertWebhook(URL, secret=SECRET, attempts=1, timeout=2.0, clock=clock)
        with respx.mock(assert_all_called=False) as mock:
            mock.post(URL).mock(side_effect=never)
            async with hook:
                hook(alert())
        assert len(calls) == 1
        assert hook.dropped == 1
        assert clock.monotonic() == pytest.approx(2.0)

    async def test_drains_the_queue_on_exit(self, clock: FakeClock) -> None:
        """Alerts queued when the block ends are delivered before it returns."""
        hook = AlertWebhook(URL, secret=SECRET, clock=clock)
        with respx.mock() as mock:
            route = mock.post(URL).mock(return_value=httpx.Response(200))
            async with hook:
                for kind in ("breaker_opened", "breaker_closed", "success_rate_low"):
                    hook(alert(kind))
                assert route.call_count == 0  # queued only
        kinds = [json.loads(call.request.content)["kind"] for call in route.calls]
        assert kinds == ["breaker_opened", "breaker_closed", "success_rate_low"]

    async def test_queue_full_drops_with_a_warning(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Beyond queue_size, alerts are dropped at once, with a warning each."""
        hook = AlertWebhook(URL, secret=SECRET, queue_size=1, clock=clock)
        with (
            respx.mock() as mock,
            caplog.at_level(logging.WARNING, logger="imagegen.alerts"),
        ):
            route = mock.post(URL).mock(return_value=httpx.Response(200))
            async with hook:
                for _ in range(3):
                    hook(alert())
        assert route.call_count == 1
        assert (hook.delivered, hook.dropped) == (1, 2)
        assert caplog.text.count("queue full") == 2

    async def test_not_running_drops_with_a_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        """Before `async with` (and after), an alert is dropped with a warning, not raised."""
        hook = AlertWebhook(URL, secret=SECRET)
        with caplog.at_level(logging.WARNING, logger="imagegen.alerts"):
            hook(alert())
            async with hook:
                pass
            hook(alert())
            await hook.__aexit__(None, None, None)  # leaving twice is harmless
        assert hook.dropped == 2
        assert caplog.text.count("is not running") == 2

    async def test_hanging_receiver_never_delays_generate(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A receiver that hangs: generate() returns at once; leaving is bounded."""

        calls: list[httpx.Request] = []

        async def never(request: httpx.Request) -> httpx.Response:
            calls.append(request)
            await anyio.sleep_forever()
            return httpx.Response(200)  # never reached: the sleep is cancelled

        hook = AlertWebhook(URL, secret=SECRET, timeout=30.0, drain_timeout=4.0, clock=clock)
        flaky = failing("flaky", ProviderUnavailable)
        with (
            respx.mock(assert_all_called=False) as mock,
            caplog.at_level(logging.WARNING, logger="imagegen.alerts"),
        ):
            mock.post(URL).mock(side_effect=never)
            alerts = Alerts([hook], min_calls=1000, clock=clock)
            async with (
                alerts,
                ImageGenerator(
                    providers=[flaky, instant("backup", tier=1)],
                    retry=Retry(attempts=1),
                    breaker=CircuitBreaker(failure_threshold=1),
                    clock=clock,
                    hooks=[alerts],
                ) as gen,
            ):
                for _ in range(3):
                    result = await gen.generate("a fox")
                    assert result.provider == "backup"
                    assert clock.monotonic() == 0.0
                await anyio.wait_all_tasks_blocked()
                assert len(calls) == 1  # the worker is stuck on the first alert
        assert clock.monotonic() == pytest.approx(4.0)
        assert "still delivering after 4s" in caplog.text

    async def test_generator_enters_the_alerts_itself(self, clock: FakeClock) -> None:
        """hooks=[Alerts([AlertWebhook])] alone: started by `async with`, drained by aclose."""
        hook = AlertWebhook(URL, secret=SECRET, clock=clock)
        flaky = failing("flaky", ProviderUnavailable)
        with respx.mock() as mock:
            route = mock.post(URL).respond(204)
            async with ImageGenerator(
                providers=[flaky, instant("backup", tier=1)],
                retry=Retry(attempts=1),
                breaker=CircuitBreaker(failure_threshold=1),
                clock=clock,
                hooks=[Alerts([hook], min_calls=1000, clock=clock)],
            ) as gen:
                await gen.generate("a fox")
        assert route.call_count == 1
        sent = json.loads(route.calls.last.request.content)
        assert (sent["kind"], sent["provider"]) == ("breaker_opened", "flaky")
        assert verified(route.calls.last.request, clock).startswith("msg_")
        assert (hook.delivered, hook.dropped) == (1, 0)

    async def test_uses_and_keeps_the_callers_client(self, clock: FakeClock) -> None:
        """A given httpx client is used and left open; nested entering runs one worker."""
        seen: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(verified(request, clock))
            return httpx.Response(200)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            hook = AlertWebhook(URL, secret=SECRET, http=client, clock=clock)
            async with hook:
                async with hook:
                    hook(alert())
                hook(alert())  # still running: the outer block holds it
            assert not client.is_closed
        assert len(seen) == 2
        assert len(set(seen)) == 2  # one id per alert

    async def test_a_bad_alert_does_not_stop_the_worker(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An alert that cannot be serialised is logged and dropped; the next is delivered."""
        hook = AlertWebhook(URL, secret=SECRET, clock=clock)
        with respx.mock() as mock, caplog.at_level(logging.ERROR, logger="imagegen.alerts"):
            route = mock.post(URL).mock(return_value=httpx.Response(200))
            async with hook:
                hook(alert(bad=object()))
                hook(alert())
        assert route.call_count == 1
        assert (hook.delivered, hook.dropped) == (1, 1)
        assert "delivery failed" in caplog.text

    def test_repr_hides_the_secret(self) -> None:
        """repr shows the bare URL and never the secret."""
        hook = AlertWebhook("http://[::1]:8080/a?k=v", secret=SECRET)
        assert repr(hook) == "AlertWebhook(url='http://[::1]:8080/a', secret='whsec_***')"


class TestExample:
    """examples/alerts_and_metrics.py runs offline."""

    def test_example_runs(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """It prints alerts, metric values and the span tree."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["alerts_and_metrics.py"])
        runpy.run_path(str(EXAMPLES / "alerts_and_metrics.py"), run_name="__main__")
        out = capsys.readouterr().out
        assert "alert breaker_opened: flaky's circuit breaker opened" in out
        assert "imagegen.attempts" in out
        assert "imagegen.generate" in out
