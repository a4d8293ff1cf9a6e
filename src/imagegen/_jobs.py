"""Background jobs: ``submit()`` now, ``job()`` and ``wait()`` later, from any process.

A job runs in the generator's task group; its status lives in the state backend,
so a process sharing the backend can read it. Finished jobs stay in memory (with
their bytes) for ten minutes; after that ``job()`` reads them from the backend.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import attrs
import cachetools

from ._clock import Clock
from ._errors import (
    ImageGenError,
    JobCancelled,
    JobLost,
    JobTimeout,
    NotRunning,
    StorageError,
    UnknownJob,
)
from ._models import ImageResult, Job
from ._request import ImageRequest
from .state import StateBackend

__all__ = ["Jobs"]

logger = logging.getLogger("imagegen")

_JOB_TTL = 86_400.0  # seconds a job's status is kept
_STALE_GRACE = 60.0  # a job "running" this long past its deadline has lost its process
_LOCAL_JOB_TTL = 600.0
_LOCAL_JOBS = 10_000
_SAVE_BOUND = 5.0  # seconds a finished job's outcome may take to store, in the background

Generate = Callable[..., Awaitable[ImageResult]]


class Jobs:
    """The generator's background jobs.

    Args:
        state: Where job statuses live (``<prefix>job:<id>``).
        prefix: The generator's state-key prefix.
        clock: For deadlines and polling.
        generate: Runs one generation (``request, job_id=, experiment_key=``).
    """

    def __init__(self, state: StateBackend, prefix: str, clock: Clock, generate: Generate) -> None:
        self._state = state
        self._prefix = f"{prefix}job:"
        self._clock = clock
        self._generate = generate
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._done: dict[str, anyio.Event] = {}
        self._local: cachetools.TTLCache[str, Job] = cachetools.TTLCache(
            maxsize=_LOCAL_JOBS, ttl=_LOCAL_JOB_TTL, timer=clock.monotonic
        )

    async def submit(
        self,
        background: anyio.abc.TaskGroup | None,
        request: ImageRequest,
        *,
        lifetime: float,
        experiment_key: str | None,
        limit: float | None = None,
    ) -> str:
        """Start a job in ``background`` that must end within ``lifetime`` seconds; its id.

        Raises:
            NotRunning: There is no background (the generator is not inside ``async with``).
        """
        if background is None:
            raise NotRunning(
                "submit() runs jobs in the generator's task group: "
                "use `async with ImageGenerator(...) as gen`",
                field="submit",
            )
        job_id = uuid.uuid4().hex
        deadline = self._clock.time() + lifetime
        await self._save(Job(id=job_id, status="pending", deadline=deadline))
        scope = self._scopes[job_id] = anyio.CancelScope()
        self._done[job_id] = anyio.Event()
        background.start_soon(self._run, job_id, request, scope, deadline, experiment_key, limit)
        return job_id

    def cancel_all(self) -> None:
        """End every running job now; each is recorded failed, with the reason."""
        for scope in self._scopes.values():
            scope.cancel()

    async def _run(
        self,
        job_id: str,
        request: ImageRequest,
        scope: anyio.CancelScope,
        deadline: float,
        experiment_key: str | None,
        limit: float | None,
    ) -> None:
        job: Job | None = None

        async def running() -> None:
            # Its turn came (until then it is "pending": queued behind max_in_flight).
            try:
                await self._save(Job(id=job_id, status="running", deadline=deadline))
            except StorageError as exc:
                # Readers see "pending" meanwhile; the outcome is written at the end.
                logger.warning("job %s: could not record that it runs: %s", job_id, exc)

        with scope:
            try:
                result = await self._generate(
                    request,
                    job_id=job_id,
                    experiment_key=experiment_key,
                    limit=limit,
                    on_admitted=running,
                )
            except ImageGenError as failure:
                job = Job(id=job_id, status="failed", error=failure, deadline=deadline)
            except Exception as exc:
                logger.exception("job %s failed unexpectedly", job_id)
                bug = ImageGenError(f"unexpected {type(exc).__name__} (see the log)")
                job = Job(id=job_id, status="failed", error=bug, deadline=deadline)
            else:
                job = Job(id=job_id, status="succeeded", result=result, deadline=deadline)
        if job is None:  # cancelled: the generator is closing
            reason = JobCancelled("cancelled: the generator was closed before the job ended")
            job = Job(id=job_id, status="failed", error=reason, deadline=deadline)
        self._local[job_id] = job
        self._scopes.pop(job_id, None)
        until = self._clock.monotonic() + _SAVE_BOUND
        with anyio.CancelScope(shield=True), self._clock.deadline_scope(until) as bound:
            try:
                await self._save(job)
            except Exception as exc:  # noqa: BLE001 - the outcome stays in memory for job()
                logger.warning("could not store job %s's outcome: %r", job_id, exc)
        if bound.cancelled_caught:
            logger.warning(
                "could not store job %s's outcome: no answer in %.0fs", job_id, _SAVE_BOUND
            )
        # Waiters already hold the event; later ones find the job finished.
        self._done.pop(job_id).set()

    async def _save(self, job: Job) -> None:
        await self._state.set(
            self._prefix + job.id, json.dumps(job.to_dict()).encode(), ttl=_JOB_TTL
        )

    async def job(self, job_id: str) -> Job | None:
        """A job's status (and result or error once it ended); None for an unknown id."""
        local = self._local.get(job_id)
        if local is not None:
            return local
        raw = await self._state.get(self._prefix + job_id)
        if raw is None:
            return None
        job = Job.from_dict(json.loads(raw))
        stale = job.deadline is not None and self._clock.time() > job.deadline + _STALE_GRACE
        if job.status in ("pending", "running") and stale:
            lost = JobLost("the job's process stopped before it ended")
            return attrs.evolve(job, status="failed", error=lost)
        return job

    async def wait(self, job_id: str, timeout: float | None) -> ImageResult:  # noqa: ASYNC109 - the public signature takes a timeout
        """The job's image once it ends; its error raised if it failed.

        Raises:
            UnknownJob: No job has that id.
            JobTimeout: The job did not end within ``timeout`` seconds.
            ImageGenError: The job's own error, when it failed.
        """
        clock = self._clock
        end = None if timeout is None else clock.monotonic() + timeout
        pause = 0.05
        while True:
            job = await self.job(job_id)
            if job is None:
                raise UnknownJob(f"no job has the id {job_id!r}", field="job_id")
            if job.status == "succeeded" and job.result is not None:
                return job.result
            if job.status == "failed":
                raise job.error or ImageGenError(f"job {job_id} failed")
            left = math.inf if end is None else end - clock.monotonic()
            if left <= 0:
                raise JobTimeout(f"job {job_id} did not end within {timeout}s")
            # Here, the job's own event says when it ends; elsewhere, poll the backend.
            done = self._done.get(job_id)
            with clock.deadline_scope(clock.monotonic() + min(left, pause)):
                if done is not None:
                    await done.wait()
                else:
                    await anyio.sleep_forever()
            pause = min(pause * 2, 1.0)
