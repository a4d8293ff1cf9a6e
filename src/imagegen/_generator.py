"""The facade: :class:`ImageGenerator` wires the parts and exposes them; it does no work.

The parts, in the order a generation meets them: the request (``_request``), the
settings in force (``_live_config``), tier by tier the breakers and the selection
(``_tiers``, ``strategies``), one provider's attempt with its retries
(``_attempt``), the provider's image in hand (``_output``, ``_download``), the
default image (``_default_image``), storing (``_store``) and the records
(``_records``); around them jobs (``_jobs``), webhooks (``_relay``) and health
(``_health``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx

from ._clock import Clock, SystemClock
from ._config import Config
from ._configuring import Configuring
from ._default_image import DEFAULT, DefaultImage
from ._download import DownloadPolicy
from ._errors import UnknownProvider
from ._events import Hook
from ._experiments import Experiment
from ._health import check_providers, health, providers_status
from ._http_headers import user_agent
from ._jobs import Jobs
from ._models import ImageResult, Job, ProviderDayStats, Record, VariantDayStats
from ._pipeline import Pipeline
from ._previews import PreviewHandler, check_previews
from ._request import ImageRequest, check_experiment_key, check_timeout, request_from
from ._spending import SpendingCap
from ._wiring import wire
from .providers import Provider, WebhookReceiver
from .state import MemoryState, StateBackend
from .storage import Storage
from .strategies import CircuitBreaker, ProviderBreaker, Race, Retry, Selection

if TYPE_CHECKING:
    import datetime as dt
    from typing import Self

__all__ = ["DEFAULT", "Hook", "ImageGenerator"]

_T = TypeVar("_T")

_WEBHOOK_CHECK_TIMEOUT = 5.0  # seconds a webhook's verification may take (key fetches)


class ImageGenerator(Configuring):
    """Turns prompts into stored images, across providers that may be slow, failing or down.

    Args:
        providers: The providers; list order is priority inside a tier.
        strategy: How a tier's providers are called: ``Race()``, ``Hedge()``,
            ``Fallback()``, or your own :class:`~imagegen.Selection`.
        retry: Retries of one provider.
        breaker: Circuit-breaker settings, applied per provider.
        storage: Where images go; None keeps the bytes in ``ImageResult.data``.
        state: Records, statistics and breaker state; None means ``MemoryState()``.
        timeout: Seconds within which ``generate()`` always returns.
        default_image: When every provider fails: ``DEFAULT`` (a muted landscape of
            the requested size, drawn once per size), image bytes, a Provider, or None
            to raise instead.
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
        max_in_flight: At most this many generations run at once in this
            generator, and at most this many provider calls (each holds one HTTP
            connection at a time); the rest wait their turn, first come first served,
            within their deadline. A generation waiting for its turn holds nothing
            else (no record yet; a job reads "pending"). Match it to your HTTP
            client's ``max_connections`` (100 for the client made here); None for no
            limit.
        spending_cap: USD a UTC day may spend, overall and per provider; a provider
            over its cap is skipped before anything is sent (see
            :class:`SpendingCap`).

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
        spending_cap: SpendingCap | None = None,
    ) -> None:
        providers = tuple(providers)
        config = Config(
            providers=providers,
            enabled=frozenset(p.name for p in providers if isinstance(p, Provider)),
            strategy=strategy,
            retry=retry,
            breaker=breaker,
            timeout=timeout,
            default_image=default_image,
        )
        self.namespace = namespace
        self.storage = storage
        self.state: StateBackend = state if state is not None else MemoryState()
        self.download = download
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._hooks = tuple(hooks)
        parts = wire(
            config,
            state=self.state,
            storage=storage,
            download=download,
            hooks=self._hooks,
            namespace=namespace,
            clock=self.clock,
            config_ttl=config_ttl,
            experiment=experiment,
            max_in_flight=max_in_flight,
            spending_cap=spending_cap,
            http=self._http_client,
        )
        self._live, self._rt = parts.live, parts.rt
        self._http = http
        self._owns_http = http is None
        self._owned: list[Any] = []  # resources from_env() made for us, closed by aclose()
        self._closed = False
        self._hook_stack: AsyncExitStack | None = None
        self._pipeline = Pipeline(self._rt, self._live)
        self._jobs = Jobs(
            self._rt.state, self._rt.state_prefix, self.clock, self._pipeline.generate
        )

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
        # Inside `async with`, clean-up work (remote cancels of race losers) and jobs
        # run in this task group, so a winner is returned without waiting for them.
        group = anyio.create_task_group()
        await group.__aenter__()
        self._rt.background = group
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close what the generator opened (its HTTP client, providers). Idempotent. Inside
        ``async with``, first ends running jobs (each marked failed with the reason) and
        waits for background clean-up (remote cancels, late records: each bounded)."""
        if self._closed:
            return
        self._closed = True
        group, self._rt.background = self._rt.background, None
        if group is not None:
            self._jobs.cancel_all()
            self._rt.records.closing()
            await group.__aexit__(None, None, None)
        if self._hook_stack is not None:
            # After the background work, so its last events still reach the hooks.
            stack, self._hook_stack = self._hook_stack, None
            await stack.aclose()
        # After the background work (remote cancels still use ctx.http): from here on a
        # provider's ctx.http raises NotRunning instead of opening a client no one closes.
        self._rt.closed = True
        for provider in self._live.current.providers:
            await provider.aclose()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
        for resource in self._owned:
            await resource.aclose()

    # -- generation ---------------------------------------------------------------

    async def generate(
        self,
        request: ImageRequest | str,
        /,
        *,
        experiment_key: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline for this call, not a wait
        on_preview: PreviewHandler | None = None,
        previews: int = 2,
        **fields: Any,
    ) -> ImageResult:
        """Make one image: ``generate("a red fox")`` or ``generate(ImageRequest(...))``.

        Returns by ``timeout``, always: with an image, the default image
        (``is_default=True``), or an error. ``timeout`` given here is this call's
        deadline, whatever the settings in force say (shared ones included);
        otherwise the generator's ``timeout`` applies. With an experiment,
        ``experiment_key`` (a user id, say) keeps a caller on one variant.

        ``on_preview`` (a function of one :class:`Preview`, sync or async) gets the
        partial images of providers that stream them while they draw (OpenAI's GPT
        image models), ``previews`` (1 to 3) per call, as they come; a provider that
        sends none says so in a warning on ``previews``.

        Raises:
            InvalidRequest: A field broke a rule; nothing was sent.
            AllProvidersFailed: Every provider failed and there is no default image.
            CircuitOpen: Every provider's breaker was open and there is no default image.
            StorageError: The image could not be stored (and nothing was recorded as stored).
        """
        checked = request_from(request, fields)
        key = check_experiment_key(experiment_key)
        limit = check_timeout(timeout)
        wanted = check_previews(on_preview, previews)
        return await self._pipeline.generate(
            checked, experiment_key=key, limit=limit, previews=wanted, on_preview=on_preview
        )

    async def submit(
        self,
        request: ImageRequest | str,
        /,
        *,
        experiment_key: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the job's deadline, not a wait
        **fields: Any,
    ) -> str:
        """Start a generation in the background and return its job id at once.

        ``timeout`` is the job's deadline, as for :meth:`generate`.

        The request is validated first (``InvalidRequest``, nothing started). Jobs run
        in the generator's task group, so this needs ``async with ImageGenerator(...)``;
        leaving the block cancels running jobs, which end failed with the reason.

        Raises:
            InvalidRequest: A field broke a rule.
            NotRunning: The generator is not entered with ``async with`` (an
                ``InvalidConfig``).
        """
        checked = request_from(request, fields)
        key = check_experiment_key(experiment_key)
        limit = check_timeout(timeout)
        return await self._jobs.submit(
            self._rt.background,
            checked,
            lifetime=self.timeout if limit is None else limit,
            experiment_key=key,
            limit=limit,
        )

    async def job(self, job_id: str) -> Job | None:
        """A job's status (and result or error once it ended); None for an unknown id.

        Jobs live in the state backend, so a job submitted by another process sharing
        it can be read here; a job still "running" a minute past its deadline belongs
        to a process that stopped, and reads as failed (``JobLost``).
        """
        return await self._read("a job's status", lambda: self._jobs.job(job_id))

    async def wait(self, job_id: str, timeout: float | None = None) -> ImageResult:  # noqa: ASYNC109 - the public signature takes a timeout
        """The job's image once it ends; its error raised if it failed.

        Raises:
            UnknownJob: No job has that id (an ``InvalidRequest``).
            JobTimeout: The job did not end within ``timeout`` seconds (also a
                ``TimeoutError``).
            ImageGenError: The job's own error, when it failed.
        """
        return await self._jobs.wait(job_id, timeout)

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
            UnknownProvider: No provider of that name takes webhooks (an ``InvalidConfig``).
            ProviderError: The provider could not verify (e.g. fetching its keys failed).
        """
        target = next((p for p in self.providers if p.name == provider), None)
        if target is None or not isinstance(target, WebhookReceiver):
            raise UnknownProvider(
                f"no provider named {provider!r} takes webhooks", field="provider"
            )
        deadline = self.clock.monotonic() + _WEBHOOK_CHECK_TIMEOUT
        ctx = self._rt.context(target, deadline=deadline, inbox=True)
        return await self._rt.relay.receive(provider, target, headers, body, ctx, params or {})

    async def record(self, generation_id: str) -> Record | None:
        """What happened to one generation, or None for an unknown id."""
        return await self._read("a record", lambda: self._rt.records.load(generation_id))

    async def stats(
        self,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        provider: str | None = None,
    ) -> list[ProviderDayStats]:
        """Counts per UTC day and provider, ``since``..``until`` inclusive."""
        return await self._read(
            "statistics", lambda: self._rt.records.stats(since, until, provider)
        )

    async def variant_stats(
        self,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        experiment: str | None = None,
    ) -> list[VariantDayStats]:
        """Generations per UTC day and experiment variant, ``since``..``until`` inclusive."""
        return await self._read(
            "statistics", lambda: self._rt.records.variant_stats(since, until, experiment)
        )

    # -- breakers and status -------------------------------------------------------

    def breaker_for(self, name: str) -> ProviderBreaker:
        """The circuit breaker of provider ``name``.

        Raises:
            UnknownProvider: No provider has that name (an ``InvalidConfig``).
        """
        try:
            return self._rt.breakers[name]
        except KeyError:
            raise UnknownProvider(f"no provider is named {name!r}", field="name") from None

    def providers_status(self) -> list[dict[str, Any]]:
        """Each provider's name, tier, enabled flag, timeout and last known breaker state."""
        return providers_status(self._rt, self._live.current)

    async def health(self, *, deep: bool = False) -> dict[str, Any]:
        """Breaker state per provider and whether the state backend answers.

        ``status`` is ``"ok"`` when the backend answers and some enabled provider's
        breaker is not open, else ``"degraded"``. With ``deep=True`` every enabled
        provider's :meth:`Provider.check` runs too (the vendor's cheapest
        authenticated call, nothing billed), reported under ``checks`` as ``"ok"``
        or the error, and the storage is probed (a small object written, read back and
        deleted) under ``storage``; a failure makes the status ``"degraded"``.
        """
        return await health(self._rt, self._live.current, deep=deep)

    async def check_providers(self) -> dict[str, str]:
        """Run each enabled provider's ``check()`` at once: ``"ok"`` or the error, by name."""
        return await check_providers(self._rt, self._live.current)

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
        names = ", ".join(p.name for p in self.providers)
        return f"ImageGenerator(providers=[{names}], strategy={self._live.current.strategy!r})"
