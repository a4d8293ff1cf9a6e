"""Generate one image with OpenAI's Images API, falling back to the offline Placeholder.

Reads the key from OPENAI_API_KEY. Optional: OPENAI_IMAGE_MODEL (default gpt-image-1)
and OPENAI_BASE_URL (an OpenAI-compatible gateway, e.g. https://gateway.example.com/openai/v1).
Without a key it says so and exits without touching the network.

Run: OPENAI_API_KEY=sk-... python examples/openai_provider.py [DIRECTORY]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import Fallback, ImageGenerator, LocalStorage, OpenAIImages, Placeholder


async def main(directory: str = "imagegen-openai-example") -> None:
    model = os.environ.get("OPENAI_IMAGE_MODEL", "gpt-image-1")
    openai = OpenAIImages(
        model=model,
        base_url=os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
        # The cheapest GPT image; other models keep their default quality.
        quality="low" if model.startswith("gpt-image") else None,
        timeout=120.0,  # GPT image models can take well over the 30 s default
    )
    async with ImageGenerator(
        providers=[openai, Placeholder(tier=1)],
        strategy=Fallback(),
        storage=LocalStorage(f"{directory}/images"),
        timeout=150.0,
    ) as gen:
        result = await gen.generate(
            "a red bicycle leaning on a brick wall", width=1536, height=1024, output_format="jpeg"
        )
    print(
        f"{result.url}  ({result.provider}, {result.width}x{result.height}, {result.elapsed:.1f}s)"
    )
    for attempt in result.attempts:
        if attempt.error is not None:
            print(f"  {attempt.provider} failed: {attempt.error}")


if __name__ == "__main__":
    if not os.environ.get("OPENAI_API_KEY"):
        print("OPENAI_API_KEY is not set; set it to generate an image with OpenAI.")
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
