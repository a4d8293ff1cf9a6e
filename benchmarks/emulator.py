"""A local HTTP emulator of the image APIs imagegen speaks: Replicate, fal, OpenAI Images, Unsplash.

One small HTTP/1.1 server (h11 on anyio, so it runs on asyncio and trio and owns its
sockets: it can hang a request or reset a connection) serves any number of named
*instances*, each speaking one vendor's API under its own path prefix, with the
JSON shapes of ``provider-apis.md``, and real image bytes (PNG, JPEG, WebP) for
outputs. Each instance has a :class:`ProviderProfile`: a latency distribution, the
odds of each :class:`Fault`, and a seed.

Two ways to run it:

- in-process, from tests: ``async with Emulator({"a": ProviderProfile(api="openai")}) as emu:``
  then ``emu.provider("a")`` is an imagegen provider pointed at it, on a free port of
  127.0.0.1;
- as a separate process, so the server does not share a CPU with the client under
  test: ``python -m benchmarks.emulator --port 0 --config profiles.json`` (it prints
  ``imagegen emulator listening on http://127.0.0.1:PORT``), or
  ``with EmulatorProcess(profiles) as emu:`` which starts and stops it. The same
  control methods work on both; the process is driven over ``/_emulator/...``.

Draws are reproducible: an instance's latency and fault for a request come from a
random generator seeded by ``(seed, instance, prompt, n)``, where ``n`` counts
earlier creates with that prompt. The same prompt therefore meets the same latency
at every run and under any concurrency, and a benchmark can compute the oracle
(for example, the minimum over three providers) from :meth:`ProviderProfile.draw`.

Faults can also be forced, deterministically: ``emu.force("a", Fault.HANG, count=3)``
makes the next three creates on ``a`` hang, whatever the odds say.

What each fault does (``billed`` means the emulator created a prediction, queue job
or image, and counted it):

================  =================================================================
fault             effect on a create (POST / GET photos/random)
================  =================================================================
SERVER_ERROR      500 with the vendor's error body; nothing billed
UNAVAILABLE       503 with ``Retry-After`` (fal: an infrastructure ``error_type``)
RATE_LIMITED      429 with ``Retry-After`` and ``retry-after-ms``; nothing billed
UNAUTHORIZED      401 with the vendor's error body; nothing billed
HANG              the request is read and never answered; nothing billed
RESET             the connection is reset (RST) once the request is read
MALFORMED_JSON    a 2xx whose JSON is cut short; billed
FAILED            the work fails: Replicate ``failed``, fal ``error`` / 422, OpenAI a
                  500 after the latency (billed); Unsplash 404 "No photos found"
CONTENT_REJECTED  Replicate ``failed`` with an NSFW message and fal 422
                  ``content_policy_violation`` (billed); OpenAI 400
                  ``content_policy_violation``, Unsplash 410 (not billed)
NOT_IMAGE         billed; the output URL (or b64 payload) is an HTML page, 200
OVERSIZED         billed; the output is ``oversize_bytes`` long (PNG magic, then zeros)
================  =================================================================

``poll_faults`` apply the first seven (:data:`POLL_FAULTS`) to status polls, result
fetches and download-tracking GETs instead.

Counters (:class:`ProviderStats`, per instance) count requests, creates, billed work,
cancellations (and those that stopped running work), client disconnects, polls,
downloads, download reports, and each fault applied.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import enum
import http
import json
import math
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

import anyio
import anyio.abc
import attrs
import h11
import httpx

from imagegen import Fal, OpenAIImages, Provider, Replicate, Unsplash
from imagegen.providers._placeholder import render_placeholder

__all__ = [
    "APIS",
    "POLL_FAULTS",
    "Draw",
    "Emulator",
    "EmulatorProcess",
    "Fault",
    "Fixed",
    "Latency",
    "LogNormal",
    "ProviderProfile",
    "ProviderStats",
    "closed_port_url",
    "default_profiles",
    "image_bytes",
]

Api = Literal["replicate", "fal", "openai", "unsplash"]
APIS: tuple[Api, ...] = ("replicate", "fal", "openai", "unsplash")


class Fault(enum.Enum):
    """What can go wrong with a request (see the module docstring for each effect)."""

    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    HANG = "hang"
    RESET = "reset"
    MALFORMED_JSON = "malformed_json"
    FAILED = "failed"
    CONTENT_REJECTED = "content_rejected"
    NOT_IMAGE = "not_image"
    OVERSIZED = "oversized"


#: Faults that answer before any work exists.
_REFUSALS = frozenset(
    {
        Fault.SERVER_ERROR,
        Fault.UNAVAILABLE,
        Fault.RATE_LIMITED,
        Fault.UNAUTHORIZED,
        Fault.HANG,
        Fault.RESET,
    }
)
#: Faults a poll can meet.
POLL_FAULTS = frozenset(_REFUSALS | {Fault.MALFORMED_JSON})


# -- latency ----------------------------------------------------------------------------------


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a number >= 0 (got {value!r})")


@attrs.frozen
class Fixed:
    """Always ``seconds``."""

    seconds: float = attrs.field(default=0.0, validator=_non_negative)

    def sample(self, _rng: random.Random) -> float:
        """``seconds``."""
        return float(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"fixed": seconds}``."""
        return {"fixed": self.seconds}


