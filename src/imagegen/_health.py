"""Health: breaker states, whether the state backend answers, and deep checks.

A deep check runs each enabled provider's ``check()`` (its cheapest authenticated
call, nothing billed) and writes, reads back and deletes a small storage object.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio

from ._config import Config
from ._errors import ImageGenError
from ._runtime import Runtime
from .providers import Provider

__all__ = ["STATE_PROBE_BOUND", "UNCHECKED", "check_providers", "health", "providers_status"]

#: Seconds the health report waits for the state backend.
STATE_PROBE_BOUND = 2.0


def providers_status(rt: Runtime, config: Config) -> list[dict[str, Any]]:
    """Each provider's name, tier, enabled flag, timeout and last known breaker state."""
    return [
        {
            "name": p.name,
            "tier": p.tier,
            "enabled": p.name in config.enabled,
            "timeout": p.timeout,
            "breaker": rt.breakers[p.name].last_state,
        }
        for p in config.providers
    ]


async def _probe_state(rt: Runtime) -> str:
    """``"ok"``, or ``"error: <kind>"`` when the state backend fails or does not answer."""
    answer = f"error: no answer within {STATE_PROBE_BOUND:g}s"
    with rt.clock.deadline_scope(rt.clock.monotonic() + STATE_PROBE_BOUND):
        try:
            await rt.state.get(f"{rt.state_prefix}health")
            answer = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "unreachable" here
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            answer = f"error: {type(cause).__name__}"
    return answer


async def _breaker_states(rt: Runtime, config: Config, backend: str) -> dict[str, str]:
    """Each provider's breaker state; the last one seen when the backend is down."""
    states = {p.name: str(rt.breakers[p.name].last_state) for p in config.providers}
    if backend != "ok":
        return states
    with rt.clock.deadline_scope(rt.clock.monotonic() + STATE_PROBE_BOUND):
        for provider in config.providers:
            try:
                states[provider.name] = await rt.breakers[provider.name].state()
            except ImageGenError:
                continue  # keeps the last state seen
    return states


async def health(rt: Runtime, config: Config, *, deep: bool) -> dict[str, Any]:
    """The health report (see ``ImageGenerator.health``); never raises, answers within
    seconds even when the state backend does not answer."""
    backend = await _probe_state(rt)
    states = await _breaker_states(rt, config, backend)
    usable = any(states[name] != "open" for name in config.enabled)
    report: dict[str, Any] = {"providers": states, "state": backend}
    healthy = usable and backend == "ok"
    if deep:
        report["checks"] = checks = await check_providers(rt, config)
        report["storage"] = storage = await _probe_storage(rt)
        healthy = healthy and storage in ("ok", None)
        healthy = healthy and all(result in ("ok", UNCHECKED) for result in checks.values())
    return {"status": "ok" if healthy else "degraded", **report}


async def _probe_storage(rt: Runtime) -> str | None:
    """Write, read back and delete a small probe object; None without storage."""
    storage = rt.storage
    if storage is None:
        return None
    key = f"{rt.key_prefix}doctor/{uuid.uuid4().hex}.txt"
    probe = b"imagegen storage probe"
    try:
        stored = await storage.put(key, probe, content_type="text/plain", metadata={})
        read = await storage.get(stored.key)
        await storage.delete(stored.key)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer here
        return f"{type(exc).__name__}: {exc}"
    return "ok" if read == probe else "the probe object read back differently"


#: What ``check_providers`` says of a provider that has no ``check()`` of its own.
UNCHECKED = "unchecked"


async def check_providers(rt: Runtime, config: Config) -> dict[str, str]:
    """Run each enabled provider's ``check()`` at once: ``"ok"`` or the error, by name;
    ``"unchecked"`` for a provider without a ``check()`` of its own (nothing was
    verified, so it is not reported ``"ok"``)."""
    results: dict[str, str] = {}

    async def check(provider: Provider) -> None:
        if type(provider).check is Provider.check:
            results[provider.name] = UNCHECKED
            return
        deadline = rt.clock.monotonic() + min(10.0, config.timeout)
        ctx = rt.context(provider, deadline=deadline)
        with rt.clock.deadline_scope(deadline) as scope:
            try:
                await provider.check(ctx)
                results[provider.name] = "ok"
            except ImageGenError as exc:
                results[provider.name] = f"{exc.kind}: {exc}"
            except Exception as exc:  # noqa: BLE001 - a bug in a check is a failed check
                results[provider.name] = f"unexpected {type(exc).__name__}"
        if scope.cancelled_caught:
            results[provider.name] = "ProviderTimeout: no answer"

    async with anyio.create_task_group() as tg:
        for provider in config.providers:
            if provider.name in config.enabled:
                tg.start_soon(check, provider)
    return {p.name: results[p.name] for p in config.providers if p.name in results}
