"""One provider's part in one generation: its tries, their bookkeeping, and its clean-up.

The retry loop is :meth:`Retry.run`'s; the breaker is asked between tries and told
every outcome; a call that may have created billable work is never retried (a
retry would create, and bill, a second one) and its work is cancelled when the
attempt does not use it. An image is handed on (``on_output``) the moment it is in
hand, before the bookkeeping, so a deadline that cuts the bookkeeping short (a slow
state backend) cannot lose it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs

from ._cancel import is_cancellation
from ._cost import call_cost
from ._errors import (
    ImageGenError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    with_fields,
)
from ._generation import Generation
from ._models import Attempt, AttemptOutcome, add_cost
from ._output import Output, call_provider
from ._previews import preview_sink
from ._runtime import Runtime
from .providers import Provider, ProviderContext
from .strategies import ProviderBreaker, Retry

__all__ = ["ProviderAttempt"]

logger = logging.getLogger("imagegen")


def _named(error: ImageGenError, provider: str) -> ImageGenError:
    """``error`` naming ``provider`` when the provider left its name out."""
    if isinstance(error, ProviderError) and error.provider is None:
        return with_fields(error, provider=provider)
    return error


@attrs.define(kw_only=True, eq=False)
class ProviderAttempt:
    """Call one provider, retried per ``retry``, until ``deadline``; :meth:`run` it once.

    Args:
        rt: The generator's services.
        gen: The generation it serves (its attempts list gets this attempt).
        provider: Who to call.
        retry: The retry policy.
        breaker: The provider's breaker.
        deadline: When the attempt must end (its stage's share of the time).
        on_lost: Told the seconds a call had run when another provider won.
        on_output: Given the provider's image as soon as it is in hand.
    """

    rt: Runtime
    gen: Generation
    provider: Provider
    retry: Retry
    breaker: ProviderBreaker
    deadline: float
    on_lost: Callable[[float], None]
    on_output: Callable[[Output], None]
    _output: Output | None = None
    _tries: int = 0
    _billed: int = 0  # tries of a paid provider that made an image or remote work
    _cost: float | None = 0.0  # USD of its tries so far; None once one is not known
    _in_flight: bool = False
    _waiting: bool = False  # for a call slot
    _ctx: ProviderContext | None = None
    _try_start: float = 0.0

    async def run(self) -> Output | None:
        """The provider's image, or None when it failed (the attempt records why)."""
        clock = self.rt.clock
        begun = clock.monotonic()
        try:
            output = await self.retry.run(
                self._try,
                clock=clock,
                deadline=self.deadline,
                before_sleep=self._retry_scheduled,
                after_sleep=self.breaker.allow,
            )
        except ImageGenError as error:
            await self._done("error", error, begun)
            return None
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            # Shielded from the cancellation that ended it, bounded by the generation's
            # last moment: the counters of a cut-off call are written, the deadline kept.
            with clock.deadline_scope(self.gen.last_moment) as cleanup:
                cleanup.shield = True
                await self._abandoned(begun)
            raise
        await self._done("success", None, begun)
        return output

    def _preview_sink(self) -> Callable[[bytes, int], Awaitable[None]] | None:
        gen = self.gen
        if gen.on_preview is None or not gen.previews:
            return None
        return preview_sink(gen.on_preview, gen.id, self.provider.name, gen.index)

    async def _try(self, _: int) -> Output:
        """One call: a slot, the call within its limit, then what it teaches."""
        rt, gen, provider = self.rt, self.gen, self.provider
        clock, name = rt.clock, provider.name
        self._waiting = True
        slot = await rt.slots.take(self.deadline)
        self._waiting = False
        if slot is None:
            raise rt.slots.exhausted(name)
        self._tries += 1
        output: Output | None = None
        error: ImageGenError | None = None
        try:
            start = self._try_start = clock.monotonic()
            limit = self.deadline
            if provider.timeout is not None:
                limit = min(limit, start + provider.timeout)
            ctx = self._ctx = rt.context(
                provider,
                deadline=limit,
                generation_id=gen.id,
                job_id=gen.job_id,
                spawn=True,
                inbox=True,
                previews=gen.previews,
                on_preview=self._preview_sink(),
            )
            await rt.events.emit("attempt_started", gen.id, name, {"try": self._tries})
            self._in_flight = True
            with clock.deadline_scope(limit) as scope, self.breaker.watching() as watch:
                try:
                    output = await call_provider(provider, gen.request, ctx, rt.download)
                except ImageGenError as exc:
                    error = exc
                except Exception as exc:
                    logger.exception(
                        "provider %s raised an unexpected %s", name, type(exc).__name__
                    )
                    error = ProviderError(
                        f"unexpected {type(exc).__name__} in provider (a bug; see the log)",
                        provider=name,
                        retryable=False,
                    )
            self._in_flight = False
        finally:
            rt.slots.free(slot)
        # Cut off with its create sent (its time up, or its breaker opened meanwhile), the
        # work may exist (billed) under an id we never learned; an error the provider
        # raised already says whether a retry is safe.
        cut = scope.cancelled_caught or watch.cancelled_caught
        lost_create = cut and ctx.create_sent
        # Billed as far as we know: a lost create may be billed too, but no one can tell.
        if provider.paid and (output is not None or ctx.handle is not None):
            self._billed += 1
        elapsed = clock.monotonic() - start
        if scope.cancelled_caught:
            error = ProviderTimeout(f"no answer within {elapsed:.2f}s", provider=name)
        elif watch.cancelled_caught:
            # Other calls failed and opened its breaker: no use waiting any longer.
            error = ProviderUnavailable(
                f"its circuit opened while this call waited ({elapsed:.2f}s)",
                provider=name,
                retryable=False,
            )
        cost = self._costs(ctx, output, error)
        if output is not None:
            self._output = output
            self.on_output(output)
            rt.latency[name].add(elapsed)
            await rt.records.count(
                name, "success", latency=elapsed, until=gen.last_moment, cost=cost, gen=gen
            )
            await self.breaker.record_success()
            return output
        assert error is not None  # noqa: S101 - one of output and error is set
        error = _named(error, name)
        if ctx.handle is not None or lost_create:
            # Billable work exists (or may): stop what we can, and never retry, since a
            # retry would create (and bill) a second one. The next provider answers.
            await rt.cancel_remote(provider, ctx)
            if isinstance(error, ProviderError) and error.retryable:
                error = with_fields(error, retryable=False)
        await rt.records.count(
            name, "failure", error_kind=error.kind, until=gen.last_moment, cost=cost, gen=gen
        )
        await self.breaker.record_failure(error)
        raise error

    def _costs(
        self, ctx: ProviderContext, output: Output | None, error: ImageGenError | None
    ) -> float | None:
        """What one try cost, added to the attempt's."""
        cost = call_cost(
            self.provider,
            self.gen.request,
            output=output,
            remote_work=ctx.handle is not None,
            create_sent=ctx.create_sent,
            error=error,
        )
        self._cost = add_cost(self._cost, cost)
        return cost

    async def _retry_scheduled(self, tries: int, delay: float, error: ImageGenError) -> None:
        await self.rt.events.emit(
            "retry_scheduled",
            self.gen.id,
            self.provider.name,
            {"try": tries, "delay": delay, "error": error.kind},
        )

    async def _abandoned(self, begun: float) -> None:
        """Cancelled: another provider won, the deadline passed, or the caller gave up."""
        rt, gen, provider = self.rt, self.gen, self.provider
        now = rt.clock.monotonic()
        ctx = self._ctx
        if self._output is not None:
            # Cut off in the bookkeeping after its image arrived: it still won.
            await self._done("success", None, begun)
            return
        if self._in_flight:
            if now < gen.stop:
                self.on_lost(now - self._try_start)
            if provider.paid and ctx is not None and ctx.handle is not None:
                self._billed += 1
            cost = self._costs(ctx, None, None) if ctx is not None else 0.0
            await rt.records.count(
                provider.name, "cancelled", until=gen.last_moment, cost=cost, gen=gen
            )
            if ctx is not None:
                await rt.cancel_remote(provider, ctx)
        if now >= gen.stop:
            timeout = (
                rt.slots.exhausted(provider.name)
                if self._waiting
                else ProviderTimeout("the generation's deadline passed", provider=provider.name)
            )
            await self._done("error", timeout, begun)
        else:
            await self._done("cancelled", None, begun)

    async def _done(
        self, outcome: AttemptOutcome, error: ImageGenError | None, begun: float
    ) -> None:
        rt, gen, name = self.rt, self.gen, self.provider.name
        attempt = Attempt(
            provider=name,
            outcome=outcome,
            error=error,
            elapsed=rt.clock.monotonic() - begun,
            tries=self._tries,
            cost=self._cost,
        )
        gen.attempts.append(attempt)
        if error is not None:
            logger.info("%s failed for generation %s: %r", name, gen.id, error)
        await rt.events.emit(
            "attempt_finished",
            gen.id,
            name,
            {
                "outcome": outcome,
                "error": error.kind if error else None,
                "tries": self._tries,
                "elapsed": attempt.elapsed,
                "billed": self._billed,
                "cost": self._cost,
            },
        )
