"""Generate one image on Azure OpenAI, Together AI or xAI, falling back to the Placeholder.

Each speaks a dialect of OpenAI's Images API and is built from its usual variables:
Azure OpenAI from AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN), AZURE_OPENAI_ENDPOINT
and AZURE_OPENAI_DEPLOYMENT; Together from TOGETHER_API_KEY; xAI from XAI_API_KEY. Every
one whose key is set is raced. Without any it says so and exits without touching the
network.

Run: XAI_API_KEY=... python examples/openai_dialects.py [DIRECTORY]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import (
    XAI,
    AzureOpenAI,
    ImageGenerator,
    LocalStorage,
    Placeholder,
    Provider,
    Race,
    Together,
)


def dialects() -> list[Provider]:
    """The providers whose keys the environment holds."""
    found = (vendor.from_env(os.environ) for vendor in (AzureOpenAI, Together, XAI))
    return [provider for provider in found if provider is not None]


async def main(directory: str = "imagegen-dialects-example") -> None:
    async with ImageGenerator(
        providers=[*dialects(), Placeholder(tier=1)],
        strategy=Race(),
        storage=LocalStorage(f"{directory}/images"),
        timeout=90.0,
    ) as gen:
        result = await gen.generate("a lighthouse at dusk, watercolour", aspect_ratio="16:9")
    cost = "unknown" if result.cost is None else f"${result.cost:.3f}"
    print(f"{result.url}  ({result.provider}, {result.width}x{result.height}, {cost})")
    for attempt in result.attempts:
        print(f"  {attempt.provider}: {attempt.error or 'image'}")


if __name__ == "__main__":
    if not dialects():
        print(
            "None of AZURE_OPENAI_API_KEY (with its endpoint and deployment), "
            "TOGETHER_API_KEY or XAI_API_KEY is set; set one to generate an image."
        )
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
