"""Store images in your R2 bucket and share state across workers through Redis.

Set IMAGEGEN_R2_BUCKET, IMAGEGEN_R2_ACCOUNT_ID, IMAGEGEN_R2_ACCESS_KEY_ID,
IMAGEGEN_R2_SECRET_ACCESS_KEY, IMAGEGEN_PUBLIC_BASE_URL (your bucket's custom domain) and
IMAGEGEN_REDIS_URL, then run several copies of this script at once: they share one bucket,
one set of records and statistics, and one circuit breaker per provider.

Needs the extras: pip install "imagegen-failover[r2,redis]"
Run: python examples/r2_and_redis.py "a lighthouse at dusk"
"""

from __future__ import annotations

import os
import sys

import anyio

from imagegen import ImageGenerator

NEEDED = (
    "IMAGEGEN_R2_BUCKET",
    "IMAGEGEN_R2_ACCOUNT_ID",
    "IMAGEGEN_R2_ACCESS_KEY_ID",
    "IMAGEGEN_R2_SECRET_ACCESS_KEY",
    "IMAGEGEN_REDIS_URL",
)


async def main(prompt: str) -> None:
    async with ImageGenerator.from_env(environment=os.environ.get("IMAGEGEN_ENV")) as gen:
        result = await gen.generate(prompt)
        print(f"{result.url}  (key {result.key}, {result.provider}, {result.elapsed:.2f}s)")
        for row in await gen.stats(provider=result.provider):
            print(f"{row.day} {row.provider}: {row.requests} calls across all workers")


if __name__ == "__main__":
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if missing:
        print(f"Set {', '.join(missing)} to run this example; nothing was sent.")
        sys.exit(0)
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "a lighthouse at dusk")
