"""Failover: a primary that hangs or refuses connections, with and without an open breaker.

Run: python -m benchmarks.failover [--images N] [--scale S] [--quick]

Two OpenAI-compatible emulator instances in a separate process: ``primary`` and
``backup``, each ``LogNormal(median=2 s, sigma=0.25)`` scaled by ``S`` (0.05: a
100 ms median). The primary then either hangs (every create is read and never
answered) or refuses connections (its URL is a closed port). Images are made one
at a time, so each figure is that image's time to first image; draws are keyed by
prompt, so the backup meets the same latency for image ``i`` in every run.

Every time setting is scaled by ``S`` too, so the run behaves like the real-time
configuration: ``ImageGenerator(strategy=Fallback(), timeout=30 s, retry=Retry()
defaults, breaker=CircuitBreaker() defaults)`` and a per-provider timeout of 10 s,
all multiplied by ``S``. "No breaker" raises ``failure_threshold`` out of reach.

LiteLLM ("default"): two model groups and ``fallbacks=[{"primary": ["backup"]}]``,
nothing else (its defaults: ``timeout`` 6000 s, ``num_retries`` 2, cooldown after
3 failures for 5 s). A default run that has not answered after a cap is cut off and
reported as "> cap". LiteLLM ("tuned"): both deployments in one model group with
``order`` 1 and 2 (so its cooldown, its breaker, applies: LiteLLM does not cool
down the only deployment of a group), ``timeout`` = the same 10 s x S,
``num_retries=1``, ``allowed_fails=1`` and ``cooldown_time`` = 30 s x S.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import anyio

from imagegen import (
    CircuitBreaker,
    Fallback,
    ImageGenerator,
    ImageResult,
    MemoryStorage,
    Provider,
    Retry,
)

from . import _report
from .emulator import EmulatorProcess, Fault, LogNormal, ProviderProfile, closed_port_url

FIRST = 5  # "first images": before any breaker or cooldown can have opened
STEADY = 20  # "steady state": from this image on


def profile(scale: float, **changes: Any) -> ProviderProfile:
    """One healthy provider's profile."""
    latency = LogNormal(median=2.0, sigma=0.25, scale=scale)
    return ProviderProfile(api="openai", latency=latency, seed=3, **changes)


def prompt(i: int) -> str:
    """Image ``i``'s prompt: its key for the emulator's draws."""
    return f"failover bench {i}"


async def _series(
    emu: EmulatorProcess, call: Any, images: int, cap: float | None = None
) -> list[float]:
    """Seconds per image, one at a time; a call still running at ``cap`` counts as inf."""
    emu.reset()
    times = []
    for i in range(images):
        start = anyio.current_time()
        with anyio.move_on_after(cap if cap is not None else float("inf")) as scope:
            await call(prompt(i))
        times.append(float("inf") if scope.cancelled_caught else anyio.current_time() - start)
    return times


