"""generate() over HTTP against the same calls made with raw httpx, per vendor API.

Run: python -m benchmarks.http_overhead [--calls N] [--quick]

The emulator runs in its own process. For each vendor API, one call at a time:

- raw httpx: the create (Replicate with ``Prefer: wait``, fal's sync endpoint,
  OpenAI's ``images/generations`` answering with a URL, Unsplash's random photo
  plus its download report, Google's ``generateContent``, BFL's task and its polls
  on imagegen's schedule, Azure's, Together's and xAI's dialects of OpenAI's), its
  JSON decoded, then the image downloaded (Google's and the dialects' come inline);
  for Bedrock, raw boto3 ``invoke_model`` in a worker thread;
- imagegen: ``ImageGenerator.generate()`` with that one provider, the image
  downloaded under a DownloadPolicy and stored in MemoryStorage, its record and
  statistics kept in MemoryState;
- LiteLLM (OpenAI row only): ``Router.aimage_generation`` with its default
  settings, then the returned URL downloaded with httpx (nothing stored).

Raw and imagegen use the same ``httpx.AsyncClient`` and alternate in blocks of 10
calls, so drift hits both alike. Each is measured at three emulator latencies: 0 ms,
where only client-side work shows, 5 ms, and 20 ms (a 2 s generation scaled by 0.01).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from imagegen import Bedrock, Fal, ImageGenerator, MemoryStorage, Provider, Replicate, Unsplash

from . import _report
from .emulator import APIS, EmulatorProcess, Fixed, ProviderProfile

LATENCIES = (0.0, 0.005, 0.02)
BFL_POLL = 0.005  # BFL's task is polled (imagegen's provider and the raw loop alike)
BLOCK = 10

Call = Callable[[int], Awaitable[object]]


def raw_calls(emu: EmulatorProcess, api: str, http: httpx.AsyncClient) -> Call:
    """The same HTTP calls imagegen's provider makes, with httpx alone."""
    base = emu.base_url(api)

    if api == "openai":
        auth = {"Authorization": "Bearer sk-emulator"}

        async def call(i: int) -> object:
            body = {"model": "flux-schnell", "prompt": f"p {i}", "n": 1, "size": "1024x1024"}
            answer = await http.post(f"{base}/images/generations", json=body, headers=auth)
            answer.raise_for_status()
            image = await http.get(answer.json()["data"][0]["url"])
            return image.raise_for_status().content

    elif api == "replicate":
        auth = {"Authorization": "Bearer r8_emulator", "Prefer": "wait=28", "Cancel-After": "30s"}
        create = f"{base}/models/black-forest-labs/flux-schnell/predictions"

        async def call(i: int) -> object:
            body = {"input": {"prompt": f"p {i}", "aspect_ratio": "1:1", "num_outputs": 1,
                              "output_format": "png"}}  # fmt: skip
            answer = await http.post(create, json=body, headers=auth)
            answer.raise_for_status()
            prediction = answer.json()
            assert prediction["status"] == "succeeded"
            image = await http.get(prediction["output"][0])
            return image.raise_for_status().content

    elif api == "fal":
        auth = {"Authorization": "Key emulator:secret-key"}

        async def call(i: int) -> object:
            body = {"prompt": f"p {i}", "image_size": "square_hd", "num_images": 1,
                    "output_format": "png", "enable_safety_checker": True}  # fmt: skip
            answer = await http.post(f"{base}/fal-ai/flux/schnell", json=body, headers=auth)
            answer.raise_for_status()
            image = await http.get(answer.json()["images"][0]["url"])
            return image.raise_for_status().content

    elif api == "google":
        auth = {"x-goog-api-key": "AIza-emulator"}
        create = f"{base}/models/gemini-3.1-flash-image:generateContent"

        async def call(i: int) -> object:
            image_config = {"aspectRatio": "1:1", "imageSize": "1K"}
            config = {"responseModalities": ["IMAGE"], "imageConfig": image_config}
            body = {"contents": [{"role": "user", "parts": [{"text": f"p {i}"}]}],
                    "generationConfig": config}  # fmt: skip
            answer = await http.post(create, json=body, headers=auth)
            answer.raise_for_status()
            parts = answer.json()["candidates"][0]["content"]["parts"]
            return base64.b64decode(
                next(p for p in parts if "inlineData" in p)["inlineData"]["data"]
            )

    elif api == "bfl":
        auth = {"x-key": "bfl-emulator"}

        async def call(i: int) -> object:
            body = {"prompt": f"p {i}", "width": 1024, "height": 1024, "output_format": "png"}
            created = await http.post(f"{base}/flux-2-pro", json=body, headers=auth)
            created.raise_for_status()
            wait = BFL_POLL
            while True:  # polled on imagegen's schedule: the interval, growing 1.5x
                await anyio.sleep(wait)
                wait *= 1.5
                task = await http.get(created.json()["polling_url"], headers=auth)
                if task.raise_for_status().json()["status"] == "Ready":
                    break
            image = await http.get(task.json()["result"]["sample"])
            return image.raise_for_status().content

    elif api in ("azure", "together", "xai"):
        # OpenAI's dialects, each answering with the image inline (base64).
        dialect: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
            "azure": (
                (
                    f"{base}/openai/deployments/gpt-image-1/images/generations"
                    "?api-version=2025-04-01-preview"
                ),
                {"api-key": "azure-emulator-key"},
                {"model": "gpt-image-1", "n": 1, "size": "1024x1024", "output_format": "png"},
            ),
            "together": (
                f"{base}/images/generations",
                {"Authorization": "Bearer together-emulator"},
                {"model": "black-forest-labs/FLUX.1-schnell", "n": 1, "width": 1024,
                 "height": 1024, "response_format": "base64", "output_format": "png"},
            ),
            "xai": (
                f"{base}/images/generations",
                {"Authorization": "Bearer xai-emulator"},
                {"model": "grok-imagine-image", "n": 1, "response_format": "b64_json",
                 "aspect_ratio": "1:1", "resolution": "1k"},
            ),
        }  # fmt: skip
        url, headers, fields = dialect[api]

        async def call(i: int) -> object:
            answer = await http.post(url, json={**fields, "prompt": f"p {i}"}, headers=headers)
            answer.raise_for_status()
            return base64.b64decode(answer.json()["data"][0]["b64_json"])

    elif api == "stability":
        auth = {"Authorization": "Bearer sk-stability-emulator", "Accept": "image/*"}

        async def call(i: int) -> object:
            form = {"prompt": f"p {i}", "aspect_ratio": "1:1", "output_format": "png"}
            # httpx sends multipart only with a file: an empty part the API ignores.
            answer = await http.post(
                f"{base}/v2beta/stable-image/generate/core", files={"none": (None, "")},
                data=form, headers=auth,
            )  # fmt: skip
            return answer.raise_for_status().content

    elif api == "huggingface":  # routed to together, as the emulator's Hub says
        auth = {"Authorization": "Bearer hf_emulator"}

        async def call(i: int) -> object:
            body = {"prompt": f"p {i}", "model": "black-forest-labs/FLUX.1-schnell", "n": 1,
                    "width": 1024, "height": 1024, "response_format": "base64"}  # fmt: skip
            answer = await http.post(
                f"{base}/together/v1/images/generations", json=body, headers=auth
            )
            return base64.b64decode(answer.raise_for_status().json()["data"][0]["b64_json"])

    elif api == "bedrock":
        provider = emu.provider(api)
        assert isinstance(provider, Bedrock)
        client = provider.client()  # boto3's, built as imagegen builds it (no retries)

        def invoke(i: int) -> bytes:
            body = {"prompt": f"p {i}", "mode": "text-to-image", "aspect_ratio": "1:1",
                    "output_format": "png"}  # fmt: skip
            answer = client.invoke_model(
                modelId="stability.stable-image-core-v1:1", body=json.dumps(body).encode(),
                contentType="application/json", accept="application/json",
            )  # fmt: skip
            return base64.b64decode(json.loads(answer["body"].read())["images"][0])

        async def call(i: int) -> object:
            return await anyio.to_thread.run_sync(invoke, i)

    else:
        auth = {"Authorization": "Client-ID emulator-access-key", "Accept-Version": "v1"}

        async def call(i: int) -> object:
            params = {"query": f"p {i}", "orientation": "squarish", "content_filter": "high"}
            answer = await http.get(f"{base}/photos/random", params=params, headers=auth)
            answer.raise_for_status()
            photo = answer.json()
            report = httpx.URL(photo["links"]["download_location"])
            tracked = await http.get(f"{base}{report.raw_path.decode()}", headers=auth)
            tracked.raise_for_status()
            image = await http.get(photo["urls"]["raw"])
            return image.raise_for_status().content

    return call


