"""One named instance's state: its profile, draws, forced faults, jobs and counters."""

from __future__ import annotations

import random
from collections import Counter, deque
from typing import Any

import anyio
import attrs

from ._profiles import Draw, Fault, ProviderProfile, _pick
from ._stats import _COUNTERS, ProviderStats


@attrs.define
class _Job:
    id: str
    prompt: str
    fault: Fault | None
    latency: float
    created: float  # anyio.current_time()
    ready: float
    fmt: str
    input: dict[str, Any]
    model: str = ""
    seed: int = 0
    created_at: str = ""
    cancelled: bool = False


#: Faults whose work never makes an image.
_NO_OUTPUT = frozenset({Fault.FAILED, Fault.CONTENT_REJECTED, Fault.STALL})


class _Instance:
    def __init__(self, name: str, profile: ProviderProfile) -> None:
        self.name = name
        self.profile = profile
        self.forced: deque[Fault | None] = deque()
        self.seen: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.jobs: dict[str, _Job] = {}
        self.edits: list[dict[str, Any]] = []  # what each OpenAI edit carried
        self.other_draws = 0

    def reset(self) -> None:
        self.forced.clear()
        self.seen.clear()
        self.counts.clear()
        self.faults.clear()
        self.jobs.clear()
        self.edits.clear()
        self.other_draws = 0

    def draw(self, prompt: str) -> Draw:
        key = prompt if self.profile.keyed else ""
        n = self.seen.get(key, 0)
        self.seen[key] = n + 1
        result = self.profile.draw(self.name, key, n)
        if self.forced:
            result = attrs.evolve(result, fault=self.forced.popleft())
        if result.fault is not None:
            self.faults[result.fault.value] += 1
        return result

    def rng(self, purpose: str) -> random.Random:
        self.other_draws += 1
        return random.Random(f"{self.profile.seed}:{self.name}:{purpose}:{self.other_draws}")

    def poll_fault(self) -> Fault | None:
        if not self.profile.poll_faults:
            return None
        fault = _pick(self.profile.poll_faults, self.rng("poll").random())
        if fault is not None:
            self.faults[fault.value] += 1
        return fault

    def outputs(self) -> int:
        """Jobs that made their image: ready, not cancelled before, not failed or stalled.
        What a vendor that bills only outputs charges for (fal; Replicate's official
        models); a synchronous API's image is made whether its client waits or not."""
        try:
            now = anyio.current_time()
        except RuntimeError:  # read after the loop ended: every job had its time
            now = float("inf")
        return sum(
            1
            for job in self.jobs.values()
            if not job.cancelled and job.ready <= now and job.fault not in _NO_OUTPUT
        )

    def stats(self) -> ProviderStats:
        return ProviderStats(
            **{name: self.counts[name] for name in _COUNTERS},
            outputs=self.outputs(),
            faults=dict(self.faults),
        )
