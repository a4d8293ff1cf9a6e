"""Submit generations as background jobs, then collect them.

Run: python examples/jobs.py
"""

from __future__ import annotations

import anyio

from imagegen import ImageGenerator, MemoryStorage, Placeholder


async def main() -> None:
    async with ImageGenerator(providers=[Placeholder()], storage=MemoryStorage()) as gen:
        prompts = ["a lighthouse at dusk", "a red fox in the snow", "a quiet harbour"]
        ids = [await gen.submit(prompt, width=256, height=256) for prompt in prompts]
        print(f"submitted {len(ids)} jobs")
        for job_id in ids:
            result = await gen.wait(job_id, timeout=30)
            job = await gen.job(job_id)
            assert job is not None
            print(f"{job_id[:8]}: {job.status}, {result.url}")


if __name__ == "__main__":
    anyio.run(main)