def _provider(emu: EmulatorProcess, api: str) -> Provider:
    if api == "fal":
        provider = emu.provider(api, queue=False, queue_threshold=1e6)
        assert isinstance(provider, Fal)
        return provider
    if api == "unsplash":
        provider = emu.provider(api, copy_to_storage=True)
        assert isinstance(provider, Unsplash)
        return provider
    if api == "replicate":
        provider = emu.provider(api)
        assert isinstance(provider, Replicate)
        return provider
    if api == "bfl":
        return emu.provider(api, poll_interval=BFL_POLL)
    if api != "openai":  # the vendor's default model, as the raw calls name it
        return emu.provider(api)
    # A gateway model id: no response_format is sent and the emulator answers with a URL,
    # as LiteLLM's call gets, so both download the image.
    return emu.provider(api, model="flux-schnell")


async def _paired(a: Call, b: Call, calls: int) -> tuple[list[float], list[float], float, float]:
    """Per-call seconds of ``a`` and ``b`` (alternating blocks of BLOCK calls, after a
    warm-up), and the client CPU seconds per call of each."""
    await _report.timed_calls(a, range(-BLOCK, 0), concurrency=1)
    await _report.timed_calls(b, range(-BLOCK, 0), concurrency=1)
    times_a: list[float] = []
    times_b: list[float] = []
    cpu_a = cpu_b = 0.0
    for start in range(0, calls, BLOCK):
        block = range(start, min(calls, start + BLOCK))
        begun = time.process_time()
        times_a += await _report.timed_calls(a, block, concurrency=1)
        middle = time.process_time()
        times_b += await _report.timed_calls(b, block, concurrency=1)
        cpu_a += middle - begun
        cpu_b += time.process_time() - middle
    return times_a, times_b, cpu_a / calls, cpu_b / calls


