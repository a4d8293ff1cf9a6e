"""The one exception tree of imagegen.

Every error carries structured fields; nothing needs its message parsed::

    ImageGenError
    ├── InvalidRequest (also ValueError)     .field
    ├── InvalidConfig (also ValueError)      .field
    ├── ProviderError                        .provider .status .retryable .retry_after
    │   ├── ProviderTimeout                  retryable
    │   ├── ProviderUnavailable              retryable (5xx, connection errors, bad JSON)
    │   ├── ProviderRateLimited              retryable, honours .retry_after
    │   ├── ProviderAuthError                not retryable
    │   ├── ProviderQuotaExceeded            not retryable
    │   └── ContentRejected                  not retryable, not a breaker failure
    ├── CircuitOpen                          .attempts .generation_id
    ├── AllProvidersFailed                   .attempts .generation_id
    ├── SpendingCapReached                   .provider .spent .cap (a skipped attempt's)
    ├── GenerationCancelled                  the caller cancelled it (records)
    ├── GenerationLost                       its process stopped before it ended (records)
    ├── JobCancelled                         the generator closed before the job ended
    ├── JobLost                              the job's process stopped
    ├── JobTimeout (also TimeoutError)       wait() ran out of time; the job goes on
    ├── StorageError
    └── WebhookVerificationError

    InvalidRequest ← UnknownJob (.field "job_id")
    InvalidConfig  ← UnknownProvider (.field), NotRunning (.field)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from ._models import Attempt

__all__ = [
    "AllProvidersFailed",
    "CircuitOpen",
    "ContentRejected",
    "GenerationCancelled",
    "GenerationLost",
    "ImageGenError",
    "InvalidConfig",
    "InvalidRequest",
    "JobCancelled",
    "JobLost",
    "JobTimeout",
    "NotRunning",
    "ProviderAuthError",
    "ProviderError",
    "ProviderQuotaExceeded",
    "ProviderRateLimited",
    "ProviderTimeout",
    "ProviderUnavailable",
    "SpendingCapReached",
    "StorageError",
    "UnknownJob",
    "UnknownProvider",
    "WebhookVerificationError",
]

_E = TypeVar("_E", bound="ImageGenError")


def _rebuild(cls: type[_E], message: str, state: dict[str, Any]) -> _E:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def shown(value: object) -> str:
    """``repr(value)`` for an error message, cut short; an int too long to print
    (``10**5000``) or an object whose repr fails is described instead of raising."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a message must not fail on the value it reports
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 60 else f"{text[:57]}..."


def with_fields(error: _E, **changes: Any) -> _E:
    """A new error of ``error``'s class and message with ``changes`` to its fields.

    Errors are built with their final values and never changed afterwards (they
    may already sit in an attempt, a record or another task's hands): a caller
    that knows more (the provider's name, that a retry would bill twice) makes a
    new one. The original stays reachable as ``__cause__``.
    """
    fresh = _rebuild(type(error), str(error), {**error.__dict__, **changes})
    fresh.__cause__ = error.__cause__ or error
    return fresh


class ImageGenError(Exception):
    """Root of every error imagegen raises on purpose.

    Errors pickle with all their fields (so they cross process pools and task queues).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default pickling calls __init__ with the positional args only,
        # which keyword-only fields (field=, provider=...) would not survive.
        return _rebuild, (type(self), str(self), dict(self.__dict__))

    @property
    def kind(self) -> str:
        """The class name, as used in records and statistics (``"ProviderTimeout"``)."""
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: ``kind``, ``message`` and the structured fields."""
        return {"kind": self.kind, "message": str(self)}


class InvalidRequest(ImageGenError, ValueError):
    """A request broke a rule; nothing was sent to any provider.

    Args:
        message: What rule was broken, naming the field.
        field: The name of the offending field (``"width"``, ``"metadata"``...).
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


class InvalidConfig(ImageGenError, ValueError):
    """A constructor argument or a ``configure()`` change broke a rule.

    Args:
        message: What rule was broken, naming the field.
        field: The name of the offending setting.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


class ProviderError(ImageGenError):
    """A provider failed to deliver an image.

    Whether it is worth trying again is a property of the class; a plain
    ``ProviderError`` decides from its HTTP ``status`` (408, 429 and 5xx are
    retryable) unless ``retryable`` is given.

    Args:
        message: What went wrong, without secrets.
        provider: The provider's name.
        status: The HTTP status, when there was one.
        retry_after: Seconds the provider asked us to wait.
        retryable: Override the class's default.
    """

    default_retryable: ClassVar[bool | None] = None

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        if retryable is None:
            retryable = self.default_retryable
        if retryable is None:
            retryable = status is not None and (status >= 500 or status in (408, 429))
        self.retryable = retryable

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, provider={self.provider!r}, "
            f"status={self.status!r}, retryable={self.retryable!r}, "
            f"retry_after={self.retry_after!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "provider": self.provider,
            "status": self.status,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
        }


