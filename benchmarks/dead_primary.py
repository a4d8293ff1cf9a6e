"""A dead primary under steady traffic: how long callers wait, and how often it is called.

Run: python -m benchmarks.dead_primary [--images N] [--every S] [--call-timeout T]

Two OpenAI-compatible deployments on the emulator (a separate process), each
answering in ``LogNormal(median=0.2 s, sigma=0.25)``. The primary accepts every
connection, reads the create and never answers. Callers arrive every ``S``
seconds (0.3), whatever the earlier ones are doing, so calls overlap; each call's
own timeout is ``T`` (2 s). Every client makes ``N`` images (100):

- "plain httpx": the naive loop a user would write, primary then secondary, each
  POST with a ``T`` timeout, no retry, no memory between images;
- imagegen with ``Fallback()``, ``Hedge()`` and ``Race()``, everything else at its
  defaults (``timeout=30``, ``Retry()``, ``CircuitBreaker()``), both providers
  with ``timeout=T``.

Reported per client: p50 and p95 of the time to image, p50 once the breaker is
open (the images whose primary attempt was skipped), how many images waited on
the primary (took longer than ``T``), and the primary's creates per image as the
emulator counted them.
"""

from __future__ import annotations

import argparse
import base64
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from imagegen import Fallback, Hedge, ImageGenerator, MemoryStorage, Race, Selection

from . import _report
from .emulator import EmulatorProcess, Fault, LogNormal, ProviderProfile

KEY = "sk-emulator"


def profile(**changes: Any) -> ProviderProfile:
    """One deployment: healthy, about 200 ms a create."""
    return ProviderProfile(
        api="openai", latency=LogNormal(median=0.2, sigma=0.25), seed=5, **changes
    )


async def traffic(
    call: Callable[[str], Awaitable[bool]], images: int, every: float
) -> tuple[list[float], list[bool]]:
    """``images`` calls, one starting every ``every`` seconds: each one's time to image,
    and whether the breaker skipped the primary for it."""
    times = [0.0] * images
    skipped = [False] * images

    async def one(i: int) -> None:
        start = anyio.current_time()
        skipped[i] = await call(f"dead primary {i}")
        times[i] = anyio.current_time() - start

    async with anyio.create_task_group() as tg:
        for i in range(images):
            tg.start_soon(one, i)
            await anyio.sleep(every)
    return times, skipped


async def run(images: int, every: float, call_timeout: float) -> list[list[object]]:
    """One row per client."""
    rows: list[list[object]] = []
    dead = profile(faults={Fault.HANG: 1.0})
    with EmulatorProcess({"primary": dead, "backup": profile()}) as emu:

        def row(label: str, times: list[float], skipped: list[bool] | None) -> None:
            creates = emu.stats("primary").creates
            open_times = [t for t, s in zip(times, skipped or [], strict=False) if s]
            waited = sum(t > call_timeout for t in times)
            rows.append(
                [
                    label,
                    _report.ms(statistics.median(times)),
                    _report.ms(_report.percentile(times, 95)),
                    _report.ms(statistics.median(open_times)) if open_times else "-",
                    f"{waited}/{len(times)}",
                    f"{creates / len(times):.2f}",
                ]
            )
            print(f"  {label}: {rows[-1][1:]}", flush=True)

        async with _report.http_client() as http:

            async def post(name: str, text: str) -> bytes:
                response = await http.post(
                    f"{emu.base_url(name)}/images/generations",
                    json={"model": "flux-schnell", "prompt": text, "response_format": "b64_json"},
                    headers={"Authorization": f"Bearer {KEY}"},
                    timeout=call_timeout,
                )
                response.raise_for_status()
                return base64.b64decode(response.json()["data"][0]["b64_json"])

            async def plain(text: str) -> bool:
                try:
                    await post("primary", text)
                except httpx.HTTPError:
                    await post("backup", text)
                return False

            emu.reset()
            times, _ = await traffic(plain, images, every)
            row("plain httpx, primary then secondary", times, None)

            strategies: list[tuple[str, Selection]] = [
                ("Fallback()", Fallback()),
                ("Hedge()", Hedge()),
                ("Race()", Race()),
            ]
            for label, strategy in strategies:
                gen = ImageGenerator(
                    providers=[
                        emu.provider(name, model="flux-schnell", timeout=call_timeout)
                        for name in ("primary", "backup")
                    ],
                    strategy=strategy,
                    storage=MemoryStorage(),
                    download=_report.EMULATOR_DOWNLOADS,
                    http=http,
                )

                async def ours(text: str, gen: ImageGenerator = gen) -> bool:
                    result = await gen.generate(text)
                    assert not result.is_default, result.attempts
                    first = [a for a in result.attempts if a.provider == "primary"]
                    return bool(first) and first[0].outcome == "skipped"

                emu.reset()
                async with gen:
                    times, skipped = await traffic(ours, images, every)
                row(f"imagegen {label}", times, skipped)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--every", type=float, default=0.3, help="seconds between callers")
    parser.add_argument("--call-timeout", type=float, default=2.0, help="each call's timeout")
    args = parser.parse_args(argv)
    print(
        f"{_report.machine()}\n{args.images} images per client, one caller every "
        f"{args.every:g} s, call timeout {args.call_timeout:g} s, asyncio\n",
        flush=True,
    )
    rows = anyio.run(run, args.images, args.every, args.call_timeout)
    headers = ["client", "p50 ms", "p95 ms", "breaker open: p50 ms"]
    _report.table(
        [*headers, "images slower than the call timeout", "primary creates per image"],
        rows,
        title=f"A primary that never answers, callers every {args.every:g} s (time to image)",
    )


if __name__ == "__main__":
    main()