async def run(images: int, scale: float, with_litellm: bool) -> dict[str, Any]:
    """Every series, by label."""
    out: dict[str, Any] = {"series": {}, "open": {}, "settings": {}}
    dead = f"{closed_port_url()}/v1"
    slow = max(8, images // 8)  # a full timeout per image: fewer of them
    with EmulatorProcess({"primary": profile(scale), "backup": profile(scale)}) as emu:
        async with _report.http_client() as http:

            def generator(providers: list[Provider], threshold: int = 5) -> ImageGenerator:
                return ImageGenerator(
                    providers=providers,
                    strategy=Fallback(),
                    retry=Retry(initial=0.5 * scale, maximum=8.0 * scale),
                    breaker=CircuitBreaker(
                        failure_threshold=threshold,
                        # "No breaker" (a threshold out of reach) turns off the in-a-row rule too.
                        consecutive_failures=None if threshold > 10**6 else 5,
                        window=60 * scale,
                        reset_timeout=30 * scale,
                    ),
                    timeout=30 * scale,
                    storage=MemoryStorage(),
                    download=_report.EMULATOR_DOWNLOADS,
                    http=http,
                    default_image=None,
                )

            def provider(name: str, **kwargs: Any) -> Provider:
                return emu.provider(name, model="flux-schnell", timeout=10 * scale, **kwargs)

            async def ours(label: str, gen: ImageGenerator, count: int) -> None:
                skipped: list[bool] = []

                async def call(text: str) -> None:
                    result: ImageResult = await gen.generate(text)
                    skipped.append(result.attempts[0].outcome == "skipped")

                async with gen:
                    out["series"][label] = await _series(emu, call, count)
                out["open"][label] = skipped
                _progress(label, out["series"][label])

            await ours("healthy backup alone", generator([provider("backup")]), images)
            emu.set_profile("primary", profile(scale, faults={Fault.HANG: 1.0}))
            primary = provider("primary")
            await ours("hang, no breaker", generator([primary, provider("backup")], 10**9), slow)
            await ours("hang, breaker", generator([primary, provider("backup")]), images)
            refused = provider("primary", base_url=dead)
            await ours("refused, no breaker", generator([refused, provider("backup")], 10**9), slow)
            await ours("refused, breaker", generator([refused, provider("backup")]), images)

            if with_litellm:
                litellm = _report.litellm()

                async def theirs(
                    label: str, router: Any, model: str, count: int, cap: float | None
                ) -> None:
                    async def call(text: str) -> None:
                        answer = await router.aimage_generation(model=model, prompt=text)
                        image = await http.get(answer.data[0].url)
                        image.raise_for_status()

                    out["series"][label] = await _series(emu, call, count, cap)
                    out["settings"][label] = _report.router_settings(router)
                    _progress(label, out["series"][label])

                def default(primary_url: str) -> Any:
                    return litellm.Router(
                        model_list=[
                            _report.deployment("primary", primary_url),
                            _report.deployment("backup", emu.base_url("backup")),
                        ],
                        fallbacks=[{"primary": ["backup"]}],
                    )

                def tuned(primary_url: str) -> Any:
                    return litellm.Router(
                        model_list=[
                            _report.deployment("img", primary_url, order=1),
                            _report.deployment("img", emu.base_url("backup"), order=2),
                        ],
                        timeout=10 * scale,
                        num_retries=1,
                        allowed_fails=1,
                        cooldown_time=30 * scale,
                    )

                alone = litellm.Router(
                    model_list=[_report.deployment("img", emu.base_url("backup"))]
                )
                cap = 60 * scale  # twice the generator's timeout
                hanging = emu.base_url("primary")
                await theirs("LiteLLM: healthy backup alone", alone, "img", images, None)
                await theirs("LiteLLM default: hang", default(hanging), "primary", 2, cap)
                await theirs("LiteLLM tuned: hang", tuned(hanging), "img", images, None)
                await theirs("LiteLLM default: refused", default(dead), "primary", 2, 3 * cap)
                await theirs("LiteLLM tuned: refused", tuned(dead), "img", images, None)
    return out


def _progress(label: str, times: list[float]) -> None:
    print(
        f"  {label}: p50 {_report.ms(_median(times))} ms, "
        f"first {FIRST} p50 {_report.ms(_median(times[:FIRST]))} ms",
        flush=True,
    )


def _median(times: list[float]) -> float:
    return statistics.median(times) if times else float("nan")


def _cell(seconds: float) -> str:
    return "did not finish" if seconds == float("inf") else _report.ms(seconds)


def report(out: dict[str, Any], cap: float) -> None:
    """The table and docs/img/failover.png."""
    series: dict[str, list[float]] = out["series"]
    healthy = _median(series["healthy backup alone"][STEADY:])
    rows = []
    for label, times in series.items():
        steady = times[STEADY:] or times
        opened = out["open"].get(label)
        open_times = [t for t, o in zip(times, opened or [], strict=False) if o]
        rows.append(
            [
                label,
                len(times),
                _cell(_median(times[:FIRST])),
                _cell(_median(steady)),
                _cell(_report.percentile(steady, 99)),
                _cell(_median(open_times)) if open_times else "-",
                f"{len(open_times)}/{len(times)}" if opened is not None else "-",
                f"{_median(steady) / healthy:.2f}" if _median(steady) < float("inf") else "-",
            ]
        )
    headers = ["run", "images", f"first {FIRST}: p50 ms", f"from image {STEADY}: p50 ms"]
    headers += ["p99 ms", "breaker open: p50 ms", "images with breaker open"]
    _report.table(
        [*headers, "p50 ÷ healthy alone"],
        rows,
        title=f"Time to first image, one at a time (LiteLLM default runs cut at {cap:g} s)",
    )
    for label, settings in out["settings"].items():
        print(f"{label}: {settings}")
    plt = _report.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, kind in zip(axes, ("hang", "refused"), strict=True):
        for label, times in series.items():
            if kind not in label and "alone" not in label:
                continue
            shown = [(i, t * 1000) for i, t in enumerate(times) if t != float("inf")]
            style = "." if len(times) < STEADY else "-"
            legend = label if shown else f"{label} (no image within {cap:g} s)"
            ax.plot([i for i, _ in shown], [t for _, t in shown], style, label=legend, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("image (made one at a time)")
        ax.set_title(f"primary {kind}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("time to image, ms (log)")
    _report.save(fig, "failover")


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--scale", type=float, default=0.05, help="time scale (0.05: 2 s->100 ms)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 30 images")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        _report.scratch_plots()
    images = 30 if args.quick else args.images
    print(
        f"{_report.machine()}\n{images} images per run, one at a time, time scale {args.scale}, "
        "asyncio\n",
        flush=True,
    )
    report(anyio.run(run, images, args.scale, not args.no_litellm), 60 * args.scale)


if __name__ == "__main__":
    main()
