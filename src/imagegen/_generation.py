"""One generation in progress: its request, its times and the attempts made so far."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import attrs

from ._errors import AllProvidersFailed, CircuitOpen, ProviderTimeout
from ._models import Attempt, ImageResult
from ._output import Output
from ._previews import PreviewHandler
from ._request import MAX_SEED, ImageRequest

__all__ = ["FINAL_GRACE", "Generation", "PendingCounts"]

#: Seconds past the deadline the bookkeeping (the final record, the last counters) may
#: take when the state backend is slow; ``generate()`` returns by the deadline plus this.
FINAL_GRACE = 0.25
_QUEUED = "max_in_flight generations were running"


@attrs.define(eq=False)
class PendingCounts:
    """The counters of a generation's provider calls, held until its final record: both
    then go to the backend in one write (one SQLite transaction, one Redis round trip).
    Calls that end after that (a loser's clean-up) are counted on their own."""

    amounts: dict[str, int] = attrs.field(factory=dict)
    taken: bool = False

    def hold(self, amounts: Mapping[str, int]) -> bool:
        """Keep ``amounts`` for the final write; False once that write has them."""
        if self.taken:
            return False
        for key, amount in amounts.items():
            self.amounts[key] = self.amounts.get(key, 0) + amount
        return True

    def take(self) -> dict[str, int]:
        """Everything held, for the final write (each try at it gets the same: the
        backend adds them once per record); later calls count on their own."""
        self.taken = True
        return dict(self.amounts)


@attrs.define(kw_only=True, eq=False)
class Generation:
    """The mutable state of one ``generate()`` call, shared by the steps that serve it.

    ``stop`` comes before ``deadline``: providers stop by then, keeping time back
    for the default image and storing. ``output`` is the first provider image in
    hand (set the moment it arrives, so a deadline that cuts the bookkeeping after
    it cannot lose it), ``result`` the stored image once it exists. A request for
    ``n`` images runs ``n`` parts (:meth:`for_image`) at once; their attempts join
    this one's when they end.
    """

    id: str
    request: ImageRequest
    started: float
    deadline: float  # generate() returns by then
    stop: float  # providers stop by then
    created_at: dt.datetime
    job_id: str | None = None
    variant: str | None = None
    attempts: list[Attempt] = attrs.field(factory=list)
    output: Output | None = None
    result: ImageResult | None = None
    index: int = 0  # which of the request's n images this one makes
    queued: bool = False  # its turn (max_in_flight) came only after its providers' time
    previews: int = 0  # partial images each call asks for, for on_preview
    on_preview: PreviewHandler | None = None
    stored: list[str] = attrs.field(factory=list)  # keys put (or being put), for a take-back
    # Shared by the parts of an n-image generation (for_image keeps the same object).
    pending: PendingCounts = attrs.field(factory=PendingCounts)

    def for_image(self, index: int) -> Generation:
        """The part of this generation that makes image ``index`` of ``request.n``:
        the same id, request and times, attempts and output of its own. With a seed,
        image ``i`` is drawn with ``seed + i``: the same seed would make the same image."""
        request = self.request
        if request.seed is not None and index:
            request = attrs.evolve(request, seed=(request.seed + index) % (MAX_SEED + 1))
        return attrs.evolve(
            self, request=request, attempts=[], output=None, result=None, index=index
        )

    @property
    def last_moment(self) -> float:
        """The deadline plus the bookkeeping's grace: nothing of it waits longer."""
        return self.deadline + FINAL_GRACE

    def never_started(self, providers: Sequence[str]) -> None:
        """The deadline ran out before any of ``providers`` could be called (a timeout
        shorter than the bookkeeping before the first call): say so in the attempts."""
        why = (
            f"no turn came before its providers' time was up ({_QUEUED})"
            if self.queued
            else "the generation's deadline ran out before this provider could be called"
        )
        for name in providers:
            error = ProviderTimeout(
                why,
                provider=name,
                retryable=False,
            )
            self.attempts.append(Attempt(provider=name, outcome="skipped", error=error))

    def failure(self) -> AllProvidersFailed | CircuitOpen:
        """The error that says why no provider delivered, with the attempts."""
        attempts = tuple(self.attempts)
        summary = "; ".join(
            f"{a.provider}: {a.error.kind if a.error else a.outcome}" for a in attempts
        )
        if attempts and all(isinstance(a.error, CircuitOpen) for a in attempts):
            return CircuitOpen(
                f"every provider's circuit is open ({summary})",
                attempts=attempts,
                generation_id=self.id,
            )
        if attempts and all(a.outcome == "skipped" for a in attempts):
            if all(isinstance(a.error, ProviderTimeout) for a in attempts):
                why = (
                    "the deadline ran out before any provider could be called "
                    f"({self.deadline - self.started:g}s; {summary})"
                )
            else:  # none could take the request, or each was over its spending cap
                why = f"no provider could be called ({summary})"
            return AllProvidersFailed(why, attempts=attempts, generation_id=self.id)
        return AllProvidersFailed(
            f"all providers failed ({summary or 'none enabled'})",
            attempts=attempts,
            generation_id=self.id,
        )
