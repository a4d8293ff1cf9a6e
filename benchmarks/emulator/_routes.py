"""Steps every vendor's routes share: refusals, jobs, output files and URLs, polls."""

from __future__ import annotations

import random
import uuid
from typing import Any

import anyio
import attrs

from ._base import _EmulatorBase
from ._errors import _error, _refusal
from ._http import _json, _malformed, _now_iso, _Outcome, _Reply
from ._images import _HTML, _TYPES, _ext, _oversized, image_bytes
from ._instance import _Instance, _Job
from ._profiles import _REFUSALS, Draw, Fault


def _answer(
    status: int, data: Any, fault: Fault | None, headers: tuple[tuple[str, str], ...] = ()
) -> _Reply:
    """``data`` as JSON; cut in half for MALFORMED_JSON, cut off mid-send for CUT_OFF."""
    if fault is Fault.MALFORMED_JSON:
        return _malformed(status, data)
    reply = _json(status, data, headers)
    return attrs.evolve(reply, cut=True) if fault is Fault.CUT_OFF else reply


class _Routes(_EmulatorBase):
    """The shared steps; each vendor's routes are a subclass, and :class:`Emulator` has all."""

    async def _refuse(self, inst: _Instance, fault: Fault) -> _Outcome:
        if fault is Fault.HANG:
            await anyio.sleep_forever()
        await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
        return _refusal(inst.profile.api, fault, inst.profile.retry_after)

    def _new_job(
        self,
        inst: _Instance,
        draw: Draw,
        prompt: str,
        fmt: str,
        data: dict[str, Any],
        model: str = "",
    ) -> _Job:
        now = anyio.current_time()
        inst.counts["billed"] += 1
        seed = data.get("seed")
        job = _Job(
            id=uuid.uuid4().hex[:26],
            prompt=prompt,
            fault=draw.fault,
            latency=draw.latency,
            created=now,
            ready=now + draw.latency,
            fmt=_ext(fmt),
            input=data,
            model=model,
            seed=seed if isinstance(seed, int) else random.Random(prompt).randrange(2**31),
            created_at=_now_iso(),
        )
        inst.jobs[job.id] = job
        return job

    async def _accepted(self, job: _Job) -> None:
        """Where a create whose work now exists stalls for good, when its fault is STALL."""
        if job.fault is Fault.STALL:
            await anyio.sleep_forever()

    def _file_url(self, inst: _Instance, job: _Job) -> str:
        kind = "image"
        if job.fault is Fault.NOT_IMAGE:
            kind = "html"
        elif job.fault is Fault.OVERSIZED:
            kind = "big"
        return f"{self.origin}/{inst.name}/files/{kind}/{job.id}.{job.fmt}"

    def _payload(self, inst: _Instance, job: _Job) -> bytes:
        if job.fault is Fault.NOT_IMAGE:
            return _HTML
        if job.fault is Fault.OVERSIZED:
            return _oversized(inst.profile.oversize_bytes)
        return image_bytes(job.fmt, inst.profile.image_side)

    async def _file(self, inst: _Instance, kind: str, filename: str) -> _Outcome:
        await anyio.sleep(inst.profile.download_latency.sample(inst.rng("download")))
        if kind == "html":
            return _Reply(200, _HTML, "text/html; charset=utf-8")
        if kind == "big":
            return _Reply(200, _oversized(inst.profile.oversize_bytes), "image/png")
        fmt = filename.rpartition(".")[2].lower()
        if kind != "image" or fmt not in _TYPES:
            return _Reply(404, b"Not Found", "text/plain")
        return _Reply(200, image_bytes(fmt, inst.profile.image_side), _TYPES[fmt])

    async def _poll(
        self, inst: _Instance, counter: str, job_id: str, api: str, not_found: str
    ) -> _Outcome | tuple[_Job, Fault | None]:
        """The start of a status poll, result fetch or tracking GET.

        Counts it under ``counter``, draws its poll fault and answers one that refuses,
        then finds job ``job_id`` (a 404 in ``api``'s shape saying ``not_found`` if none).

        Returns:
            The job and the poll's fault (None, or one the caller applies such as
            MALFORMED_JSON), or the answer to send instead.
        """
        inst.counts[counter] += 1
        fault = inst.poll_fault()
        if fault in _REFUSALS:
            assert fault is not None
            return await self._refuse(inst, fault)
        job = inst.jobs.get(job_id)
        if job is None:
            return _error(api, 404, not_found)
        return job, fault
