"""Generate one image offline and print where it went.

Run: python examples/quickstart.py [DIRECTORY]
"""

from __future__ import annotations

import sys

import anyio

from imagegen import Fallback, ImageGenerator, LocalStorage, Placeholder, SQLiteState


async def main(directory: str = "imagegen-example") -> None:
    async with ImageGenerator(
        providers=[Placeholder()],
        strategy=Fallback(),
        storage=LocalStorage(f"{directory}/images"),
        state=SQLiteState(f"{directory}/state.sqlite3"),
        timeout=30.0,
    ) as gen:
        result = await gen.generate("a red fox in the snow", width=768, height=512, seed=7)
        print(f"{result.url}  ({result.provider}, {result.elapsed:.3f}s)")
        record = await gen.record(result.id)
        assert record is not None
        print(f"record {record.id}: {record.status}, key {record.key}")


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:])
