"""imagegen.testing.ProviderSuite, run against every built-in provider.

Replicate, fal (direct and queued), OpenAI Images (URL and base64 answers), Google (the
Gemini API and Vertex AI), Black Forest Labs, Bedrock, Azure OpenAI, Together, xAI,
Stability, Hugging Face and Unsplash talk over loopback to the
provider emulator (benchmarks.emulator), which fails or hangs their next request on
demand; Placeholder has no remote side, so the two checks that need one are skipped for
it. A deliberately broken provider shows that the suite fails where it should.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

import pytest
from benchmarks.emulator import Emulator, Fault

from imagegen import (
    Placeholder,
    Provider,
)
from imagegen.testing import ProviderSuite

pytest_plugins = ["pytester"]


class EmulatedSuite(ProviderSuite):
    """The suite on one provider pointed at a fresh emulator instance of its API."""

    #: The emulator instance (named after its API) and the provider's own options.
    api: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    hang_deadline = 0.5

    @pytest.fixture
    async def emu(self) -> AsyncIterator[Emulator]:
        """The emulator on a free port of 127.0.0.1, answering at once."""
        async with Emulator() as emulator:
            yield emulator

    @pytest.fixture
    def make_provider(self, emu: Emulator) -> Callable[..., Provider]:
        """The provider for the API, on the emulator, with its dummy key."""

        def make(**overrides: Any) -> Provider:
            return emu.provider(self.api, **{**self.options, **overrides})

        return make

    @pytest.fixture
    def fail_next(self, emu: Emulator) -> Callable[[], object]:
        """The next create answers 500."""
        return lambda: emu.force(self.api, Fault.SERVER_ERROR)

    @pytest.fixture
    def hang_next(self, emu: Emulator) -> Callable[[], object]:
        """The next create is read and never answered."""
        return lambda: emu.force(self.api, Fault.HANG)

    @pytest.fixture
    def secrets(self) -> Sequence[str]:
        """Every dummy key the emulator's providers carry (and fal's secret half)."""
        return ["r8_emulator", "emulator:secret-key", "secret-key", "sk-emulator",
                "emulator-access-key", "AIza-emulator", "ya29.emulator-token",
                "bfl-emulator", "emulator-aws-secret", "azure-emulator-key",
                "together-emulator", "xai-emulator", "sk-stability-emulator",
                "hf_emulator"]  # fmt: skip


class TestReplicate(EmulatedSuite):
    """Replicate: a prediction, reported as started, answered within Prefer: wait."""

    api = "replicate"
    reports_remote_work = True


class TestFal(EmulatedSuite):
    """fal's synchronous endpoint: no remote job to report."""

    api = "fal"
    options: ClassVar[dict[str, Any]] = {"queue": False, "queue_threshold": 1e6}
    reports_remote_work = False


class TestFalQueue(EmulatedSuite):
    """fal's queue: a submit reported as started, then polls."""

    api = "fal"
    options: ClassVar[dict[str, Any]] = {"queue": True, "poll_interval": 0.01}
    reports_remote_work = True


class TestOpenAIImages(EmulatedSuite):
    """OpenAI Images answering with a URL (a FLUX model on a gateway)."""

    api = "openai"
    options: ClassVar[dict[str, Any]] = {"model": "flux-schnell"}
    reports_remote_work = False


class TestOpenAIImagesBase64(EmulatedSuite):
    """OpenAI Images answering with base64 bytes (gpt-image-1)."""

    api = "openai"
    options: ClassVar[dict[str, Any]] = {"model": "gpt-image-1"}
    reports_remote_work = False


class TestGoogle(EmulatedSuite):
    """Google's Gemini API: one generateContent, the image inline."""

    api = "google"
    reports_remote_work = False


class TestGoogleVertex(EmulatedSuite):
    """Google's Vertex AI: the same call under a project, with a bearer token."""

    api = "google"
    options: ClassVar[dict[str, Any]] = {"project": "acme-images", "location": "us-central1"}
    reports_remote_work = False


class TestBlackForestLabs(EmulatedSuite):
    """BFL: a task, reported as started, then polled at its polling URL."""

    api = "bfl"
    options: ClassVar[dict[str, Any]] = {"poll_interval": 0.01}
    reports_remote_work = True


class TestBedrock(EmulatedSuite):
    """Bedrock: one InvokeModel through boto3, in a worker thread."""

    api = "bedrock"
    reports_remote_work = False


class TestAzureOpenAI(EmulatedSuite):
    """Azure OpenAI: OpenAI's create on a deployment's URL, with its api-key."""

    api = "azure"
    reports_remote_work = False


class TestTogether(EmulatedSuite):
    """Together: OpenAI's create in Together's dialect."""

    api = "together"
    reports_remote_work = False


class TestXAI(EmulatedSuite):
    """xAI: OpenAI's create in xAI's dialect."""

    api = "xai"
    reports_remote_work = False


class TestStability(EmulatedSuite):
    """Stability: one multipart create, the image's bytes in the answer."""

    api = "stability"
    reports_remote_work = False


