"""Generate one image with FLUX on Black Forest Labs' API, falling back to the offline Placeholder.

Reads the key from BFL_API_KEY. Optional: IMAGEGEN_BFL_MODEL (default flux-2-pro) and
IMAGEGEN_BFL_REGION (global, eu or us). Without a key it says so and exits without
touching the network.

Run: BFL_API_KEY=... python examples/bfl_provider.py [DIRECTORY]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import BlackForestLabs, Fallback, ImageGenerator, LocalStorage, Placeholder


async def main(directory: str = "imagegen-bfl-example") -> None:
    flux = BlackForestLabs.from_env(os.environ)
    assert flux is not None  # checked below, before anything runs
    async with ImageGenerator(
        providers=[flux, Placeholder(tier=1)],
        strategy=Fallback(),
        storage=LocalStorage(f"{directory}/images"),
        timeout=60.0,
    ) as gen:
        result = await gen.generate(
            "a lighthouse at dusk, oil painting", width=1344, height=768, seed=7
        )
    cost = "unknown" if result.cost is None else f"${result.cost:.3f}"
    print(f"{result.url}  ({result.provider}, {result.width}x{result.height}, {cost})")
    for attempt in result.attempts:
        if attempt.error is not None:
            print(f"  {attempt.provider} failed: {attempt.error}")


if __name__ == "__main__":
    if not os.environ.get("BFL_API_KEY"):
        print("BFL_API_KEY is not set; set it to generate an image with Black Forest Labs.")
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
