"""ProviderSuite: the Provider contract as pytest tests, for any provider."""

# Test code: plain asserts, which pytest rewrites for their messages (imagegen.testing
# registers this module for rewriting before it is imported).
# ruff: noqa: S101

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import ClassVar
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from .._clock import SystemClock
from .._errors import ProviderError
from .._image import sniff
from .._request import ImageRequest
from ..providers import Provider, ProviderContext, ProviderImage
from ._suite import Suite, call_hook

__all__ = ["ProviderSuite"]

MakeProvider = Callable[..., Provider]
Hook = Callable[[], object]

_RENAMED = "conformance-renamed"


class _Call:
    """One call's context on the real clock, and the handles it reported."""

    def __init__(self, http: httpx.AsyncClient, seconds: float) -> None:
        self.clock = SystemClock()
        self.started: list[object] = []
        self.ctx = ProviderContext(
            deadline=self.clock.monotonic() + seconds,
            clock=self.clock,
            generation_id="conformance",
            http_factory=lambda: http,
            on_started=self.started.append,
        )

    def late(self) -> float:
        """Seconds past the deadline now (negative: still before it)."""
        return self.clock.monotonic() - self.ctx.deadline


class ProviderSuite(Suite):
    """The :class:`~imagegen.providers.Provider` contract, as tests for your provider.

    Subclass it in a test module (the subclass's name must start with ``Test``) and give
    it a ``make_provider`` fixture: a factory that builds your provider, passing on the
    ``name=``, ``tier=`` and ``timeout=`` keyword overrides it is given::

        import pytest
        from imagegen.testing import ProviderSuite


        class TestPaintBot(ProviderSuite):
            @pytest.fixture
            def make_provider(self):
                return lambda **overrides: PaintBot(api_key=KEY, **overrides)

    Every check runs on asyncio and on trio (when installed), on the real clock, calling
    the provider directly with a :class:`~imagegen.providers.ProviderContext` whose
    ``http`` is the ``http_client`` fixture (a plain ``httpx.AsyncClient`` unless you
    override it, say with one whose transport answers for the vendor). They check that
    it is a ``Provider`` with a name, a tier and a timeout, and honours the three
    overrides; that ``generate`` returns a :class:`~imagegen.providers.ProviderImage`
    (real image bytes, or an http(s) URL) for ``image_request`` before the
    :attr:`deadline`; that remote work it returns a ``handle`` for was reported with
    ``ctx.started()`` before ``generate`` returned (and, with
    :attr:`reports_remote_work`, that it always or never is); that ``cancel`` of a
    handle it never made (:attr:`unknown_handles`) does not raise; and that no string of
    the ``secrets`` fixture shows in its ``repr`` or its errors.

    Two checks need the vendor to misbehave, through hooks you give as fixtures (plain
    or coroutine functions taking no argument): ``fail_next`` makes the vendor's next
    request fail (a 500, say), and the suite checks that ``generate`` raises a
    :class:`~imagegen.ProviderError` naming the provider; ``hang_next`` makes it never
    answer, and the suite checks that ``generate`` ends by ``ctx.deadline`` (within
    :attr:`grace`) on its own. Without a hook, its check is skipped, saying which
    fixture would enable it.
    """

    deadline: ClassVar[float] = 30.0
    """Seconds ``generate`` gets for a valid request."""
    hang_deadline: ClassVar[float] = 1.0
    """Seconds of deadline in the hang check (the check takes about this long)."""
    grace: ClassVar[float] = 1.0
    """Seconds past a deadline a call may take to wind up."""
    reports_remote_work: ClassVar[bool | None] = None
    """True: every ``generate`` reports remote work with ``ctx.started()``; False: none
    does; None (the default): only the handle in the returned image is checked."""
    unknown_handles: ClassVar[tuple[object, ...]] = (None, "", 0, object())
    """Handles ``cancel`` gets in the unknown-handle check."""

    @pytest.fixture
    def fail_next(self) -> Hook | None:
        """Makes the vendor's next request fail; None (the default) skips that check."""
        return None

    @pytest.fixture
    def hang_next(self) -> Hook | None:
        """Makes the vendor's next request never answer; None (the default) skips that check."""
        return None

    @pytest.fixture
    def secrets(self) -> Sequence[str]:
        """Strings (keys, tokens) that must never show in a repr or an error message."""
        return ()

    @pytest.fixture
    def image_request(self) -> ImageRequest:
        """The request ``generate`` must answer with an image."""
        return ImageRequest(prompt="a red fox on fresh snow", width=512, height=512, seed=7)

    @pytest.fixture
    async def http_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The client behind ``ctx.http``."""
        async with httpx.AsyncClient() as client:
            yield client

    @pytest.fixture
    async def provider(self, make_provider: MakeProvider) -> AsyncIterator[Provider]:
        """The provider, built without overrides, closed after the test."""
        built = make_provider()
        try:
            yield built
        finally:
            await built.aclose()

    async def _generate(
        self, provider: Provider, request: ImageRequest, call: _Call, seconds: float
    ) -> ProviderImage | ProviderError:
        """``generate``'s image or ProviderError; fails the test if it runs past the deadline."""
        outcome: ProviderImage | ProviderError | None = None
        with anyio.move_on_after(seconds + self.grace):
            try:
                outcome = await provider.generate(request, call.ctx)
            except ProviderError as exc:
                outcome = exc
        assert outcome is not None, (
            f"{provider.name}: generate was still running {self.grace:g}s after its deadline"
        )
        assert call.late() <= self.grace, f"{provider.name}: ended {call.late():.2f}s late"
        return outcome

    # -- checks ---------------------------------------------------------------------------

    async def test_is_a_provider(self, provider: Provider) -> None:
        """It is a Provider with a name, an int tier >= 0 and a timeout that is None or > 0."""
        assert isinstance(provider, Provider)
        assert isinstance(provider.name, str)
        assert provider.name
        assert type(provider.tier) is int
        assert provider.tier >= 0
        assert provider.timeout is None or provider.timeout > 0

    async def test_overrides(self, make_provider: MakeProvider) -> None:
        """name=, tier= and timeout= override one instance and leave the others alone."""
        plain = make_provider()
        renamed = make_provider(name=_RENAMED, tier=3, timeout=12.5)
        again = make_provider()
        try:
            assert (renamed.name, renamed.tier, renamed.timeout) == (_RENAMED, 3, 12.5)
            assert (again.name, again.tier, again.timeout) == (
                plain.name,
                plain.tier,
                plain.timeout,
            )
            assert plain.name != _RENAMED
        finally:
            for built in (plain, renamed, again):
                await built.aclose()

    async def test_generate_returns_an_image(
        self, provider: Provider, image_request: ImageRequest, http_client: httpx.AsyncClient
    ) -> None:
        """generate answers a valid request with image bytes or an http(s) URL, in time."""
        call = _Call(http_client, self.deadline)
        image = await self._generate(provider, image_request, call, self.deadline)
        if isinstance(image, ProviderError):
            pytest.fail(f"{provider.name}: generate raised {image!r}")
        assert isinstance(image, ProviderImage)
        # The generator would have given up on it at the deadline: an image must be early.
        assert call.late() <= 0, f"{provider.name}: the image came {call.late():.2f}s late"
        if image.data is not None:
            assert sniff(image.data) is not None, "data is not PNG, JPEG, WebP, GIF or AVIF"
        else:
            assert isinstance(image.url, str)
            assert urlsplit(image.url).scheme in ("http", "https"), image.url
        for side in (image.width, image.height):
            assert side is None or (type(side) is int and side > 0)

    async def test_remote_work_is_reported(
        self, provider: Provider, image_request: ImageRequest, http_client: httpx.AsyncClient
    ) -> None:
        """Remote work the image names was reported with ctx.started() before returning."""
        call = _Call(http_client, self.deadline)
        image = await self._generate(provider, image_request, call, self.deadline)
        assert isinstance(image, ProviderImage), repr(image)
        if image.handle is not None:
            assert image.handle in call.started, (
                f"the image's handle {image.handle!r} was never passed to ctx.started()"
            )
        if self.reports_remote_work is not None:
            assert bool(call.started) is self.reports_remote_work, call.started

    async def test_cancel_of_an_unknown_handle(
        self, provider: Provider, http_client: httpx.AsyncClient
    ) -> None:
        """cancel of a handle the provider never made raises nothing."""
        for handle in self.unknown_handles:
            call = _Call(http_client, self.grace)
            with anyio.fail_after(self.grace * 2):
                await provider.cancel(handle, call.ctx)

    async def test_repr_hides_secrets(
        self, make_provider: MakeProvider, secrets: Sequence[str]
    ) -> None:
        """repr and str of the provider show none of the secrets."""
        provider = make_provider(name=_RENAMED)
        try:
            shown = f"{provider!r} {provider!s}"
            for secret in secrets:
                assert secret not in shown
        finally:
            await provider.aclose()

    async def test_failure_is_a_provider_error(
        self,
        make_provider: MakeProvider,
        image_request: ImageRequest,
        http_client: httpx.AsyncClient,
        fail_next: Hook | None,
        secrets: Sequence[str],
    ) -> None:
        """When the vendor fails, generate raises a ProviderError naming the provider."""
        if fail_next is None:
            pytest.skip("give a fail_next fixture (a hook making the vendor's next request fail)")
        provider = make_provider(name=_RENAMED)
        try:
            await call_hook(fail_next)
            call = _Call(http_client, self.deadline)
            error = await self._generate(provider, image_request, call, self.deadline)
        finally:
            await provider.aclose()
        assert isinstance(error, ProviderError), f"generate returned {error!r}"
        assert error.provider == _RENAMED
        _check_hidden(error, secrets)

    async def test_stops_by_the_deadline_when_the_vendor_hangs(
        self,
        provider: Provider,
        image_request: ImageRequest,
        http_client: httpx.AsyncClient,
        hang_next: Hook | None,
        secrets: Sequence[str],
    ) -> None:
        """When the vendor never answers, generate ends by ctx.deadline on its own."""
        if hang_next is None:
            pytest.skip("give a hang_next fixture (a hook making the vendor's next request hang)")
        await call_hook(hang_next)
        call = _Call(http_client, self.hang_deadline)
        outcome = await self._generate(provider, image_request, call, self.hang_deadline)
        if isinstance(outcome, ProviderError):
            assert outcome.provider == provider.name
            _check_hidden(outcome, secrets)


def _check_hidden(error: BaseException, secrets: Sequence[str]) -> None:
    shown = f"{error!s} {error!r}"
    for secret in secrets:
        assert secret not in shown, "a secret shows in an error"
