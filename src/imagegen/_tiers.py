"""Tier by tier: ask each provider's breaker, hand the admitted ones to the selection.

Tiers go lowest first; the next is tried only when every provider of the one
before has failed. Each stage of the plan (a tier run as one, or one provider of
a chain) gets a fair share of the time left, so a slow provider cannot eat its
fallback's time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ._attempt import ProviderAttempt
from ._clock import Clock
from ._config import Config
from ._errors import CircuitOpen, ImageGenError, InvalidConfig, InvalidRequest
from ._generation import Generation
from ._models import Attempt
from ._output import Output
from ._runtime import Runtime
from .providers import Provider
from .strategies import HedgeBudget, LatencyWindow, Selection, Tier

__all__ = ["run_tiers"]

logger = logging.getLogger("imagegen")


class _TierRun(Tier):
    """The :class:`Tier` a selection gets: one tier of one generation."""

    def __init__(
        self,
        rt: Runtime,
        gen: Generation,
        config: Config,
        providers: Sequence[Provider],
        later_stages: int,
    ) -> None:
        self._rt = rt
        self._gen = gen
        self._config = config
        self._providers = tuple(providers)
        self._later = later_stages

    @property
    def providers(self) -> tuple[Provider, ...]:
        return self._providers

    @property
    def clock(self) -> Clock:
        return self._rt.clock

    @property
    def budget(self) -> HedgeBudget:
        return self._rt.budget

    def latency(self, provider: Provider) -> LatencyWindow:
        return self._rt.latency[provider.name]

    def share(self, stages: int = 1) -> float:
        now = self._rt.clock.monotonic()
        return now + max(0.0, self._gen.stop - now) / max(1, stages + self._later)

    async def attempt(self, provider: Provider, *, deadline: float) -> bool:
        if provider not in self._providers:
            raise InvalidConfig(
                f"{self._config.strategy!r} asked for {provider.name!r}, "
                "which is not a provider of this tier admitted by its breaker",
                field="strategy",
            )
        selection = self._config.strategy
        output = await ProviderAttempt(
            rt=self._rt,
            gen=self._gen,
            provider=provider,
            retry=self._config.retry,
            breaker=self._rt.breakers[provider.name],
            deadline=min(deadline, self._gen.stop),
            on_lost=lambda elapsed: selection.lost(self, provider, elapsed),
            on_output=self._take,
        ).run()
        return output is not None

    def _take(self, output: Output) -> None:
        """The first image in hand wins; it is the generation's from that moment."""
        if self._gen.output is None:
            self._gen.output = output


async def _run_tier(
    rt: Runtime, gen: Generation, config: Config, providers: Sequence[Provider], later: int
) -> Output | None:
    tier = _TierRun(rt, gen, config, providers, later)
    selection: Selection = config.strategy
    try:
        await selection.select(tier)
    except InvalidConfig:
        raise
    except Exception:
        # A bug in a user's selection must not cost the caller the default image.
        logger.exception("selection %r failed in generation %s", selection, gen.id)
    return gen.output


async def run_tiers(rt: Runtime, gen: Generation, config: Config) -> Output | None:
    """The first image any tier's selection gets, or None when every provider failed.

    The image is also ``gen.output`` from the moment it arrives (see ``_attempt``).
    """
    tiers = config.tiers()
    strategy = config.strategy
    stages_left = sum(strategy.stages(len(tier)) for tier in tiers)
    skipped: list[Provider] = []
    for tier in tiers:
        stages_left -= strategy.stages(len(tier))
        admitted = []
        for provider in tier:
            # Neither is a failure of the provider's: its breaker is not asked, nor told.
            refusal: ImageGenError | None = _refusal(provider, gen)
            if refusal is None and rt.spending.cap is not None:
                refusal = await rt.spending.refusal(provider, gen.request, config.providers)
            if refusal is not None:
                gen.attempts.append(
                    Attempt(provider=provider.name, outcome="skipped", error=refusal)
                )
            elif await rt.breakers[provider.name].allow():
                admitted.append(provider)
            else:
                skipped.append(provider)
                gen.attempts.append(
                    Attempt(
                        provider=provider.name,
                        outcome="skipped",
                        error=CircuitOpen(f"circuit open for {provider.name}"),
                    )
                )
        if admitted:
            output = await _run_tier(rt, gen, config, admitted, stages_left)
            if output is not None:
                return output
    if skipped and len(skipped) == len(gen.attempts):  # every one of them by its breaker
        return await _earliest_trial(rt, gen, config, skipped)
    return None


def _refusal(provider: Provider, gen: Generation) -> InvalidRequest | None:
    """Why ``provider`` cannot serve the request (an input image it cannot take...)."""
    cannot = provider.cannot_serve(gen.request)
    if cannot is None:
        return None
    field, why = cannot
    return InvalidRequest(f"{provider.name} {why}", field=field)


async def _earliest_trial(
    rt: Runtime, gen: Generation, config: Config, skipped: list[Provider]
) -> Output | None:
    """Every breaker is open: try the one whose trial comes first, if there is time."""
    trials = [(await rt.breakers[p.name].next_trial(), index, p) for index, p in enumerate(skipped)]
    timed = [(at, index, p) for at, index, p in trials if at is not None]
    if not timed:
        return None
    at, _, provider = min(timed)
    wait = max(0.0, at - rt.clock.time())
    if rt.clock.monotonic() + wait >= gen.stop:
        return None
    await rt.clock.sleep(wait)
    if not await rt.breakers[provider.name].allow():
        return None
    return await _run_tier(rt, gen, config, [provider], 0)