async def _litellm(emu: EmulatorProcess, http: httpx.AsyncClient, calls: int) -> list[float]:
    router = _report.litellm().Router(
        model_list=[_report.deployment("img", emu.base_url("openai"))]
    )

    async def call(i: int) -> object:
        answer = await router.aimage_generation(model="img", prompt=f"l {i}")
        image = await http.get(answer.data[0].url)
        return image.raise_for_status().content

    await _report.timed_calls(call, range(-BLOCK, 0), concurrency=1)
    return await _report.timed_calls(call, range(calls), concurrency=1)


async def run(calls: int, with_litellm: bool) -> list[dict[str, Any]]:
    """One row per (latency, API): p50 of each side, in seconds."""
    rows: list[dict[str, Any]] = []
    with EmulatorProcess({api: ProviderProfile(api=api) for api in APIS}) as emu:
        async with _report.http_client() as http:
            for latency in LATENCIES:
                for api in APIS:
                    emu.set_profile(api, ProviderProfile(api=api, latency=Fixed(latency)))
                for api in APIS:
                    async with ImageGenerator(
                        providers=[_provider(emu, api)],
                        storage=MemoryStorage(),
                        download=_report.EMULATOR_DOWNLOADS,
                        http=http,
                        default_image=None,
                    ) as gen:

                        async def ours(i: int, gen: ImageGenerator = gen) -> object:
                            return await gen.generate(f"p {i}")

                        raw, mine, raw_cpu, our_cpu = await _paired(
                            raw_calls(emu, api, http), ours, calls
                        )
                    row: dict[str, Any] = {
                        "latency": latency,
                        "api": api,
                        "raw": statistics.median(raw),
                        "ours": statistics.median(mine),
                        "raw_cpu": raw_cpu,
                        "ours_cpu": our_cpu,
                        "litellm": None,
                    }
                    rows.append(row)
                    print(
                        f"  {latency * 1000:.0f} ms {api}: raw {row['raw'] * 1e3:.2f} ms, "
                        f"imagegen {row['ours'] * 1e3:.2f} ms",
                        flush=True,
                    )
            # LiteLLM last: it leaves background work behind that would slow what runs
            # after it in this process.
            for row in rows if with_litellm else []:
                if row["api"] == "openai":
                    latency = Fixed(row["latency"])
                    emu.set_profile("openai", ProviderProfile(api="openai", latency=latency))
                    row["litellm"] = statistics.median(await _litellm(emu, http, calls))
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    """The table and docs/img/http_overhead.png."""
    lines = []
    for row in rows:
        llm = row["litellm"]
        lines.append(
            [
                f"{row['latency'] * 1000:.0f} ms",
                row["api"],
                _report.ms(row["raw"], 2),
                _report.ms(row["ours"], 2),
                f"{row['ours'] / row['raw']:.2f}x",
                f"+{(row['ours'] - row['raw']) * 1e6:.0f}",
                f"{row['raw_cpu'] * 1e6:.0f} / {row['ours_cpu'] * 1e6:.0f}",
                "-" if llm is None else _report.ms(llm, 2),
                "-" if llm is None else f"{llm / row['raw']:.2f}x",
            ]
        )
    _report.table(
        [
            "emulator latency",
            "API",
            "raw httpx p50 ms",
            "imagegen p50 ms",
            "imagegen ÷ raw",
            "µs added",
            "client CPU µs: raw / imagegen",
            "LiteLLM p50 ms",
            "LiteLLM ÷ raw",
        ],
        lines,
        title="generate() against the same HTTP calls (p50, one call at a time)",
    )
    plt = _report.pyplot()
    fig, axes = plt.subplots(1, len(LATENCIES), figsize=(13, 3.8), sharey=False)
    for ax, latency in zip(axes, LATENCIES, strict=True):
        subset = [r for r in rows if r["latency"] == latency]
        x = range(len(subset))
        width = 0.27
        ax.bar([i - width for i in x], [r["raw"] * 1e3 for r in subset], width, label="raw httpx")
        ax.bar(list(x), [r["ours"] * 1e3 for r in subset], width, label="imagegen generate()")
        llm = [(i, r["litellm"]) for i, r in zip(x, subset, strict=True) if r["litellm"]]
        ax.bar([i + width for i, _ in llm], [v * 1e3 for _, v in llm], width,
               label="LiteLLM + download")  # fmt: skip
        ax.set_xticks(list(x), [r["api"] for r in subset])
        ax.set_title(f"emulator latency {latency * 1000:.0f} ms")
        ax.set_ylabel("p50 per image, ms")
    axes[0].legend(fontsize=8)
    _report.save(fig, "http_overhead")


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per side and row")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 calls")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        _report.scratch_plots()
    calls = 20 if args.quick else args.calls
    print(f"{_report.machine()}\n{calls} calls per side and row, asyncio\n", flush=True)
    report(anyio.run(run, calls, not args.no_litellm))


if __name__ == "__main__":
    main()
