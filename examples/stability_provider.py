"""Generate one image with Stability AI's API, falling back to the offline Placeholder.

Reads the key from STABILITY_API_KEY. Optional: IMAGEGEN_STABILITY_MODEL (core, the
default; ultra; sd3.5-large...). Without a key it says so and exits without touching
the network.

Run: STABILITY_API_KEY=sk-... python examples/stability_provider.py [DIRECTORY]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import Fallback, ImageGenerator, LocalStorage, Placeholder, Stability


async def main(directory: str = "imagegen-stability-example") -> None:
    stability = Stability.from_env(os.environ)
    assert stability is not None  # checked below, before anything runs
    async with ImageGenerator(
        providers=[stability, Placeholder(tier=1)],
        strategy=Fallback(),
        storage=LocalStorage(f"{directory}/images"),
        timeout=60.0,
    ) as gen:
        result = await gen.generate(
            "a lighthouse at dusk, oil painting",
            aspect_ratio="3:2",
            negative_prompt="text, watermark",
            provider_options={"stability": {"style_preset": "analog-film"}},
        )
    cost = "unknown" if result.cost is None else f"${result.cost:.3f}"
    print(f"{result.url}  ({result.provider}, {result.width}x{result.height}, {cost})")
    for attempt in result.attempts:
        if attempt.error is not None:
            print(f"  {attempt.provider} failed: {attempt.error}")


if __name__ == "__main__":
    if not os.environ.get("STABILITY_API_KEY"):
        print("STABILITY_API_KEY is not set; set it to generate an image with Stability AI.")
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
