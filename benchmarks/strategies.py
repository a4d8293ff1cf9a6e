"""Race, Hedge and Fallback over three providers with heavy-tailed latency, on the emulator.

Run: python -m benchmarks.strategies [--images N] [--rate R] [--scale S] [--quick]
     [--only TEXT ...] [--variants] [--no-litellm]

Three OpenAI-compatible emulator instances (``a``, ``b``, ``c``, in a separate
process) each take ``LogNormal(median=2 s, sigma=1)`` per image, scaled by ``S``
(0.1: a 200 ms median). Draws are keyed by prompt, so every strategy, and
LiteLLM, meets exactly the same latency triple for image ``i``. Two lower bounds
come from the same draws: the oracle (the fastest of the three, with no overhead
at all) and a clairvoyant client (raw httpx sending each image only to the
provider that will be fastest for it, then downloading it: the oracle plus the
unavoidable cost of one call and one download, measured in the same run).

Each run first makes the same 30 warm-up images (same prompts, so the same draws:
every Hedge learns its delay from the same samples, and connections are open),
then resets the emulator's counters and makes N images, started at Poisson
arrivals of R per second (an open loop: the same arrival times for every run,
whatever its latency). "Billed" is what the emulator counted: every create that
made an image, including the losers a race cancels (OpenAI-style APIs have no
cancel: a dropped request was still paid for).

The best any hedging policy can do at a budget is ``hedge_bound``'s arithmetic on
the latency model (a p99 over infinitely many images), and also that best policy
played on this run's own draws with no overhead and no budget to run out of (the
bound for the images measured: a p99 of 500 images rests on its five slowest).

imagegen: ``ImageGenerator(providers=[a, b, c], strategy=...)`` with its
defaults otherwise, MemoryStorage, and the image downloaded. LiteLLM:
``Router.aimage_generation`` then the URL downloaded with httpx; "default" is
three model groups with ``fallbacks=[{"a": ["b", "c"]}]`` and nothing else;
"timeout" adds ``timeout`` = the single-provider p90 (the delay Hedge learns) and
``num_retries=0``, so a slow call is abandoned for the next group: the nearest
thing to hedging LiteLLM offers.

``--only`` runs just the rows whose label holds one of the texts (the clairvoyant
client and Race always run: the ratios need them); ``--variants`` adds Hedge rows
with other settings (the quantile, the burst) for comparison in the same run.
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
    # The same warm-up draws for every run, so learned delays start from the same samples.
    await _report.open_loop(lambda i: call(f"warm-up {i}"), range(WARMUP), rate=rate)
    emu.reset()
    times = await _report.open_loop(lambda i: call(prompt(i)), range(images), rate=rate)
    stats = emu.all_stats()
    return {
        "label": label,
        "times": times,
        "billed": sum(s.billed for s in stats.values()) / images,
        "dropped": sum(s.disconnects for s in stats.values()) / images,
    }


def hedges(p85: float, p90: float, variants: bool) -> list[tuple[str, Selection]]:
    """The Hedge rows: the default, the fixed true quantiles, and the variants if asked."""
    default = Hedge()
    rows: list[tuple[str, Selection]] = [
        (
            f"Hedge (default: learned p{default.quantile * 100:g}, budget {default.budget:g})",
            default,
        ),
        ("Hedge (fixed: true p90, budget 0.1)", Hedge(delay=p90, budget=0.1)),
        ("Hedge (learned p85, budget 0.2)", Hedge(quantile=0.85, budget=0.2)),
        ("Hedge (fixed: true p85, budget 0.2)", Hedge(delay=p85, budget=0.2)),
    ]
    if variants:
        rows += [
            ("Hedge (learned p90, budget 0.1)", Hedge(quantile=0.9, budget=0.1)),
            ("Hedge (learned p92, budget 0.1, burst 1)", Hedge(quantile=0.92, burst=1)),
            ("Hedge (learned p92, budget 0.1, burst 10)", Hedge(quantile=0.92, burst=10)),
        ]
    return rows


async def run(
    images: int, rate: float, scale: float, with_litellm: bool, only: list[str], variants: bool
) -> tuple[list[dict[str, Any]], dict[str, list[float]], float]:
    """Each strategy's per-image seconds and billed calls; the oracle's; Hedge's p90."""
    results = []
    with EmulatorProcess(profiles(scale)) as emu:
        draws = [[emu.draw(n, prompt(i)).latency for n in NAMES] for i in range(images)]
        oracle = [min(d) for d in draws]
        single = [d[0] for d in draws]
        # The true quantiles of one provider's latency, from the distribution itself: what
        # Hedge learns, and what a fixed-delay hedge that knew them would use.
        cuts = statistics.quantiles(
            [emu.draw("a", f"p90 {i}").latency for i in range(20_000)], n=20
        )
        p85, p90 = cuts[16], cuts[17]
        strategies = [
            ("Race", Race()),
            *hedges(p85, p90, variants),
            ("Fallback", Fallback()),
        ]
        strategies = [(k, v) for k, v in strategies if k == "Race" or _wanted(k, only)]
        budgets = {s.budget for _, s in strategies if isinstance(s, Hedge)}
        results += [_best_on(draws, b, scale) for b in sorted(budgets)]
        async with _report.http_client() as http:
            fastest = {prompt(i): NAMES[d.index(min(d))] for i, d in enumerate(draws)}

            async def clairvoyant(text: str) -> object:
                name = fastest.get(text, "a")
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
            if with_litellm and _wanted("LiteLLM", only):
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


