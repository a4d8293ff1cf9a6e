"""The facade: validate, pick providers tier by tier, store, record.

It wires the strategies and holds no provider-specific logic. One time budget,
``timeout``, covers everything: each stage of the plan (a raced or hedged tier,
or one provider of a fallback chain) gets a fair share of what is left, so a
slow first provider cannot eat the time a fallback needs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import itertools
import json
import logging
import math
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
import attrs
import cachetools
import httpx

from ._clock import Clock, SystemClock
from ._download import DownloadPolicy, check_image, fetch_image
from ._errors import (
    AllProvidersFailed,
    CircuitOpen,
    ImageGenError,
    InvalidConfig,
    InvalidRequest,
    ProviderError,
    ProviderTimeout,
    StorageError,
)
from ._experiments import Experiment, Variant
from ._http_headers import user_agent
from ._image import dimensions, extension_for
from ._models import (
    Attempt,
    Event,
    ImageRequest,
    ImageResult,
    Job,
    ProviderDayStats,
    Record,
    VariantDayStats,
)
from ._relay import WebhookRelay
from ._settings import changes_from_json, settings_json
from ._tracking import Tracker
from .providers import Provider, ProviderContext, ProviderImage, WebhookReceiver
from .providers._placeholder import render_placeholder
from .state import MemoryState, StateBackend
from .storage import Storage, StoredObject
from .strategies import CircuitBreaker, Fallback, Hedge, ProviderBreaker, Race, Retry
from .strategies._selection import HedgeBudget, LatencyWindow, Selection, staggered

if TYPE_CHECKING:
    from typing import Self

__all__ = ["DEFAULT", "Hook", "ImageGenerator"]

logger = logging.getLogger("imagegen")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NAMESPACE_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_WEBHOOK_TOLERANCE = 300.0  # seconds a webhook's timestamp may be off (Standard Webhooks)
_JOB_TTL = 86_400.0  # seconds a job's status is kept
_STALE_GRACE = 60.0  # a job "running" this long past its deadline has lost its process
# Finished jobs stay in memory (with their bytes) this long, at most this many; after
# that, job() reads them from the state backend, which keeps them for _JOB_TTL.
_LOCAL_JOB_TTL = 600.0
_LOCAL_JOBS = 10_000
_CANCEL_TIMEOUT = 5.0  # seconds a remote cancel may take, shielded from the caller's cancel


class _DefaultImage:
    """The built-in default image: the prompt's placeholder landscape, muted."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _DefaultImage()

Hook = Callable[[Event], Any]
"""A callable taking one :class:`Event`; sync or async. Exceptions are logged, not raised."""

DefaultImage = _DefaultImage | bytes | Provider | None


def _check_providers(_: object, __: attrs.Attribute[Any], providers: tuple[Provider, ...]) -> None:
    if not providers:
        raise InvalidConfig("providers must name at least one Provider", field="providers")
    seen: set[str] = set()
    for provider in providers:
        if not isinstance(provider, Provider):
            raise InvalidConfig(
                f"providers must be Provider instances, not {type(provider).__name__}",
                field="providers",
            )
        name = provider.name
        if not isinstance(name, str) or not _NAME.match(name) or name == "default":
            raise InvalidConfig(
                f"provider name {name!r} must be 1-64 of letters, digits, '_', '.', '-' "
                "(and not 'default')",
                field="providers",
            )
        if name in seen:
            raise InvalidConfig(
                f"two providers are named {name!r}; names must be unique", field="providers"
            )
        seen.add(name)
        if (
            not isinstance(provider.tier, int)
            or isinstance(provider.tier, bool)
            or provider.tier < 0
        ):
            raise InvalidConfig(f"{name}.tier must be an integer >= 0", field="providers")
        timeout = provider.timeout
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise InvalidConfig(f"{name}.timeout must be None or seconds > 0", field="providers")


