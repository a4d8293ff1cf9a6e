"""The JSON the HTTP API answers with: values rendered at the server boundary.

The library's ``to_dict()`` forms are also its storage format (a job is read back
from the state backend with ``Job.from_dict``), so the server renders from them
rather than changing them:

- every time is ISO 8601 in UTC with its offset, ``2026-01-01T00:00:00.000000+00:00``
  (:func:`timestamp`), a job's ``deadline`` included (Unix seconds in the library);
  days (``/admin/stats``) stay ISO 8601 dates, ``2026-01-01``: a UTC day, not a time;
- an error nested in an attempt lists only the members it has
  (:func:`nested_error`): a skipped attempt's ``CircuitOpen`` carries no
  ``"attempts": []`` or ``"generation_id": null`` of its own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import (
    AllProvidersFailed,
    Attempt,
    BreakerSnapshot,
    CircuitOpen,
    ImageGenError,
    ImageResult,
    Job,
)

__all__ = [
    "attempt_dict",
    "breaker_dict",
    "error_dict",
    "job_dict",
    "nested_error",
    "result_dict",
    "timestamp",
    "unix_timestamp",
]


def timestamp(when: dt.datetime) -> str:
    """``when`` in UTC as ISO 8601 with its offset, always with microseconds (one
    format for every time the API shows). A naive time is taken as UTC, as the
    library's clock keeps time in UTC."""
    utc = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return utc.isoformat(timespec="microseconds")


def unix_timestamp(seconds: float) -> str:
    """Unix seconds as :func:`timestamp` renders times."""
    return timestamp(dt.datetime.fromtimestamp(seconds, tz=dt.UTC))


def _optional(when: dt.datetime | None) -> str | None:
    return timestamp(when) if when is not None else None


def nested_error(error: ImageGenError) -> dict[str, Any]:
    """An error inside an attempt: its ``to_dict()`` without null or empty members
    (``kind`` and ``message`` are never empty), its own attempts rendered alike."""
    data = error_dict(error)
    return {name: value for name, value in data.items() if not _is_empty(value)}


def _is_empty(value: object) -> bool:
    """None, or an empty string, list or object (``False`` and ``0`` say something)."""
    return value is None or (isinstance(value, str | list | dict) and not value)


def error_dict(error: ImageGenError) -> dict[str, Any]:
    """An error as the API shows it: ``to_dict()`` with its attempts (if any)
    rendered by :func:`attempt_dict`."""
    data = error.to_dict()
    if isinstance(error, AllProvidersFailed | CircuitOpen):
        data["attempts"] = [attempt_dict(a) for a in error.attempts]
    return data


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    """An attempt as the API shows it: its error, if any, by :func:`nested_error`."""
    data = attempt.to_dict()
    if attempt.error is not None:
        data["error"] = nested_error(attempt.error)
    return data


def result_dict(result: ImageResult) -> dict[str, Any]:
    """An image result (no bytes), its attempts and time rendered for the API."""
    data = result.to_dict()
    data["attempts"] = [attempt_dict(a) for a in result.attempts]
    data["created_at"] = timestamp(result.created_at)
    return data


def job_dict(job: Job) -> dict[str, Any]:
    """A job: its ``deadline`` as a time (not Unix seconds), its result and error
    rendered for the API."""
    data = job.to_dict()
    data["result"] = result_dict(job.result) if job.result is not None else None
    data["error"] = error_dict(job.error) if job.error is not None else None
    data["deadline"] = unix_timestamp(job.deadline) if job.deadline is not None else None
    return data


def breaker_dict(snapshot: BreakerSnapshot) -> dict[str, Any]:
    """A breaker's snapshot, ``since`` and ``next_trial`` rendered by :func:`timestamp`."""
    data = snapshot.to_dict()
    data["since"] = _optional(snapshot.since)
    data["next_trial"] = _optional(snapshot.next_trial)
    return data
