"""The values that go in and come out: requests, results, attempts, records, events."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import attrs

from ._errors import ImageGenError, InvalidRequest, error_from_dict

__all__ = [
    "Attempt",
    "Event",
    "ImageRequest",
    "ImageResult",
    "Job",
    "ProviderDayStats",
    "Record",
    "VariantDayStats",
]

MAX_PROMPT = 4000
MIN_SIDE, MAX_SIDE, SIDE_STEP = 64, 4096, 8
MAX_SEED = 2**32 - 1
MAX_METADATA_BYTES = 2048
FORMATS = ("png", "jpeg", "webp")
_FORMAT_ALIASES = {"jpg": "jpeg"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

AttemptOutcome = Literal["success", "error", "cancelled", "skipped"]
JobStatus = Literal["pending", "running", "succeeded", "failed"]
RecordStatus = Literal["running", "succeeded", "failed"]


def _is_int(value: object) -> bool:
    # bool is an int subclass; True is no width.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_text(field: str, value: object, *, required: bool) -> None:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string, not {type(value).__name__}", field=field)
    if required and not value:
        raise InvalidRequest(f"{field} must not be empty or only whitespace", field=field)
    if len(value) > MAX_PROMPT:
        raise InvalidRequest(
            f"{field} must be at most {MAX_PROMPT} characters (got {len(value)})", field=field
        )
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" and char not in "\n\t":
            raise InvalidRequest(
                f"{field} must not contain control characters (found U+{ord(char):04X}); "
                "only newline and tab are allowed",
                field=field,
            )
        if category == "Cs":
            raise InvalidRequest(_surrogate(field, char), field=field)


def _surrogate(field: str, char: str) -> str:
    # A lone surrogate (from JSON's "\ud800") cannot be encoded: refuse it here rather
    # than fail deep inside a provider or the placeholder.
    return f"{field} must be valid Unicode text (found a lone surrogate U+{ord(char):04X})"


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _strip_optional(value: object) -> object:
    value = _strip(value)
    return None if value == "" else value


def _validate_prompt(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_text(attribute.name, value, required=True)


def _validate_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_text(attribute.name, value, required=False)


def _validate_side(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = attribute.name
    if not _is_int(value):
        raise InvalidRequest(f"{name} must be an integer, not {type(value).__name__}", field=name)
    assert isinstance(value, int)  # noqa: S101 - narrowing for the type checker
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise InvalidRequest(
            f"{name} must be between {MIN_SIDE} and {MAX_SIDE} pixels (got {value})", field=name
        )
    if value % SIDE_STEP:
        raise InvalidRequest(f"{name} must be a multiple of {SIDE_STEP} (got {value})", field=name)


def _validate_seed(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not _is_int(value):
        raise InvalidRequest(
            f"seed must be an integer or None, not {type(value).__name__}", field=attribute.name
        )
    assert isinstance(value, int)  # noqa: S101 - narrowing for the type checker
    if not 0 <= value <= MAX_SEED:
        raise InvalidRequest(f"seed must be between 0 and {MAX_SEED} (got {value})", field="seed")


def _convert_format(value: object) -> object:
    if isinstance(value, str):
        value = value.strip().lower()
        return _FORMAT_ALIASES.get(value, value)
    return value


def _validate_format(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in FORMATS:
        raise InvalidRequest(
            f"output_format must be one of png, jpeg (or jpg), webp (got {value!r})",
            field=attribute.name,
        )


def _freeze_metadata(value: object) -> object:
    if isinstance(value, Mapping):
        return MappingProxyType(dict(value))
    return value


def _validate_metadata(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = attribute.name
    if not isinstance(value, Mapping):
        raise InvalidRequest("metadata must be a mapping of str to str", field=name)
    total = 0
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidRequest(
                f"metadata must map str to str (entry {key!r}: {type(item).__name__})", field=name
            )
        for char in key + item:
            if unicodedata.category(char) == "Cs":
                raise InvalidRequest(_surrogate(name, char), field=name)
        total += len(key.encode()) + len(item.encode())
    if total > MAX_METADATA_BYTES:
        raise InvalidRequest(
            f"metadata must be at most {MAX_METADATA_BYTES} bytes in all, keys and values "
            f"as UTF-8 (got {total})",
            field=name,
        )


def _freeze_options(value: object) -> object:
    if isinstance(value, Mapping):
        return MappingProxyType(
            {
                k: MappingProxyType(dict(v)) if isinstance(v, Mapping) else v
                for k, v in value.items()
            }
        )
    return value


def _validate_options(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = attribute.name
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        raise InvalidRequest(
            "provider_options must map a provider name to a mapping of that vendor's fields",
            field=name,
        )


@attrs.frozen(kw_only=True, hash=False)
class ImageRequest:
    """What to draw. Validated on construction: a bad value raises
    :class:`InvalidRequest` naming the field, before anything is sent.

    Args:
        prompt: 1 to 4000 characters after trimming; newline and tab allowed, other
            control characters refused.
        negative_prompt: What to avoid, for providers that take it; same rules.
        width: Pixels, 64 to 4096, a multiple of 8.
        height: Pixels, 64 to 4096, a multiple of 8.
        seed: 0 to 2**32-1, or None for the provider's choice.
        output_format: ``"png"``, ``"jpeg"`` (``"jpg"`` is read as jpeg) or ``"webp"``.
        metadata: str to str, at most 2 KB in all; stored with the record.
        provider_options: Per provider name, extra vendor fields passed through as is.
    """

    prompt: str = attrs.field(converter=_strip, validator=_validate_prompt)
    negative_prompt: str | None = attrs.field(
        default=None, converter=_strip_optional, validator=_validate_negative
    )
    width: int = attrs.field(default=1024, validator=_validate_side)
    height: int = attrs.field(default=1024, validator=_validate_side)
    seed: int | None = attrs.field(default=None, validator=_validate_seed)
    output_format: str = attrs.field(
        default="png", converter=_convert_format, validator=_validate_format
    )
    metadata: Mapping[str, str] = attrs.field(
        factory=dict, converter=_freeze_metadata, validator=_validate_metadata
    )
    provider_options: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, converter=_freeze_options, validator=_validate_options
    )

    @property
    def content_type(self) -> str:
        """The MIME type matching ``output_format``."""
        return CONTENT_TYPES[self.output_format]

    def options_for(self, provider: str) -> Mapping[str, Any]:
        """The ``provider_options`` entry for one provider (empty when none)."""
        return self.provider_options.get(provider, MappingProxyType({}))

    def summary(self) -> dict[str, Any]:
        """What a record keeps of the request: sizes, format, seed and a prompt preview."""
        preview = self.prompt if len(self.prompt) <= 200 else self.prompt[:199] + "…"
        return {
            "prompt": preview,
            "width": self.width,
            "height": self.height,
            "seed": self.seed,
            "output_format": self.output_format,
            "metadata": dict(self.metadata),
        }


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
    """

    provider: str
    outcome: AttemptOutcome
    error: ImageGenError | None = None
    elapsed: float = 0.0
    tries: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, used by records and the server."""
        return {
            "provider": self.provider,
            "outcome": self.outcome,
            "error": self.error.to_dict() if self.error is not None else None,
            "elapsed": self.elapsed,
            "tries": self.tries,
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
        )


@attrs.frozen(kw_only=True)
class ImageResult:
    """A finished image.

    ``url`` and ``key`` say where it is stored; without storage they are None and the
    bytes are in ``data`` (a hotlinked stock photo keeps its hotlink ``url``).
    ``is_default`` marks the fallback image, and ``attempts`` then says why each
    provider failed.
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
    data: bytes | None = attrs.field(
        default=None, repr=lambda d: f"<{len(d)} bytes>" if d else "None"
    )

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
        }

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
        )


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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Rebuild a record stored with :meth:`to_dict`."""
        finished = data.get("finished_at")
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
    seconds, estimated from a fixed histogram, None without successes.
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


@attrs.frozen(kw_only=True)
class VariantDayStats:
    """One experiment variant's generations on one UTC day.

    ``generations == succeeded + defaults + failed`` (a default image counts as a
    default, not a success). ``calls`` counts provider tries, retries included, so
    ``calls / generations`` is what a variant spends per image. Latency quantiles
    are of whole generations, in seconds, None without any.
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**attrs.asdict(self), "day": self.day.isoformat()}
