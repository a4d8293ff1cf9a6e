"""Submit, then wait: the one submit/poll/webhook loop of every queue-style vendor.

A vendor whose API answers a create with "accepted, ask me later" needs the same
things every time: the create must not be lost if the attempt is abandoned while it
is in flight, the work must be reported with ``ctx.started`` (so the generator can
cancel it), and then it is waited for: by webhook, with polls as the safety net, or
by polls alone, at a growing interval, never past the deadline, riding out a short
outage of the status endpoint (the work is already billed: a failed poll must not
throw it away). Only the reading of the vendor's answers differs, and that is all a
vendor writes:

- :func:`submit_work`: the create request, and how to read a handle from its answer.
- :class:`RemoteWork`: how to ask for the status (``status``), what an answer says
  (``read``: :data:`RUNNING`, :data:`DONE`, a :class:`Progress` with a note to log, or
  raise the error of a failed answer), where the result of a done answer is
  (``result``), what a webhook delivery means (``delivered``, when it is not simply
  a status answer), and the message of the "not done by the deadline" error.
- :class:`PollSchedule`: the vendor's poll interval, growth and cap, and how many
  transient failures in a row it rides out.
- :func:`wait_for_work` runs the loop; :func:`fetch_result` is the same loop for one
  more GET once the work is done (a result URL).

Recipes:

- **Submit returns a polling URL** (Black Forest Labs: ``POST /v1/<model>`` answers
  ``{"id", "polling_url"}``; ``GET polling_url`` answers ``{"status": "Pending" |
  "Ready" | "Error" | ..., "result": {"sample": url}}``): ``handle`` checks the
  polling URL (:func:`~imagegen.providers._payloads.same_origin` against a
  configured host before the key goes there) and returns it with the id;
  ``status`` GETs it; ``read`` maps ``Ready`` to :data:`DONE`, ``Pending`` to
  :data:`RUNNING`, raises for ``Error`` and the moderation statuses; ``result``
  builds the image from ``result.sample``. About twenty lines.
- **Long-running operations** (Google Vertex AI ``predictLongRunning``: the create
  answers ``{"name": "projects/.../operations/<id>"}``; the operation is polled
  with ``fetchPredictOperation`` or ``GET {name}`` until ``"done": true``, then
  holds ``"response"`` or ``"error"``): ``handle`` returns ``name``; ``status``
  posts or gets it; ``read`` is :data:`DONE` when ``done`` is true (raise for
  ``error``), else :data:`RUNNING`; ``result`` reads ``response``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import httpx

from .._errors import ProviderError, ProviderTimeout
from ._base import WEBHOOK_FIRST_POLL, WEBHOOK_POLL_CAP, ProviderContext

if TYPE_CHECKING:
    from ._http import HTTPProvider

__all__ = [
    "DONE",
    "RUNNING",
    "PollSchedule",
    "Progress",
    "RemoteWork",
    "fetch_result",
    "submit_work",
    "wait_for_work",
]

_R = TypeVar("_R")
_H = TypeVar("_H")
Answer = dict[str, Any]


@attrs.frozen(kw_only=True)
class PollSchedule:
    """When one vendor's work is polled.

    The first poll comes ``first`` seconds after the submit; each wait is ``growth``
    times the one before, up to ``cap``, and never reaches past the deadline less
    ``margin`` (so the last poll can still be answered). Up to ``retries`` transient
    failures in a row are ridden out; a ``Retry-After`` on one stretches the next
    wait. With a webhook the polls are only the safety net: the first comes no
    sooner than ``WEBHOOK_FIRST_POLL`` and the cap is ``WEBHOOK_POLL_CAP``.

    Args:
        first: Seconds before the first poll (the vendor's poll interval).
        growth: Factor by which each wait grows.
        cap: The longest wait, seconds.
        retries: Transient failures in a row tolerated; 0 raises the first.
        margin: Seconds kept back before the deadline.
    """

    first: float
    growth: float = 1.5
    cap: float = 5.0
    retries: int = 3
    margin: float = 0.25

    def for_webhook(self) -> PollSchedule:
        """This schedule as the safety net of a webhook: a later first poll, a longer cap."""
        return attrs.evolve(self, first=max(self.first, WEBHOOK_FIRST_POLL), cap=WEBHOOK_POLL_CAP)


@attrs.frozen
class Progress:
    """What one status answer says: done, or still running.

    Args:
        done: The work has ended; its result (or its error) can be read.
        note: While running, something worth a debug line (a queue position, a
            status this code does not know and polls again).
    """

    done: bool = False
    note: str | None = None


#: A status answer of work that has ended.
DONE = Progress(done=True)
#: A status answer of work still queued or running.
RUNNING = Progress()


async def _same(answer: Answer) -> Answer:
    return answer


@attrs.frozen(kw_only=True)
class RemoteWork(Generic[_R]):
    """One piece of submitted work, and the vendor's pieces for following it.

    Args:
        provider: The provider's name, for errors and log lines.
        id: The vendor's id of the work: what ``ctx.webhook`` waits for.
        late: The message of the non-retryable :class:`~imagegen.ProviderTimeout`
            raised when the work is not done by the deadline.
        status: One status request; a ``ProviderError`` it raises counts as a
            failed poll (retried when it is retryable).
        read: What a status answer says (see :class:`Progress`); raise the error a
            failed answer stands for.
        result: The result of an answer ``read`` called done.
        delivered: What a final webhook delivery gives: the result, or None to go
            on polling. By default the delivery is read as a status answer.
    """

    provider: str
    id: str
    late: str
    status: Callable[[], Awaitable[Answer]]
    read: Callable[[Answer], Progress]
    result: Callable[[Answer], Awaitable[_R]]
    delivered: Callable[[Mapping[str, Any]], Awaitable[_R | None]] | None = None

    async def from_delivery(self, payload: Mapping[str, Any]) -> _R | None:
        """The result a webhook delivery gives, or None to go on polling."""
        if self.delivered is not None:
            return await self.delivered(payload)
        answer = dict(payload)
        return await self.result(answer) if self.read(answer).done else None


async def submit_work(
    provider: HTTPProvider,
    ctx: ProviderContext,
    send: Callable[[], Awaitable[httpx.Response]],
    handle: Callable[[Answer], _H],
) -> tuple[_H, Answer]:
    """Send a create, read its handle, report it with ``ctx.started``.

    ``send`` is the create request (``provider.request(..., create=True)``); it runs
    under ``ctx.protect_create``, so if the attempt is abandoned while it is in
    flight, the work it makes is cancelled (``provider.cancel``) once its answer
    is in. ``handle`` reads the handle from the answer's JSON object and raises a
    non-retryable ``ProviderError`` when there is none.

    Returns:
        The handle (already reported) and the answer.
    """

    async def undo(response: httpx.Response, undo_ctx: ProviderContext) -> None:
        try:
            made = handle(provider.json_object(response, create=True))
        except ProviderError:
            return  # no readable handle: nothing we can cancel
        undo_ctx.logger.info("%s: cancelling %r, made by an abandoned create", provider.name, made)
        await provider.cancel(made, undo_ctx)

    response = await ctx.protect_create(send, undo)
    answer = provider.json_object(response, create=True)
    made = handle(answer)
    ctx.started(made)
    return made, answer


async def wait_for_work(
    ctx: ProviderContext,
    work: RemoteWork[_R],
    schedule: PollSchedule,
    *,
    webhook: bool = False,
    at_once: bool = False,
) -> _R:
    """Wait for ``work`` to end, by webhook or polls, and return its result.

    Between polls it waits per ``schedule`` (with ``webhook``, on ``ctx.webhook``,
    whose delivery ends the wait, with ``schedule.for_webhook()``). Statuses
    ``read`` does not call done are polled again; their notes are logged at debug.
    ``at_once`` makes the first request without waiting (a result fetch).

    Raises:
        ProviderTimeout: Not done by the deadline (not retryable: the work exists).
        ProviderError: What ``read`` or ``result`` raised, a fatal failure of a
            poll, or the last of more than ``schedule.retries`` in a row.
    """
    if webhook:
        schedule = schedule.for_webhook()
    delay = wait = schedule.first
    failures = 0
    waited = not at_once
    while True:
        if waited:
            within = min(wait, ctx.remaining() - schedule.margin)
            if within <= 0:
                raise ProviderTimeout(work.late, provider=work.provider, retryable=False)
            if webhook:
                payload = await ctx.webhook(work.id, within=within)
                found = None if payload is None else await work.from_delivery(payload)
                if found is not None:
                    return found
            else:
                await ctx.clock.sleep(within)
            delay = min(delay * schedule.growth, schedule.cap)
            wait = delay
        waited = True
        try:
            answer = await work.status()
        except ProviderError as exc:
            failures += 1
            # Raising ends the attempt, and the work is already billed: ride out a
            # short outage instead.
            if not exc.retryable or failures > schedule.retries:
                raise
            ctx.logger.info("%s: retrying a poll of %s after %r", work.provider, work.id, exc)
            if exc.retry_after is not None:
                wait = max(wait, exc.retry_after)
            continue
        failures = 0
        progress = work.read(answer)
        if progress.done:
            return await work.result(answer)
        if progress.note is not None:
            ctx.logger.debug("%s %s %s", work.provider, work.id, progress.note)


async def fetch_result(
    ctx: ProviderContext,
    get: Callable[[], Awaitable[Answer]],
    schedule: PollSchedule,
    *,
    provider: str,
    work_id: str,
    late: str,
) -> Answer:
    """One more request for done work (its result URL), retried like a poll.

    Raises:
        ProviderTimeout: No answer by the deadline (not retryable).
        ProviderError: A fatal failure, or the last of more than ``schedule.retries``.
    """
    work = RemoteWork(
        provider=provider,
        id=work_id,
        late=late,
        status=get,
        read=lambda _: DONE,
        result=_same,
    )
    return await wait_for_work(ctx, work, schedule, at_once=True)