def _check_instance(
    kind: type | tuple[type, ...], label: str
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise InvalidConfig(
                f"{attribute.name} must be {label}, not {value!r}", field=attribute.name
            )

    return check


def _check_timeout(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < math.inf:
        raise InvalidConfig(f"timeout must be seconds > 0 (got {value!r})", field=attribute.name)


def _check_default(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None or isinstance(value, _DefaultImage | Provider):
        return
    if isinstance(value, bytes):
        if not value:
            raise InvalidConfig("default_image bytes must not be empty", field=attribute.name)
        return
    raise InvalidConfig(
        "default_image must be DEFAULT, None, image bytes or a Provider", field=attribute.name
    )


@attrs.frozen(kw_only=True)
class _Config:
    """Everything ``configure()`` may change, swapped whole so a change is atomic."""

    providers: tuple[Provider, ...] = attrs.field(validator=_check_providers)
    enabled: frozenset[str]
    strategy: Selection = attrs.field(
        validator=_check_instance((Race, Hedge, Fallback), "Race(), Hedge() or Fallback()")
    )
    retry: Retry = attrs.field(validator=_check_instance(Retry, "a Retry"))
    breaker: CircuitBreaker = attrs.field(
        validator=_check_instance(CircuitBreaker, "a CircuitBreaker")
    )
    timeout: float = attrs.field(validator=_check_timeout)
    default_image: DefaultImage = attrs.field(validator=_check_default)

    def tiers(self) -> list[list[Provider]]:
        """Enabled providers grouped by tier, lowest first, in priority order inside."""
        groups: dict[int, list[Provider]] = defaultdict(list)
        for provider in self.providers:
            if provider.name in self.enabled:
                groups[provider.tier].append(provider)
        return [groups[tier] for tier in sorted(groups)]

    def stages(self, tier: Sequence[Provider]) -> int:
        """How many sequential stages a tier takes: one if raced or hedged."""
        return len(tier) if isinstance(self.strategy, Fallback) else 1


def _changed(config: _Config, changes: Mapping[str, Any]) -> _Config:
    """``config`` with ``changes`` (what ``configure()`` takes) applied; validated whole."""
    names = {p.name: p for p in config.providers}
    updates: dict[str, Any] = {}
    for key, value in changes.items():
        if key in ("strategy", "retry", "breaker", "timeout", "default_image"):
            updates[key] = value
        elif key == "enabled":
            if not isinstance(value, Mapping):
                raise InvalidConfig("enabled must map provider names to bools", field="enabled")
            enabled = set(updates.get("enabled", config.enabled))
            for name, on in value.items():
                if name not in names or not isinstance(on, bool):
                    raise InvalidConfig(
                        f"enabled: unknown provider or non-bool for {name!r}", field="enabled"
                    )
                (enabled.add if on else enabled.discard)(name)
            updates["enabled"] = frozenset(enabled)
        elif key == "priority":
            if isinstance(value, str) or not all(isinstance(n, str) and n in names for n in value):
                raise InvalidConfig("priority must list known provider names", field="priority")
            first = list(dict.fromkeys(value))
            rest = [p for p in config.providers if p.name not in first]
            updates["providers"] = tuple(names[n] for n in first) + tuple(rest)
        else:
            raise InvalidConfig(f"{key} cannot be configured at run time", field=key)
    return attrs.evolve(config, **updates)


_MAX_KEY = 256


def _describe(config: _Config) -> str | None:
    """The default image in a word, for settings shown to people."""
    default = config.default_image
    if default is None or isinstance(default, bytes):
        return None if default is None else "bytes"
    if isinstance(default, Provider):
        return f"provider:{default.name}"
    return "placeholder"


def _check_key(key: object) -> str | None:
    """An experiment key is a short string (a user id, a session id)."""
    if key is None or (isinstance(key, str) and 0 < len(key) <= _MAX_KEY):
        return key
    raise InvalidRequest(
        f"experiment_key must be a string of 1 to {_MAX_KEY} characters", field="experiment_key"
    )


def _is_cancellation(exc: BaseException) -> bool:
    """A cancellation, bare or grouped: trio raises it as a group out of a nursery
    (httpx connecting through ``trio.open_tcp_stream``)."""
    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, cancelled):
        return True
    return isinstance(exc, BaseExceptionGroup) and exc.split(cancelled)[1] is None


def _day(value: dt.date | dt.datetime | None) -> dt.date | None:
    """A UTC day from a date, an aware datetime (converted) or a naive one (taken as UTC)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    return value


@attrs.define(kw_only=True, eq=False)
class _Generation:
    id: str
    request: ImageRequest
    started: float
    deadline: float  # generate() returns by then
    stop: float  # providers stop by then, keeping time back for the default image and storing
    created_at: dt.datetime
    job_id: str | None = None
    variant: str | None = None
    attempts: list[Attempt] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class _Output:
    """A provider's image, checked and in hand (or a hotlink)."""

    provider: str
    data: bytes | None
    content_type: str
    width: int | None
    height: int | None
    source_url: str | None = None
    attribution: str | None = None
    hotlink: str | None = None


class ImageGenerator:
    """Turns prompts into stored images, across providers that may be slow, failing or down.

    Args:
        providers: The providers; list order is priority inside a tier.
        strategy: How a tier's providers are called: ``Race()``, ``Hedge()``, ``Fallback()``.
        retry: Retries of one provider.
        breaker: Circuit-breaker settings, applied per provider.
        storage: Where images go; None keeps the bytes in ``ImageResult.data``.
        state: Records, statistics and breaker state; None means ``MemoryState()``.
        timeout: Seconds within which ``generate()`` always returns.
        default_image: When every provider fails: ``DEFAULT`` (a muted placeholder of
            the requested size), image bytes, a Provider, or None to raise instead.
        download: Limits on provider output (size, https, private networks).
        http: An ``httpx.AsyncClient`` you own; otherwise one is made on first use
            and closed by ``aclose()``.
        hooks: Callables taking one :class:`Event`, sync or async. A hook that is
            also an async context manager (say, one that delivers alerts in the
            background) is entered by ``async with`` the generator and exited by
            :meth:`aclose`.
        namespace: Prefix for every state and storage key, so environments sharing a
            backend never meet.
        clock: Time source; tests pass :class:`imagegen.testing.FakeClock`.
        config_ttl: Seconds between looks at the shared settings in the state
            backend, where :meth:`configure` changes are published for every
            generator sharing it (same namespace).
        experiment: Named variants of the settings, each generation running one
            (see :class:`Experiment`); records and results name the variant.
        max_in_flight: At most this many provider calls at once in this generator
            (each call holds one HTTP connection at a time); the rest wait their
            turn, first come first served, within their deadline. Match it to your
            HTTP client's ``max_connections`` (100 for the client made here); None
            for no limit.

    Raises:
        InvalidConfig: A setting broke a rule; the message names it.
    """

    def __init__(
        self,
        *,
        providers: Iterable[Provider],
        strategy: Selection = Race(),  # noqa: B008 - frozen values, safe to share
        retry: Retry = Retry(),  # noqa: B008
        breaker: CircuitBreaker = CircuitBreaker(),  # noqa: B008
        storage: Storage | None = None,
        state: StateBackend | None = None,
        timeout: float = 30.0,
        default_image: DefaultImage = DEFAULT,
        download: DownloadPolicy = DownloadPolicy(),  # noqa: B008
        http: httpx.AsyncClient | None = None,
        hooks: Iterable[Hook] = (),
        namespace: str | None = None,
        clock: Clock | None = None,
        config_ttl: float = 5.0,
        experiment: Experiment | None = None,
        max_in_flight: int | None = 100,
    ) -> None:
        providers = tuple(providers)
        self._config = _Config(
            providers=providers,
            enabled=frozenset(p.name for p in providers if isinstance(p, Provider)),
            strategy=strategy,
            retry=retry,
            breaker=breaker,
            timeout=timeout,
            default_image=default_image,
        )
        if namespace is not None and not NAMESPACE_RULE.match(namespace):
            raise InvalidConfig(
                "namespace must be 1-64 of letters, digits, '_' and '-'", field="namespace"
            )
        if not isinstance(download, DownloadPolicy):
            raise InvalidConfig("download must be a DownloadPolicy", field="download")
        hooks = tuple(hooks)
        if not all(callable(hook) for hook in hooks):
            raise InvalidConfig("hooks must be callables taking one Event", field="hooks")
        self.namespace = namespace
        self.storage = storage
        self.state: StateBackend = state if state is not None else MemoryState()
        self.download = download
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._hooks = hooks
        self._http = http
        self._owns_http = http is None
        self._owned: list[Any] = []  # resources from_env() made for us, closed by aclose()
        self._closed = False
        self._background: anyio.abc.TaskGroup | None = None
        self._hook_stack: AsyncExitStack | None = None
        # Jobs running in this process: their cancel scopes and finished results (the
        # local result keeps its bytes, which the state backend does not store).
        self._job_scopes: dict[str, anyio.CancelScope] = {}
        self._job_done: dict[str, anyio.Event] = {}
        self._local_jobs: cachetools.TTLCache[str, Job] = cachetools.TTLCache(
            maxsize=_LOCAL_JOBS, ttl=_LOCAL_JOB_TTL, timer=self.clock.monotonic
        )
        # "imagegen:<namespace>:" (empty namespace: "imagegen::"): namespaces cannot hold
        # ":", so no namespace's keys can ever match another's prefix scan.
        prefix = self._state_prefix = f"imagegen:{namespace or ''}:"
        self._key_prefix = f"{namespace}/" if namespace else ""
        self._tracker = Tracker(self.state, prefix=prefix)
        self._relay = WebhookRelay(self.state, prefix, self.clock)
        self._breakers = {
            p.name: ProviderBreaker(
                p.name,
                settings=lambda: self._config.breaker,
                state=self.state,
                clock=self.clock,
                emit=self._emit,
                prefix=prefix,
            )
            for p in providers
        }
        if (
            not isinstance(config_ttl, int | float)
            or isinstance(config_ttl, bool)
            or config_ttl < 0
        ):
            raise InvalidConfig("config_ttl must be seconds >= 0", field="config_ttl")
        self._config_ttl = float(config_ttl)
        self._config_checked = -math.inf  # monotonic time of the last look at shared settings
        self._config_version = 0.0  # wall time of the shared settings we run with
        self._config_dirty = False  # configure() changes not yet published
        self._latency: dict[str, LatencyWindow] = defaultdict(LatencyWindow)
        self._loggers = {
            p.name: logging.getLogger(f"imagegen.providers.{p.name}") for p in providers
        }
        self._hedge_budget = HedgeBudget(self.clock)
        if max_in_flight is not None and (
            not isinstance(max_in_flight, int)
            or isinstance(max_in_flight, bool)
            or max_in_flight < 1
        ):
            raise InvalidConfig("max_in_flight must be None or an int >= 1", field="max_in_flight")
        self._max_in_flight = max_in_flight
        self._slots: anyio.CapacityLimiter | None = None  # made on first use, in async context
        if experiment is not None and not isinstance(experiment, Experiment):
            raise InvalidConfig("experiment must be an Experiment", field="experiment")
        self._experiment = experiment
        self._variant_base: _Config | None = None
        self._variant_configs: dict[str, _Config] = {}
        if experiment is not None:
            self._check_variants(self._config)

    # -- resources ----------------------------------------------------------------

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                headers={"User-Agent": user_agent()},
                timeout=httpx.Timeout(30.0, connect=10.0),
                follow_redirects=False,
            )
        return self._http

    async def __aenter__(self) -> Self:
        # Hooks first: a hook may open a task group of its own (AlertWebhook does), and
        # task groups close in the reverse order they opened; aclose() closes the
        # background group before the hooks, so its last events still reach them.
        stack = AsyncExitStack()
        try:
            for hook in self._hooks:
                if hasattr(hook, "__aenter__") and hasattr(hook, "__aexit__"):
                    await stack.enter_async_context(hook)
        except BaseException:
            await stack.aclose()
            raise
        self._hook_stack = stack
        # Inside `async with`, clean-up work (remote cancels of race losers) runs in this
        # task group, so a winner is returned without waiting for the losers' cancels.
        group = anyio.create_task_group()
        await group.__aenter__()
        self._background = group
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close what the generator opened (its HTTP client, providers). Idempotent.

        Inside ``async with``, first waits for background clean-up (each remote
        cancel is bounded to a few seconds).
        """
        if self._closed:
            return
        self._closed = True
        if self._background is not None:
            # Running jobs end now, marked failed with the reason; then clean-up finishes.
            for scope in self._job_scopes.values():
                scope.cancel()
            group, self._background = self._background, None
            await group.__aexit__(None, None, None)
        if self._hook_stack is not None:
            # After the background work, so its last events still reach the hooks.
            stack, self._hook_stack = self._hook_stack, None
            await stack.aclose()
        for provider in self._config.providers:
            await provider.aclose()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
        for resource in self._owned:
            await resource.aclose()

    # -- configuration ------------------------------------------------------------

    @property
    def providers(self) -> tuple[Provider, ...]:
        """The providers, in priority order."""
        return self._config.providers

    @property
    def max_in_flight(self) -> int | None:
        """At most this many provider calls run at once (None: no limit)."""
        return self._max_in_flight

    @property
    def timeout(self) -> float:
        """The current overall deadline, seconds."""
        return self._config.timeout

    def configure(self, **changes: Any) -> None:
        """Change settings for the next generations, atomically; a bad change changes nothing.

        Takes ``strategy``, ``retry``, ``breaker``, ``timeout``, ``default_image``,
        ``enabled={name: bool}`` and ``priority=[names]`` (listed names first, in
        that order; the rest keep theirs).

        Raises:
            InvalidConfig: Unknown setting or provider name, or a bad value.
        """
        # Variants only name providers and carry values checked on their own, so a
        # variant valid at construction stays valid under any accepted change.
        self._config = _changed(self._config, changes)
        # Published to the state backend by the next generation (or publish_config()),
        # since configure() is sync and the backend is not.
        self._config_dirty = True
        logger.info(
            "configuration changed: %s", ", ".join(f"{k}={v!r}" for k, v in changes.items())
        )

    def _check_variants(self, config: _Config) -> None:
        """Every variant of the experiment must apply cleanly on top of ``config``."""
        assert self._experiment is not None  # noqa: S101 - callers check
        for variant in self._experiment.variants:
            try:
                _changed(config, variant.settings)
            except InvalidConfig as exc:
                raise InvalidConfig(
                    f"experiment {self._experiment.name!r}, variant {variant.name!r}: {exc}",
                    field="experiment",
                ) from None

    def _config_for(self, variant: Variant | None) -> _Config:
        """The settings a generation runs with: the current ones, with its variant's on top."""
        config = self._config
        if variant is None:
            return config
        if self._variant_base is not config:
            self._variant_configs.clear()
            self._variant_base = config
        cached = self._variant_configs.get(variant.name)
        if cached is None:
            cached = self._variant_configs[variant.name] = _changed(config, variant.settings)
        return cached

    def settings(self) -> dict[str, Any]:
        """The run-time settings as JSON (what :meth:`configure` and PATCH /admin/config change).

        ``strategy`` (``{"kind": ..., fields}``), ``timeout``, ``retry``, ``breaker``,
        ``enabled``, ``priority``, and ``default_image`` described in a word
        (``"placeholder"``, ``"bytes"``, ``"provider:<name>"`` or None). No secrets.
        """
        return {**settings_json(self._config), "default_image": _describe(self._config)}

    async def refresh_config(self) -> None:
        """Publish pending :meth:`configure` changes, or adopt newer shared settings, now.

        Generators do this by themselves at most every ``config_ttl`` seconds.
        """
        self._config_checked = -math.inf
        await self._refresh_config()

    async def publish_config(self) -> None:
        """Write the current settings to the state backend for every generator sharing it.

        Others pick them up within their ``config_ttl``. ``configure()`` changes are
        published by the next generation anyway; call this to publish at once.
        """
        version = self.clock.time()
        payload = {"version": version, "settings": settings_json(self._config)}
        await self.state.set(f"{self._state_prefix}config", json.dumps(payload).encode())
        self._config_version = version
        self._config_dirty = False
        self._config_checked = self.clock.monotonic()

    async def _refresh_config(self) -> None:
        """Publish our changes, or adopt newer shared ones, at most every ``config_ttl``."""
        if self._config_dirty:
            await self.publish_config()
            return
        now = self.clock.monotonic()
        if now - self._config_checked < self._config_ttl:
            return
        self._config_checked = now
        try:
            raw = await self.state.get(f"{self._state_prefix}config")
            if raw is None:
                return
            payload = json.loads(raw)
            version = float(payload["version"])
            if version <= self._config_version:
                return
            settings = dict(payload["settings"])
            names = {p.name for p in self._config.providers}
            # Providers this process does not have are left out, not refused.
            settings["enabled"] = {
                k: v for k, v in settings.get("enabled", {}).items() if k in names
            }
            settings["priority"] = [n for n in settings.get("priority", []) if n in names]
            self.configure(**changes_from_json(settings))
        except (ImageGenError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring shared settings that cannot be applied: %r", exc)
            return
        except Exception:
            logger.warning("could not read the shared settings", exc_info=True)
            return
        self._config_dirty = False  # adopted, not ours to publish
        self._config_version = version
        logger.info("adopted shared settings published at %s", version)

    # -- generation ---------------------------------------------------------------

    async def generate(
        self,
        request: ImageRequest | str,
        /,
        *,
        experiment_key: str | None = None,
        **fields: Any,
    ) -> ImageResult:
        """Make one image: ``generate("a red fox")`` or ``generate(ImageRequest(...))``.

        Returns by ``timeout``, always: with an image, the default image
        (``is_default=True``), or an error. With an experiment, ``experiment_key``
        (a user id, say) keeps a caller on one variant.

        Raises:
            InvalidRequest: A field broke a rule; nothing was sent.
            AllProvidersFailed: Every provider failed and there is no default image.
            CircuitOpen: Every provider's breaker was open and there is no default image.
            StorageError: The image could not be stored (and nothing was recorded as stored).
        """
        checked = self._request(request, fields)
        return await self._generate(checked, experiment_key=_check_key(experiment_key))

    def _request(self, request: ImageRequest | str, fields: Mapping[str, Any]) -> ImageRequest:
        if isinstance(request, ImageRequest):
            if fields:
                field = next(iter(fields))
                raise InvalidRequest(
                    "pass either an ImageRequest or a prompt with fields, not both", field=field
                )
            return request
        known = {a.name for a in attrs.fields(ImageRequest)}
        for field in fields:
            if field not in known:
                raise InvalidRequest(f"{field} is not an ImageRequest field", field=field)
        return ImageRequest(prompt=request, **fields)

    async def _generate(
        self,
        request: ImageRequest,
        *,
        job_id: str | None = None,
        experiment_key: str | None = None,
    ) -> ImageResult:
        await self._refresh_config()
        variant = None
        if self._experiment is not None:
            variant = self._experiment.assign(experiment_key)
        config = self._config_for(variant)
        started = self.clock.monotonic()
        gen = _Generation(
            id=uuid.uuid4().hex,
            request=request,
            started=started,
            deadline=started + config.timeout,
            stop=started + config.timeout - min(1.0, config.timeout * 0.1),
            created_at=self._utcnow(),
            job_id=job_id,
            variant=variant.name if variant is not None else None,
        )
        await self._save_record(gen, status="running")
        summary: Callable[[], Mapping[str, Any]] = request.summary
        if variant is not None:

            def summary() -> Mapping[str, Any]:
                return {**request.summary(), "variant": gen.variant}

        await self._event("generation_started", gen.id, None, summary)
        try:
            result = await self._run(gen, config)
        except ImageGenError as error:
            with anyio.CancelScope(shield=True):
                await self._finished(gen, error=error)
            raise
        except BaseException as exc:
            if not _is_cancellation(exc):
                raise
            with anyio.CancelScope(shield=True):
                await self._finished(
                    gen, error=ImageGenError("the caller cancelled the generation")
                )
            raise
        return result

    async def _run(self, gen: _Generation, config: _Config) -> ImageResult:
        output = None
        with self.clock.deadline_scope(gen.stop):
            output = await self._select(gen, config)
        if output is None:
            output = await self._default(gen, config)
        return await self._store(gen, config, output)

    async def _select(self, gen: _Generation, config: _Config) -> _Output | None:
        tiers = config.tiers()
        stages_left = sum(config.stages(tier) for tier in tiers)
        skipped: list[Provider] = []
        for tier in tiers:
            stages_left -= config.stages(tier)
            allowed = []
            for provider in tier:
                if await self._breakers[provider.name].allow():
                    allowed.append(provider)
                else:
                    skipped.append(provider)
                    gen.attempts.append(
                        Attempt(
                            provider=provider.name,
                            outcome="skipped",
                            error=CircuitOpen(f"circuit open for {provider.name}"),
                        )
                    )
            if allowed:
                output = await self._run_tier(gen, config, allowed, stages_left)
                if output is not None:
                    return output
        if skipped and len(skipped) == len(gen.attempts):
            return await self._earliest_trial(gen, config, skipped)
        return None

    async def _earliest_trial(
        self, gen: _Generation, config: _Config, skipped: list[Provider]
    ) -> _Output | None:
        """Every breaker is open: try the one whose trial comes first, if there is time."""
        trials = [
            (await self._breakers[p.name].next_trial(), index, p) for index, p in enumerate(skipped)
        ]
        timed = [(at, index, p) for at, index, p in trials if at is not None]
        if not timed:
            return None
        at, _, provider = min(timed)
        wait = max(0.0, at - self.clock.time())
        if self.clock.monotonic() + wait >= gen.stop:
            return None
        await self.clock.sleep(wait)
        if not await self._breakers[provider.name].allow():
            return None
        return await self._run_tier(gen, config, [provider], 0)

    async def _run_tier(
        self,
        gen: _Generation,
        config: _Config,
        providers: Sequence[Provider],
        later_stages: int,
    ) -> _Output | None:
        strategy = config.strategy
        clock = self.clock

        def share(stages: int) -> float:
            now = clock.monotonic()
            return now + max(0.0, gen.stop - now) / stages

        if isinstance(strategy, Fallback):
            order = itertools.count()

            def deadline_for(_: Provider) -> float:
                return share(len(providers) - next(order) + later_stages)

        else:
            tier_deadline = share(1 + later_stages)

            def deadline_for(_: Provider) -> float:
                return tier_deadline

        if isinstance(strategy, Hedge):
            self._hedge_budget.record_generation(strategy.window)

        def may_hedge() -> bool:
            return isinstance(strategy, Hedge) and self._hedge_budget.try_spend(
                strategy.budget, strategy.window
            )

        return await staggered(
            providers,
            lambda p: self._attempt(gen, config, p, deadline_for(p)),
            launch_delay=lambda p: strategy.launch_delay(self._latency[p.name]),
            may_hedge=may_hedge,
            clock=clock,
        )

    async def _attempt(
        self,
        gen: _Generation,
        config: _Config,
        provider: Provider,
        stage_deadline: float,
    ) -> _Output | None:
        """One provider, with retries, within ``stage_deadline``; None when it failed."""
        clock, name = self.clock, provider.name
        breaker = self._breakers[name]
        begun = clock.monotonic()
        tries = 0
        billed = 0  # tries of a paid provider that made an image or remote work
        in_flight = waiting = False
        ctx: ProviderContext | None = None
        error: ProviderError | None = None
        try:
            while True:
                waiting = True
                slot = await self._take_slot(stage_deadline)
                waiting = False
                if slot is None:
                    # Nothing was sent: not the provider's failure, so neither its
                    # statistics nor its breaker hear of it.
                    error = self._no_slot(name)
                    break
                tries += 1
                try:
                    try_start = clock.monotonic()
                    limit = stage_deadline
                    if provider.timeout is not None:
                        limit = min(limit, try_start + provider.timeout)
                    ctx = ProviderContext(
                        deadline=limit,
                        clock=clock,
                        generation_id=gen.id,
                        job_id=gen.job_id,
                        logger=self._loggers[name],
                        http_factory=self._http_client,
                        spawn=self._background.start_soon if self._background else None,
                        inbox=self._relay.inbox(name),
                    )
                    await self._event("attempt_started", gen.id, name, {"try": tries})
                    in_flight = True
                    output: _Output | None = None
                    with clock.deadline_scope(limit) as scope:
                        try:
                            output = await self._call(provider, gen.request, ctx)
                        except ProviderError as exc:
                            error = exc
                        except ImageGenError as exc:
                            error = ProviderError(
                                str(exc), provider=name, status=400, retryable=False
                            )
                        except Exception as exc:
                            logger.exception(
                                "provider %s raised an unexpected %s", name, type(exc).__name__
                            )
                            error = ProviderError(
                                f"unexpected {type(exc).__name__} in provider (a bug; see the log)",
                                provider=name,
                                retryable=False,
                            )
                    in_flight = False
                finally:
                    self._free_slot(slot)
                if provider.paid and (output is not None or ctx.handle is not None):
                    billed += 1
                elapsed = clock.monotonic() - try_start
                if scope.cancelled_caught:
                    error = ProviderTimeout(f"no answer within {elapsed:.2f}s", provider=name)
                if output is None and ctx.handle is not None:
                    # Billable work exists: stop it, and never retry, since a retry would
                    # create (and bill) a second one.
                    await self._cancel_remote(provider, ctx)
                    if error is not None:
                        error.retryable = False
                if output is not None:
                    self._latency[name].add(elapsed)
                    await self._count(name, "success", latency=elapsed)
                    await breaker.record_success()
                    await self._attempt_done(gen, name, "success", None, begun, tries, billed)
                    return output
                assert error is not None  # noqa: S101 - one of output and error is set
                if error.provider is None:
                    error.provider = name
                await self._count(name, "failure", error_kind=error.kind)
                await breaker.record_failure(error)
                if not config.retry.should_retry(error, tries):
                    break
                delay = config.retry.backoff(tries, error.retry_after)
                if clock.monotonic() + delay >= stage_deadline:
                    break
                await self._event(
                    "retry_scheduled",
                    gen.id,
                    name,
                    {"try": tries, "delay": delay, "error": error.kind},
                )
                await clock.sleep(delay)
                if not await breaker.allow():
                    break
        except BaseException as exc:
            if not _is_cancellation(exc):
                raise
            with anyio.CancelScope(shield=True):
                if in_flight:
                    if isinstance(config.strategy, Hedge) and clock.monotonic() < gen.stop:
                        # A hedged call that lost took at least this long. Learning from
                        # winners alone would bias the hedge delay low: the slow calls are
                        # the ones that lose.
                        self._latency[name].add(clock.monotonic() - try_start)
                    if provider.paid and ctx is not None and ctx.handle is not None:
                        billed += 1
                    await self._count(name, "cancelled")
                    if ctx is not None:
                        await self._cancel_remote(provider, ctx)
                if clock.monotonic() >= gen.stop:
                    timeout = (
                        self._no_slot(name)
                        if waiting
                        else ProviderTimeout("the generation's deadline passed", provider=name)
                    )
                    await self._attempt_done(gen, name, "error", timeout, begun, tries, billed)
                else:
                    await self._attempt_done(gen, name, "cancelled", None, begun, tries, billed)
            raise
        await self._attempt_done(gen, name, "error", error, begun, tries, billed)
        return None

    async def _take_slot(self, deadline: float) -> object | None:
        """One of ``max_in_flight`` call slots (a token to free), or None if the
        deadline passed first. Waiting here, not in httpx's pool, keeps a burst of
        callers cheap: httpcore 1.0 walks its whole queue on every pool event."""
        token = object()
        if self._max_in_flight is None:
            return token
        if self._slots is None:
            self._slots = anyio.CapacityLimiter(self._max_in_flight)
        try:
            # No checkpoint when a slot is free: the call itself yields soon enough.
            self._slots.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            with self.clock.deadline_scope(deadline) as scope:
                await self._slots.acquire_on_behalf_of(token)
            if scope.cancelled_caught:
                return None
        return token

    def _no_slot(self, provider: str) -> ProviderTimeout:
        return ProviderTimeout(
            f"no free call slot before the deadline ({self._max_in_flight} calls in flight; "
            "see max_in_flight)",
            provider=provider,
            retryable=False,
        )

    def _free_slot(self, token: object) -> None:
        if self._slots is not None:
            self._slots.release_on_behalf_of(token)

    async def _call(
        self, provider: Provider, request: ImageRequest, ctx: ProviderContext
    ) -> _Output:
        image: object = await provider.generate(request, ctx)
        if not isinstance(image, ProviderImage):
            msg = f"generate() returned {type(image).__name__}, not a ProviderImage"
            raise TypeError(msg)
        name = provider.name
        if image.data is not None:
            data: bytes | None = image.data
            content_type = check_image(image.data, self.download, name)
        elif image.hotlink:
            data, content_type = None, image.content_type or "image/jpeg"
        else:
            assert image.url is not None  # noqa: S101 - ProviderImage holds exactly one
            data, content_type = await fetch_image(
                image.url,
                http=ctx.http,
                policy=self.download,
                provider=name,
                headers=dict(image.headers) if image.headers else None,
            )
        width, height = image.width, image.height
        if data is not None and (width is None or height is None):
            width, height = dimensions(data) or (width, height)
        return _Output(
            provider=name,
            data=data,
            content_type=content_type,
            width=width,
            height=height,
            source_url=image.url,
            attribution=image.attribution,
            hotlink=image.url if image.hotlink else None,
        )

    async def _cancel_remote(self, provider: Provider, ctx: ProviderContext) -> None:
        """Stop billable work an abandoned attempt started; in the background if we can."""
        if ctx.handle is None:
            return
        if self._background is not None:
            self._background.start_soon(self._cancel_now, provider, ctx)
        else:
            await self._cancel_now(provider, ctx)

    async def _cancel_now(self, provider: Provider, ctx: ProviderContext) -> None:
        """Call ``provider.cancel``, shielded from cancellation and bounded in time."""
        # The attempt's own deadline may have passed (that may be why we cancel): the
        # cancel gets a fresh, short one.
        deadline = self.clock.monotonic() + _CANCEL_TIMEOUT
        cancel_ctx = attrs.evolve(ctx, deadline=deadline)
        with anyio.CancelScope(shield=True):
            with self.clock.deadline_scope(deadline) as bound:
                try:
                    await provider.cancel(ctx.handle, cancel_ctx)
                except Exception:
                    logger.warning(
                        "cancelling %s's work %r failed", provider.name, ctx.handle, exc_info=True
                    )
                else:
                    await self._event("remote_cancelled", ctx.generation_id, provider.name, {})
            if bound.cancelled_caught:
                logger.warning(
                    "cancelling %s's work %r took over %.0fs; gave up (it may still run)",
                    provider.name,
                    ctx.handle,
                    _CANCEL_TIMEOUT,
                )

    async def _attempt_done(
        self,
        gen: _Generation,
        provider: str,
        outcome: Any,
        error: ImageGenError | None,
        begun: float,
        tries: int,
        billed: int,
    ) -> None:
        attempt = Attempt(
            provider=provider,
            outcome=outcome,
            error=error,
            elapsed=self.clock.monotonic() - begun,
            tries=tries,
        )
        gen.attempts.append(attempt)
        if error is not None:
            logger.info("%s failed for generation %s: %r", provider, gen.id, error)
        await self._event(
            "attempt_finished",
            gen.id,
            provider,
            {
                "outcome": outcome,
                "error": error.kind if error else None,
                "tries": tries,
                "elapsed": attempt.elapsed,
                "billed": billed,
            },
        )

    async def _default(self, gen: _Generation, config: _Config) -> _Output:
        default = config.default_image
        request = gen.request
        if default is None:
            raise self._failure(gen)
        if isinstance(default, Provider):
            ctx = ProviderContext(
                deadline=gen.deadline,
                clock=self.clock,
                generation_id=gen.id,
                http_factory=self._http_client,
            )
            with self.clock.deadline_scope(gen.deadline) as scope:
                try:
                    output = await self._call(default, request, ctx)
                except Exception as exc:
                    logger.warning("the default image provider failed: %r", exc)
                    raise self._failure(gen) from exc
            if scope.cancelled_caught:
                logger.warning("the default image provider did not answer by the deadline")
                raise self._failure(gen)
            output = attrs.evolve(output, provider="default")
        else:
            if isinstance(default, bytes):
                data = default
            else:
                data = render_placeholder(
                    request.prompt, request.width, request.height, request.seed, muted=True
                )
            width, height = dimensions(data) or (None, None)
            output = _Output(
                provider="default",
                data=data,
                content_type=check_image(data, self.download, "default"),
                width=width,
                height=height,
            )
        await self._count("default", "success", latency=0.0)
        return output

    def _failure(self, gen: _Generation) -> AllProvidersFailed | CircuitOpen:
        attempts = tuple(gen.attempts)
        summary = "; ".join(
            f"{a.provider}: {a.error.kind if a.error else a.outcome}" for a in attempts
        )
        if attempts and all(a.outcome == "skipped" for a in attempts):
            return CircuitOpen(
                f"every provider's circuit is open ({summary})",
                attempts=attempts,
                generation_id=gen.id,
            )
        return AllProvidersFailed(
            f"all providers failed ({summary or 'none enabled'})",
            attempts=attempts,
            generation_id=gen.id,
        )

    async def _put(
        self,
        gen: _Generation,
        config: _Config,
        storage: Storage,
        key: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str],
    ) -> StoredObject:
        """``storage.put``, retried per ``config.retry`` while the deadline allows."""
        tries = 0
        while True:
            tries += 1
            try:
                return await storage.put(key, data, content_type=content_type, metadata=metadata)
            except StorageError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - wrapped: a storage may raise anything
                error = StorageError(f"storing {key!r} failed: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
            delay = config.retry.backoff(tries)
            if tries >= config.retry.attempts or self.clock.monotonic() + delay >= gen.deadline:
                raise error
            logger.info("storing %s failed (%s); retrying in %.2fs", key, error, delay)
            await self.clock.sleep(delay)

    async def _store(self, gen: _Generation, config: _Config, output: _Output) -> ImageResult:
        data = output.data
        digest = hashlib.sha256(data).hexdigest() if data is not None else ""
        key = url = None
        storage = self.storage
        if output.hotlink is not None:
            url = output.hotlink
        elif storage is not None:
            assert data is not None  # noqa: S101 - only hotlinks come without bytes
            day = gen.created_at
            key = f"{self._key_prefix}{day:%Y/%m/%d}/{gen.id}.{extension_for(output.content_type)}"
            metadata = {
                "generation-id": gen.id,
                "provider": output.provider,
                "prompt-sha256": hashlib.sha256(gen.request.prompt.encode()).hexdigest(),
            }
            stored = await self._put(gen, config, storage, key, data, output.content_type, metadata)
            key, url = stored.key, stored.url
        result = ImageResult(
            id=gen.id,
            url=url,
            key=key,
            provider=output.provider,
            content_type=output.content_type,
            size=len(data) if data is not None else 0,
            width=output.width,
            height=output.height,
            sha256=digest,
            elapsed=self.clock.monotonic() - gen.started,
            attempts=tuple(gen.attempts),
            is_default=output.provider == "default",
            source_url=output.source_url,
            attribution=output.attribution,
            created_at=gen.created_at,
            variant=gen.variant,
            data=data if storage is None else None,
        )
        try:
            await self._finished(gen, result=result)
        except BaseException:
            # A stored image always has its record: without one, take the image back. A
            # content-addressed key (deduplicated storage) may be shared with other records,
            # so only an object named after this generation is ours to delete.
            if key is not None and storage is not None and gen.id in key:
                with anyio.CancelScope(shield=True):
                    await storage.delete(key)
            raise
        return result

    # -- records, statistics, events ------------------------------------------------

    def _utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.time(), tz=dt.UTC)

    async def _save_record(
        self,
        gen: _Generation,
        *,
        status: Any,
        result: ImageResult | None = None,
        error: ImageGenError | None = None,
    ) -> None:
        record = Record(
            id=gen.id,
            status=status,
            provider=result.provider if result else None,
            request=gen.request.summary(),
            key=result.key if result else None,
            url=result.url if result else None,
            attempts=tuple(gen.attempts),
            error=error,
            created_at=gen.created_at,
            finished_at=None if status == "running" else self._utcnow(),
            is_default=result.is_default if result else False,
            variant=gen.variant,
        )
        try:
            await self._tracker.save(record)
        except Exception as exc:
            raise StorageError(f"could not write the record: {type(exc).__name__}: {exc}") from exc

    async def _finished(
        self,
        gen: _Generation,
        *,
        result: ImageResult | None = None,
        error: ImageGenError | None = None,
    ) -> None:
        status = "succeeded" if result is not None else "failed"
        await self._save_record(gen, status=status, result=result, error=error)
        if gen.variant is not None:
            await self._count_variant(gen, result)
        await self._event(
            "generation_finished",
            gen.id,
            result.provider if result else None,
            {
                "status": status,
                "is_default": result.is_default if result else False,
                "elapsed": self.clock.monotonic() - gen.started,
                "error": error.kind if error else None,
            },
        )

    async def _count(
        self,
        provider: str,
        outcome: str,
        *,
        error_kind: str | None = None,
        latency: float | None = None,
    ) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self._tracker.count(
                    provider,
                    day=self._utcnow().date(),
                    outcome=outcome,
                    error_kind=error_kind,
                    latency=latency,
                )
        except Exception:
            # Statistics are worth less than the image: log and go on.
            logger.warning("could not count a %s call to %s", outcome, provider, exc_info=True)

    async def _count_variant(self, gen: _Generation, result: ImageResult | None) -> None:
        experiment, variant = self._experiment, gen.variant
        assert experiment is not None  # noqa: S101 - only generations with a variant get here
        assert variant is not None  # noqa: S101
        outcome = "failed" if result is None else "default" if result.is_default else "succeeded"
        try:
            await self._tracker.count_variant(
                experiment.name,
                variant,
                day=gen.created_at.date(),
                outcome=outcome,
                calls=sum(a.tries for a in gen.attempts),
                latency=self.clock.monotonic() - gen.started,
            )
        except Exception:
            logger.warning("could not count variant %s's generation", gen.variant, exc_info=True)

    async def _event(
        self,
        kind: str,
        generation_id: str | None,
        provider: str | None,
        data: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    ) -> None:
        # The hot path: build the Event only when a hook or the debug log wants it.
        if self._hooks or logger.isEnabledFor(logging.DEBUG):
            if callable(data):
                data = data()
            await self._emit(
                Event(kind=kind, generation_id=generation_id, provider=provider, data=data)
            )

    async def _emit(self, event: Event) -> None:
        logger.debug(
            "%s %s %s %s", event.kind, event.generation_id, event.provider or "", dict(event.data)
        )
        for hook in self._hooks:
            try:
                outcome = hook(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("hook %r failed on %s", hook, event.kind)

    # -- jobs -------------------------------------------------------------------------

    async def submit(
        self,
        request: ImageRequest | str,
        /,
        *,
        experiment_key: str | None = None,
        **fields: Any,
    ) -> str:
        """Start a generation in the background and return its job id at once.

        The request is validated first (``InvalidRequest``, nothing started). Jobs run
        in the generator's task group, so this needs ``async with ImageGenerator(...)``;
        leaving the block cancels running jobs, which end failed with the reason.

        Raises:
            InvalidRequest: A field broke a rule.
            InvalidConfig: The generator is not entered with ``async with``.
        """
        checked = self._request(request, fields)
        key = _check_key(experiment_key)
        if self._background is None:
            raise InvalidConfig(
                "submit() runs jobs in the generator's task group: "
                "use `async with ImageGenerator(...) as gen`",
                field="submit",
            )
        job_id = uuid.uuid4().hex
        deadline = self.clock.time() + self._config.timeout
        await self._save_job(Job(id=job_id, status="pending", deadline=deadline))
        scope = self._job_scopes[job_id] = anyio.CancelScope()
        self._job_done[job_id] = anyio.Event()
        self._background.start_soon(self._run_job, job_id, checked, scope, deadline, key)
        return job_id

    async def _run_job(
        self,
        job_id: str,
        request: ImageRequest,
        scope: anyio.CancelScope,
        deadline: float,
        experiment_key: str | None,
    ) -> None:
        job: Job | None = None
        with scope:
            await self._save_job(Job(id=job_id, status="running", deadline=deadline))
            try:
                result = await self._generate(request, job_id=job_id, experiment_key=experiment_key)
            except ImageGenError as failure:
                job = Job(id=job_id, status="failed", error=failure, deadline=deadline)
            except Exception as exc:
                logger.exception("job %s failed unexpectedly", job_id)
                bug = ImageGenError(f"unexpected {type(exc).__name__} (see the log)")
                job = Job(id=job_id, status="failed", error=bug, deadline=deadline)
            else:
                job = Job(id=job_id, status="succeeded", result=result, deadline=deadline)
        if job is None:  # cancelled: the generator is closing
            reason = ImageGenError("cancelled: the generator was closed before the job ended")
            job = Job(id=job_id, status="failed", error=reason, deadline=deadline)
        self._local_jobs[job_id] = job
        self._job_scopes.pop(job_id, None)
        with anyio.CancelScope(shield=True):
            try:
                await self._save_job(job)
            except Exception:
                logger.warning("could not store job %s's outcome", job_id, exc_info=True)
        # Waiters already hold the event; later ones find the job finished.
        self._job_done.pop(job_id).set()

    async def _save_job(self, job: Job) -> None:
        await self.state.set(
            f"{self._state_prefix}job:{job.id}", json.dumps(job.to_dict()).encode(), ttl=_JOB_TTL
        )

    async def job(self, job_id: str) -> Job | None:
        """A job's status (and result or error once it ended); None for an unknown id.

        Jobs live in the state backend, so a job submitted by another process sharing
        it can be read here; a job still "running" a minute past its deadline belongs
        to a process that stopped, and reads as failed.
        """
        local = self._local_jobs.get(job_id)
        if local is not None:
            return local
        raw = await self.state.get(f"{self._state_prefix}job:{job_id}")
        if raw is None:
            return None
        job = Job.from_dict(json.loads(raw))
        stale = job.deadline is not None and self.clock.time() > job.deadline + _STALE_GRACE
        if job.status in ("pending", "running") and stale:
            lost = ImageGenError("the job's process stopped before it ended")
            return attrs.evolve(job, status="failed", error=lost)
        return job

    async def wait(self, job_id: str, timeout: float | None = None) -> ImageResult:  # noqa: ASYNC109 - the signature DESIGN.md pins
        """The job's image once it ends; its error raised if it failed.

        Raises:
            InvalidRequest: No job has that id.
            TimeoutError: The job did not end within ``timeout`` seconds.
            ImageGenError: The job's own error, when it failed.
        """
        end = None if timeout is None else self.clock.monotonic() + timeout
        pause = 0.05
        while True:
            job = await self.job(job_id)
            if job is None:
                raise InvalidRequest(f"no job has the id {job_id!r}", field="job_id")
            if job.status == "succeeded" and job.result is not None:
                return job.result
            if job.status == "failed":
                raise job.error or ImageGenError(f"job {job_id} failed")
            left = math.inf if end is None else end - self.clock.monotonic()
            if left <= 0:
                msg = f"job {job_id} did not end within {timeout}s"
                raise TimeoutError(msg)
            # Here, the job's own event says when it ends; elsewhere, poll the backend.
            done = self._job_done.get(job_id)
            with self.clock.deadline_scope(self.clock.monotonic() + min(left, pause)):
                if done is not None:
                    await done.wait()
                else:
                    await anyio.sleep_forever()
            pause = min(pause * 2, 1.0)

    async def handle_webhook(
        self,
        provider: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        params: Mapping[str, str] | None = None,
    ) -> str:
        """Take a vendor's callback: verify it, drop replays, complete the waiting attempt.

        The attempt may be running in this process or in any other sharing the state
        backend (the delivery is parked there for it). A replay (the same delivery
        id within twice the signature tolerance), a duplicate, a late delivery (its
        attempt already ended) or a non-final one is acknowledged and changes nothing:
        a finished job is never completed twice or overwritten.

        Args:
            provider: The provider's name (the ``{provider}`` of the webhook route).
            headers: The request headers.
            body: The raw request body, exactly as received.
            params: The query parameters of the URL it was posted to.

        Returns:
            What became of it: ``"local"``, ``"parked"`` (for another process),
            ``"replay"``, ``"late"`` or ``"not final"``.

        Raises:
            WebhookVerificationError: Missing, wrong or stale signature or token.
            InvalidConfig: No provider of that name takes webhooks.
            ProviderError: The provider could not verify (e.g. fetching its keys failed).
        """
        target: object = next((p for p in self._config.providers if p.name == provider), None)
        if not isinstance(target, WebhookReceiver):
            raise InvalidConfig(f"no provider named {provider!r} takes webhooks", field="provider")
        ctx = ProviderContext(
            deadline=self.clock.monotonic() + _CANCEL_TIMEOUT,
            clock=self.clock,
            logger=self._loggers[provider],
            http_factory=self._http_client,
            inbox=self._relay.inbox(provider),
        )
        delivery = await target.receive_webhook(
            headers, body, ctx, now=self.clock.time(), params=dict(params or {})
        )
        # Remember each delivery for twice the signature tolerance: a replay inside the
        # window is caught here, and one outside it fails the timestamp check.
        fresh = await self.state.set_if_absent(
            f"{self._state_prefix}webhook:{provider}:{delivery.id}",
            b"1",
            ttl=2 * _WEBHOOK_TOLERANCE,
        )
        outcome = await self._relay.route(provider, delivery) if fresh else "replay"
        level = logging.DEBUG if outcome in ("local", "parked") else logging.INFO
        logger.log(level, "webhook %s from %s: %s", delivery.id, provider, outcome)
        return outcome

    async def record(self, generation_id: str) -> Record | None:
        """What happened to one generation, or None for an unknown id."""
        return await self._tracker.load(generation_id)

    async def stats(
        self,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        provider: str | None = None,
    ) -> list[ProviderDayStats]:
        """Counts per UTC day and provider, ``since``..``until`` inclusive."""
        return await self._tracker.stats(since=_day(since), until=_day(until), provider=provider)

    async def variant_stats(
        self,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        experiment: str | None = None,
    ) -> list[VariantDayStats]:
        """Generations per UTC day and experiment variant, ``since``..``until`` inclusive."""
        return await self._tracker.variant_stats(
            since=_day(since), until=_day(until), experiment=experiment
        )

    # -- breakers and status -------------------------------------------------------

    def breaker_for(self, name: str) -> ProviderBreaker:
        """The circuit breaker of provider ``name``.

        Raises:
            InvalidConfig: No provider has that name.
        """
        try:
            return self._breakers[name]
        except KeyError:
            raise InvalidConfig(f"no provider is named {name!r}", field="name") from None

    def providers_status(self) -> list[dict[str, Any]]:
        """Each provider's name, tier, enabled flag, timeout and last known breaker state."""
        config = self._config
        return [
            {
                "name": p.name,
                "tier": p.tier,
                "enabled": p.name in config.enabled,
                "timeout": p.timeout,
                "breaker": self._breakers[p.name].last_state,
            }
            for p in config.providers
        ]

    async def health(self, *, deep: bool = False) -> dict[str, Any]:
        """Breaker state per provider and whether the state backend answers.

        ``status`` is ``"ok"`` when the backend answers and some enabled provider's
        breaker is not open, else ``"degraded"``. With ``deep=True`` every enabled
        provider's :meth:`Provider.check` runs too (the vendor's cheapest
        authenticated call, nothing billed), reported under ``checks`` as ``"ok"``
        or the error, and the storage is probed (a small object written, read back and
        deleted) under ``storage``; a failure makes the status ``"degraded"``.
        """
        config = self._config
        states = {p.name: await self._breakers[p.name].state() for p in config.providers}
        try:
            await self.state.get(f"{self._state_prefix}health")
            backend = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "unreachable" here
            backend = f"error: {type(exc).__name__}"
        usable = any(states[name] != "open" for name in config.enabled)
        report: dict[str, Any] = {"providers": states, "state": backend}
        healthy = usable and backend == "ok"
        if deep:
            report["checks"] = checks = await self.check_providers()
            report["storage"] = storage = await self._probe_storage()
            healthy = healthy and storage in ("ok", None)
            healthy = healthy and all(result == "ok" for result in checks.values())
        return {"status": "ok" if healthy else "degraded", **report}

    async def _probe_storage(self) -> str | None:
        """Write, read back and delete a small probe object; None without storage."""
        storage = self.storage
        if storage is None:
            return None
        key = f"{self._key_prefix}doctor/{uuid.uuid4().hex}.txt"
        probe = b"imagegen storage probe"
        try:
            stored = await storage.put(key, probe, content_type="text/plain", metadata={})
            read = await storage.get(stored.key)
            await storage.delete(stored.key)
        except Exception as exc:  # noqa: BLE001 - any failure is the answer here
            return f"{type(exc).__name__}: {exc}"
        return "ok" if read == probe else "the probe object read back differently"

    async def check_providers(self) -> dict[str, str]:
        """Run each enabled provider's ``check()`` at once: ``"ok"`` or the error, by name."""
        config = self._config
        results: dict[str, str] = {}

        async def check(provider: Provider) -> None:
            ctx = ProviderContext(
                deadline=self.clock.monotonic() + min(10.0, config.timeout),
                clock=self.clock,
                logger=self._loggers[provider.name],
                http_factory=self._http_client,
            )
            with self.clock.deadline_scope(ctx.deadline) as scope:
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

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        environment: str | None = None,
        **overrides: Any,
    ) -> ImageGenerator:
        """Build a generator from environment variables.

        With no provider key set it works offline: the :class:`Placeholder`
        provider, :class:`LocalStorage` and :class:`SQLiteState` under
        ``IMAGEGEN_DATA_DIR`` (default ``./imagegen-data``). ``environment`` (or
        ``IMAGEGEN_ENV``) becomes the namespace. ``overrides`` are constructor
        keywords that replace what the environment says (``hooks=``, ``storage=``...).
        See ``docs/configuration.md`` for every variable.

        Raises:
            InvalidConfig: A variable holds a bad value; the message names it.
        """
        from ._env import settings_from_env  # noqa: PLC0415 - keeps import time small

        kwargs, owned = settings_from_env(
            os.environ if environ is None else environ, environment=environment
        )
        generator = cls(**{**kwargs, **overrides})
        generator._owned.extend(owned)
        return generator

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self._config.providers)
        return f"ImageGenerator(providers=[{names}], strategy={self._config.strategy!r})"