class TestHuggingFace(EmulatedSuite):
    """Hugging Face: the Hub's lookup, then the routed provider's own create."""

    api = "huggingface"
    reports_remote_work = False


class TestUnsplash(EmulatedSuite):
    """Unsplash: a hotlinked stock photo."""

    api = "unsplash"
    reports_remote_work = False


class TestPlaceholder(ProviderSuite):
    """Placeholder: offline, nothing remote to fail or hang."""

    reports_remote_work = False

    @pytest.fixture
    def make_provider(self) -> Callable[..., Provider]:
        """Placeholder takes the overrides as they are."""
        return Placeholder


BROKEN = '''
import anyio
import pytest

from imagegen import Provider, ProviderError, ProviderImage, ProviderUnavailable
from imagegen.testing import ProviderSuite, tiny_png


class Vendor:
    def __init__(self, mode="ok"):
        self.mode = mode


class Broken(Provider):
    """Leaks its key, hides work, sends HTML, misnames errors and oversleeps deadlines."""

    name = "broken"

    def __init__(self, vendor, **overrides):
        super().__init__(**overrides)
        self.vendor = vendor
        self.key = "sekrit-key-123"

    async def generate(self, request, ctx):
        if self.vendor.mode == "hang":
            await anyio.sleep(ctx.remaining() + 5)
        if self.vendor.mode == "fail":
            raise ProviderError("the vendor said no", provider="broken")
        return ProviderImage(data=b"<html>busy</html>", handle="job-1")

    async def cancel(self, handle, ctx):
        raise KeyError(handle)

    def __repr__(self):
        return f"Broken(key={self.key!r})"


class Fast(ProviderSuite):
    hang_deadline = 0.2
    grace = 0.3


class TestBroken(Fast):
    @pytest.fixture
    def vendor(self):
        return Vendor()

    @pytest.fixture
    def make_provider(self, vendor):
        return lambda **overrides: Broken(vendor, **overrides)

    @pytest.fixture
    def fail_next(self, vendor):
        return lambda: setattr(vendor, "mode", "fail")

    @pytest.fixture
    async def hang_next(self, vendor):
        async def hang():
            vendor.mode = "hang"

        return hang

    @pytest.fixture
    def secrets(self):
        return ["sekrit-key-123"]


class TestWithoutHooks(Fast):
    @pytest.fixture
    def make_provider(self):
        return lambda **overrides: Broken(Vendor(), **overrides)


class Decent(Provider):
    """Keeps every promise; gives up on a hanging vendor just before the deadline."""

    name = "decent"

    def __init__(self, vendor, **overrides):
        super().__init__(**overrides)
        self.vendor = vendor

    async def generate(self, request, ctx):
        if self.vendor.mode == "down":
            raise ProviderUnavailable("the vendor is down", provider=self.name)
        if self.vendor.mode == "hang":
            await anyio.sleep(max(0.0, ctx.remaining() - 0.05))
        return ProviderImage(data=tiny_png())


class TestDecent(Fast):
    @pytest.fixture
    def vendor(self):
        return Vendor()

    @pytest.fixture
    def make_provider(self, vendor):
        return lambda **overrides: Decent(vendor, **overrides)

    @pytest.fixture
    def hang_next(self, vendor):
        return lambda: setattr(vendor, "mode", "hang")


class TestDecentButDown(Fast):
    @pytest.fixture
    def make_provider(self):
        return lambda **overrides: Decent(Vendor("down"), **overrides)
'''


def test_the_suite_catches_a_broken_provider(pytester: pytest.Pytester) -> None:
    """Each broken promise fails its check; checks without their hook skip, saying why.

    A decent provider, which returns an image in time even when the vendor hangs, passes.
    """
    pytester.makepyfile(test_broken=textwrap.dedent(BROKEN))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-rs")
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    failed = {r.nodeid.split("::", 1)[1].split("[")[0] for r in reports if r.failed}
    assert failed == {
        f"TestBroken::{name}"
        for name in (
            "test_generate_returns_an_image",
            "test_remote_work_is_reported",
            "test_cancel_of_an_unknown_handle",
            "test_repr_hides_secrets",
            "test_failure_is_a_provider_error",
            "test_stops_by_the_deadline_when_the_vendor_hangs",
        )
    } | {
        "TestWithoutHooks::test_generate_returns_an_image",
        "TestWithoutHooks::test_remote_work_is_reported",
        "TestWithoutHooks::test_cancel_of_an_unknown_handle",
        # A provider that cannot answer a valid request fails where it must, and only there.
        "TestDecentButDown::test_generate_returns_an_image",
        "TestDecentButDown::test_remote_work_is_reported",
    }
    result.stdout.fnmatch_lines(["*decent: generate raised ProviderUnavailable(*"])
    result.stdout.fnmatch_lines(
        [
            "*give a fail_next fixture (a hook making the vendor's next request fail)*",
            "*give a hang_next fixture (a hook making the vendor's next request hang)*",
        ]
    )
    result.stdout.fnmatch_lines(["*still running 0.3s after its deadline*"])