@attrs.frozen(kw_only=True)
class LogNormal:
    """``scale * median * exp(sigma * N(0, 1))``: a heavy right tail for larger ``sigma``.

    ``scale`` shrinks time for a run (median 2 s at ``scale=0.01`` is 20 ms); ``cap``
    (seconds, after scaling) bounds the tail.
    """

    median: float = attrs.field(validator=_non_negative)
    sigma: float = attrs.field(validator=_non_negative)
    scale: float = attrs.field(default=1.0, validator=_non_negative)
    cap: float | None = None

    def sample(self, rng: random.Random) -> float:
        """One draw."""
        value = self.scale * self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return value if self.cap is None else min(value, self.cap)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"lognormal": {...}}``."""
        return {"lognormal": attrs.asdict(self)}


Latency = Fixed | LogNormal


def latency_from(data: Mapping[str, Any] | float) -> Latency:
    """A latency from its JSON form (a bare number is :class:`Fixed`)."""
    if isinstance(data, int | float):
        return Fixed(float(data))
    if "fixed" in data:
        return Fixed(float(data["fixed"]))
    if "lognormal" in data:
        return LogNormal(**data["lognormal"])
    raise ValueError(f"unknown latency {data!r}")


# -- profiles ---------------------------------------------------------------------------------


def _faults(value: Mapping[Fault | str, float] | None) -> dict[Fault, float]:
    return {Fault(k): float(v) for k, v in (value or {}).items()}


def _check_odds(_: object, attribute: attrs.Attribute[dict[Fault, float]], value: object) -> None:
    assert isinstance(value, dict)
    if any(not 0 <= p <= 1 for p in value.values()) or sum(value.values()) > 1 + 1e-9:
        raise ValueError(f"{attribute.name}: odds must be in [0, 1] and sum to at most 1")


def _check_api(_: object, __: attrs.Attribute[str], value: object) -> None:
    if value not in APIS:
        raise ValueError(f"api must be one of {', '.join(APIS)} (got {value!r})")


@attrs.frozen
class Draw:
    """What one create meets: its latency (seconds) and fault (None: it succeeds)."""

    latency: float
    fault: Fault | None


@attrs.frozen(kw_only=True)
class ProviderProfile:
    """How one emulated provider behaves.

    Args:
        api: Which vendor API it speaks: ``replicate``, ``fal``, ``openai``, ``unsplash``.
        latency: Time from create to finished work.
        faults: Odds of each fault per create (summing to at most 1).
        poll_faults: Odds of each fault per status poll, result fetch or tracking GET
            (only the faults in :data:`POLL_FAULTS`).
        seed: Seeds every draw.
        error_latency: Delay before an error answer (5xx, 429, 401, reset, rejection).
        download_latency: Delay before an output file is served.
        retry_after: Seconds announced by 429 and 503 answers.
        image_side: Width and height of the PNG outputs (JPEG and WebP are 16x16).
        oversize_bytes: Length of an OVERSIZED output.
        keyed: Draw by prompt (reproducible under concurrency); False draws in
            arrival order.
    """

    api: Api = attrs.field(default="openai", validator=_check_api)
    latency: Latency = Fixed(0.0)
    faults: dict[Fault, float] = attrs.field(factory=dict, converter=_faults, validator=_check_odds)
    poll_faults: dict[Fault, float] = attrs.field(
        factory=dict, converter=_faults, validator=_check_odds
    )
    seed: int = 0
    error_latency: Latency = Fixed(0.0)
    download_latency: Latency = Fixed(0.0)
    retry_after: float = attrs.field(default=1.0, validator=_non_negative)
    image_side: int = 64
    oversize_bytes: int = 2_000_000
    keyed: bool = True

    def __attrs_post_init__(self) -> None:
        wrong = set(self.poll_faults) - POLL_FAULTS
        if wrong:
            raise ValueError(f"poll_faults cannot hold {sorted(f.value for f in wrong)}")

    def draw(self, name: str, key: str = "", n: int = 0) -> Draw:
        """The latency and fault of the ``n``-th create keyed ``key`` on instance ``name``."""
        rng = random.Random(f"{self.seed}:{name}:{key}:{n}")
        latency = self.latency.sample(rng)
        return Draw(latency, _pick(self.faults, rng.random()))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see :meth:`from_dict`)."""
        return {
            "api": self.api,
            "latency": self.latency.to_dict(),
            "faults": {f.value: p for f, p in self.faults.items()},
            "poll_faults": {f.value: p for f, p in self.poll_faults.items()},
            "seed": self.seed,
            "error_latency": self.error_latency.to_dict(),
            "download_latency": self.download_latency.to_dict(),
            "retry_after": self.retry_after,
            "image_side": self.image_side,
            "oversize_bytes": self.oversize_bytes,
            "keyed": self.keyed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderProfile:
        """A profile from :meth:`to_dict`'s form; missing keys take their defaults."""
        fields = dict(data)
        for name in ("latency", "error_latency", "download_latency"):
            if name in fields:
                fields[name] = latency_from(fields[name])
        return cls(**fields)


def _pick(odds: Mapping[Fault, float], u: float) -> Fault | None:
    total = 0.0
    for fault in Fault:  # enum order, so the same u picks the same fault every run
        total += odds.get(fault, 0.0)
        if u < total:
            return fault
    return None


def default_profiles() -> dict[str, ProviderProfile]:
    """One instance per API, named after it, answering at once without faults."""
    return {api: ProviderProfile(api=api) for api in APIS}


# -- counters ---------------------------------------------------------------------------------

_COUNTERS = (
    "requests",
    "creates",
    "billed",
    "cancellations",
    "cancelled_running",
    "disconnects",
    "polls",
    "downloads",
    "tracked",
)


@attrs.frozen(kw_only=True)
class ProviderStats:
    """One instance's counters since start (or the last :meth:`Emulator.reset`).

    Attributes:
        requests: API requests (everything but output downloads).
        creates: Requests that asked for new work (create, submit, generate, random photo).
        billed: Creates that made a prediction, queue job or image.
        cancellations: Cancel requests (Replicate ``/cancel``, fal ``PUT cancel_url``).
        cancelled_running: Those that stopped work still running.
        disconnects: Requests whose client left before the answer was sent.
        polls: Status polls and result fetches.
        downloads: Output file GETs.
        tracked: Unsplash download-tracking GETs.
        faults: How many times each fault (by value) was applied.
    """

    requests: int = 0
    creates: int = 0
    billed: int = 0
    cancellations: int = 0
    cancelled_running: int = 0
    disconnects: int = 0
    polls: int = 0
    downloads: int = 0
    tracked: int = 0
    faults: dict[str, int] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderStats:
        """From :meth:`to_dict`'s form."""
        return cls(**data)


# -- image bytes ------------------------------------------------------------------------------

# 16x16 images made once with Pillow, embedded so the emulator needs no Pillow at run time.
_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAoHBwgHBgoICAgLCgoLDhgQDg0NDh0VFhEYIx8lJCIfIiEmKzcvJik0KSEi"
    "MEExNDk7Pj4+JS5ESUM8SDc9Pjv/2wBDAQoLCw4NDhwQEBw7KCIoOzs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7"
    "Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozv/wAARCAAQABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcI"
    "CQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRol"
    "JicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ip"
    "qrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAA"
    "AAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLR"
    "ChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaX"
    "mJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEA"
    "PwCjRRRXz59kf//Z"
)
_WEBP = base64.b64decode(
    "UklGRjgAAABXRUJQVlA4ICwAAADQAQCdASoQABAAAkA4JaACdLoB+AADsAD+5AF/8WcjEdnm/+hJ2Dg/2gAAAA=="
)
_HTML = b"<!doctype html><html><head><title>Error</title></head><body>Not an image.</body></html>"
_PNGS: dict[int, bytes] = {}
_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


