"""The shared submit/poll/webhook loop: schedule, retries, deadline, webhooks, submit, recipes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest
from provider_support import session

from imagegen import (
    ContentRejected,
    ImageRequest,
    ProviderAuthError,
    ProviderContext,
    ProviderError,
    ProviderImage,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from imagegen.providers import (
    DONE,
    RUNNING,
    HTTPProvider,
    PollSchedule,
    Progress,
    RemoteWork,
    fetch_result,
    submit_work,
    wait_for_work,
)
from imagegen.providers._base import WEBHOOK_FIRST_POLL, WEBHOOK_POLL_CAP
from imagegen.providers._payloads import same_origin
from imagegen.testing import FakeClock

Answer = dict[str, Any]


class Script:
    """A status request answering in order (the last answer repeats), recording call times."""

    def __init__(self, clock: FakeClock, *answers: Answer | Exception) -> None:
        self.clock = clock
        self.answers = list(answers)
        self.times: list[float] = []

    async def __call__(self) -> Answer:
        self.times.append(self.clock.monotonic())
        item = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(item, Exception):
            raise item
        return item


class Inbox:
    """A webhook inbox whose one final delivery lands ``at`` seconds in."""

    def __init__(self, clock: FakeClock, at: float | None, payload: Mapping[str, Any]) -> None:
        self.clock, self.at, self.payload = clock, at, payload
        self.waits: list[tuple[str, float, float]] = []

    async def wait(self, work_id: str, within: float) -> Mapping[str, Any] | None:
        now = self.clock.monotonic()
        self.waits.append((work_id, now, within))
        if self.at is not None and now + within >= self.at:
            await self.clock.sleep(self.at - now)
            self.at = None
            return self.payload
        await self.clock.sleep(within)
        return None

    async def issue_token(self, ttl: float) -> str:
        raise NotImplementedError

    async def redeem_token(self, token: str) -> bool:
        raise NotImplementedError


def context(clock: FakeClock, seconds: float = 30.0, inbox: Inbox | None = None) -> ProviderContext:
    """A context with ``seconds`` left, on ``clock``."""
    return ProviderContext(deadline=clock.monotonic() + seconds, clock=clock, inbox=inbox)


def read(answer: Answer) -> Progress:
    """The test vendor's statuses: done, running, or queued (a note)."""
    if answer["state"] == "done":
        return DONE
    if answer["state"] == "queued":
        return Progress(note=f"queued at {answer['position']}")
    return RUNNING


async def result(answer: Answer) -> str:
    """The test vendor's result: the answer's output."""
    return str(answer["output"])


def work(status: Any, **changes: Any) -> RemoteWork[str]:
    """Work ``w1`` of the test vendor, polled with ``status``."""
    fields: dict[str, Any] = {
        "provider": "vendor",
        "id": "w1",
        "late": "w1 was not done by the deadline",
        "status": status,
        "read": read,
        "result": result,
    }
    return RemoteWork(**{**fields, **changes})


RUN: Answer = {"state": "running"}
FINISHED: Answer = {"state": "done", "output": "image"}


def gaps(times: list[float]) -> list[float]:
    """The waits before each poll, from time 0."""
    return [round(b - a, 4) for a, b in zip([0.0, *times], times, strict=False)]


