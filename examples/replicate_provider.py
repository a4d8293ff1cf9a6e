"""Generate one image with Replicate, falling back to the offline placeholder.

Reads the token from REPLICATE_API_TOKEN. Without it, it says so and exits
without touching the network.

Run: REPLICATE_API_TOKEN=r8_... python examples/replicate_provider.py [PROMPT]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import Fallback, ImageGenerator, LocalStorage, Placeholder, Replicate


async def main(prompt: str = "a lighthouse on a cliff at dusk, oil painting") -> None:
    # flux-schnell, sync first (Prefer: wait), polled if the wait runs out; an
    # abandoned prediction is cancelled, and Cancel-After stops it in any case.
    replicate = Replicate()
    async with ImageGenerator(
        providers=[replicate, Placeholder(tier=1)],
        strategy=Fallback(),
        storage=LocalStorage("imagegen-example/images"),
        timeout=30.0,
    ) as gen:
        result = await gen.generate(prompt, width=1344, height=768)  # sent as 16:9
        print(f"{result.url}  ({result.provider}, {result.elapsed:.2f}s)")
        for attempt in result.attempts:
            if attempt.error is not None:
                print(f"  {attempt.provider}: {attempt.error.kind}: {attempt.error}")


if __name__ == "__main__":
    if not os.environ.get("REPLICATE_API_TOKEN"):
        print("Set REPLICATE_API_TOKEN to run this example; nothing was sent.")
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
