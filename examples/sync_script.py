"""Generate images from plain, blocking code (a script, a WSGI view), no async needed.

Run: python examples/sync_script.py [DIRECTORY]
"""

from __future__ import annotations

import sys

from imagegen import ImageGenerator, LocalStorage, Placeholder, SQLiteState, SyncGenerator


def main(directory: str = "imagegen-example") -> None:
    generator = ImageGenerator(
        providers=[Placeholder()],
        storage=LocalStorage(f"{directory}/images"),
        state=SQLiteState(f"{directory}/state.sqlite3"),
    )
    # One SyncGenerator for the whole program: it runs the generator's event loop in a
    # thread of its own, and each call blocks only the thread that makes it.
    with SyncGenerator(generator) as gen:
        wide = gen.generate("a lighthouse at dusk", aspect_ratio="16:9")
        print(f"{wide.url}  {wide.width}x{wide.height}, cost ${wide.cost:.3f}")
        square = gen.generate("a red fox", width=256, height=256, output_format="jpeg")
        for warning in square.warnings:
            print(f"warning: {warning}")
        [row] = gen.stats()
        print(f"{row.provider}: {row.successes} images today")


if __name__ == "__main__":
    main(*sys.argv[1:2])
