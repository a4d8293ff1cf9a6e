"""The values that come out: results, attempts, records, jobs, events, statistics.

Also the JSON round trip of errors (:func:`error_from_dict`), which needs
:class:`Attempt` for the errors that carry attempts.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal

import attrs

from ._errors import (
    BY_KIND,
    AttemptsError,
    ContentRejected,
    ImageGenError,
    InvalidConfig,
    InvalidRequest,
    ProviderError,
    SpendingCapReached,
)
from ._request import ImageRequest

__all__ = [
    "Attempt",
    "Event",
    "GeneratedImage",
    "ImageRequest",
    "ImageResult",
    "Job",
    "ProviderDayStats",
    "Record",
    "RequestWarning",
    "VariantDayStats",
    "add_cost",
    "error_from_dict",
    "total_cost",
]

AttemptOutcome = Literal["success", "error", "cancelled", "skipped"]
JobStatus = Literal["pending", "running", "succeeded", "failed"]
RecordStatus = Literal["running", "succeeded", "failed"]


def _cost(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def add_cost(total: float | None, cost: float | None) -> float | None:
    """``total + cost``, where not knowing either means not knowing the sum."""
    return None if total is None or cost is None else total + cost


def total_cost(attempts: Iterable[Attempt]) -> float | None:
    """The sum of the attempts' costs; None when any of them is not known."""
    start: float | None = 0.0
    return functools.reduce(add_cost, (attempt.cost for attempt in attempts), start)


@attrs.frozen
class RequestWarning:
    """A request field the image was not made exactly as asked for.

    Args:
        field: The :class:`ImageRequest` field (``"width"``, ``"seed"``,
            ``"output_format"``...).
        message: What was done instead, in words (``"1000 was rounded to 1024"``).
        provider: The provider that served the image; a provider building its own
            warnings leaves it None and the generator fills it in.
    """

    field: str
    message: str
    provider: str | None = None

    def __str__(self) -> str:
        by = f" ({self.provider})" if self.provider else ""
        return f"{self.field}: {self.message}{by}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"field": self.field, "message": self.message, "provider": self.provider}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestWarning:
        """Rebuild a warning stored with :meth:`to_dict`."""
        provider = data.get("provider")
        return cls(str(data["field"]), str(data["message"]), str(provider) if provider else None)


