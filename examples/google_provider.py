"""Generate one image with Google's Gemini image models, falling back to the offline Placeholder.

Reads the key from GEMINI_API_KEY (or GOOGLE_API_KEY). For Vertex AI instead, set
GOOGLE_GENAI_USE_VERTEXAI=true and GOOGLE_CLOUD_PROJECT (Application Default Credentials;
pip install 'imagegen-failover[google]'). Optional: IMAGEGEN_GOOGLE_MODEL (default
gemini-3.1-flash-image). Without either it says so and exits without touching the network.

Run: GEMINI_API_KEY=... python examples/google_provider.py [DIRECTORY]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import Fallback, Google, ImageGenerator, LocalStorage, Placeholder


async def main(directory: str = "imagegen-google-example") -> None:
    google = Google.from_env(os.environ)
    assert google is not None  # checked below, before anything runs
    async with ImageGenerator(
        providers=[google, Placeholder(tier=1)],
        strategy=Fallback(),
        storage=LocalStorage(f"{directory}/images"),
        timeout=90.0,  # the Gemini 3 models think first: allow them a minute or more
    ) as gen:
        result = await gen.generate(
            "a lighthouse at dusk, watercolour", aspect_ratio="16:9", resolution="2K"
        )
    cost = "unknown" if result.cost is None else f"${result.cost:.3f}"
    print(f"{result.url}  ({result.provider}, {result.width}x{result.height}, {cost})")
    for warning in result.warnings:
        print(f"  note: {warning}")
    for attempt in result.attempts:
        if attempt.error is not None:
            print(f"  {attempt.provider} failed: {attempt.error}")


if __name__ == "__main__":
    if Google.from_env(os.environ) is None:
        print(
            "GEMINI_API_KEY is not set (nor GOOGLE_GENAI_USE_VERTEXAI with "
            "GOOGLE_CLOUD_PROJECT); set it to generate an image with Google."
        )
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