def _wanted(label: str, only: list[str]) -> bool:
    return not only or any(text in label for text in only)


def _best_on(draws: list[list[float]], budget: float, scale: float) -> dict[str, Any]:
    """The best policy at ``budget`` (hedge_bound's) played on these draws, no overhead."""
    best = hedge_bound.best_hedge(SIGMA, budget, len(NAMES))
    times, extras = hedge_bound.play(best, draws, MEDIAN * scale)
    result = {
        "label": f"best hedge at budget {budget:g}, these draws, no overhead",
        "times": times,
        "billed": 1 + extras,
        "budget": budget,
        "bound": True,
    }
    print(f"  ({best.policy})", end="")
    _progress(result)
    return result


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
    # far a Hedge run is from the best possible at its own budget. The best policy played
    # on this run's draws gives the same bound for the 500 images actually measured.
    race_model = hedge_bound.race_p99(SIGMA, len(NAMES))
    best_ratio = {
        budget: hedge_bound.best_hedge_p99(SIGMA, budget, len(NAMES))[0] / race_model
        for budget in {r["budget"] for r in results if "budget" in r}
    }
    best_here = {r["budget"]: _report.percentile(r["times"], 99) for r in results if r.get("bound")}

    def row(label: str, times: list[float], billed: str, budget: float | None) -> list[object]:
        p99 = _report.percentile(times, 99)
        return [
            label,
            _report.ms(_report.percentile(times, 50)),
            _report.ms(_report.percentile(times, 90)),
            _report.ms(p99),
            billed,
            f"{p99 / oracle_p99:.2f}",
            f"{p99 / seer_p99:.2f}",
            f"{p99 / race_p99:.2f}",
            "-" if budget is None else f"{p99 / race_p99 / best_ratio[budget]:.2f}",
            "-" if budget is None else f"{p99 / best_here[budget]:.2f}",
        ]

    rows = [
        row("oracle: fastest of three, no overhead", oracles["oracle"], "1 (known)", None),
        row("one provider, no overhead", oracles["single"], "1", None),
        *(row(r["label"], r["times"], f"{r['billed']:.2f}", r.get("budget")) for r in results),
    ]
    for cells in rows[:2]:
        cells[7] = "-"  # no overhead: not a measured run, Race is no reference for them
    headers = ["strategy", "p50 ms", "p90 ms", "p99 ms", "billed calls/image", "p99 ÷ oracle"]
    _report.table(
        [*headers, "p99 ÷ clairvoyant", "p99 ÷ Race", "÷ Race ÷ best hedge", "÷ best here"],
        rows,
        title=f"Strategies (single-provider p90 = {p90 * 1000:.0f} ms)",
    )
    plt = _report.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    colour = plt.get_cmap("tab20")
    qs = [q / 2 for q in range(200)]
    curves = [("oracle (min of 3)", oracles["oracle"]), ("one provider", oracles["single"])]
    curves += [(r["label"], r["times"]) for r in results]
    for k, (label, times) in enumerate(curves):
        style = ":" if label.startswith(("oracle", "one provider", "best")) else "-"
        left.plot(
            qs,
            [_report.percentile(times, q) * 1000 for q in qs],
            style,
            color=colour(k % 20),
            label=label,
        )
    left.set_yscale("log")
    left.set_xlabel("percentile")
    left.set_ylabel("time to image, ms (log)")
    left.set_title("latency by percentile")
    left.legend(fontsize=6, loc="upper left")
    markers = "osD^vP*X<>hp"
    for k, r in enumerate(results):
        right.scatter(
            r["billed"],
            _report.percentile(r["times"], 99) * 1000,
            marker=markers[k % len(markers)],
            color=colour((k + 2) % 20),
            s=50,
            label=r["label"],
        )
    right.axhline(oracle_p99 * 1000, linestyle=":", color="grey", label="oracle p99")
    right.legend(fontsize=6, loc="upper right")
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
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="TEXT", help="rows whose label holds a TEXT"
    )
    parser.add_argument("--variants", action="store_true", help="more Hedge settings")
    args = parser.parse_args(argv)
    if args.quick:
        _report.scratch_plots()
    images = 60 if args.quick else args.images
    print(
        f"{_report.machine()}\n{images} images, Poisson arrivals at {args.rate:g}/s, "
        f"LogNormal(median={MEDIAN} s, sigma={SIGMA}) x {args.scale}, asyncio\n",
        flush=True,
    )
    report(
        *anyio.run(
            run, images, args.rate, args.scale, not args.no_litellm, args.only, args.variants
        )
    )


if __name__ == "__main__":
    main()
