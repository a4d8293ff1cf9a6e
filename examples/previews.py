"""Previews: partial images while a provider draws, through generate(on_preview=...).

Run: python examples/previews.py

OpenAI's GPT image models stream up to three partial images before the final one
(``OpenAIImages(model="gpt-image-1")`` asks for them when a handler is given). Offline,
a provider of our own stands in: it sends its rough renders through ``ctx.preview``,
as the built-in OpenAI provider does with each partial image the API streams.
"""

from __future__ import annotations

import anyio

from imagegen import (
    ImageGenerator,
    ImageRequest,
    MemoryStorage,
    Placeholder,
    Preview,
    ProviderContext,
    ProviderImage,
)


class Sketcher(Placeholder):
    """The placeholder, sending coarser drafts of its image first."""

    name = "sketcher"

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        for index in range(ctx.previews):  # as many as the caller asked for
            side = 16 * (index + 1)
            draft = ImageRequest(prompt=request.prompt, width=64 + side, height=64 + side)
            image = await super().generate(draft, ctx)
            assert image.data is not None
            await ctx.preview(image.data, index)
        return await super().generate(request, ctx)


async def main() -> None:
    def show(preview: Preview) -> None:
        print(f"preview {preview.index} from {preview.provider}: {len(preview.data)} bytes")

    gen = ImageGenerator(providers=[Sketcher()], storage=MemoryStorage())
    async with gen:
        result = await gen.generate(
            "a lighthouse at dusk", width=256, height=256, on_preview=show, previews=3
        )
    print(f"final: {result.width}x{result.height} from {result.provider}")


if __name__ == "__main__":
    anyio.run(main)