@pytest.mark.anyio
class TestSchedule:
    async def test_waits_grow_and_cap(self, clock: FakeClock) -> None:
        """Polls come after first, then growth times the last wait, capped."""
        status = Script(clock, *[RUN] * 4, FINISHED)
        schedule = PollSchedule(first=1.0, growth=2.0, cap=3.0)
        assert await wait_for_work(context(clock), work(status), schedule) == "image"
        assert gaps(status.times) == [1.0, 2.0, 3.0, 3.0, 3.0]

    async def test_defaults(self, clock: FakeClock) -> None:
        """The default schedule grows 1.5x up to 5 s, keeps 0.25 s back and rides out 3."""
        schedule = PollSchedule(first=0.5)
        assert (schedule.growth, schedule.cap, schedule.margin, schedule.retries) == (
            1.5,
            5.0,
            0.25,
            3,
        )

    async def test_notes_are_logged_at_debug(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A running answer's note is a debug line naming the provider and the work."""
        caplog.set_level(logging.DEBUG, logger="imagegen.providers")
        status = Script(clock, {"state": "queued", "position": 4}, RUN, FINISHED)
        await wait_for_work(context(clock), work(status), PollSchedule(first=1.0))
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG] == [
            "vendor w1 queued at 4"
        ]

    async def test_the_deadline_is_a_final_timeout(self, clock: FakeClock) -> None:
        """Work still running near the deadline raises the vendor's late message, unretried."""
        status = Script(clock, RUN)
        with pytest.raises(ProviderTimeout, match="w1 was not done by the deadline") as info:
            await wait_for_work(context(clock, seconds=5.0), work(status), PollSchedule(first=1.0))
        assert not info.value.retryable
        assert info.value.provider == "vendor"
        assert status.times == [1.0, 2.5, 4.75]  # the last wait shrank to the margin
        assert clock.monotonic() == 4.75

    async def test_a_failed_answer_raises_its_error(self, clock: FakeClock) -> None:
        """What read raises for a failed answer ends the wait."""

        def refuse(answer: Answer) -> Progress:
            raise ContentRejected("refused", provider="vendor")

        with pytest.raises(ContentRejected):
            await wait_for_work(
                context(clock), work(Script(clock, RUN), read=refuse), PollSchedule(first=1.0)
            )


@pytest.mark.anyio
class TestPollFailures:
    async def test_transient_failures_are_ridden_out(self, clock: FakeClock) -> None:
        """Up to retries transient failures in a row are polled again; an answer resets them."""
        busy = ProviderUnavailable("busy", provider="vendor", status=503)
        status = Script(clock, busy, busy, busy, RUN, busy, busy, busy, FINISHED)
        found = await wait_for_work(context(clock, 60), work(status), PollSchedule(first=1.0))
        assert found == "image"
        assert len(status.times) == 8

    async def test_one_failure_too_many_raises_it(self, clock: FakeClock) -> None:
        """The failure after retries in a row is raised as it is."""
        busy = ProviderUnavailable("busy", provider="vendor", status=503)
        status = Script(clock, busy)
        with pytest.raises(ProviderUnavailable) as info:
            await wait_for_work(context(clock, 60), work(status), PollSchedule(first=1.0))
        assert info.value is busy
        assert len(status.times) == 4

    async def test_retries_zero_raises_the_first(self, clock: FakeClock) -> None:
        """With retries=0 the first transient failure ends the wait."""
        status = Script(clock, ProviderUnavailable("busy", status=503), FINISHED)
        with pytest.raises(ProviderUnavailable):
            await wait_for_work(context(clock), work(status), PollSchedule(first=1.0, retries=0))
        assert len(status.times) == 1

    async def test_fatal_failures_raise_at_once(self, clock: FakeClock) -> None:
        """A failure that is not retryable (a 401) is not polled again."""
        status = Script(clock, ProviderAuthError("no", status=401), FINISHED)
        with pytest.raises(ProviderAuthError):
            await wait_for_work(context(clock), work(status), PollSchedule(first=1.0))
        assert len(status.times) == 1

    async def test_retry_after_stretches_the_next_wait(self, clock: FakeClock) -> None:
        """A failure's Retry-After is waited out when it is longer than the next wait."""
        status = Script(
            clock,
            ProviderRateLimited("slow down", status=429, retry_after=4.0),
            ProviderRateLimited("again", status=429, retry_after=0.1),
            FINISHED,
        )
        await wait_for_work(context(clock), work(status), PollSchedule(first=1.0))
        assert gaps(status.times) == [1.0, 4.0, 2.25]

    async def test_failures_stop_at_the_deadline(self, clock: FakeClock) -> None:
        """A transient failure with no time left for another poll is a ProviderTimeout."""
        status = Script(clock, ProviderUnavailable("busy", status=503))
        with pytest.raises(ProviderTimeout):
            await wait_for_work(context(clock, 1.0), work(status), PollSchedule(first=0.5))
        assert status.times == [0.5, 0.75]


