"""Unsplash's API: a random photo, its download report, and the photo list."""

from __future__ import annotations

from typing import Any

import anyio

from ._errors import _error
from ._http import _done, _Handler, _json, _Outcome, _Request
from ._instance import _Instance, _Job
from ._profiles import _REFUSALS, Fault
from ._routes import _answer, _Routes

_UNSPLASH_QUOTA = (("x-ratelimit-limit", "5000"), ("x-ratelimit-remaining", "4999"))


class _UnsplashRoutes(_Routes):
    """Unsplash's routes, under ``/{instance}``."""

    def _route_unsplash(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if request.method != "GET" or not rest or rest[0] != "photos":
            return None
        if rest == ["photos", "random"]:
            return (lambda: self._unsplash_random(inst, request)), True
        if len(rest) == 3 and rest[2] == "download":
            return (lambda: self._unsplash_track(inst, rest[1])), True
        if rest == ["photos"]:
            return (lambda: _done(_json(200, [], _UNSPLASH_QUOTA))), False
        return None

    async def _unsplash_random(self, inst: _Instance, request: _Request) -> _Outcome:
        query = request.query.get("query", "")
        inst.counts["creates"] += 1
        draw = inst.draw(query)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault in (Fault.FAILED, Fault.CONTENT_REJECTED):
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            if draw.fault is Fault.FAILED:
                return _error("unsplash", 404, "No photos found.")
            return _error("unsplash", 410, "Query flagged as spam")
        job = self._new_job(inst, draw, query, "jpg", dict(request.query))
        await self._accepted(job)
        await anyio.sleep(job.latency)
        photo = self._photo(inst, job)
        count = request.query.get("count")
        answer: Any = [photo] if count else photo
        return _answer(200, answer, job.fault, _UNSPLASH_QUOTA)

    def _photo(self, inst: _Instance, job: _Job) -> dict[str, Any]:
        raw = f"{self._file_url(inst, job)}?ixid=emulator"
        api = f"{self.origin}/{inst.name}/photos/{job.id}"
        return {
            "id": job.id,
            "created_at": "2025-05-01T10:00:00Z",
            "updated_at": "2025-06-01T10:00:00Z",
            "promoted_at": None,
            "width": 6000,
            "height": 4000,
            "color": "#c0a080",
            "blur_hash": "LKO2?U%2Tw=w]~RB",
            "description": job.prompt or None,
            "current_user_collections": [],
            "urls": {
                "raw": raw,
                "full": f"{raw}&q=85",
                "regular": f"{raw}&w=1080",
                "small": f"{raw}&w=400",
                "thumb": f"{raw}&w=200",
            },
            "links": {
                "self": api,
                "html": f"https://unsplash.com/photos/{job.id}",
                "download": f"https://unsplash.com/photos/{job.id}/download?ixid=emulator",
                # On Unsplash's own host, as Unsplash sends it: clients send the report
                # to their configured API root plus this path (imagegen does).
                "download_location": (
                    f"https://api.unsplash.com/photos/{job.id}/download?ixid=emulator"
                ),
            },
            "user": {
                "id": "u9",
                "updated_at": "2025-06-01T10:00:00Z",
                "username": "janedoe",
                "name": "Jane Doe",
                "first_name": "Jane",
                "last_name": "Doe",
                "bio": None,
                "location": None,
                "total_collections": 0,
                "social": {
                    "instagram_username": None,
                    "portfolio_url": None,
                    "twitter_username": None,
                },
                "links": {
                    "html": "https://unsplash.com/@janedoe",
                    "photos": "https://api.unsplash.com/users/janedoe/photos",
                    "self": "https://api.unsplash.com/users/janedoe",
                },
                "profile_image": {
                    "small": "https://images.unsplash.com/profile-1?w=32",
                    "medium": "https://images.unsplash.com/profile-1?w=64",
                    "large": "https://images.unsplash.com/profile-1?w=128",
                },
            },
        }

    async def _unsplash_track(self, inst: _Instance, photo_id: str) -> _Outcome:
        polled = await self._poll(inst, "tracked", photo_id, "unsplash", "Couldn't find Photo")
        if not isinstance(polled, tuple):
            return polled
        job, fault = polled
        answer = {"url": f"{self._file_url(inst, job)}?ixid=emulator"}
        return _answer(200, answer, fault, _UNSPLASH_QUOTA)
