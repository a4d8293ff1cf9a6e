"""An embeddable ASGI app around an :class:`~imagegen.ImageGenerator` (extra ``server``).

``create_app(generator)`` returns a Starlette app serving the public, webhook and admin
routes. It has no lifespan of its own: the caller owns the generator (enter it with
``async with`` for asynchronous jobs), so the app mounts inside any Starlette or
FastAPI app::

    app = Starlette(routes=[Mount("/imagegen", app=create_app(gen, admin_token=token))])

Routes:

- ``POST /images/generate``: JSON of :class:`~imagegen.ImageRequest` fields; 200 with
  the :class:`~imagegen.ImageResult` fields, or with ``"async": true`` 202
  ``{"job_id", "status"}``. ``provider_options`` keys need the operator's
  ``allow_provider_options``; any other answers 422.
- ``GET /jobs/{id}``: the :class:`~imagegen.Job` fields; 404 for an unknown id.
- ``GET /health`` (``?deep=true`` also runs each provider's check): 200 when the
  status is ``"ok"``, else 503; also 503 with the report's shape (``"state":
  "error: <kind>"``) when the generator cannot make a report.
- ``GET /config``: the settings without secrets.
- ``GET /files/{key}`` (with ``serve_files=True``): a stored image, with year-long
  caching headers and an ETag (``_files``); 404 for a key that has none.
- ``POST /webhooks/{provider}``: a vendor's callback; 204 once taken.
- ``GET /admin/status``, ``GET /admin/stats?since=&until=&provider=``,
  ``GET /admin/providers``, ``GET /admin/storage``,
  ``POST /admin/circuit-breaker`` (``{"provider", "action": "open|close|reset"}``) and
  ``PATCH /admin/config``: need ``Authorization: Bearer <admin_token>``; without an
  ``admin_token`` they always answer 403.

Errors are RFC 9457 problem details (``application/problem+json``) with ``type``,
``title``, ``status`` and ``detail``; errors raised by imagegen add ``kind``, a
refused request or setting adds ``errors: [{field, message}]`` (422; a generation
request lists every bad field, checked alone by the library's rules: ``_fields``),
and a failed generation adds ``generation_id`` and ``attempts`` (502). Times are
ISO 8601 in UTC with the offset, a job's ``deadline`` included, and errors nested in
attempts leave out their empty members (``_render``). A body that is not strict
JSON (``_body``) answers 400; a failing state backend or storage 503, never 500
(``_problems.backend_call``).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import ImageGenError, InvalidConfig, NotRunning
from ._body import read_body, read_json_object
from ._fields import FieldCheck
from ._files import stored_file
from ._options import allow_list, unlisted
from ._problems import (
    Problem,
    backend_call,
    describe,
    invalid,
    problem_for,
    problem_response,
)
from ._render import breaker_dict, job_dict, result_dict

if TYPE_CHECKING:
    from .. import ImageGenerator

__all__ = ["create_app"]

logger = logging.getLogger("imagegen.server")

_BREAKER_ACTIONS = ("open", "close", "reset")

_Endpoint = Callable[[Request], Awaitable[Response]]


def _parse_when(name: str, value: str | None) -> dt.date | dt.datetime | None:
    """A ``?since=``/``?until=`` value: a day, or a time (its UTC day counts).

    Raises:
        Problem: 422 naming the parameter: not ISO 8601, or a time whose offset
            moves it out of the calendar once in UTC (``0001-01-01T00:00+01:00``).
    """
    if value is None or value == "":
        return None
    message = f"{name} must be an ISO 8601 date or time (got {value!r})"
    try:
        if len(value) == 10:  # YYYY-MM-DD: a day, not a time
            return dt.date.fromisoformat(value)
        when = dt.datetime.fromisoformat(value)
        if when.tzinfo is not None:  # naive times are taken as UTC as they are
            when.astimezone(dt.UTC)  # the library counts its UTC day
    except ValueError:
        raise invalid(name, message) from None
    except OverflowError:
        raise invalid(name, f"{name} is out of range once in UTC (got {value!r})") from None
    return when


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


def _unavailable_report(generator: ImageGenerator, error: Exception) -> dict[str, Any]:
    """The health report's shape when the generator could not make one: degraded,
    each provider's last known breaker state, and the error's kind as the state."""
    kind = error.kind if isinstance(error, ImageGenError) else type(error).__name__
    return {
        "status": "degraded",
        "providers": {s["name"]: s["breaker"] for s in generator.providers_status()},
        "state": f"error: {kind}",
    }


def create_app(
    generator: ImageGenerator,
    *,
    admin_token: str | None = None,
    max_body_bytes: int = 1_000_000,
    allow_provider_options: Mapping[str, Collection[str]] | None = None,
    serve_files: bool = False,
) -> Starlette:
    """The ASGI app serving ``generator``; see the module docs for the routes.

    Args:
        generator: The generator to serve. The app never opens or closes it; enter it
            with ``async with`` for ``"async": true`` requests.
        admin_token: The bearer token the admin routes need; None answers them 403.
        max_body_bytes: The largest request body taken; larger ones get 413.
        allow_provider_options: Provider name -> the ``provider_options`` keys HTTP
            callers may set for it, e.g. ``{"openai": ["background"]}``. None (the
            default) allows none: options go to the vendor as they are and can change
            what a generation costs. A request with any other key answers 422.
        serve_files: Also serve the stored images at ``GET /files/{key}`` (for
            storage no web server serves, such as :class:`~imagegen.LocalStorage`
            in a data directory: give it ``base_url="<this app's URL>/files/"``).

    Raises:
        InvalidConfig: ``admin_token`` is empty, ``max_body_bytes`` is not > 0, or
            ``allow_provider_options`` is not a mapping of names to option names.
    """
    if admin_token is not None and (not isinstance(admin_token, str) or not admin_token):
        raise InvalidConfig("admin_token must be a non-empty string or None", field="admin_token")
    if (
        not isinstance(max_body_bytes, int)
        or isinstance(max_body_bytes, bool)
        or max_body_bytes <= 0
    ):
        raise InvalidConfig("max_body_bytes must be an integer > 0", field="max_body_bytes")
    allowed_options = allow_list(allow_provider_options)
    field_check = FieldCheck()
    expected = admin_token.encode() if admin_token is not None else None

    def guarded(endpoint: _Endpoint) -> _Endpoint:
        async def wrapper(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Problem as problem:
                return problem.response()
            except ImageGenError as error:
                answer = problem_for(error)
                if answer.status >= 500 and answer.status != 502:  # 502: a vendor's failure
                    logger.warning(
                        "%s %s answered %d: %s",
                        request.method,
                        request.url.path,
                        answer.status,
                        describe(error),
                    )
                return answer.response()
            except Exception:
                logger.exception("%s %s failed", request.method, request.url.path)
                return problem_response(500, "unexpected error (see the server log)")

        wrapper.__name__ = endpoint.__name__
        wrapper.__doc__ = endpoint.__doc__
        return wrapper

    def admin(endpoint: _Endpoint) -> _Endpoint:
        async def wrapper(request: Request) -> Response:
            if expected is None:
                raise Problem(403, "admin routes are disabled: no admin token is configured")
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), expected
            ):
                raise Problem(
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
        fields = await read_json_object(request, max_body_bytes)
        run_async = fields.pop("async", False)
        # Every bad field in one 422: the server's own rules first, then the library's
        # for each field, checked alone (``_fields``), in the body's order.
        refused: list[tuple[str, str]] = []
        if not isinstance(run_async, bool):
            refused.append(("async", "async must be true or false"))
        if "prompt" not in fields:
            refused.append(("prompt", "prompt is required"))
        refused += unlisted(fields.get("provider_options"), allowed_options)
        limit = fields.get("timeout")
        # Callers may ask for less time than the server's deadline, never more: a long
        # deadline holds the server's resources (and a vendor call) that much longer.
        if isinstance(limit, int | float) and limit > generator.timeout:
            refused.append(("timeout", f"timeout may be at most {generator.timeout:g} s"))
        refused += await field_check.refusals(fields)
        if refused:
            (field, message), *more = refused
            problem = invalid(field, message, more)
            problem.extras["kind"] = "InvalidRequest"
            raise problem
        prompt = fields.pop("prompt")
        if run_async:
            try:
                job_id = await backend_call(generator.submit(prompt, **fields))
            except NotRunning:
                raise Problem(503, "this server does not run asynchronous jobs") from None
            job = await backend_call(generator.job(job_id))
            status = job.status if job is not None else "pending"
            return JSONResponse({"job_id": job_id, "status": status}, status_code=202)
        result = await backend_call(generator.generate(prompt, **fields))
        return JSONResponse(result_dict(result))

    async def job(request: Request) -> Response:
        """A job's status, result or error."""
        job_id = request.path_params["job_id"]
        found = await backend_call(generator.job(job_id))
        if found is None:
            raise Problem(404, f"no job has the id {job_id!r}")
        return JSONResponse(job_dict(found))

    async def health(request: Request) -> Response:
        """Breaker states and backend reachability; 503 unless all is well."""
        deep = request.query_params.get("deep", "").lower() in ("1", "true", "yes")
        try:
            report = await generator.health(deep=deep)
        except Exception as exc:  # noqa: BLE001 - no report is an unhealthy service
            report = _unavailable_report(generator, exc)
            logger.warning("GET %s answered 503: %s", request.url.path, report["state"])
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    async def config(_: Request) -> Response:
        """The current settings (newer shared ones adopted first), without secrets."""
        await backend_call(generator.refresh_config())
        return JSONResponse(_config_dict(generator))

    async def webhook(request: Request) -> Response:
        """A vendor's callback, verified by the provider."""
        provider = request.path_params["provider"]
        body = await read_body(request, max_body_bytes)
        await backend_call(
            generator.handle_webhook(
                provider, request.headers, body, params=dict(request.query_params)
            )
        )
        return Response(status_code=204)

    async def admin_status(_: Request) -> Response:
        """Health, providers and settings in one answer."""
        report = await backend_call(generator.health())
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
        stats = await backend_call(generator.stats(since=since, until=until, provider=provider))
        variants = await backend_call(generator.variant_stats(since=since, until=until))
        return JSONResponse(
            {
                "stats": [s.to_dict() for s in stats],
                "variants": [v.to_dict() for v in variants],
            }
        )

    async def admin_providers(_: Request) -> Response:
        """Each provider's status with its breaker's snapshot."""
        providers = []
        for status in generator.providers_status():
            breaker = generator.breaker_for(status["name"])
            snapshot = await backend_call(breaker.snapshot())
            providers.append({**status, "breaker": breaker_dict(snapshot)})
        return JSONResponse({"providers": providers})

    async def admin_storage(_: Request) -> Response:
        """What the storage holds, when it can tell."""
        storage = generator.storage
        stats_method = getattr(storage, "stats", None)
        stats = None
        if storage is not None and callable(stats_method):
            counted = await backend_call(stats_method(), "the storage")
            stats = {"objects": counted.objects, "bytes": counted.bytes}
        return JSONResponse(
            {"backend": type(storage).__name__ if storage is not None else None, "stats": stats}
        )

    async def admin_breaker(request: Request) -> Response:
        """Force a provider's breaker open or closed, or reset it."""
        data = await read_json_object(request, max_body_bytes)
        name, action = data.get("provider"), data.get("action")
        if not isinstance(name, str) or not name:
            raise invalid("provider", "provider must name a provider")
        if action not in _BREAKER_ACTIONS:
            raise invalid("action", "action must be open, close or reset")
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise invalid("reason", "reason must be a string")
        breaker = generator.breaker_for(name)
        if action == "open":
            await backend_call(breaker.force_open(reason or "forced open by an admin"))
        elif action == "close":
            await backend_call(breaker.force_close(reason or "forced closed by an admin"))
        else:
            await backend_call(breaker.reset())
        snapshot = await backend_call(breaker.snapshot())
        return JSONResponse(breaker_dict(snapshot))

    async def admin_config(request: Request) -> Response:
        """Change settings at run time; a bad change is refused whole."""
        data = await read_json_object(request, max_body_bytes)
        try:
            generator.update_settings(data)
        except ImageGenError:
            raise  # InvalidConfig (also a ValueError) names the field itself
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # A shape update_settings did not check for: bad input all the same, and
            # nothing changed (a change is applied whole or not at all).
            logger.warning("PATCH %s: settings refused: %r", request.url.path, exc)
            message = f"the settings do not have the documented shape ({type(exc).__name__})"
            raise invalid("body", message) from None
        await backend_call(generator.publish_config())
        return JSONResponse(_config_dict(generator))

    async def files(request: Request) -> Response:
        """A stored image, cacheable for a year."""
        return await stored_file(generator, request)

    async def http_problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException
        return problem_response(exc.status_code, exc.detail, headers=exc.headers)

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
    if serve_files:
        routes.append(Route("/files/{key:path}", guarded(files), methods=["GET"]))
    return Starlette(routes=routes, exception_handlers={HTTPException: http_problem})