async def by_webhook(
    clock: FakeClock, status: Script, inbox: Inbox, seconds: float = 30.0, **changes: Any
) -> str:
    """Wait for work w1 by webhook (a poll interval of 0.5 s), ``seconds`` before the deadline."""
    ctx = context(clock, seconds, inbox=inbox)
    return await wait_for_work(ctx, work(status, **changes), PollSchedule(first=0.5), webhook=True)


@pytest.mark.anyio
class TestWebhook:
    async def test_a_delivery_ends_the_wait(self, clock: FakeClock) -> None:
        """With webhook=True a delivery read as done is the result; no poll was needed."""
        status = Script(clock, RUN)
        inbox = Inbox(clock, 2.0, FINISHED)
        assert await by_webhook(clock, status, inbox) == "image"
        assert status.times == []
        assert inbox.waits == [("w1", 0.0, WEBHOOK_FIRST_POLL)]

    async def test_polls_are_the_safety_net(self, clock: FakeClock) -> None:
        """Without a delivery, polls come after WEBHOOK_FIRST_POLL, growing to WEBHOOK_POLL_CAP."""
        status = Script(clock, *[RUN] * 4, FINISHED)
        inbox = Inbox(clock, None, FINISHED)
        await by_webhook(clock, status, inbox, seconds=90)
        assert gaps(status.times) == [5.0, 7.5, 11.25, WEBHOOK_POLL_CAP, WEBHOOK_POLL_CAP]
        assert [w[2] for w in inbox.waits] == gaps(status.times)

    async def test_a_longer_poll_interval_is_kept(self, clock: FakeClock) -> None:
        """A vendor poll interval longer than WEBHOOK_FIRST_POLL is the first wait."""
        schedule = PollSchedule(first=8.0).for_webhook()
        assert (schedule.first, schedule.cap) == (8.0, WEBHOOK_POLL_CAP)

    async def test_a_delivery_still_running_goes_on_polling(self, clock: FakeClock) -> None:
        """A delivery read as running does not end the wait: the status is polled at once."""
        status = Script(clock, FINISHED)
        assert await by_webhook(clock, status, Inbox(clock, 1.0, RUN)) == "image"
        assert status.times == [1.0]

    async def test_a_vendor_reads_its_own_deliveries(self, clock: FakeClock) -> None:
        """delivered= reads a delivery of another shape than a status answer."""
        seen: list[Mapping[str, Any]] = []

        async def delivered(payload: Mapping[str, Any]) -> str | None:
            seen.append(payload)
            return "from the hook" if payload.get("ok") else None

        inbox = Inbox(clock, 1.0, {"ok": True})
        found = await by_webhook(clock, Script(clock, RUN), inbox, delivered=delivered)
        assert found == "from the hook"
        assert seen == [{"ok": True}]


@pytest.mark.anyio
class TestFetchResult:
    async def test_the_first_request_goes_at_once(self, clock: FakeClock) -> None:
        """fetch_result asks without waiting and returns the answer as it is."""
        get = Script(clock, {"output": "x"})
        answer = await fetch_result(
            context(clock), get, PollSchedule(first=1.0), provider="p", work_id="w", late="late"
        )
        assert answer == {"output": "x"}
        assert get.times == [0.0]

    async def test_failures_are_retried_like_polls(self, clock: FakeClock) -> None:
        """Transient failures of the result request are retried on the schedule."""
        busy = ProviderUnavailable("busy", status=502)
        get = Script(clock, busy, busy, {"output": "x"})
        await fetch_result(
            context(clock), get, PollSchedule(first=1.0), provider="p", work_id="w", late="late"
        )
        assert get.times == [0.0, 1.0, 2.5]

    async def test_no_answer_by_the_deadline(self, clock: FakeClock) -> None:
        """A result request still failing at the deadline raises the late message."""
        get = Script(clock, ProviderUnavailable("busy", status=502))
        with pytest.raises(ProviderTimeout, match="no result in time") as info:
            await fetch_result(
                context(clock, 2.0),
                get,
                PollSchedule(first=1.0),
                provider="p",
                work_id="w",
                late="no result in time",
            )
        assert not info.value.retryable