def image_bytes(fmt: str, side: int = 64) -> bytes:
    """A real image: a ``side``-pixel placeholder PNG, or the embedded 16x16 JPEG/WebP."""
    if fmt in ("jpg", "jpeg"):
        return _JPEG
    if fmt == "webp":
        return _WEBP
    if side not in _PNGS:
        _PNGS[side] = render_placeholder("imagegen emulator", side, side)
    return _PNGS[side]


def _oversized(size: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(max(0, size - 8))


def _ext(fmt: object) -> str:
    text = str(fmt).lower()
    return {"jpeg": "jpg", "jpg": "jpg", "webp": "webp"}.get(text, "png")


# -- HTTP plumbing ----------------------------------------------------------------------------


@attrs.frozen
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None


@attrs.frozen
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class _Action(enum.Enum):
    RESET = "reset"
    GONE = "gone"  # the client disconnected


_Outcome = _Reply | _Action
_Handler = Callable[[], Awaitable[_Outcome]]
_NETWORK_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
    h11.ProtocolError,
)


def _json(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, json.dumps(data, separators=(",", ":")).encode(), headers=headers)


def _malformed(status: int, data: Any) -> _Reply:
    # The start of the real answer, cut off mid-way: what a broken proxy or a crashed
    # worker sends, with a JSON content type.
    text = json.dumps(data, separators=(",", ":")).encode()
    return _Reply(status, text[: max(1, len(text) // 2)])


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _prefer_wait(value: str | None) -> float | None:
    """Seconds from ``Prefer: wait`` (60) or ``Prefer: wait=N``; None without it."""
    if not value:
        return None
    for part in value.split(","):
        name, _, number = part.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                return float(number) if number else 60.0
            except ValueError:
                return 60.0
    return None


# -- instances --------------------------------------------------------------------------------


@attrs.define
class _Job:
    id: str
    prompt: str
    fault: Fault | None
    latency: float
    created: float  # anyio.current_time()
    ready: float
    fmt: str
    input: dict[str, Any]
    model: str = ""
    seed: int = 0
    created_at: str = ""
    cancelled: bool = False


class _Instance:
    def __init__(self, name: str, profile: ProviderProfile) -> None:
        self.name = name
        self.profile = profile
        self.forced: deque[Fault | None] = deque()
        self.seen: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.jobs: dict[str, _Job] = {}
        self.other_draws = 0

    def reset(self) -> None:
        self.forced.clear()
        self.seen.clear()
        self.counts.clear()
        self.faults.clear()
        self.jobs.clear()
        self.other_draws = 0

    def draw(self, prompt: str) -> Draw:
        key = prompt if self.profile.keyed else ""
        n = self.seen.get(key, 0)
        self.seen[key] = n + 1
        result = self.profile.draw(self.name, key, n)
        if self.forced:
            result = attrs.evolve(result, fault=self.forced.popleft())
        if result.fault is not None:
            self.faults[result.fault.value] += 1
        return result

    def rng(self, purpose: str) -> random.Random:
        self.other_draws += 1
        return random.Random(f"{self.profile.seed}:{self.name}:{purpose}:{self.other_draws}")

    def poll_fault(self) -> Fault | None:
        if not self.profile.poll_faults:
            return None
        fault = _pick(self.profile.poll_faults, self.rng("poll").random())
        if fault is not None:
            self.faults[fault.value] += 1
        return fault

    def stats(self) -> ProviderStats:
        return ProviderStats(
            **{name: self.counts[name] for name in _COUNTERS}, faults=dict(self.faults)
        )


_AUTH = {"replicate": "Bearer ", "fal": "Key ", "openai": "Bearer ", "unsplash": "Client-ID "}


def _error(api: str, status: int, message: str, **extra: Any) -> _Reply:
    """An error answer in the vendor's own shape."""
    headers: list[tuple[str, str]] = []
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers.append(("retry-after", str(max(1, math.ceil(retry_after)))))
        headers.append(("retry-after-ms", str(round(retry_after * 1000))))
    if api == "replicate":
        title = http.HTTPStatus(status).phrase
        body = json.dumps({"title": title, "detail": message, "status": status}).encode()
        return _Reply(status, body, "application/problem+json", tuple(headers))
    if api == "fal":
        data: dict[str, Any] = {"detail": extra.get("detail", message)}
        if extra.get("error_type"):
            data["error_type"] = extra["error_type"]
            headers.append(("x-fal-error-type", extra["error_type"]))
        return _json(status, data, tuple(headers))
    if api == "openai":
        error = {
            "message": message,
            "type": extra.get("type", "invalid_request_error"),
            "param": None,
            "code": extra.get("code"),
        }
        headers.append(("x-request-id", f"req_{uuid.uuid4().hex}"))
        return _json(status, {"error": error}, tuple(headers))
    return _json(status, {"errors": [message]}, tuple(headers))


def _refusal(api: str, fault: Fault, retry_after: float) -> _Outcome:
    """The answer to a request that meets a fault before any work exists."""
    if fault is Fault.RESET:
        return _Action.RESET
    if fault is Fault.UNAUTHORIZED:
        messages = {
            "replicate": "You did not pass a valid authentication token",
            "fal": "Invalid Key Authorization header format",
            "openai": "Incorrect API key provided.",
            "unsplash": "OAuth error: The access token is invalid",
        }
        return _error(api, 401, messages[api], code="invalid_api_key")
    if fault is Fault.RATE_LIMITED:
        wait = max(1, math.ceil(retry_after))
        messages = {
            "replicate": f"Request was throttled. Your rate limit resets in ~{wait}s.",
            "fal": "Rate limit exceeded",
            "openai": "Rate limit reached for images per minute. Please try again later.",
            "unsplash": "Rate Limit Exceeded",
        }
        return _error(
            api,
            429,
            messages[api],
            retry_after=retry_after,
            type="requests",
            code="rate_limit_exceeded",
        )
    if fault is Fault.UNAVAILABLE:
        return _error(
            api,
            503,
            "Service temporarily unavailable",
            retry_after=retry_after,
            error_type="runner_scheduling_failure",
            type="server_error",
        )
    return _error(
        api,
        500,
        "The server had an error while processing your request.",
        detail="Internal Server Error",
        type="server_error",
    )


# -- the server -------------------------------------------------------------------------------


class _EmulatorBase:
    """URLs, imagegen providers and draws, shared by the in-process and process emulators."""

    def __init__(self, profiles: Mapping[str, ProviderProfile] | None) -> None:
        self._profiles: dict[str, ProviderProfile] = dict(
            default_profiles() if profiles is None else profiles
        )
        for name in self._profiles:
            _check_name(name)
        self.origin = ""

    def profile(self, name: str) -> ProviderProfile:
        """The profile instance ``name`` runs with."""
        return self._profiles[name]

    @property
    def names(self) -> tuple[str, ...]:
        """The instances, in the order they were given."""
        return tuple(self._profiles)

    def base_url(self, name: str) -> str:
        """What to pass as ``base_url=`` to the instance's imagegen provider.

        Replicate and OpenAI: ``{origin}/{name}/v1``; fal: ``{origin}/{name}/run`` (its
        queue is :meth:`queue_url`); Unsplash: ``{origin}/{name}``.
        """
        api = self._profiles[name].api
        root = f"{self.origin}/{name}"
        if api == "fal":
            return f"{root}/run"
        if api == "unsplash":
            return root
        return f"{root}/v1"

    def queue_url(self, name: str) -> str:
        """fal's queue host for instance ``name``: ``{origin}/{name}/queue``."""
        return f"{self.origin}/{name}/queue"

    def provider(self, name: str, **kwargs: Any) -> Provider:
        """An imagegen provider for instance ``name``, named after it, with a dummy key.

        ``kwargs`` go to the provider's constructor (``timeout=``, ``model=``,
        ``poll_interval=``...; ``base_url=`` too, to point it elsewhere).
        """
        api = self._profiles[name].api
        kwargs.setdefault("name", name)
        kwargs.setdefault("base_url", self.base_url(name))
        if api == "replicate":
            return Replicate(api_token="r8_emulator", **kwargs)
        if api == "fal":
            kwargs.setdefault("queue_url", self.queue_url(name))
            return Fal(key="emulator:secret-key", **kwargs)
        if api == "openai":
            return OpenAIImages(api_key="sk-emulator", **kwargs)
        return Unsplash(access_key="emulator-access-key", **kwargs)

    def draw(self, name: str, prompt: str = "", n: int = 0) -> Draw:
        """What the ``n``-th create with ``prompt`` meets on ``name`` (forced faults aside)."""
        profile = self._profiles[name]
        return profile.draw(name, prompt if profile.keyed else "", n)


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith("_") or quote(name, safe="") != name:
        raise ValueError(f"instance names must be URL-safe path segments (got {name!r})")


class Emulator(_EmulatorBase):
    """The emulator, served from this process on 127.0.0.1 (a free port by default).

    Use as ``async with Emulator(profiles) as emu:``; leaving the block stops the
    server, cancels every hanging request and closes every socket.

    Args:
        profiles: Instance name -> profile; default: one instance per API, named after it.
        host: Where to listen.
        port: 0 picks a free port.
    """

    def __init__(
        self,
        profiles: Mapping[str, ProviderProfile] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(profiles)
        self._instances = {name: _Instance(name, p) for name, p in self._profiles.items()}
        self._host, self._port = host, port
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self.connections = 0  # open now
        self.connections_total = 0

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Emulator:
        listener = await anyio.create_tcp_listener(local_host=self._host, local_port=self._port)
        self._listener = listener
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self.origin = f"http://{self._host}:{port}"
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(listener.serve, self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        assert self._listener is not None
        self._group.cancel_scope.cancel()
        await self._group.__aexit__(None, None, None)
        await self._listener.aclose()
        self._group = self._listener = None

    async def serve_forever(self) -> None:
        """Run until cancelled (the command line uses this)."""
        async with self:
            await anyio.sleep_forever()

    # -- control ---------------------------------------------------------------

    def stats(self, name: str) -> ProviderStats:
        """Instance ``name``'s counters."""
        return self._instances[name].stats()

    def all_stats(self) -> dict[str, ProviderStats]:
        """Every instance's counters."""
        return {name: inst.stats() for name, inst in self._instances.items()}

    def force(self, name: str, fault: Fault | None, count: int = 1) -> None:
        """The next ``count`` creates on ``name`` meet ``fault`` (None: succeed).

        Forced faults queue up after any already forced, and take precedence over
        the profile's odds; latencies are still drawn.
        """
        self._instances[name].forced.extend([fault] * count)

    def set_profile(self, name: str, profile: ProviderProfile) -> None:
        """Replace instance ``name``'s profile (or add a new instance); counters stay."""
        _check_name(name)
        self._profiles[name] = profile
        if name in self._instances:
            self._instances[name].profile = profile
        else:
            self._instances[name] = _Instance(name, profile)

    def reset(self, name: str | None = None) -> None:
        """Zero the counters, forget jobs, draws and forced faults (of one instance or all)."""
        for inst in self._instances.values() if name is None else [self._instances[name]]:
            inst.reset()

    # -- connections -----------------------------------------------------------

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        self.connections_total += 1
        try:
            async with stream:
                conn = h11.Connection(h11.SERVER)
                while True:
                    request = await self._read(stream, conn)
                    if request is None:
                        return
                    outcome = await self._answer(stream, conn, request)
                    if outcome is _Action.GONE:
                        return
                    if outcome is _Action.RESET:
                        _set_reset(stream)
                        return
                    assert isinstance(outcome, _Reply)
                    await stream.send(_encode(conn, outcome))
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        await _close_gracefully(stream)
                        return
                    conn.start_next_cycle()
        except _NETWORK_ERRORS:
            return
        finally:
            self.connections -= 1

    async def _read(self, stream: anyio.abc.SocketStream, conn: h11.Connection) -> _Request | None:
        head: h11.Request | None = None
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await stream.receive(65536)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    data = b""
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed, or PAUSED by a protocol we do not speak
                return None
        assert head is not None
        parts = urlsplit(head.target.decode("ascii", "replace"))
        return _Request(
            method=head.method.decode("ascii"),
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers},
            body=b"".join(chunks),
        )

    async def _answer(
        self, stream: anyio.abc.SocketStream, conn: h11.Connection, request: _Request
    ) -> _Outcome:
        handler, inst, slow = self._route(request)
        if not slow:
            return await handler()
        # The handler may wait (latency, a hang): meanwhile, watch the socket so a client
        # that gives up is noticed at once, counted, and its request dropped.
        outcome: list[_Outcome] = []
        async with anyio.create_task_group() as group:

            async def run() -> None:
                outcome.append(await handler())
                group.cancel_scope.cancel()

            async def watch() -> None:
                while True:
                    try:
                        data = await stream.receive(65536)
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        data = b""
                    if not data:
                        outcome.append(_Action.GONE)
                        group.cancel_scope.cancel()
                        return
                    conn.receive_data(data)  # pipelined: h11 keeps it for the next cycle

            group.start_soon(run)
            group.start_soon(watch)
        if outcome[0] is _Action.GONE and inst is not None:
            inst.counts["disconnects"] += 1
        return outcome[0]

    # -- routing ---------------------------------------------------------------

    def _route(self, request: _Request) -> tuple[_Handler, _Instance | None, bool]:
        parts = [p for p in request.path.split("/") if p]

        async def not_found() -> _Outcome:
            return _json(404, {"detail": f"no route for {request.method} {request.path}"})

        if not parts:
            return not_found, None, False
        if parts[0] == "_emulator":
            return (lambda: self._control(request, parts[1:])), None, False
        inst = self._instances.get(parts[0])
        if inst is None:
            return not_found, None, False
        rest = parts[1:]
        if len(rest) == 3 and rest[0] == "files" and request.method == "GET":
            inst.counts["downloads"] += 1
            return (lambda: self._file(inst, rest[1], rest[2])), inst, True
        inst.counts["requests"] += 1
        api = inst.profile.api
        scheme = _AUTH[api]
        if not request.headers.get("authorization", "").startswith(scheme):
            missing = _error(api, 401, f"missing or malformed Authorization ({scheme.strip()})")

            async def unauthorized() -> _Outcome:
                return missing

            return unauthorized, inst, False
        route = getattr(self, f"_route_{api}")(inst, request, rest)
        if route is None:
            vendor_404 = _error(api, 404, f"not found: {request.method} {request.path}")

            async def missing_route() -> _Outcome:
                return vendor_404

            return missing_route, inst, False
        handler, slow = route
        return handler, inst, slow

    # -- shared steps ----------------------------------------------------------

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

    def _poll_refusal(self, inst: _Instance) -> Fault | None:
        inst.counts["polls"] += 1
        return inst.poll_fault()

    # -- Replicate -------------------------------------------------------------

    def _route_replicate(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if not rest or rest[0] != "v1":
            return None
        path, method = rest[1:], request.method
        if method == "POST" and len(path) == 4 and path[0] == "models" and path[3] == "predictions":
            model = f"{path[1]}/{path[2]}"
            return (lambda: self._replicate_create(inst, request, model)), True
        if method == "POST" and path == ["predictions"]:
            return (lambda: self._replicate_create(inst, request, None)), True
        if method == "GET" and len(path) == 2 and path[0] == "predictions":
            return (lambda: self._replicate_get(inst, path[1])), True
        if method == "POST" and len(path) == 3 and path[0] == "predictions" and path[2] == "cancel":
            return (lambda: self._replicate_cancel(inst, path[1])), False
        if method == "GET" and path == ["account"]:
            account = {"type": "user", "username": "emulator", "name": "Emulator"}
            return (lambda: _done(_json(200, account))), False
        if method == "GET" and path == ["webhooks", "default", "secret"]:
            secret = {"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
            return (lambda: _done(_json(200, secret))), False
        return None

    async def _replicate_create(
        self, inst: _Instance, request: _Request, model: str | None
    ) -> _Outcome:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return _error("replicate", 422, "input: Invalid type. Expected: object")
        if model is None:
            version = body.get("version")
            if not isinstance(version, str) or not version:
                return _error("replicate", 422, "version is required")
            model = version
        data = body["input"]
        prompt = str(data.get("prompt", ""))
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        job = self._new_job(inst, draw, prompt, data.get("output_format", "webp"), data, model)
        wait = _prefer_wait(request.headers.get("prefer"))
        headers: tuple[tuple[str, str], ...] = ()
        if wait is not None:
            headers = (("preference-applied", f"wait={wait:g}"),)
            now = anyio.current_time()
            await anyio.sleep(max(0.0, min(job.ready, now + wait) - now))
        prediction = self._prediction(inst, job)
        if job.fault is Fault.MALFORMED_JSON:
            return _malformed(201, prediction)
        return _json(201, prediction, headers)

    def _prediction(self, inst: _Instance, job: _Job) -> dict[str, Any]:
        now = anyio.current_time()
        api = f"{self.origin}/{inst.name}/v1/predictions/{job.id}"
        done = now >= job.ready
        status = "processing"
        output: list[str] | None = None
        error: str | None = None
        if job.cancelled:
            status = "canceled"
        elif done and job.fault is Fault.FAILED:
            status, error = "failed", "CUDA error: out of memory"
        elif done and job.fault is Fault.CONTENT_REJECTED:
            status = "failed"
            error = "NSFW content detected. Try running it again, or try a different prompt."
        elif done:
            status, output = "succeeded", [self._file_url(inst, job)]
        prediction: dict[str, Any] = {
            "id": job.id,
            "model": job.model,
            "version": "hidden",
            "input": job.input,
            "logs": "",
            "output": output,
            "data_removed": False,
            "error": error,
            "status": status,
            "source": "api",
            "created_at": job.created_at,
            "started_at": job.created_at,
            "urls": {
                "get": api,
                "cancel": f"{api}/cancel",
                "web": f"https://replicate.com/p/{job.id}",
            },
        }
        if status not in ("processing", "starting"):
            prediction["completed_at"] = _now_iso()
            prediction["metrics"] = {"predict_time": job.latency, "total_time": job.latency}
        return prediction

    async def _replicate_get(self, inst: _Instance, prediction_id: str) -> _Outcome:
        fault = self._poll_refusal(inst)
        if fault in _REFUSALS:
            assert fault is not None
            return await self._refuse(inst, fault)
        job = inst.jobs.get(prediction_id)
        if job is None:
            return _error("replicate", 404, "The requested resource could not be found.")
        prediction = self._prediction(inst, job)
        if fault is Fault.MALFORMED_JSON:
            return _malformed(200, prediction)
        return _json(200, prediction)

    async def _replicate_cancel(self, inst: _Instance, prediction_id: str) -> _Outcome:
        inst.counts["cancellations"] += 1
        job = inst.jobs.get(prediction_id)
        if job is None:
            return _error("replicate", 404, "The requested resource could not be found.")
        if not job.cancelled and anyio.current_time() < job.ready:
            job.cancelled = True
            inst.counts["cancelled_running"] += 1
        return _json(200, self._prediction(inst, job))

    # -- fal -------------------------------------------------------------------

    def _route_fal(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if len(rest) >= 3 and rest[0] == "run" and request.method == "POST":
            return (lambda: self._fal_sync(inst, request, "/".join(rest[1:]))), True
        if len(rest) < 3 or rest[0] != "queue":
            return None
        path = rest[1:]
        if "requests" in path:
            at = path.index("requests")
            tail = path[at + 1 :]
            if request.method == "GET" and len(tail) == 2 and tail[1] == "status":
                return (lambda: self._fal_status(inst, tail[0])), True
            if request.method == "GET" and len(tail) == 1:
                return (lambda: self._fal_result(inst, tail[0])), True
            if request.method == "PUT" and len(tail) == 2 and tail[1] == "cancel":
                return (lambda: self._fal_cancel(inst, tail[0])), False
            return None
        if request.method == "POST":
            return (lambda: self._fal_submit(inst, request, "/".join(path))), True
        return None

    def _fal_start(
        self, inst: _Instance, request: _Request, app: str
    ) -> _Outcome | _Job | _Refused:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            detail = [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error"}]
            return _json(422, {"detail": detail})
        inst.counts["creates"] += 1
        draw = inst.draw(body["prompt"])
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return _Refused(draw.fault)
        return self._new_job(
            inst, draw, body["prompt"], body.get("output_format", "jpeg"), body, app
        )

    def _fal_output(self, inst: _Instance, job: _Job) -> dict[str, Any]:
        size = job.input.get("image_size", "landscape_4_3")
        presets = {
            "square_hd": (1024, 1024),
            "square": (512, 512),
            "portrait_4_3": (768, 1024),
            "portrait_16_9": (576, 1024),
            "landscape_4_3": (1024, 768),
            "landscape_16_9": (1024, 576),
        }
        if isinstance(size, dict):
            width, height = int(size.get("width", 1024)), int(size.get("height", 768))
        else:
            width, height = presets.get(str(size), (1024, 768))
        content_type = "image/jpeg" if job.fmt == "jpg" else _TYPES.get(job.fmt, "image/png")
        return {
            "images": [
                {
                    "url": self._file_url(inst, job),
                    "width": width,
                    "height": height,
                    "content_type": content_type,
                }
            ],
            "timings": {"inference": round(job.latency, 6)},
            "seed": job.seed,
            "has_nsfw_concepts": [False],
            "prompt": job.prompt,
        }

    @staticmethod
    def _fal_model_error(job: _Job) -> _Reply | None:
        if job.fault is Fault.FAILED:
            detail = [{"loc": ["body"], "msg": "The model failed to generate an image.",
                       "type": "generation_failed"}]  # fmt: skip
        elif job.fault is Fault.CONTENT_REJECTED:
            detail = [{"loc": ["body", "prompt"], "msg": "The content could not be processed "
                       "because it contained material flagged by a content checker.",
                       "type": "content_policy_violation"}]  # fmt: skip
        else:
            return None
        return _json(422, {"detail": detail}, (("x-fal-retryable", "false"),))

    async def _fal_sync(self, inst: _Instance, request: _Request, app: str) -> _Outcome:
        started = self._fal_start(inst, request, app)
        if isinstance(started, _Refused):
            return await self._refuse(inst, started.fault)
        if not isinstance(started, _Job):
            return started
        job = started
        await anyio.sleep(job.latency)
        failure = self._fal_model_error(job)
        if failure is not None:
            return failure
        output = self._fal_output(inst, job)
        if job.fault is Fault.MALFORMED_JSON:
            return _malformed(200, output)
        return _json(200, output, (("x-fal-request-id", job.id),))

    async def _fal_submit(self, inst: _Instance, request: _Request, app: str) -> _Outcome:
        started = self._fal_start(inst, request, app)
        if isinstance(started, _Refused):
            return await self._refuse(inst, started.fault)
        if not isinstance(started, _Job):
            return started
        job = started
        # Status, result and cancel URLs drop the app's subpath, as fal's do.
        parts = app.split("/")
        root = "/".join(parts[: 3 if parts[0] in ("workflows", "comfy") else 2])
        base = f"{self.origin}/{inst.name}/queue/{root}/requests/{job.id}"
        answer = {
            "request_id": job.id,
            "gateway_request_id": job.id,
            "status": "IN_QUEUE",
            "queue_position": 0,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
        if job.fault is Fault.MALFORMED_JSON:
            return _malformed(200, answer)
        return _json(200, answer)

    async def _fal_status(self, inst: _Instance, request_id: str) -> _Outcome:
        fault = self._poll_refusal(inst)
        if fault in _REFUSALS:
            assert fault is not None
            return await self._refuse(inst, fault)
        job = inst.jobs.get(request_id)
        if job is None:
            return _error("fal", 404, "Request not found")
        if job.cancelled:
            status: dict[str, Any] = {
                "status": "COMPLETED",
                "logs": [],
                "error": "Request was cancelled",
            }
        elif anyio.current_time() < job.ready:
            log = {"message": "generating", "level": "INFO", "source": "USER",
                   "timestamp": _now_iso()}  # fmt: skip
            status = {"status": "IN_PROGRESS", "logs": [log]}
        else:
            status = {"status": "COMPLETED", "logs": [],
                      "metrics": {"inference_time": round(job.latency, 6)}}  # fmt: skip
            if job.fault in (Fault.FAILED, Fault.CONTENT_REJECTED):
                status["error"] = "Invalid status code: 422"
        if fault is Fault.MALFORMED_JSON:
            return _malformed(200, status)
        return _json(200, status)

    async def _fal_result(self, inst: _Instance, request_id: str) -> _Outcome:
        fault = self._poll_refusal(inst)
        if fault in _REFUSALS:
            assert fault is not None
            return await self._refuse(inst, fault)
        job = inst.jobs.get(request_id)
        if job is None:
            return _error("fal", 404, "Request not found")
        if job.cancelled or anyio.current_time() < job.ready:
            return _error("fal", 400, "Request is still in progress")
        failure = self._fal_model_error(job)
        if failure is not None:
            return failure
        output = self._fal_output(inst, job)
        if fault is Fault.MALFORMED_JSON:
            return _malformed(200, output)
        return _json(200, output)

    async def _fal_cancel(self, inst: _Instance, request_id: str) -> _Outcome:
        inst.counts["cancellations"] += 1
        job = inst.jobs.get(request_id)
        if job is None:
            return _json(404, {"status": "NOT_FOUND"})
        if job.cancelled or anyio.current_time() >= job.ready:
            return _json(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        inst.counts["cancelled_running"] += 1
        return _json(202, {"status": "CANCELLATION_REQUESTED"})

    # -- OpenAI ----------------------------------------------------------------

    def _route_openai(
        self, inst: _Instance, request: _Request, rest: list[str]
    ) -> tuple[_Handler, bool] | None:
        if rest[:1] != ["v1"]:
            return None
        path = rest[1:]
        if request.method == "POST" and path == ["images", "generations"]:
            return (lambda: self._openai_generate(inst, request)), True
        if request.method == "GET" and len(path) >= 2 and path[0] == "models":
            model = {"id": "/".join(path[1:]), "object": "model", "created": 0,
                     "owned_by": "emulator"}  # fmt: skip
            return (lambda: _done(_json(200, model))), False
        return None

    async def _openai_generate(self, inst: _Instance, request: _Request) -> _Outcome:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return _error("openai", 400, "'prompt' is a required property", code=None)
        prompt = body["prompt"]
        model = str(body.get("model") or "dall-e-2")
        inst.counts["creates"] += 1
        draw = inst.draw(prompt)
        if draw.fault in _REFUSALS:
            assert draw.fault is not None
            return await self._refuse(inst, draw.fault)
        if draw.fault is Fault.CONTENT_REJECTED:
            await anyio.sleep(inst.profile.error_latency.sample(inst.rng("error")))
            return _error(
                "openai",
                400,
                "Your request was rejected as a result of our safety system.",
                code="content_policy_violation",
            )
        gpt = model.startswith("gpt-image")
        fmt = str(body.get("output_format") or "png") if gpt else "png"
        job = self._new_job(inst, draw, prompt, fmt, body, model)
        await anyio.sleep(job.latency)
        request_id = ("x-request-id", f"req_{job.id}")
        if job.fault is Fault.FAILED:
            return _error(
                "openai",
                500,
                "The server had an error while processing your request. Sorry about that!",
                type="server_error",
            )
        response_format = body.get("response_format") or ("b64_json" if gpt else "url")
        item: dict[str, Any] = {}
        if response_format == "b64_json":
            item["b64_json"] = base64.b64encode(self._payload(inst, job)).decode()
        else:
            item["url"] = self._file_url(inst, job)
        if model.startswith("dall-e-3"):
            item["revised_prompt"] = prompt
        answer: dict[str, Any] = {"created": int(time.time()), "data": [item]}
        if gpt:
            answer.update(
                background="opaque",
                output_format=fmt,
                quality=body.get("quality", "auto") if body.get("quality") != "auto" else "low",
                size=body.get("size", "1024x1024"),
                usage={
                    "input_tokens": len(prompt.split()),
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": len(prompt.split())},
                    "output_tokens": 272,
                    "total_tokens": 272 + len(prompt.split()),
                },
            )
        if job.fault is Fault.MALFORMED_JSON:
            return _malformed(200, answer)
        return _json(200, answer, (request_id,))

    # -- Unsplash --------------------------------------------------------------

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
        await anyio.sleep(job.latency)
        photo = self._photo(inst, job)
        count = request.query.get("count")
        answer: Any = [photo] if count else photo
        if job.fault is Fault.MALFORMED_JSON:
            return _malformed(200, answer)
        return _json(200, answer, _UNSPLASH_QUOTA)

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
        inst.counts["tracked"] += 1
        fault = inst.poll_fault()
        if fault in _REFUSALS:
            assert fault is not None
            return await self._refuse(inst, fault)
        job = inst.jobs.get(photo_id)
        if job is None:
            return _error("unsplash", 404, "Couldn't find Photo")
        answer = {"url": f"{self._file_url(inst, job)}?ixid=emulator"}
        if fault is Fault.MALFORMED_JSON:
            return _malformed(200, answer)
        return _json(200, answer, _UNSPLASH_QUOTA)

    # -- control API -----------------------------------------------------------

    async def _control(self, request: _Request, parts: list[str]) -> _Outcome:
        method = request.method
        body = request.json() or {}
        try:
            if method == "GET" and parts == ["health"]:
                return _json(
                    200,
                    {
                        "ok": True,
                        "instances": list(self._instances),
                        "connections": self.connections,
                        "connections_total": self.connections_total,
                    },
                )
            if method == "GET" and parts == ["stats"]:
                return _json(200, {n: s.to_dict() for n, s in self.all_stats().items()})
            if method == "GET" and len(parts) == 2 and parts[0] == "stats":
                return _json(200, self.stats(parts[1]).to_dict())
            if method == "GET" and parts == ["profiles"]:
                return _json(200, {n: p.to_dict() for n, p in self._profiles.items()})
            if method == "PUT" and len(parts) == 2 and parts[0] == "profiles":
                self.set_profile(parts[1], ProviderProfile.from_dict(body))
                return _json(200, {"ok": True})
            if method == "POST" and parts == ["force"]:
                fault = None if body.get("fault") is None else Fault(body["fault"])
                self.force(str(body["provider"]), fault, int(body.get("count", 1)))
                return _json(200, {"ok": True})
            if method == "POST" and parts == ["reset"]:
                self.reset(body.get("provider"))
                return _json(200, {"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            return _json(400, {"detail": f"{type(exc).__name__}: {exc}"})
        return _json(404, {"detail": "unknown control route"})


@attrs.frozen
class _Refused:
    fault: Fault


_UNSPLASH_QUOTA = (("x-ratelimit-limit", "5000"), ("x-ratelimit-remaining", "4999"))


async def _done(reply: _Reply) -> _Outcome:
    return reply


def _encode(conn: h11.Connection, reply: _Reply) -> bytes:
    headers = [
        ("content-type", reply.content_type),
        ("content-length", str(len(reply.body))),
        ("server", "imagegen-emulator"),
        *reply.headers,
    ]
    try:
        reason = http.HTTPStatus(reply.status).phrase.encode()
    except ValueError:
        reason = b""
    out = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason)) or b""
    if reply.body:
        out += conn.send(h11.Data(data=reply.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


async def _close_gracefully(stream: anyio.abc.SocketStream) -> None:
    """Flush and send FIN, then wait (briefly) for the client to close: anyio's close aborts."""
    with anyio.move_on_after(1.0), contextlib.suppress(*_NETWORK_ERRORS):
        await stream.send_eof()
        while await stream.receive():
            pass


def _set_reset(stream: anyio.abc.SocketStream) -> None:
    """Make closing ``stream`` send RST instead of FIN (SO_LINGER with a zero timeout)."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if sock is not None:
        # anyio closes a stream by aborting it (asyncio) or closing the socket (trio): no
        # FIN goes first, so with this option the peer sees only the RST.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def closed_port_url(host: str = "127.0.0.1") -> str:
    """An http URL on a port where nothing listens: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return f"http://{host}:{port}"


# -- the emulator in a child process ----------------------------------------------------------


class EmulatorProcess(_EmulatorBase):
    """The emulator in a child process (``python -m benchmarks.emulator``), driven over HTTP.

    ``with EmulatorProcess(profiles) as emu:`` starts it on a free port and waits
    until it listens; leaving the block stops it (SIGTERM, then SIGKILL after 5 s).
    The control methods mirror :class:`Emulator`'s, as blocking HTTP calls to its
    ``/_emulator`` routes: call them between measurements, not inside them.

    Args:
        profiles: As for :class:`Emulator`.
        backend: The child's event loop, ``asyncio`` or ``trio``.
    """

    def __init__(
        self, profiles: Mapping[str, ProviderProfile] | None = None, *, backend: str = "asyncio"
    ) -> None:
        super().__init__(profiles)
        self.backend = backend
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None
        self._config: Path | None = None

    def __enter__(self) -> EmulatorProcess:
        handle, path = tempfile.mkstemp(prefix="imagegen-emulator-", suffix=".json")
        self._config = Path(path)
        os.close(handle)
        config = {"providers": {n: p.to_dict() for n, p in self._profiles.items()}}
        self._config.write_text(json.dumps(config), encoding="utf-8")
        root = Path(__file__).resolve().parent.parent
        command = [sys.executable, "-m", "benchmarks.emulator", "--port", "0"]
        self._proc = subprocess.Popen(
            [*command, "--config", path, "--backend", self.backend],
            cwd=root,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if " listening on " not in line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.origin = line.rsplit(" ", 1)[1]
        self._client = httpx.Client(base_url=f"{self.origin}/_emulator", timeout=10.0)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._config is not None:
            self._config.unlink(missing_ok=True)
            self._config = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the child has used so far; None off Linux."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the ")".
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        assert self._client is not None, "use EmulatorProcess inside `with`"
        response = self._client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def stats(self, name: str) -> ProviderStats:
        """Instance ``name``'s counters."""
        return ProviderStats.from_dict(self._call("GET", f"/stats/{name}"))

    def all_stats(self) -> dict[str, ProviderStats]:
        """Every instance's counters."""
        return {n: ProviderStats.from_dict(s) for n, s in self._call("GET", "/stats").items()}

    def force(self, name: str, fault: Fault | None, count: int = 1) -> None:
        """As :meth:`Emulator.force`."""
        value = None if fault is None else fault.value
        self._call("POST", "/force", {"provider": name, "fault": value, "count": count})

    def set_profile(self, name: str, profile: ProviderProfile) -> None:
        """As :meth:`Emulator.set_profile`."""
        _check_name(name)
        self._call("PUT", f"/profiles/{name}", profile.to_dict())
        self._profiles[name] = profile

    def reset(self, name: str | None = None) -> None:
        """As :meth:`Emulator.reset`."""
        self._call("POST", "/reset", {"provider": name})


# -- command line -----------------------------------------------------------------------------


def load_profiles(path: str | None) -> dict[str, ProviderProfile]:
    """Profiles from a JSON file ``{"providers": {name: profile}}``; None: the defaults."""
    if path is None:
        return default_profiles()
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {n: ProviderProfile.from_dict(p) for n, p in data["providers"].items()}


async def _serve(profiles: dict[str, ProviderProfile], host: str, port: int) -> None:
    import signal  # noqa: PLC0415 - only the command line needs it

    async with Emulator(profiles, host=host, port=port) as emu:
        print(f"imagegen emulator listening on {emu.origin}", flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                return


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.emulator``: serve until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description="imagegen's local provider emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--config", help='JSON file: {"providers": {name: profile}}')
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args(argv)
    anyio.run(_serve, load_profiles(args.config), args.host, args.port, backend=args.backend)


if __name__ == "__main__":
    main()
