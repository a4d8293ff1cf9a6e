"""An embeddable ASGI app around an :class:`~imagegen.ImageGenerator` (extra ``server``).

``create_app(generator)`` returns a Starlette app serving the public, webhook and admin
routes. It has no lifespan of its own: the caller owns the generator (enter it with
``async with`` for asynchronous jobs), so the app mounts inside any Starlette or
FastAPI app::

    app = Starlette(routes=[Mount("/imagegen", app=create_app(gen, admin_token=token))])

Routes:

- ``POST /images/generate``: JSON of :class:`~imagegen.ImageRequest` fields; 200 with
  the :class:`~imagegen.ImageResult` fields, or with ``"async": true`` 202
  ``{"job_id", "status"}``.
- ``GET /jobs/{id}``: the :class:`~imagegen.Job` fields; 404 for an unknown id.
- ``GET /health`` (``?deep=true`` also runs each provider's check): 200 when the
  status is ``"ok"``, else 503.
- ``GET /config``: the settings without secrets.
- ``POST /webhooks/{provider}``: a vendor's callback; 204 once taken.
- ``GET /admin/status``, ``GET /admin/stats?since=&until=&provider=``,
  ``GET /admin/providers``, ``GET /admin/storage``,
  ``POST /admin/circuit-breaker`` (``{"provider", "action": "open|close|reset"}``) and
  ``PATCH /admin/config``: need ``Authorization: Bearer <admin_token>``; without an
  ``admin_token`` they always answer 403.

Errors are RFC 9457 problem details (``application/problem+json``) with ``type``,
``title``, ``status`` and ``detail``; errors raised by imagegen add ``kind``, a
refused request or setting adds ``errors: [{field, message}]`` (422), and a failed
generation adds ``generation_id`` and ``attempts`` (502).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import (
    AllProvidersFailed,
    CircuitOpen,
    ImageGenError,
    InvalidConfig,
    InvalidRequest,
    JobTimeout,
    NotRunning,
    ProviderDayStats,
    ProviderError,
    StorageError,
    UnknownJob,
    UnknownProvider,
    WebhookVerificationError,
)

if TYPE_CHECKING:
    from . import ImageGenerator

__all__ = ["create_app"]

logger = logging.getLogger("imagegen.server")

_PROBLEM_JSON = "application/problem+json"
_BREAKER_ACTIONS = ("open", "close", "reset")

_Endpoint = Callable[[Request], Awaitable[Response]]


class _Problem(Exception):
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
        return _problem_response(self.status, self.detail, headers=self.headers, **self.extras)


def _problem_response(
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


def _invalid(field: str, message: str) -> _Problem:
    return _Problem(422, message, errors=[{"field": field, "message": message}])


#: HTTP status by error class, the first match wins (specific classes before their bases).
_STATUS: tuple[tuple[type[ImageGenError], int], ...] = (
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


def _status_of(error: ImageGenError) -> int:
    return next((status for cls, status in _STATUS if isinstance(error, cls)), 500)


def _problem_for(error: ImageGenError) -> _Problem:
    """The problem answering an imagegen error, its status chosen by class (``_STATUS``).

    ``InvalidRequest``/``InvalidConfig`` → 422 with ``errors``; an unknown job or
    provider → 404; a generator that runs no jobs → 503;
    ``AllProvidersFailed``/``CircuitOpen`` and other provider errors → 502 (with the
    attempts); ``StorageError`` → 503; ``WebhookVerificationError`` → 401; anything
    else → 500.
    """
    kind = error.kind
    status = _status_of(error)
    if status == 422 and isinstance(error, InvalidRequest | InvalidConfig):
        problem = _invalid(error.field, str(error))
        problem.extras["kind"] = kind
        return problem
    if isinstance(error, AllProvidersFailed | CircuitOpen):
        return _Problem(
            status,
            str(error),
            kind=kind,
            generation_id=error.generation_id,
            attempts=[a.to_dict() for a in error.attempts],
        )
    if isinstance(error, ProviderError):
        return _Problem(status, str(error), kind=kind, provider=error.provider)
    return _Problem(status, str(error), kind=kind)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it passes ``limit`` bytes.

    A ``Content-Length`` over the limit is refused before anything is read; without
    one (chunked), the stream is read piece by piece and reading stops at the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise _Problem(400, "Content-Length is not a number") from None
        if size > limit:
            raise _Problem(413, f"the body must be at most {limit} bytes (got {size})")
    body = bytearray()
    # aclosing: stopping early must close the stream generator here, not at collection.
    async with aclosing(request.stream()) as stream:
        async for chunk in stream:
            body += chunk
            if len(body) > limit:
                raise _Problem(413, f"the body must be at most {limit} bytes")
    return bytes(body)


async def _read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body parsed as a JSON object: 400 when it is not JSON, 422 when not an object."""
    body = await _read_body(request, limit)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Problem(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _invalid("body", "the body must be a JSON object")
    return data


def _stats_dict(stats: ProviderDayStats) -> dict[str, Any]:
    return {
        "day": stats.day.isoformat(),
        "provider": stats.provider,
        "requests": stats.requests,
        "successes": stats.successes,
        "failures": stats.failures,
        "cancelled": stats.cancelled,
        "failures_by_kind": dict(stats.failures_by_kind),
        "p50": stats.p50,
        "p90": stats.p90,
        "p99": stats.p99,
    }


def _parse_when(name: str, value: str | None) -> dt.date | dt.datetime | None:
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:  # YYYY-MM-DD: a day, not a time
            return dt.date.fromisoformat(value)
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(name, f"{name} must be an ISO 8601 date or time (got {value!r})") from None


def _config_dict(generator: ImageGenerator) -> dict[str, Any]:
    """The generator's settings as JSON, without secrets (no keys, no URLs with tokens)."""
    shared = generator.settings()
    return {
        "strategy": shared["strategy"],
        "timeout": shared["timeout"],
        "retry": shared["retry"],
        "breaker": shared["breaker"],
        "default_image": shared["default_image"],
        "providers": [
            {
                "name": status["name"],
                "tier": status["tier"],
                "enabled": status["enabled"],
                "timeout": status["timeout"],
            }
            for status in generator.providers_status()
        ],
    }


def create_app(
    generator: ImageGenerator,
    *,
    admin_token: str | None = None,
    max_body_bytes: int = 1_000_000,
) -> Starlette:
    """The ASGI app serving ``generator``; see the module docs for the routes.

    Args:
        generator: The generator to serve. The app never opens or closes it; enter it
            with ``async with`` for ``"async": true`` requests.
        admin_token: The bearer token the admin routes need; None answers them 403.
        max_body_bytes: The largest request body taken; larger ones get 413.

    Raises:
        InvalidConfig: ``admin_token`` is empty or ``max_body_bytes`` is not > 0.
    """
    if admin_token is not None and (not isinstance(admin_token, str) or not admin_token):
        raise InvalidConfig("admin_token must be a non-empty string or None", field="admin_token")
    if (
        not isinstance(max_body_bytes, int)
        or isinstance(max_body_bytes, bool)
        or max_body_bytes <= 0
    ):
        raise InvalidConfig("max_body_bytes must be an integer > 0", field="max_body_bytes")
    expected = admin_token.encode() if admin_token is not None else None

    def guarded(endpoint: _Endpoint) -> _Endpoint:
        async def wrapper(request: Request) -> Response:
            try:
                return await endpoint(request)
            except _Problem as problem:
                return problem.response()
            except ImageGenError as error:
                return _problem_for(error).response()
            except Exception:
                logger.exception("%s %s failed", request.method, request.url.path)
                return _problem_response(500, "unexpected error (see the server log)")

        wrapper.__name__ = endpoint.__name__
        wrapper.__doc__ = endpoint.__doc__
        return wrapper

    def admin(endpoint: _Endpoint) -> _Endpoint:
        async def wrapper(request: Request) -> Response:
            if expected is None:
                raise _Problem(403, "admin routes are disabled: no admin token is configured")
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), expected
            ):
                raise _Problem(
                    401,
                    "a valid admin bearer token is required",
                    headers={"WWW-Authenticate": 'Bearer realm="imagegen"'},
                )
            return await endpoint(request)

        wrapper.__name__ = endpoint.__name__
        wrapper.__doc__ = endpoint.__doc__
        return guarded(wrapper)

    async def generate(request: Request) -> Response:
        """Generate one image, or submit a job with ``"async": true``."""
        fields = await _read_json_object(request, max_body_bytes)
        run_async = fields.pop("async", False)
        if not isinstance(run_async, bool):
            raise _invalid("async", "async must be true or false")
        if "prompt" not in fields:
            raise _invalid("prompt", "prompt is required")
        prompt = fields.pop("prompt")
        if run_async:
            try:
                job_id = await generator.submit(prompt, **fields)
            except NotRunning:
                raise _Problem(503, "this server does not run asynchronous jobs") from None
            job = await generator.job(job_id)
            status = job.status if job is not None else "pending"
            return JSONResponse({"job_id": job_id, "status": status}, status_code=202)
        result = await generator.generate(prompt, **fields)
        return JSONResponse(result.to_dict())

    async def job(request: Request) -> Response:
        """A job's status, result or error."""
        job_id = request.path_params["job_id"]
        found = await generator.job(job_id)
        if found is None:
            raise _Problem(404, f"no job has the id {job_id!r}")
        return JSONResponse(found.to_dict())

    async def health(request: Request) -> Response:
        """Breaker states and backend reachability; 503 unless all is well."""
        deep = request.query_params.get("deep", "").lower() in ("1", "true", "yes")
        report = await generator.health(deep=deep)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    async def config(_: Request) -> Response:
        """The current settings (newer shared ones adopted first), without secrets."""
        await generator.refresh_config()
        return JSONResponse(_config_dict(generator))

    async def webhook(request: Request) -> Response:
        """A vendor's callback, verified by the provider."""
        provider = request.path_params["provider"]
        body = await _read_body(request, max_body_bytes)
        await generator.handle_webhook(
            provider, request.headers, body, params=dict(request.query_params)
        )
        return Response(status_code=204)

    async def admin_status(_: Request) -> Response:
        """Health, providers and settings in one answer."""
        report = await generator.health()
        return JSONResponse(
            {
                "status": report["status"],
                "health": report,
                "providers": generator.providers_status(),
                "config": _config_dict(generator),
            }
        )

    async def admin_stats(request: Request) -> Response:
        """Counts per UTC day and provider, and per experiment variant."""
        params = request.query_params
        since = _parse_when("since", params.get("since"))
        until = _parse_when("until", params.get("until"))
        provider = params.get("provider") or None
        stats = await generator.stats(since=since, until=until, provider=provider)
        variants = await generator.variant_stats(since=since, until=until)
        return JSONResponse(
            {
                "stats": [_stats_dict(s) for s in stats],
                "variants": [v.to_dict() for v in variants],
            }
        )

    async def admin_providers(_: Request) -> Response:
        """Each provider's status with its breaker's snapshot."""
        providers = []
        for status in generator.providers_status():
            snapshot = await generator.breaker_for(status["name"]).snapshot()
            providers.append({**status, "breaker": snapshot.to_dict()})
        return JSONResponse({"providers": providers})

    async def admin_storage(_: Request) -> Response:
        """What the storage holds, when it can tell."""
        storage = generator.storage
        stats_method = getattr(storage, "stats", None)
        stats = None
        if storage is not None and callable(stats_method):
            try:
                counted = await stats_method()
            except ImageGenError:
                raise
            except Exception as exc:
                raise StorageError(f"the storage could not count: {type(exc).__name__}") from exc
            stats = {"objects": counted.objects, "bytes": counted.bytes}
        return JSONResponse(
            {"backend": type(storage).__name__ if storage is not None else None, "stats": stats}
        )

    async def admin_breaker(request: Request) -> Response:
        """Force a provider's breaker open or closed, or reset it."""
        data = await _read_json_object(request, max_body_bytes)
        name, action = data.get("provider"), data.get("action")
        if not isinstance(name, str) or not name:
            raise _invalid("provider", "provider must name a provider")
        if action not in _BREAKER_ACTIONS:
            raise _invalid("action", "action must be open, close or reset")
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise _invalid("reason", "reason must be a string")
        breaker = generator.breaker_for(name)
        if action == "open":
            await breaker.force_open(reason or "forced open by an admin")
        elif action == "close":
            await breaker.force_close(reason or "forced closed by an admin")
        else:
            await breaker.reset()
        snapshot = await breaker.snapshot()
        return JSONResponse(snapshot.to_dict())

    async def admin_config(request: Request) -> Response:
        """Change settings at run time; a bad change is refused whole."""
        data = await _read_json_object(request, max_body_bytes)
        generator.update_settings(data)
        await generator.publish_config()
        return JSONResponse(_config_dict(generator))

    async def http_problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException
        return _problem_response(exc.status_code, exc.detail, headers=exc.headers)

    routes = [
        Route("/images/generate", guarded(generate), methods=["POST"]),
        Route("/jobs/{job_id}", guarded(job), methods=["GET"]),
        Route("/health", guarded(health), methods=["GET"]),
        Route("/config", guarded(config), methods=["GET"]),
        Route("/webhooks/{provider}", guarded(webhook), methods=["POST"]),
        Route("/admin/status", admin(admin_status), methods=["GET"]),
        Route("/admin/stats", admin(admin_stats), methods=["GET"]),
        Route("/admin/providers", admin(admin_providers), methods=["GET"]),
        Route("/admin/storage", admin(admin_storage), methods=["GET"]),
        Route("/admin/circuit-breaker", admin(admin_breaker), methods=["POST"]),
        Route("/admin/config", admin(admin_config), methods=["PATCH"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_problem})