class Vendor(HTTPProvider):
    """A queue vendor for submit_work: it records what it was asked to cancel."""

    name = "vendor"
    default_base_url = "https://api.vendor.example"

    def __init__(self) -> None:
        super().__init__(api_key="k-0123456789")
        self.cancelled: list[object] = []

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        raise NotImplementedError

    async def cancel(self, handle: object, ctx: ProviderContext) -> None:
        self.cancelled.append(handle)


def job_id(answer: Answer) -> str:
    """The handle of the test vendor's create answer."""
    if not isinstance(answer.get("id"), str):
        raise ProviderError("no id", provider="vendor", retryable=False)
    return str(answer["id"])


@pytest.mark.anyio
class TestSubmit:
    async def test_the_handle_is_reported(self, clock: FakeClock) -> None:
        """The create's handle is reported with ctx.started and returned with the answer."""
        started: list[object] = []
        ctx = ProviderContext(deadline=30, clock=clock, on_started=started.append)

        async def send() -> httpx.Response:
            return httpx.Response(201, json={"id": "j1", "status": "queued"})

        handle, answer = await submit_work(Vendor(), ctx, send, job_id)
        assert (handle, answer, started) == ("j1", {"id": "j1", "status": "queued"}, ["j1"])

    @pytest.mark.parametrize("content", [b'{"status": "queued"}', b"<html>"])
    async def test_no_handle_reports_nothing(self, clock: FakeClock, content: bytes) -> None:
        """An answer without a handle raises unretried, and nothing is reported."""
        started: list[object] = []
        ctx = ProviderContext(deadline=30, clock=clock, on_started=started.append)

        async def send() -> httpx.Response:
            return httpx.Response(201, content=content)

        with pytest.raises(ProviderError) as info:
            await submit_work(Vendor(), ctx, send, job_id)
        assert not info.value.retryable
        assert started == []

    @pytest.mark.parametrize(
        ("answer", "cancelled"),
        [({"id": "j1"}, ["j1"]), ({"status": "queued"}, []), ([1], [])],
        ids=["handle", "no-handle", "not-an-object"],
    )
    async def test_an_abandoned_create_is_undone(
        self, clock: FakeClock, answer: Any, cancelled: list[object]
    ) -> None:
        """A create still in flight when the attempt is abandoned is cancelled once answered."""
        vendor = Vendor()
        started: list[object] = []

        async def send() -> httpx.Response:
            await clock.sleep(2.0)
            return httpx.Response(201, json=answer)

        async with anyio.create_task_group() as tg:
            ctx = ProviderContext(
                deadline=30,
                clock=clock,
                on_started=started.append,
                spawn=tg.start_soon,
            )
            with clock.deadline_scope(1.0):
                await submit_work(vendor, ctx, send, job_id)
        assert vendor.cancelled == cancelled
        assert started == []


# -- recipes: the vendors _polling's docstring describes, in a few lines each ----------


class PollingUrlVendor(HTTPProvider):
    """Submit answers {"id", "polling_url"}; the polling URL answers the status and result."""

    name = "bfl-like"
    default_base_url = "https://api.bfl.example/v1"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        def handle(answer: Answer) -> tuple[str, str]:
            url = same_origin(answer.get("polling_url"), self.base_url)
            if not isinstance(answer.get("id"), str) or url is None:
                raise ProviderError("no task", provider=self.name, retryable=False)
            return answer["id"], url

        (task, url), _ = await submit_work(
            self,
            ctx,
            lambda: self.request(ctx, "POST", "flux", json={"prompt": request.prompt}, create=True),
            handle,
        )

        def progress(answer: Answer) -> Progress:
            if answer.get("status") == "Ready":
                return DONE
            if answer.get("status") in ("Error", "Content Moderated"):
                raise ContentRejected(str(answer["status"]), provider=self.name)
            return RUNNING

        async def image(answer: Answer) -> ProviderImage:
            return ProviderImage(url=answer["result"]["sample"], handle=task)

        async def status() -> Answer:
            return self.json_object(await self.request(ctx, "GET", url))

        late = f"task {task} was not done by the deadline"
        work = RemoteWork(
            provider=self.name, id=task, late=late, status=status, read=progress, result=image
        )
        return await wait_for_work(ctx, work, PollSchedule(first=0.5))