class ProviderTimeout(ProviderError):
    """The provider did not answer within its share of the deadline."""

    default_retryable = True


class ProviderUnavailable(ProviderError):
    """5xx, a connection error or an unreadable answer: worth another try."""

    default_retryable = True


class ProviderRateLimited(ProviderError):
    """429 or the vendor's own throttling signal; ``retry_after`` says how long to wait."""

    default_retryable = True


class ProviderAuthError(ProviderError):
    """The key was refused (401/403). Trying again cannot help."""

    default_retryable = False


class ProviderQuotaExceeded(ProviderError):
    """Out of credit or quota (402, ``insufficient_quota``). Trying again cannot help."""

    default_retryable = False


class ContentRejected(ProviderError):
    """The provider's safety system refused the prompt or the output.

    ``reason`` is the vendor's own word for why (a category such as ``"sexual"``, a
    code such as ``"moderation_blocked"``, or its message) when it gives one, else
    None: never guessed. A rejection never counts against the provider's breaker.
    """

    default_retryable = False

    def __init__(self, message: str, *, reason: str | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.reason = reason

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, reason={self.reason!r})"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "reason": self.reason}


class AttemptsError(ImageGenError):
    """Base of the errors that carry a generation's attempts."""

    def __init__(
        self,
        message: str,
        *,
        attempts: Sequence[Attempt] = (),
        generation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        self.generation_id = generation_id

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "generation_id": self.generation_id,
            "attempts": [a.to_dict() for a in self.attempts],
        }


class CircuitOpen(AttemptsError):
    """Every eligible provider's breaker was open and there was no default image."""


class AllProvidersFailed(AttemptsError):
    """Every provider was tried and failed; ``attempts`` says why, one entry per provider."""


class StorageError(ImageGenError):
    """Storing or reading an image failed."""


class SpendingCapReached(ImageGenError):
    """A provider was not called: today's spending (UTC) reached a cap of the generator's
    :class:`~imagegen.SpendingCap` (``provider``'s own, or the overall one).

    The error of a skipped attempt; nothing was sent. ``spent`` and ``cap`` are USD.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        spent: float | None = None,
        cap: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.spent = spent
        self.cap = cap

    def to_dict(self) -> dict[str, Any]:
        fields = {"provider": self.provider, "spent": self.spent, "cap": self.cap}
        return {**super().to_dict(), **fields}


class WebhookVerificationError(ImageGenError):
    """A webhook's signature was missing, wrong or stale."""


class GenerationCancelled(ImageGenError):
    """The caller cancelled the generation; its record says so."""


class GenerationLost(ImageGenError):
    """The process running the generation stopped before it ended (a crash, a kill).

    Read from the state backend: a record still "running" a minute past its
    deadline reads as failed with this error.
    """


class JobCancelled(ImageGenError):
    """The generator was closed before the background job ended."""


class JobLost(ImageGenError):
    """The process running the job stopped before it ended (read from shared state)."""


class JobTimeout(ImageGenError, TimeoutError):
    """``wait()`` ran out of time; the job itself goes on."""


class UnknownJob(InvalidRequest):
    """No job has this id (never submitted, or expired from the state backend)."""

    def __init__(self, message: str, *, field: str = "job_id") -> None:
        super().__init__(message, field=field)


class UnknownProvider(InvalidConfig):
    """No provider of this generator has that name (or none that takes webhooks)."""

    def __init__(self, message: str, *, field: str = "provider") -> None:
        super().__init__(message, field=field)


class NotRunning(InvalidConfig):
    """The generator is not running: background work needs ``async with``, or it was closed."""

    def __init__(self, message: str, *, field: str = "generator") -> None:
        super().__init__(message, field=field)


#: Every error class by name, for rebuilding stored errors.
BY_KIND: dict[str, type[ImageGenError]] = {
    cls.__name__: cls
    for cls in (
        ImageGenError,
        InvalidRequest,
        InvalidConfig,
        ProviderError,
        ProviderTimeout,
        ProviderUnavailable,
        ProviderRateLimited,
        ProviderAuthError,
        ProviderQuotaExceeded,
        ContentRejected,
        CircuitOpen,
        AllProvidersFailed,
        SpendingCapReached,
        GenerationCancelled,
        GenerationLost,
        JobCancelled,
        JobLost,
        JobTimeout,
        UnknownJob,
        UnknownProvider,
        NotRunning,
        StorageError,
        WebhookVerificationError,
    )
}
