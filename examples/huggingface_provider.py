"""Generate one image through Hugging Face Inference Providers, falling back to the Placeholder.

Reads the token from HF_TOKEN. Optional: IMAGEGEN_HF_MODEL (a Hub id, default
black-forest-labs/FLUX.1-schnell) and IMAGEGEN_HF_PROVIDER (auto, the default, or
hf-inference, together, nscale, fal-ai). Without a token it says so and exits without
touching the network.

Run: HF_TOKEN=hf_... python examples/huggingface_provider.py [DIRECTORY]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import Fallback, HuggingFace, ImageGenerator, LocalStorage, Placeholder


async def main(directory: str = "imagegen-huggingface-example") -> None:
    hugging = HuggingFace.from_env(os.environ)
    assert hugging is not None  # checked below, before anything runs
    async with ImageGenerator(
        providers=[hugging, Placeholder(tier=1)],
        strategy=Fallback(),
        storage=LocalStorage(f"{directory}/images"),
        timeout=60.0,
    ) as gen:
        result = await gen.generate("a lighthouse at dusk, woodcut", width=1024, height=768)
    print(f"{result.url}  ({result.provider}, {result.width}x{result.height})")
    for attempt in result.attempts:
        if attempt.error is not None:
            print(f"  {attempt.provider} failed: {attempt.error}")
    for warning in result.warnings:
        print(f"  note: {warning}")


if __name__ == "__main__":
    if not os.environ.get("HF_TOKEN"):
        print("HF_TOKEN is not set; set it to generate an image through Hugging Face.")
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