@attrs.frozen(kw_only=True)
class Attempt:
    """What happened with one provider during one generation.

    Args:
        provider: The provider's name.
        outcome: ``"success"``, ``"error"``, ``"cancelled"`` (lost a race, or the caller
            gave up) or ``"skipped"`` (breaker open, or disabled).
        error: Why it failed or was skipped.
        elapsed: Seconds spent on it, retries and backoff included.
        tries: How many times the provider was called (retries count).
        cost: USD the vendor billed for its calls, a race's lost call and a
            retried one included; None when not known (a price the provider does
            not know, or a call whose billing nobody can tell). Never guessed.
    """

    provider: str
    outcome: AttemptOutcome
    error: ImageGenError | None = None
    elapsed: float = 0.0
    tries: int = 0
    cost: float | None = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, used by records and the server."""
        return {
            "provider": self.provider,
            "outcome": self.outcome,
            "error": self.error.to_dict() if self.error is not None else None,
            "elapsed": self.elapsed,
            "tries": self.tries,
            "cost": self.cost,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        """Rebuild an attempt stored with :meth:`to_dict`."""
        error = data.get("error")
        return cls(
            provider=str(data["provider"]),
            outcome=data["outcome"],
            error=error_from_dict(error) if error else None,
            elapsed=float(data.get("elapsed", 0.0)),
            tries=int(data.get("tries", 0)),
            cost=_cost(data.get("cost", 0.0)),
        )


@attrs.frozen(kw_only=True)
class GeneratedImage:
    """One image of a generation (``ImageResult.images``): where it is stored, what it is.

    ``url`` and ``key`` are None without storage (the bytes are in ``data``; a
    hotlinked stock photo keeps its ``url``); ``width``/``height`` are the image's
    own pixel size; ``provider`` made it.
    """

    url: str | None
    key: str | None
    provider: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    sha256: str
    data: bytes | None = attrs.field(
        default=None, repr=lambda d: f"<{len(d)} bytes>" if d else "None"
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form without ``data``."""
        return {k: v for k, v in attrs.asdict(self).items() if k != "data"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratedImage:
        """Rebuild an image stored with :meth:`to_dict` (``data`` is not stored)."""
        stored: dict[str, Any] = {a.name: data.get(a.name) for a in attrs.fields(cls)}
        return cls(**{**stored, "data": None})


@attrs.frozen(kw_only=True)
class ImageResult:
    """A finished image.

    ``url`` and ``key`` say where it is stored; without storage they are None and the
    bytes are in ``data`` (a hotlinked stock photo keeps its hotlink ``url``).
    ``is_default`` marks the fallback image, and ``attempts`` then says why each
    provider failed. ``cost`` is the sum of the attempts' costs in USD (losers and
    retries included), None when any is not known. ``width`` and ``height`` are the
    stored image's own pixel size
    (read from its header, not the vendor's claim); ``warnings`` lists every request
    field the image was not made exactly as asked for (empty: served as asked).
    """

    id: str
    url: str | None
    key: str | None
    provider: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    sha256: str
    elapsed: float
    attempts: tuple[Attempt, ...]
    is_default: bool = False
    source_url: str | None = None
    attribution: str | None = None
    created_at: dt.datetime
    variant: str | None = None
    warnings: tuple[RequestWarning, ...] = ()
    cost: float | None = 0.0
    data: bytes | None = attrs.field(
        default=None, repr=lambda d: f"<{len(d)} bytes>" if d else "None"
    )
    # After every field of the result's own image: by default, it is the only one.
    images: tuple[GeneratedImage, ...] = attrs.field(repr=lambda i: f"<{len(i)} images>")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form without ``data``; times in ISO 8601."""
        return {
            "id": self.id,
            "url": self.url,
            "key": self.key,
            "provider": self.provider,
            "content_type": self.content_type,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "sha256": self.sha256,
            "elapsed": self.elapsed,
            "attempts": [a.to_dict() for a in self.attempts],
            "is_default": self.is_default,
            "source_url": self.source_url,
            "attribution": self.attribution,
            "created_at": self.created_at.isoformat(),
            "variant": self.variant,
            "warnings": [w.to_dict() for w in self.warnings],
            "cost": self.cost,
            "images": [image.to_dict() for image in self.images],
        }

    @images.default
    def _just_this_one(self) -> tuple[GeneratedImage, ...]:
        return (self.first,)

    @property
    def first(self) -> GeneratedImage:
        """The result's own image (the first of ``images``), as a :class:`GeneratedImage`."""
        names = (a.name for a in attrs.fields(GeneratedImage))
        return GeneratedImage(**{name: getattr(self, name) for name in names})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageResult:
        """Rebuild a result stored with :meth:`to_dict` (``data`` is not stored)."""
        return cls(
            id=data["id"],
            url=data.get("url"),
            key=data.get("key"),
            provider=data["provider"],
            content_type=data["content_type"],
            size=int(data["size"]),
            width=data.get("width"),
            height=data.get("height"),
            sha256=data["sha256"],
            elapsed=float(data["elapsed"]),
            attempts=tuple(Attempt.from_dict(a) for a in data.get("attempts", ())),
            is_default=bool(data.get("is_default", False)),
            source_url=data.get("source_url"),
            attribution=data.get("attribution"),
            created_at=dt.datetime.fromisoformat(data["created_at"]),
            variant=data.get("variant"),
            warnings=tuple(RequestWarning.from_dict(w) for w in data.get("warnings", ())),
            cost=_cost(data.get("cost", 0.0)),
            **_images(data),
        )


def _images(data: Mapping[str, Any]) -> dict[str, Any]:
    """``images=`` for a stored result that has them (older ones: the result's own)."""
    stored = data.get("images")
    if not stored:
        return {}
    return {"images": tuple(GeneratedImage.from_dict(image) for image in stored)}


@attrs.frozen(kw_only=True)
class Job:
    """A generation submitted to run in the background.

    ``deadline`` (Unix seconds) is when the generation must have ended; a job still
    "running" well past it belongs to a process that stopped, and reads as failed.
    """

    id: str
    status: JobStatus
    result: ImageResult | None = None
    error: ImageGenError | None = None
    deadline: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the result without ``data``)."""
        return {
            "id": self.id,
            "status": self.status,
            "result": self.result.to_dict() if self.result is not None else None,
            "error": self.error.to_dict() if self.error is not None else None,
            "deadline": self.deadline,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """Rebuild a job stored with :meth:`to_dict`."""
        result, error = data.get("result"), data.get("error")
        return cls(
            id=str(data["id"]),
            status=data["status"],
            result=ImageResult.from_dict(result) if result else None,
            error=error_from_dict(error) if error else None,
            deadline=data.get("deadline"),
        )


@attrs.frozen(kw_only=True)
class Record:
    """What happened to one generation, as kept in the state backend.

    A record is written when the generation starts (``status="running"``) and
    completed when it ends; ``key`` is set only once the object is stored.
    ``deadline`` is when ``generate()`` was due to return: a record still
    "running" a minute after it belongs to a process that stopped, and reads as
    failed (``GenerationLost``, no ``finished_at``).
    """

    id: str
    status: RecordStatus
    provider: str | None
    request: Mapping[str, Any]
    key: str | None
    url: str | None
    attempts: tuple[Attempt, ...]
    error: ImageGenError | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    is_default: bool = False
    variant: str | None = None
    deadline: dt.datetime | None = None
    warnings: tuple[RequestWarning, ...] = ()
    keys: tuple[str, ...] = ()  # every stored image's key, ``key`` first (n > 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; times in ISO 8601."""
        return {
            "id": self.id,
            "status": self.status,
            "provider": self.provider,
            "request": dict(self.request),
            "key": self.key,
            "url": self.url,
            "attempts": [a.to_dict() for a in self.attempts],
            "error": self.error.to_dict() if self.error is not None else None,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "is_default": self.is_default,
            "variant": self.variant,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "warnings": [w.to_dict() for w in self.warnings],
            "keys": list(self.keys),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Rebuild a record stored with :meth:`to_dict`."""
        finished, deadline = data.get("finished_at"), data.get("deadline")
        error = data.get("error")
        return cls(
            id=data["id"],
            status=data["status"],
            provider=data.get("provider"),
            request=MappingProxyType(dict(data.get("request", {}))),
            key=data.get("key"),
            url=data.get("url"),
            attempts=tuple(Attempt.from_dict(a) for a in data.get("attempts", ())),
            error=error_from_dict(error) if error else None,
            created_at=dt.datetime.fromisoformat(data["created_at"]),
            finished_at=dt.datetime.fromisoformat(finished) if finished else None,
            is_default=bool(data.get("is_default", False)),
            variant=data.get("variant"),
            deadline=dt.datetime.fromisoformat(deadline) if deadline else None,
            warnings=tuple(RequestWarning.from_dict(w) for w in data.get("warnings", ())),
            keys=tuple(str(key) for key in data.get("keys", ())),
        )


@attrs.frozen(kw_only=True, slots=True)
class Event:
    """Something worth telling hooks about.

    Kinds and their ``data``:

    - ``generation_started``: the request's summary (prompt length, size, format...).
    - ``attempt_started`` (``provider`` set): ``try``, counting from 1.
    - ``retry_scheduled``: ``try``, ``delay`` (seconds), ``error`` (the error kind).
    - ``attempt_finished``: ``outcome`` (success, error, cancelled), ``error`` (kind
      or None), ``tries``, ``elapsed`` (seconds, all tries), ``billed`` (tries of a
      paid provider that made an image or remote work).
    - ``remote_cancelled``: a provider's remote work was cancelled.
    - ``breaker_state_changed`` (no generation): ``from``, ``to``, ``reason``.
    - ``generation_finished``: ``status`` (succeeded, failed), ``is_default``,
      ``elapsed``, ``error`` (kind or None); ``provider`` is the winner.
    """

    kind: str
    generation_id: str | None = None
    provider: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ProviderDayStats:
    """One provider's counts for one UTC day.

    ``requests`` counts provider calls (each retry is one):
    ``requests == successes + failures + cancelled``. Latency quantiles are
    seconds, None without successes, read from a log-spaced histogram (10 buckets
    a decade from 1 ms to about 631 s): each is the geometric midpoint of the bucket
    it falls in, within about 12% of the calls there. ``cost`` is the USD of the
    calls whose cost is known (to the micro-dollar); ``cost_unknown`` counts the
    calls whose cost is not.
    """

    day: dt.date
    provider: str
    requests: int
    successes: int
    failures: int
    cancelled: int
    failures_by_kind: Mapping[str, int]
    p50: float | None
    p90: float | None
    p99: float | None
    cost: float = 0.0
    cost_unknown: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI's ``stats --json``, the HTTP API's ``/admin/stats``)."""
        return {
            **attrs.asdict(self),
            "day": self.day.isoformat(),
            "failures_by_kind": dict(self.failures_by_kind),
        }


@attrs.frozen(kw_only=True)
class VariantDayStats:
    """One experiment variant's generations on one UTC day.

    ``generations == succeeded + defaults + failed`` (a default image counts as a
    default, not a success). ``calls`` counts provider tries, retries included, so
    ``calls / generations`` is what a variant spends per image; ``cost`` its USD
    where known, ``cost_unknown`` the generations whose cost is not. Latency quantiles
    are of whole generations, in seconds, None without any, read from the same
    histogram as :class:`ProviderDayStats`'s.
    """

    day: dt.date
    experiment: str
    variant: str
    generations: int
    succeeded: int
    defaults: int
    failed: int
    calls: int
    p50: float | None
    p90: float | None
    p99: float | None
    cost: float = 0.0
    cost_unknown: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**attrs.asdict(self), "day": self.day.isoformat()}


def error_from_dict(data: Mapping[str, Any]) -> ImageGenError:
    """Rebuild an error stored with :meth:`ImageGenError.to_dict` (records, jobs)."""
    cls = BY_KIND.get(str(data.get("kind")), ImageGenError)
    message = str(data.get("message", ""))
    if issubclass(cls, ProviderError):
        fields = {name: data.get(name) for name in ("provider", "status", "retry_after")}
        if issubclass(cls, ContentRejected) and isinstance(data.get("reason"), str):
            fields["reason"] = data["reason"]
        return cls(message, retryable=data.get("retryable"), **fields)
    if issubclass(cls, InvalidRequest | InvalidConfig):
        return cls(message, field=str(data.get("field", "")))
    if issubclass(cls, SpendingCapReached):
        fields = {name: data.get(name) for name in ("provider", "spent", "cap")}
        return cls(message, **fields)
    if issubclass(cls, AttemptsError):
        attempts = tuple(Attempt.from_dict(a) for a in data.get("attempts", ()))
        return cls(message, attempts=attempts, generation_id=data.get("generation_id"))
    return cls(message)
