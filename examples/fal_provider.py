"""Generate one image with fal.ai, falling back to the offline placeholder.

Reads the key from FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET). Without a key it
says so and exits without touching the network.

Run: FAL_KEY=... python examples/fal_provider.py [PROMPT]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import Fal, Fallback, ImageGenerator, LocalStorage, Placeholder


async def main(prompt: str = "a lighthouse on a cliff at dusk, oil painting") -> None:
    fal = Fal()  # flux/schnell; sync for short deadlines, fal's queue for long ones
    async with ImageGenerator(
        providers=[fal, Placeholder(tier=1)],
        strategy=Fallback(),
        storage=LocalStorage("imagegen-example/images"),
        timeout=30.0,
    ) as gen:
        result = await gen.generate(prompt, width=1024, height=768)
        print(f"{result.url}  ({result.provider}, {result.elapsed:.2f}s)")
        for attempt in result.attempts:
            if attempt.error is not None:
                print(f"  {attempt.provider}: {attempt.error.kind}: {attempt.error}")


if __name__ == "__main__":
    if not (
        os.environ.get("FAL_KEY")
        or (os.environ.get("FAL_KEY_ID") and os.environ.get("FAL_KEY_SECRET"))
    ):
        print(
            "Set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET) to run this example; nothing was sent."
        )
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
