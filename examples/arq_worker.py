"""Generation jobs on arq workers, over the same Redis imagegen keeps its state in.

A producer (your web app) enqueues ``generate_image`` jobs with arq; any number of arq
worker processes, on any machines, run them. Each worker builds one ImageGenerator at
startup, on RedisState (the same Redis URL) under an explicit namespace, so every worker
shares one circuit breaker per provider, one set of records and one set of statistics.
arq runs on asyncio only (imagegen itself runs on asyncio and trio).

Set IMAGEGEN_REDIS_URL (e.g. redis://127.0.0.1:6379/0), then:

Run: python examples/arq_worker.py   (enqueues three jobs, runs a worker in burst mode
     in this process, prints each job's result and the statistics every worker shares)
Real workers: arq examples.arq_worker.WorkerSettings   (one per process; in production
     give them one bucket, R2Storage, instead of a temporary directory)

Needs the extra and arq: pip install "imagegen-failover[redis]" arq
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from arq.worker import create_worker

from imagegen import ImageGenerator, ImageGenError, ImageRequest, LocalStorage, Placeholder
from imagegen.state import RedisState

REDIS_URL = os.environ.get("IMAGEGEN_REDIS_URL", "")
# Every imagegen key is "imagegen:<namespace>:...": staging and production (or this
# example) can share one Redis without meeting. from_env() takes it from IMAGEGEN_ENV.
NAMESPACE = "arq-example"
# arq's queue is not under imagegen's namespace: give each environment its own.
QUEUE = "arq:imagegen"
PROMPTS = ("a lighthouse at dusk", "a red fox in the snow", "a quiet harbour")


def build_generator(redis_url: str, images: Path) -> ImageGenerator:
    """The generator each worker process runs its jobs on."""
    return ImageGenerator(
        providers=[Placeholder()],
        # A local directory only works on one machine: workers on several machines
        # need one bucket (R2Storage) so that every URL they return resolves.
        storage=LocalStorage(images),
        state=RedisState(redis_url),
        namespace=NAMESPACE,
        timeout=30.0,  # keep it well under arq's job_timeout (300 s by default)
    )


async def startup(ctx: dict[str, Any]) -> None:
    """arq's on_startup: one generator per worker process, shared by its jobs."""
    images = ctx.get("images") or tempfile.mkdtemp(prefix="imagegen-arq-")
    # Not entered with `async with`: arq runs on_startup and on_shutdown in different
    # tasks, and the generator's task group must be left in the task that entered it.
    # Without it, generate() works the same; the remote cancel of a race loser is
    # awaited inline instead of in the background. submit() is not used: arq is the
    # job system here.
    ctx["gen"] = build_generator(os.environ["IMAGEGEN_REDIS_URL"], Path(images))


async def shutdown(ctx: dict[str, Any]) -> None:
    """arq's on_shutdown: close the generator and the RedisState it was given."""
    gen: ImageGenerator = ctx.pop("gen")
    await gen.aclose()
    await gen.state.aclose()  # we made the RedisState, so we close it


async def generate_image(ctx: dict[str, Any], prompt: str, **fields: Any) -> dict[str, Any]:
    """The arq task: one generation. Returns plain data, which arq pickles into Redis."""
    gen: ImageGenerator = ctx["gen"]
    try:
        result = await gen.generate(prompt, **fields)
    except ImageGenError as exc:
        # Returned, not raised: imagegen has already retried within its deadline (an
        # arq retry would start, and bill, a new generation), and imagegen's errors
        # carry keyword-only fields that pickle cannot restore in the producer.
        return {
            "status": "failed",
            "error": exc.to_dict(),
            "generation_id": getattr(exc, "generation_id", None),
        }
    # A cancellation (worker shutdown, arq's job_timeout) is not caught: imagegen
    # cancels the remote work, and arq runs the job again or marks it failed.
    return {
        "status": "succeeded",
        "generation_id": result.id,
        "provider": result.provider,
        "url": result.url,
        "key": result.key,
        "is_default": result.is_default,
    }


class WorkerSettings:
    """For ``arq examples.arq_worker.WorkerSettings``: a long-running worker."""

    functions = (generate_image,)
    on_startup = startup
    on_shutdown = shutdown
    queue_name = QUEUE
    redis_settings = RedisSettings.from_dsn(REDIS_URL or "redis://localhost:6379/0")
    max_jobs = 10  # concurrent generations per worker process


async def enqueue_generation(pool: ArqRedis, prompt: str, **fields: Any) -> Job:
    """The producer side: check the request here, so a bad one is refused before queueing."""
    ImageRequest(prompt=prompt, **fields)  # raises InvalidRequest naming the field
    job = await pool.enqueue_job("generate_image", prompt, **fields)
    assert job is not None  # None only when a job with the same _job_id exists
    return job


async def main(redis_url: str) -> None:
    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings, default_queue_name=QUEUE)
    try:
        try:
            await enqueue_generation(pool, "a lighthouse", width=100, height=256)
        except ImageGenError as exc:
            print(f"refused before queueing: {exc}")
        jobs = [await enqueue_generation(pool, p, width=256, height=256) for p in PROMPTS]
        print(f"enqueued {len(jobs)} jobs on {QUEUE}")

        with tempfile.TemporaryDirectory(prefix="imagegen-arq-") as images:
            # The worker side, in this process for the example: burst mode runs what is
            # queued and returns. handle_signals=False: the signals are not ours here.
            worker = create_worker(
                WorkerSettings,
                redis_settings=settings,
                burst=True,
                handle_signals=False,
                poll_delay=0.1,
                ctx={"images": images},
            )
            try:
                await worker.async_run()
            finally:
                await worker.close()  # runs on_shutdown
            print(f"worker done: {worker.jobs_complete} complete, {worker.jobs_failed} failed")

            results = [await job.result(timeout=10) for job in jobs]
            for job, result in zip(jobs, results, strict=True):
                outcome = result.get("provider") or result["error"]["kind"]
                print(f"{job.job_id[:8]}: {result['status']} {outcome} {result.get('url')}")

        # A second generator with its own Redis connections, as another process or
        # machine would have: it reads what the worker's generator wrote.
        reader = ImageGenerator(
            providers=[Placeholder()], state=RedisState(redis_url), namespace=NAMESPACE
        )
        try:
            record = await reader.record(results[-1]["generation_id"])
            assert record is not None
            print(f"record {record.id[:8]}: {record.status} by {record.provider}")
            for row in await reader.stats():
                print(
                    f"shared stats {row.day} {row.provider}: "
                    f"{row.requests} requests, {row.successes} successes"
                )
        finally:
            await reader.aclose()
            await reader.state.aclose()
    finally:
        await pool.aclose()


if __name__ == "__main__":
    if not REDIS_URL:
        print(
            "Set IMAGEGEN_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run this example; "
            "nothing was sent."
        )
        sys.exit(0)
    asyncio.run(main(REDIS_URL))  # arq is asyncio-only
