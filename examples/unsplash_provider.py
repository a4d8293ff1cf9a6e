"""A stock photo from Unsplash for a prompt, with an offline placeholder behind it.

Unsplash's guidelines say to hotlink its photos and credit the photographer, so
the result's url is the images.unsplash.com link (nothing is stored) and
result.attribution is the credit to show next to it. The demo key allows 50
requests an hour; the provider stops asking just before that.

Run: UNSPLASH_ACCESS_KEY=... python examples/unsplash_provider.py ["a prompt"]
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import Fallback, ImageGenerator, Placeholder, Unsplash


async def main() -> None:
    if not os.environ.get("UNSPLASH_ACCESS_KEY"):
        print("Set UNSPLASH_ACCESS_KEY (an Unsplash app's Access Key) to run this example.")
        return
    prompt = sys.argv[1] if len(sys.argv) > 1 else "a red bicycle leaning on a brick wall"
    # Both are tier 1; Fallback() tries them in list order, so the placeholder only
    # answers when Unsplash fails (no key accepted, quota spent, no photo found).
    async with ImageGenerator(
        providers=[Unsplash(app_name="imagegen-example"), Placeholder(tier=1)],
        strategy=Fallback(),
        timeout=20.0,
    ) as gen:
        result = await gen.generate(prompt, width=1200, height=800, output_format="jpeg")
    if result.url is not None:
        print(f"{result.provider}: {result.url}")
        print(f"credit: {result.attribution}")
    else:
        assert result.data is not None  # no storage: the bytes are in hand
        path = anyio.Path(f"unsplash-example.{result.content_type.split('/')[-1]}")
        await path.write_bytes(result.data)
        failures = ", ".join(f"{a.provider}: {a.error.kind}" for a in result.attempts if a.error)
        print(f"{result.provider}: wrote {path} ({failures or 'no failures'})")


if __name__ == "__main__":
    anyio.run(main)