class OperationVendor(HTTPProvider):
    """Create answers an operation name; GET {name} until done, then response or error."""

    name = "ops-like"
    default_base_url = "https://ops.example/v1"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        def name_of(answer: Answer) -> str:
            return str(answer["name"])

        name, _ = await submit_work(
            self,
            ctx,
            lambda: self.request(ctx, "POST", "predict", json={"prompt": "x"}, create=True),
            name_of,
        )

        def progress(answer: Answer) -> Progress:
            if "error" in answer:
                raise ProviderError(answer["error"]["message"], provider=self.name)
            return DONE if answer.get("done") else RUNNING

        async def image(answer: Answer) -> ProviderImage:
            return ProviderImage(url=answer["response"]["uri"], handle=name)

        async def status() -> Answer:
            return self.json_object(await self.request(ctx, "GET", name))

        work = RemoteWork(
            provider=self.name, id=name, late="late", status=status, read=progress, result=image
        )
        return await wait_for_work(ctx, work, PollSchedule(first=1.0))


@pytest.mark.anyio
class TestRecipes:
    async def test_submit_then_poll_a_returned_url(self, clock: FakeClock) -> None:
        """A BFL-style vendor: the polling URL the submit returned is polled to Ready."""
        polling = "https://api.bfl.example/v1/get_result?id=t1"
        async with session(clock) as (mock, ctx, started):
            mock.post("https://api.bfl.example/v1/flux").respond(
                200, json={"id": "t1", "polling_url": polling}
            )
            poll = mock.get(polling).mock(
                side_effect=[
                    httpx.Response(200, json={"status": "Pending"}),
                    httpx.Response(
                        200, json={"status": "Ready", "result": {"sample": "https://cdn/x.png"}}
                    ),
                ]
            )
            image = await PollingUrlVendor(api_key="k").generate(ImageRequest(prompt="x"), ctx)
        assert started == [("t1", polling)]
        assert poll.call_count == 2
        assert (image.url, image.handle) == ("https://cdn/x.png", "t1")

    async def test_a_polling_url_on_another_host_is_refused(self, clock: FakeClock) -> None:
        """The key is never sent to a polling URL off the configured host."""
        async with session(clock) as (mock, ctx, started):
            mock.post("https://api.bfl.example/v1/flux").respond(
                200, json={"id": "t1", "polling_url": "https://evil.example/steal"}
            )
            with pytest.raises(ProviderError, match="no task"):
                await PollingUrlVendor(api_key="k").generate(ImageRequest(prompt="x"), ctx)
        assert started == []

    async def test_a_long_running_operation(self, clock: FakeClock) -> None:
        """A Google-operations-style vendor: the operation is polled until done."""
        name = "projects/p/operations/42"
        async with session(clock) as (mock, ctx, started):
            mock.post("https://ops.example/v1/predict").respond(200, json={"name": name})
            operation = mock.get(f"https://ops.example/v1/{name}").mock(
                side_effect=[
                    httpx.Response(200, json={"name": name}),
                    httpx.Response(
                        200, json={"name": name, "done": True, "response": {"uri": "https://o/y"}}
                    ),
                ]
            )
            image = await OperationVendor(api_key="k").generate(ImageRequest(prompt="x"), ctx)
        assert started == [name]
        assert operation.call_count == 2
        assert image.url == "https://o/y"

    async def test_a_failed_operation(self, clock: FakeClock) -> None:
        """An operation done with an error raises the vendor's error."""
        name = "projects/p/operations/43"
        async with session(clock) as (mock, ctx, _):
            mock.post("https://ops.example/v1/predict").respond(200, json={"name": name})
            mock.get(f"https://ops.example/v1/{name}").respond(
                200, json={"name": name, "done": True, "error": {"message": "quota"}}
            )
            with pytest.raises(ProviderError, match="quota"):
                await OperationVendor(api_key="k").generate(ImageRequest(prompt="x"), ctx)
