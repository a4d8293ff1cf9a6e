"""How close any hedging policy can come to Race, given a budget of extra calls.

Run: python -m benchmarks.hedge_bound [--budget B] [--providers N]
     python -m benchmarks.hedge_bound --simulate [--seeds K] [--images N]

No emulator and no imagegen: arithmetic on the latency model of the strategies
benchmark (each provider's latency lognormal, independent, median 1 here since
only ratios matter). Race starts every provider at once, so its p99 is the p99
of the fastest of N draws. A hedging policy starts the first call and may start
more, each time only while every call so far is still running (the only thing a
client knows at that point), at most ``budget`` extra calls per image on average
(every call started is billed, as the issue states: "Race bills 3").

For a first call unanswered at time ``t`` the chance an image is still missing is
``S(t) * prod S(t - a_i)`` over the extras started at ``a_i < t``, with ``S`` the
survival function; a policy's p99 is the ``t`` where the average of that over its
random choices falls to 1%. The script searches three families and reports the best:

- one extra call at a fixed delay ``d`` (budget: ``S(d)``), and any random mix of
  two such delays (which covers every randomised one-extra policy: the chance of
  missing and the budget are both linear in the mix, so the best mix sits on
  two points);
- two extra calls at once at ``d`` (budget ``2 S(d)``);
- two extra calls staggered at ``d1 < d2`` (budget ``S(d1) + S(d2) S(d2 - d1)``).

It prints, per sigma, Race's p99, the best policy's p99 and their ratio. The
strategies benchmark also plays the best policy found (:func:`best_hedge`) on its own
draws with :func:`play`, which is the bound on the images it actually measured.

``--simulate`` asks how imagegen's ``Hedge`` itself does, on many draws rather than
the benchmark's one set: a discrete-event run of its delay, its ``HedgeBudget`` and
what it learns from lost calls (imagegen's own code, on a fake clock; no network, no
overhead), over ``K`` sets of ``N`` images at the strategies benchmark's arrivals and
latencies (set 7 is the benchmark's own draws), each compared with the best policy
played on the same draws.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import statistics
from collections.abc import Callable, Sequence
from statistics import NormalDist

import attrs

from imagegen import Hedge
from imagegen.strategies import HedgeBudget, LatencyWindow
from imagegen.testing import FakeClock

from . import _report

_Z = NormalDist()


def survival(sigma: float) -> Callable[[float], float]:
    """P(latency > t) for a lognormal of median 1 and shape ``sigma``."""

    def s(t: float) -> float:
        return 1.0 if t <= 0 else 1.0 - _Z.cdf(math.log(t) / sigma)

    return s


def quantile(sigma: float, q: float) -> float:
    """The ``q`` quantile of that lognormal."""
    return math.exp(sigma * _Z.inv_cdf(q))


def solve(missing: Callable[[float], float], low: float, high: float, target: float) -> float:
    """The smallest t in [low, high] with ``missing(t) <= target`` (decreasing), by bisection."""
    for _ in range(100):
        middle = math.sqrt(low * high)
        if missing(middle) <= target:
            high = middle
        else:
            low = middle
        if high / low < 1 + 1e-9:
            break
    return high


def race_p99(sigma: float, providers: int) -> float:
    """p99 of the fastest of ``providers`` draws: S(t)^N = 1%."""
    return quantile(sigma, 1 - 0.01 ** (1 / providers))


#: One way to hedge an image: with this weight, extra calls at these delays (median 1).
Branch = tuple[float, tuple[float, ...]]


@attrs.frozen
class Best:
    """The best policy found: its p99 (median 1), its description and its branches."""

    p99: float
    policy: str
    branches: tuple[Branch, ...]


def best_hedge_p99(sigma: float, budget: float, providers: int) -> tuple[float, str]:
    """The best p99 (and the policy) over the three families in the module docstring."""
    best = best_hedge(sigma, budget, providers)
    return best.p99, best.policy


def best_hedge(sigma: float, budget: float, providers: int) -> Best:
    """The best policy over the three families in the module docstring."""
    s = survival(sigma)
    high = quantile(sigma, 1 - 1e-9) * 10
    low = 1e-9
    # Delays worth trying: quantiles of one call from 1% to 99.9%.
    grid = [quantile(sigma, q / 1000) for q in range(10, 1000, 10)]
    best = Best(math.inf, "", ())

    def consider(p99: float, policy: str, *branches: Branch) -> None:
        nonlocal best
        if (p99, policy) < (best.p99, best.policy):
            best = Best(p99, policy, branches)

    # One extra at d, or a mix of two delays spending exactly the budget.
    for i, a1 in enumerate(grid):
        for a2 in grid[i:]:
            s1, s2 = s(a1), s(a2)
            if s1 <= budget:
                weight = 1.0
            elif s2 > budget or s1 == s2:
                continue
            else:
                weight = (budget - s2) / (s1 - s2)  # share of images hedged at a1

            def missing(t: float, a1: float = a1, a2: float = a2, w: float = weight) -> float:
                return s(t) * (w * s(t - a1) + (1 - w) * s(t - a2))

            label = (
                f"1 extra at the p{100 * (1 - s1):.0f} delay"
                if weight == 1.0
                else f"1 extra: {weight:.0%} of images at p{100 * (1 - s1):.0f}, "
                f"the rest at p{100 * (1 - s2):.0f}"
            )
            mix = ((weight, (a1,)), (1 - weight, (a2,))) if weight < 1 else ((1.0, (a1,)),)
            consider(solve(missing, low, high, 0.01), label, *mix)
            if weight == 1.0:
                break  # a later a2 cannot help once a1 alone fits the budget
    if providers >= 3:
        # Two extras at once at d, with 2 S(d) <= budget.
        d = quantile(sigma, 1 - budget / 2)
        consider(
            solve(lambda t: s(t) * s(t - d) ** 2, low, high, 0.01),
            f"2 extras at the p{100 * (1 - budget / 2):.0f} delay",
            (1.0, (d, d)),
        )
        # Two extras staggered at d1 < d2 within the budget.
        for d1 in grid:
            if s(d1) > budget:
                continue
            left = budget - s(d1)
            for d2 in grid:
                if d2 <= d1 or s(d2) * s(d2 - d1) > left:
                    continue

                def missing2(t: float, d1: float = d1, d2: float = d2) -> float:
                    return s(t) * s(t - d1) * s(t - d2)

                consider(
                    solve(missing2, low, high, 0.01),
                    f"extras at p{100 * (1 - s(d1)):.0f} and then at {d2 / d1:.2f}x that delay",
                    (1.0, (d1, d2)),
                )
                break  # the earliest d2 the budget allows is the best for this d1
    return best


def play(
    best: Best, draws: Sequence[Sequence[float]], median: float, seed: int = 1
) -> tuple[list[float], float]:
    """Each image's time under ``best`` on given draws, and its extra calls per image.

    ``draws[i]`` are image ``i``'s latencies on the providers in order (seconds), and
    ``median`` the unit of the policy's delays; a randomised policy picks each image's
    branch by its weight. No overhead, no budget to run out of: what the bound assumes.
    """
    rng = random.Random(seed)
    times, extras = [], 0
    for latencies in draws:
        pick, delays = rng.random(), best.branches[-1][1]
        for weight, branch in best.branches:
            if pick < weight:
                delays = branch
                break
            pick -= weight
        done = latencies[0]
        for k, delay in enumerate(delays[: len(latencies) - 1], start=1):
            start = delay * median
            if done <= start:
                break
            extras += 1
            done = min(done, start + latencies[k])
        times.append(done)
    return times, extras / max(1, len(draws))


# -- Hedge itself, simulated ------------------------------------------------------------------


def draw_sets(
    seed: int, images: int, median: float, sigma: float, prompt: str = "strategy bench"
) -> list[list[float]]:
    """The strategies benchmark's latencies for ``images`` images on providers a, b, c, as
    its emulator draws them with profile seed ``seed`` (7 is the benchmark's)."""

    def one(name: str, key: str) -> float:
        return median * math.exp(sigma * random.Random(f"{seed}:{name}:{key}:0").gauss(0, 1))

    return [[one(n, f"{prompt} {i}") for n in "abc"] for i in range(images)]


def simulate(
    hedge: Hedge, draws: Sequence[Sequence[float]], warmup: Sequence[Sequence[float]], rate: float
) -> tuple[list[float], float]:
    """Each image's time under ``hedge`` and its extra calls per image, no overhead.

    Images start at Poisson arrivals of ``rate`` per second (the benchmark's open loop),
    after the ``warmup`` images have all finished, as in the benchmark. A call's latency
    is learned when its image is done: the winner's, and each loser's time so far (what
    ``Hedge.lost`` counts). Extra calls start as ``Tier.run`` starts them: after the
    running provider's delay, if ``Hedge.may_hedge`` allows, else asked again one delay
    later.
    """
    clock = FakeClock()
    budget = HedgeBudget(clock)
    learned = [LatencyWindow() for _ in draws[0]]
    _phase(hedge, warmup, rate, clock, budget, learned)
    return _phase(hedge, draws, rate, clock, budget, learned)


def _phase(
    hedge: Hedge,
    draws: Sequence[Sequence[float]],
    rate: float,
    clock: FakeClock,
    budget: HedgeBudget,
    learned: list[LatencyWindow],
) -> tuple[list[float], float]:
    events: list[tuple[float, int, str, int, int]] = []  # when, order, what, image, provider
    order = itertools.count()
    arrivals = random.Random(1)
    due = clock.monotonic()
    for image in range(len(draws)):
        due += arrivals.expovariate(rate)
        heapq.heappush(events, (due, next(order), "arrive", image, 0))
    begun = [0.0] * len(draws)
    calls: list[dict[int, float]] = [{} for _ in draws]
    delay = [0.0] * len(draws)
    made = [0] * len(draws)
    times = [math.nan] * len(draws)

    def launch(image: int, provider: int, now: float) -> None:
        calls[image][provider] = now
        heapq.heappush(events, (now + draws[image][provider], next(order), "done", image, provider))
        if provider + 1 < len(draws[image]):
            wait = hedge.launch_delay(learned[provider])
            delay[image] = INITIAL_DELAY if wait is None else wait
            heapq.heappush(events, (now + delay[image], next(order), "ask", image, provider + 1))

    while events:
        now, _, what, image, provider = heapq.heappop(events)
        clock.advance(now - clock.monotonic())
        if what == "arrive":
            budget.record_generation(hedge.window)
            begun[image] = now
            launch(image, 0, now)
        elif not math.isnan(times[image]):
            continue  # already answered
        elif what == "ask" and hedge.may_hedge(budget, made[image], learned[provider - 1]):
            made[image] += 1
            launch(image, provider, now)
        elif what == "ask":
            heapq.heappush(events, (now + delay[image], next(order), "ask", image, provider))
        else:
            times[image] = now - begun[image]
            for called, started in calls[image].items():
                learned[called].add(now - started, answered=called == provider)
    return times, sum(made) / max(1, len(draws))


#: For the type checker only: without a limit, Hedge.launch_delay is never None.
INITIAL_DELAY = 2.0


def simulation(seeds: int, images: int, rate: float = 40.0, median: float = 0.2) -> None:
    """The table of ``--simulate``: Hedge settings over ``seeds`` sets of draws."""
    sigma = 1.0
    p85, p90 = quantile(sigma, 0.85) * median, quantile(sigma, 0.9) * median
    settings = [
        ("fixed: true p90, budget 0.1", Hedge(delay=p90)),
        ("default (learned p92, budget 0.1, burst 20)", Hedge()),
        ("learned p90, budget 0.1", Hedge(quantile=0.9)),
        ("learned p93, budget 0.1", Hedge(quantile=0.93)),
        ("learned p92, budget 0.1, burst 1", Hedge(burst=1)),
        ("learned p92, budget 0.1, burst 10", Hedge(burst=10)),
        ("fixed: true p85, budget 0.2", Hedge(delay=p85, budget=0.2)),
        ("learned p85, budget 0.2", Hedge(quantile=0.85, budget=0.2)),
    ]
    sets = [draw_sets(seed, images, median, sigma) for seed in range(seeds)]
    warm = [draw_sets(seed, 30, median, sigma, "warm-up") for seed in range(seeds)]
    bests = {b: best_hedge(sigma, b, 3) for b in (0.1, 0.2)}
    bound = {
        (b, k): _report.percentile(play(best, draws, median)[0], 99)
        for b, best in bests.items()
        for k, draws in enumerate(sets)
    }
    fixed: dict[float, list[float]] = {}
    rows = []
    for label, hedge in settings:
        ratios, extras = [], []
        for k, draws in enumerate(sets):
            times, extra = simulate(hedge, draws, warm[k], rate)
            ratios.append(_report.percentile(times, 99) / bound[hedge.budget, k])
            extras.append(extra)
        fixed.setdefault(hedge.budget, ratios)
        paired = [r / f for r, f in zip(ratios, fixed[hedge.budget], strict=True)]
        rows.append(
            [
                label,
                f"{statistics.mean(ratios):.3f}",
                f"{min(ratios):.2f} to {max(ratios):.2f}",
                f"{statistics.mean(paired):.3f}",
                f"{sum(p <= 1 for p in paired)}/{seeds}",
                f"{statistics.mean(extras):.3f}",
            ]
        )
    _report.table(
        [
            "Hedge",
            "p99 ÷ best, mean",
            "range",
            "÷ fixed, mean",
            "no worse than fixed",
            "extra/image",
        ],
        rows,
        title=(
            f"Hedge simulated on {seeds} sets of {images} images (lognormal sigma {sigma:g}, "
            f"median {median * 1000:.0f} ms, {rate:g}/s), p99 ÷ the best policy on the same draws"
        ),
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.2, help="extra calls per image")
    parser.add_argument("--providers", type=int, default=3)
    parser.add_argument("--simulate", action="store_true", help="imagegen's Hedge, simulated")
    parser.add_argument("--seeds", type=int, default=30, help="with --simulate: sets of draws")
    parser.add_argument("--images", type=int, default=500, help="with --simulate: per set")
    args = parser.parse_args(argv)
    if args.simulate:
        simulation(args.seeds, args.images)
        return
    rows = []
    for sigma in (0.1, 0.15, 0.25, 0.5, 1.0, 1.5, 2.0):
        race = race_p99(sigma, args.providers)
        single = quantile(sigma, 0.99)
        p99, policy = best_hedge_p99(sigma, args.budget, args.providers)
        rows.append(
            [
                f"{sigma:g}",
                f"{single:.2f}",
                f"{race:.2f}",
                f"{p99:.2f}",
                f"{p99 / race:.2f}",
                policy,
            ]
        )
    _report.table(
        [
            "sigma",
            "one provider p99",
            "Race p99",
            "best hedge p99",
            "÷ Race",
            "best policy found",
        ],
        rows,
        title=(
            f"Lognormal latency (median 1), {args.providers} providers, "
            f"<= {args.budget:g} extra calls per image"
        ),
    )


if __name__ == "__main__":
    main()
