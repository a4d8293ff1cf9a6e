"""RFC 9457 problem details: the server's error answers, chosen by error class.

A route raises :class:`Problem` (or lets an :class:`~imagegen.ImageGenError` through);
the route wrapper turns it into an ``application/problem+json`` response. Calls into
the generator go through :func:`backend_call`, so a backend's own exception escaping
the generator (``ConnectionError``, ``sqlite3.OperationalError``...) answers 503 like
the :class:`~imagegen.StorageError` it stands for, instead of a 500. A StorageError's
message may name hosts, files or keys, so its answer carries a fixed detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

from starlette.responses import JSONResponse

from .. import (
    AllProvidersFailed,
    CircuitOpen,
    ImageGenError,
    InvalidConfig,
    InvalidRequest,
    JobTimeout,
    NotRunning,
    ProviderError,
    StorageError,
    UnknownJob,
    UnknownProvider,
    WebhookVerificationError,
)
from ._render import attempt_dict

__all__ = [
    "STATUS",
    "STORAGE_DETAIL",
    "Problem",
    "backend_call",
    "describe",
    "invalid",
    "problem_for",
    "problem_response",
    "status_of",
]

_PROBLEM_JSON = "application/problem+json"
_T = TypeVar("_T")

#: The detail of every StorageError answer: the error's own message stays in the log.
STORAGE_DETAIL = "a backend this service depends on failed; try again later"


class Problem(Exception):
    """An RFC 9457 problem to answer with; raised inside a route, turned into a response.

    Args:
        status: The HTTP status.
        detail: What went wrong, for a human.
        headers: Extra response headers (``WWW-Authenticate``...).
        extras: Extension members added to the problem object.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extras: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extras = extras

    def response(self) -> JSONResponse:
        """The ``application/problem+json`` response."""
        return problem_response(self.status, self.detail, headers=self.headers, **self.extras)


def problem_response(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extras: Any,
) -> JSONResponse:
    """An RFC 9457 problem details response (``type`` is ``about:blank``).

    Args:
        status: The HTTP status; ``title`` is its standard phrase.
        detail: What went wrong in this occurrence.
        headers: Extra response headers.
        extras: Extension members (``errors``, ``attempts``...).
    """
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extras,
    }
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=_PROBLEM_JSON
    )


def invalid(field: str, message: str, more: Sequence[tuple[str, str]] = ()) -> Problem:
    """A 422 naming ``field`` (and any ``more`` fields) under ``errors``.

    Args:
        field: The offending field; ``message`` is also the problem's ``detail``.
        message: What is wrong with it.
        more: Further ``(field, message)`` pairs, listed after the first.
    """
    errors = [{"field": f, "message": m} for f, m in ((field, message), *more)]
    return Problem(422, message, errors=errors)


#: HTTP status by error class, the first match wins (specific classes before their bases).
STATUS: tuple[tuple[type[ImageGenError], int], ...] = (
    (UnknownJob, 404),
    (UnknownProvider, 404),
    (NotRunning, 503),
    (InvalidRequest, 422),
    (InvalidConfig, 422),
    (AllProvidersFailed, 502),
    (CircuitOpen, 502),
    (ProviderError, 502),
    (StorageError, 503),
    (JobTimeout, 504),
    (WebhookVerificationError, 401),
)


def status_of(error: ImageGenError) -> int:
    """The HTTP status for an imagegen error, by its class (``STATUS``); 500 for the rest."""
    return next((status for cls, status in STATUS if isinstance(error, cls)), 500)


def problem_for(error: ImageGenError) -> Problem:
    """The problem answering an imagegen error, its status chosen by class (``STATUS``).

    ``InvalidRequest``/``InvalidConfig`` → 422 with ``errors``; an unknown job or
    provider → 404; a generator that runs no jobs → 503;
    ``AllProvidersFailed``/``CircuitOpen`` and other provider errors → 502 (with the
    attempts); ``StorageError`` → 503 (its message left out, see ``STORAGE_DETAIL``);
    ``WebhookVerificationError`` → 401; anything else → 500.
    """
    kind = error.kind
    status = status_of(error)
    if status == 422 and isinstance(error, InvalidRequest | InvalidConfig):
        problem = invalid(error.field, str(error))
        problem.extras["kind"] = kind
        return problem
    if isinstance(error, AllProvidersFailed | CircuitOpen):
        return Problem(
            status,
            str(error),
            kind=kind,
            generation_id=error.generation_id,
            attempts=[attempt_dict(a) for a in error.attempts],
        )
    if isinstance(error, ProviderError):
        return Problem(status, str(error), kind=kind, provider=error.provider)
    if isinstance(error, StorageError):
        # Its message may name hosts, paths or keys: the log has it, the caller does not.
        return Problem(status, STORAGE_DETAIL, kind=kind)
    return Problem(status, str(error), kind=kind)


def describe(error: ImageGenError) -> str:
    """``Kind: message`` for the log, with the cause's kind and message when the
    message does not already carry them."""
    text = f"{error.kind}: {error}"
    cause = error.__cause__
    if cause is not None:
        because = f"{type(cause).__name__}: {cause}"
        if because not in text:
            text = f"{text} ({because})"
    return text


async def backend_call(call: Awaitable[_T], what: str = "a backend") -> _T:
    """``await call`` (a generator method); a foreign exception from it is a StorageError.

    The generator's methods raise only :class:`~imagegen.ImageGenError`; anything
    else escaping one comes from a backend below it (the state backend, the
    storage) and is answered like the StorageError it stands for: 503, without a
    traceback. The exception is kept as the StorageError's cause, for the log line.
    """
    try:
        return await call
    except ImageGenError:
        raise
    except Exception as exc:
        raise StorageError(f"{what} failed") from exc
