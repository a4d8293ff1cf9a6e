"""Race, Hedge and Fallback over three providers with heavy-tailed latency, on the emulator.

Run: python -m benchmarks.strategies [--images N] [--rate R] [--scale S] [--quick]

Three OpenAI-compatible emulator instances (``a``, ``b``, ``c``, in a separate
process) each take ``LogNormal(median=2 s, sigma=1)`` per image, scaled by ``S``
(0.1: a 200 ms median). Draws are keyed by prompt, so every strategy, and
LiteLLM, meets exactly the same latency triple for image ``i``. Two lower bounds
come from the same draws: the oracle (the fastest of the three, with no overhead
at all) and a clairvoyant client (raw httpx sending each image only to the
provider that will be fastest for it, then downloading it: the oracle plus the
unavoidable cost of one call and one download, measured in the same run).

Each run first makes 30 warm-up images (so Hedge has learned a delay, and
connections are open), then resets the emulator's counters and makes N images,
started at Poisson arrivals of R per second (an open loop: the same arrival times
for every run, whatever its latency). "Billed" is what the emulator counted: every create
that made an image, including the losers a race cancels (OpenAI-style APIs have
no cancel: a dropped request was still paid for).

imagegen: ``ImageGenerator(providers=[a, b, c], strategy=...)`` with its
defaults otherwise, MemoryStorage, and the image downloaded. LiteLLM:
``Router.aimage_generation`` then the URL downloaded with httpx; "default" is
three model groups with ``fallbacks=[{"a": ["b", "c"]}]`` and nothing else;
"timeout" adds ``timeout`` = the single-provider p90 (the delay Hedge learns) and
``num_retries=0``, so a slow call is abandoned for the next group: the nearest
thing to hedging LiteLLM offers.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import anyio

from imagegen import Fallback, Hedge, ImageGenerator, MemoryStorage, Race, Selection

from . import _report, hedge_bound
from .emulator import EmulatorProcess, LogNormal, ProviderProfile

NAMES = ("a", "b", "c")
MEDIAN, SIGMA = 2.0, 1.0
WARMUP = 30


def profiles(scale: float) -> dict[str, ProviderProfile]:
    """Three alike providers, each with its own draws."""
    latency = LogNormal(median=MEDIAN, sigma=SIGMA, scale=scale)
    return {name: ProviderProfile(api="openai", latency=latency, seed=7) for name in NAMES}


def prompt(i: int) -> str:
    """Image ``i``'s prompt: its key for the emulator's draws."""
    return f"strategy bench {i}"


async def _measure(
    emu: EmulatorProcess, call: Any, images: int, rate: float, label: str
) -> dict[str, Any]:
    await _report.open_loop(lambda i: call(f"warm-up {label} {i}"), range(WARMUP), rate=rate)
    emu.reset()
    times = await _report.open_loop(lambda i: call(prompt(i)), range(images), rate=rate)
    stats = emu.all_stats()
    return {
        "label": label,
        "times": times,
        "billed": sum(s.billed for s in stats.values()) / images,
        "dropped": sum(s.disconnects for s in stats.values()) / images,
    }


async def run(
    images: int, rate: float, scale: float, with_litellm: bool
) -> tuple[list[dict[str, Any]], dict[str, list[float]], float]:
    """Each strategy's per-image seconds and billed calls; the oracle's; Hedge's p90."""
    results = []
    with EmulatorProcess(profiles(scale)) as emu:
        oracle = [min(emu.draw(n, prompt(i)).latency for n in NAMES) for i in range(images)]
        single = [emu.draw("a", prompt(i)).latency for i in range(images)]
        # The true quantiles of one provider's latency, from the distribution itself: what
        # Hedge learns, and what a fixed-delay hedge that knew them would use.
        cuts = statistics.quantiles(
            [emu.draw("a", f"p90 {i}").latency for i in range(20_000)], n=20
        )
        p85, p90 = cuts[16], cuts[17]
        strategies: list[tuple[str, Selection]] = [
            ("Race", Race()),
            ("Hedge (default: learned p90, budget 0.1)", Hedge()),
            ("Hedge (fixed: true p90, budget 0.1)", Hedge(delay=p90, budget=0.1)),
            ("Hedge (learned p85, budget 0.2)", Hedge(quantile=0.85, budget=0.2)),
            ("Hedge (fixed: true p85, budget 0.2)", Hedge(delay=p85, budget=0.2)),
            ("Fallback", Fallback()),
        ]
        async with _report.http_client() as http:
            best = {
                prompt(i): min(NAMES, key=lambda n, i=i: emu.draw(n, prompt(i)).latency)
                for i in range(images)
            }

            async def clairvoyant(text: str) -> object:
                name = best.get(text, "a")
                answer = await http.post(
                    f"{emu.base_url(name)}/images/generations",
                    json={"model": "flux-schnell", "prompt": text, "n": 1, "size": "1024x1024"},
                    headers={"Authorization": "Bearer sk-emulator"},
                )
                image = await http.get(answer.raise_for_status().json()["data"][0]["url"])
                return image.raise_for_status().content

            result = await _measure(emu, clairvoyant, images, rate, "clairvoyant raw httpx")
            results.append(result)
            _progress(result)
            for label, strategy in strategies:
                async with ImageGenerator(
                    providers=[emu.provider(n, model="flux-schnell") for n in NAMES],
                    strategy=strategy,
                    storage=MemoryStorage(),
                    download=_report.EMULATOR_DOWNLOADS,
                    http=http,
                ) as gen:
                    result = await _measure(emu, gen.generate, images, rate, label)
                if isinstance(strategy, Hedge):
                    result["budget"] = strategy.budget
                results.append(result)
                _progress(result)
            if with_litellm:
                litellm = _report.litellm()
                groups = [_report.deployment(n, emu.base_url(n)) for n in NAMES]
                fallbacks = [{"a": ["b", "c"]}]
                routers = [
                    ("LiteLLM default", litellm.Router(model_list=groups, fallbacks=fallbacks)),
                    (
                        f"LiteLLM timeout={p90 * 1000:.0f} ms",
                        litellm.Router(
                            model_list=groups, fallbacks=fallbacks, timeout=p90, num_retries=0
                        ),
                    ),
                ]
                for label, router in routers:

                    async def call(text: str, router: Any = router) -> object:
                        answer = await router.aimage_generation(model="a", prompt=text)
                        image = await http.get(answer.data[0].url)
                        return image.raise_for_status().content

                    result = await _measure(emu, call, images, rate, label)
                    result["settings"] = _report.router_settings(router)
                    results.append(result)
                    _progress(result)
    return results, {"oracle": oracle, "single": single}, p90


