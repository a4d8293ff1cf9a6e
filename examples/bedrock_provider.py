"""Generate one image on Amazon Bedrock, falling back to the offline Placeholder.

Needs boto3 (pip install 'imagegen-failover[bedrock]') and AWS credentials (the usual
chain: environment, profile, SSO, instance role). Bedrock is used only when asked for:
set IMAGEGEN_BEDROCK_MODEL (default model stability.stable-image-core-v1:1, in us-west-2
unless IMAGEGEN_BEDROCK_REGION or AWS_REGION says otherwise) or AWS_BEARER_TOKEN_BEDROCK.
Without either it says so and exits without touching the network.

Run: IMAGEGEN_BEDROCK_MODEL=stability.stable-image-core-v1:1 python examples/bedrock_provider.py
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import Bedrock, Fallback, ImageGenerator, LocalStorage, Placeholder


async def main(directory: str = "imagegen-bedrock-example") -> None:
    bedrock = Bedrock.from_env(os.environ)
    assert bedrock is not None  # checked below, before anything runs
    async with ImageGenerator(
        providers=[bedrock, Placeholder(tier=1)],
        strategy=Fallback(),
        storage=LocalStorage(f"{directory}/images"),
        timeout=60.0,
    ) as gen:
        result = await gen.generate(
            "a lighthouse at dusk, oil painting", aspect_ratio="16:9", negative_prompt="text"
        )
    cost = "unknown" if result.cost is None else f"${result.cost:.3f}"
    print(f"{result.url}  ({result.provider}, {result.width}x{result.height}, {cost})")
    for attempt in result.attempts:
        if attempt.error is not None:
            print(f"  {attempt.provider} failed: {attempt.error}")


if __name__ == "__main__":
    if not (os.environ.get("IMAGEGEN_BEDROCK_MODEL") or os.environ.get("AWS_BEARER_TOKEN_BEDROCK")):
        print(
            "IMAGEGEN_BEDROCK_MODEL (or AWS_BEARER_TOKEN_BEDROCK) is not set; set it to "
            "generate an image on Amazon Bedrock."
        )
        sys.exit(0)
    anyio.run(main, *sys.argv[1:])