def _progress(result: dict[str, Any]) -> None:
    times = result["times"]
    print(
        f"  {result['label']}: p50 {_report.ms(_report.percentile(times, 50))} ms, "
        f"p99 {_report.ms(_report.percentile(times, 99))} ms, "
        f"{result['billed']:.2f} billed/image",
        flush=True,
    )


def report(results: list[dict[str, Any]], oracles: dict[str, list[float]], p90: float) -> None:
    """The table and docs/img/strategies.png."""
    oracle_p99 = _report.percentile(oracles["oracle"], 99)
    race = next(r for r in results if r["label"] == "Race")
    race_p99 = _report.percentile(race["times"], 99)
    seer = next(r for r in results if r["label"].startswith("clairvoyant"))
    seer_p99 = _report.percentile(seer["times"], 99)
    # The best p99 any hedging policy can reach at a budget, as a multiple of Race's
    # (hedge_bound's arithmetic on this latency model); a measured ratio over it is how
    # far a Hedge run is from the best possible at its own budget.
    race_model = hedge_bound.race_p99(SIGMA, len(NAMES))
    best_ratio = {
        budget: hedge_bound.best_hedge_p99(SIGMA, budget, len(NAMES))[0] / race_model
        for budget in {r["budget"] for r in results if "budget" in r}
    }
    rows: list[list[object]] = [
        [
            "oracle: fastest of three, no overhead",
            _report.ms(_report.percentile(oracles["oracle"], 50)),
            _report.ms(_report.percentile(oracles["oracle"], 90)),
            _report.ms(oracle_p99),
            "1 (known in advance)",
            "1.00",
            f"{oracle_p99 / seer_p99:.2f}",
            "-",
            "-",
        ],
        [
            "one provider, no overhead",
            _report.ms(_report.percentile(oracles["single"], 50)),
            _report.ms(_report.percentile(oracles["single"], 90)),
            _report.ms(_report.percentile(oracles["single"], 99)),
            "1",
            f"{_report.percentile(oracles['single'], 99) / oracle_p99:.2f}",
            f"{_report.percentile(oracles['single'], 99) / seer_p99:.2f}",
            "-",
            "-",
        ],
    ]
    for r in results:
        p99 = _report.percentile(r["times"], 99)
        rows.append(
            [
                r["label"],
                _report.ms(_report.percentile(r["times"], 50)),
                _report.ms(_report.percentile(r["times"], 90)),
                _report.ms(p99),
                f"{r['billed']:.2f}",
                f"{p99 / oracle_p99:.2f}",
                f"{p99 / seer_p99:.2f}",
                f"{p99 / race_p99:.2f}",
                f"{p99 / race_p99 / best_ratio[r['budget']]:.2f}" if "budget" in r else "-",
            ]
        )
    headers = ["strategy", "p50 ms", "p90 ms", "p99 ms", "billed calls/image"]
    _report.table(
        [*headers, "p99 ÷ oracle", "p99 ÷ clairvoyant", "p99 ÷ Race", "÷ Race ÷ best hedge"],
        rows,
        title=f"Strategies (single-provider p90 = {p90 * 1000:.0f} ms)",
    )
    plt = _report.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    qs = [q / 2 for q in range(200)]
    curves = [("oracle (min of 3)", oracles["oracle"]), ("one provider", oracles["single"])]
    curves += [(r["label"], r["times"]) for r in results]
    for label, times in curves:
        style = ":" if label.startswith(("oracle", "one provider")) else "-"
        left.plot(qs, [_report.percentile(times, q) * 1000 for q in qs], style, label=label)
    left.set_yscale("log")
    left.set_xlabel("percentile")
    left.set_ylabel("time to image, ms (log)")
    left.set_title("latency by percentile")
    left.legend(fontsize=7)
    markers = "osD^vP*X"
    for k, r in enumerate(results):
        p99 = _report.percentile(r["times"], 99) * 1000
        right.scatter(r["billed"], p99, marker=markers[k % len(markers)], s=50, label=r["label"])
    right.axhline(oracle_p99 * 1000, linestyle=":", color="grey", label="oracle p99")
    right.legend(fontsize=7)
    right.set_xlabel("billed calls per image")
    right.set_ylabel("p99, ms")
    right.set_title("tail latency against cost")
    _report.save(fig, "strategies")


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--rate", type=float, default=40.0, help="images started per second")
    parser.add_argument("--scale", type=float, default=0.1, help="time scale (0.1: 2 s->200 ms)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 60 images")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        _report.scratch_plots()
    images = 60 if args.quick else args.images
    print(
        f"{_report.machine()}\n{images} images, Poisson arrivals at {args.rate:g}/s, "
        f"LogNormal(median={MEDIAN} s, sigma={SIGMA}) x {args.scale}, asyncio\n",
        flush=True,
    )
    report(*anyio.run(run, images, args.rate, args.scale, not args.no_litellm))


if __name__ == "__main__":
    main()
