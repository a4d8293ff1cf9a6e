"""The provider emulator (benchmarks/emulator/): API shapes, faults, counters, lifecycle.

Real imagegen providers run against the emulator on 127.0.0.1, so these tests also
prove that the emulator's JSON is what the providers accept.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from benchmarks.emulator import (
    APIS,
    Emulator,
    EmulatorProcess,
    Fault,
    Fixed,
    LogNormal,
    ProviderProfile,
    ProviderStats,
    closed_port_url,
    image_bytes,
)

from imagegen import (
    AllProvidersFailed,
    ContentRejected,
    DownloadPolicy,
    Fal,
    Fallback,
    ImageGenerator,
    ImageRequest,
    ImageResult,
    ProviderAuthError,
    ProviderContext,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Race,
    Replicate,
    Retry,
)
from imagegen._image import sniff

pytestmark = pytest.mark.anyio

MAX_BYTES = 100_000
POLICY = DownloadPolicy(allow_http=True, allow_private_networks=True, max_bytes=MAX_BYTES)
HANG_TIMEOUT = 0.3  # seconds a provider waits for a hanging emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """The emulator with one instance per API, answering at once."""
    async with Emulator() as emulator:
        yield emulator


def generator(*providers: Any, **kwargs: Any) -> ImageGenerator:
    """A generator for the emulator: no retries, no default image, loopback downloads."""
    kwargs.setdefault("retry", Retry(attempts=1))
    return ImageGenerator(providers=providers, download=POLICY, default_image=None, **kwargs)


async def first_error(gen: ImageGenerator, prompt: str = "a red fox") -> ProviderError:
    """The error of the first attempt of a generation that must fail."""
    async with gen:
        with pytest.raises(AllProvidersFailed) as info:
            await gen.generate(prompt)
    error = info.value.attempts[0].error
    assert isinstance(error, ProviderError)
    return error


async def settle(check: Callable[[], bool]) -> None:
    """Wait (bounded) for the emulator to notice what the client already did."""
    for _ in range(200):
        if check():
            return
        await anyio.sleep(0.01)
    raise AssertionError("the emulator never got there")


#: How each API's provider is built for the success and fault tests.
OPTIONS: dict[str, dict[str, Any]] = {
    "replicate": {},
    "fal": {"queue": False, "queue_threshold": 1e6},
    "fal-queue": {"queue": True, "poll_interval": 0.01},
    "openai": {"model": "flux-schnell"},
    "openai-b64": {"model": "gpt-image-1"},
    "unsplash": {"copy_to_storage": True},
    "google": {},
    "bfl": {"poll_interval": 0.01},
    "bedrock": {},
    "azure": {},
    "together": {},
    "xai": {},
    "stability": {},
    "huggingface": {},
}


def provider(emu: Emulator, flavour: str, **kwargs: Any) -> Any:
    """The imagegen provider for ``flavour`` (an API, or an API with a mode)."""
    api = flavour.split("-", maxsplit=1)[0]
    return emu.provider(api, **OPTIONS[flavour], **kwargs)


class TestShapes:
    """Each built-in provider accepts what the emulator answers."""

    @pytest.mark.parametrize("flavour", list(OPTIONS))
    async def test_one_image_per_provider(self, emu: Emulator, flavour: str) -> None:
        """An ImageGenerator with the provider makes an image: real bytes, counted as billed."""
        async with generator(provider(emu, flavour)) as gen:
            result = await gen.generate("a red fox", width=512, height=512)
        assert result.data is not None
        assert sniff(result.data) == result.content_type
        api = flavour.split("-", maxsplit=1)[0]
        stats = emu.stats(api)
        assert (stats.creates, stats.billed) == (1, 1)
        # The b64 answers carry the image; every other flavour downloads it once.
        inline = ("openai-b64", "google", "bedrock", "azure", "together", "xai", "stability",
                  "huggingface")  # fmt: skip
        assert stats.downloads == (0 if flavour in inline else 1)
        if flavour == "bfl":  # created, then polled until Ready
            assert stats.polls >= 1

    async def test_output_format_is_honoured(self, emu: Emulator) -> None:
        """A JPEG or WebP request gets a real JPEG or WebP back."""
        async with generator(provider(emu, "replicate")) as gen:
            jpeg = await gen.generate("a red fox", output_format="jpeg")
            webp = await gen.generate("a red fox", output_format="webp")
        assert (jpeg.content_type, webp.content_type) == ("image/jpeg", "image/webp")
        assert image_bytes("jpeg").startswith(b"\xff\xd8\xff")

    async def test_replicate_polls_when_the_wait_runs_out(self) -> None:
        """A prediction slower than Prefer: wait answers processing, then succeeds on a poll."""
        profile = ProviderProfile(api="replicate", latency=Fixed(1.2))
        async with Emulator({"replicate": profile}) as emu:
            slow = emu.provider("replicate", max_wait=1, poll_interval=0.05)
            async with generator(slow) as gen:
                result = await gen.generate("a red fox")
            stats = emu.stats("replicate")
        assert result.provider == "replicate"
        assert stats.polls >= 1
        assert stats.billed == 1

    async def test_unsplash_hotlinks_and_reports_the_download(self, emu: Emulator) -> None:
        """Unsplash's photo is hotlinked (not fetched) and its use is reported once."""
        async with generator(emu.provider("unsplash")) as gen:
            result = await gen.generate("a red fox on snow")
        stats = emu.stats("unsplash")
        assert result.url is not None
        assert result.url.startswith(f"{emu.origin}/unsplash/files/")
        assert (stats.tracked, stats.downloads) == (1, 0)
        assert result.attribution is not None
        assert "Jane Doe" in result.attribution

    async def test_provider_checks_pass(self, emu: Emulator) -> None:
        """check() of Replicate, OpenAI, Unsplash, Google and BFL succeeds on the emulator."""
        async with generator(
            emu.provider("replicate"),
            emu.provider("openai"),
            emu.provider("unsplash"),
            emu.provider("google"),
            emu.provider("bfl"),
        ) as gen:
            assert await gen.check_providers() == {
                "replicate": "ok",
                "openai": "ok",
                "unsplash": "ok",
                "google": "ok",
                "bfl": "ok",
            }

    async def test_requests_without_the_vendor_auth_are_refused(self, emu: Emulator) -> None:
        """A request without the vendor's auth scheme gets a 401 in the vendor's shape."""
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{emu.base_url('openai')}/images/generations",
                json={"prompt": "x"},
                headers={"Authorization": "Key wrong-scheme"},
            )
            missing = await http.get(f"{emu.origin}/openai/v1/nothing-here", headers={})
        assert answer.status_code == 401
        assert "message" in answer.json()["error"]
        assert missing.status_code == 401

    async def test_unknown_routes_are_404(self, emu: Emulator) -> None:
        """An unknown instance or path answers 404, and the instance does not bill it."""
        async with httpx.AsyncClient() as http:
            unknown = await http.get(f"{emu.origin}/nobody/v1/models")
            wrong = await http.get(
                f"{emu.origin}/replicate/v1/nothing", headers={"Authorization": "Bearer x"}
            )
            bad_file = await http.get(f"{emu.origin}/openai/files/image/x.gif")
        assert (unknown.status_code, wrong.status_code, bad_file.status_code) == (404, 404, 404)
        assert wrong.json()["status"] == 404
        assert emu.stats("replicate").billed == 0


#: The error each fault must produce in each provider (the attempt's error class).
EXPECTED: dict[Fault, type[ProviderError]] = {
    Fault.SERVER_ERROR: ProviderUnavailable,
    Fault.UNAVAILABLE: ProviderUnavailable,
    Fault.RATE_LIMITED: ProviderRateLimited,
    Fault.UNAUTHORIZED: ProviderAuthError,
    Fault.HANG: ProviderTimeout,
    Fault.RESET: ProviderUnavailable,
    Fault.MALFORMED_JSON: ProviderUnavailable,
    Fault.FAILED: ProviderError,
    Fault.CONTENT_REJECTED: ContentRejected,
    Fault.NOT_IMAGE: ProviderError,
    Fault.OVERSIZED: ProviderError,
    Fault.STALL: ProviderTimeout,
    Fault.CUT_OFF: ProviderUnavailable,
}
# OpenAI has no asynchronous failure: a failed generation is a 500 after the latency;
# Google's is an answer in words, without an image.
EXCEPTIONS = {
    ("openai", Fault.FAILED): ProviderUnavailable,
    ("google", Fault.FAILED): ProviderUnavailable,
    ("bedrock", Fault.FAILED): ProviderUnavailable,
    ("azure", Fault.FAILED): ProviderUnavailable,
    ("together", Fault.FAILED): ProviderUnavailable,
    ("xai", Fault.FAILED): ProviderUnavailable,
    ("stability", Fault.FAILED): ProviderUnavailable,
    # Stability answers with the image itself: one cut short is not an image.
    ("stability", Fault.MALFORMED_JSON): ProviderError,
    ("huggingface", Fault.FAILED): ProviderUnavailable,
}
BILLED = {Fault.MALFORMED_JSON, Fault.NOT_IMAGE, Fault.OVERSIZED, Fault.STALL, Fault.CUT_OFF}


class TestFaults:
    """Every fault kind, forced on every API, becomes the right imagegen error."""

    @pytest.mark.parametrize("fault", list(Fault), ids=lambda f: f.value)
    @pytest.mark.parametrize(
        "flavour", [f for f in OPTIONS if f not in ("fal-queue", "openai-b64")]
    )
    async def test_fault_maps_to_error(self, emu: Emulator, flavour: str, fault: Fault) -> None:
        """The forced fault gives the documented error class, and is counted."""
        emu.force(flavour, fault)
        # Only a hang waits out the timeout: the other faults answer at once, and a long
        # timeout keeps a loaded machine from turning their answer into a timeout.
        hangs = fault in (Fault.HANG, Fault.STALL)
        vendor = provider(emu, flavour, timeout=HANG_TIMEOUT if hangs else 10.0)
        if flavour == "bedrock":  # its boto3 client is built once, first: not part of the fault
            await anyio.to_thread.run_sync(vendor.client)
        error = await first_error(generator(vendor))
        expected = EXCEPTIONS.get((flavour, fault), EXPECTED[fault])
        assert type(error) is expected, repr(error)
        stats = emu.stats(flavour)
        assert stats.faults == {fault.value: 1}
        if fault in BILLED:
            assert stats.billed == 1
        # Google's 503 names no time to wait; its 429 does, in the body (RetryInfo).
        # BFL, Bedrock and Unsplash document no Retry-After.
        waits = (
            {Fault.RATE_LIMITED} if flavour == "google" else {Fault.RATE_LIMITED, Fault.UNAVAILABLE}
        )
        if fault in waits and flavour not in ("unsplash", "bfl", "bedrock"):
            assert error.retry_after == pytest.approx(1.0)

    @pytest.mark.parametrize("fault", [Fault.FAILED, Fault.CONTENT_REJECTED], ids=str)
    async def test_fal_queue_failures(self, emu: Emulator, fault: Fault) -> None:
        """A failed queued fal request is a non-retryable error (ContentRejected for policy)."""
        emu.force("fal", fault)
        error = await first_error(generator(provider(emu, "fal-queue")))
        assert type(error) is EXPECTED[fault]
        assert not error.retryable
        assert emu.stats("fal").billed == 1

    @pytest.mark.parametrize(
        ("flavour", "reason"),
        [
            ("replicate", "NSFW content detected"),
            ("fal", "content_policy_violation"),
            ("fal-queue", "content_policy_violation"),
            ("openai", "content_policy_violation"),
            ("google", "PROHIBITED_CONTENT"),
            ("bfl", "Content Moderated"),
            ("bedrock", "Filter reason: prompt"),
            ("azure", "contentFilter"),
            ("together", "nsfw"),
            ("xai", "moderation"),
            ("stability", "content_moderation"),
            ("huggingface", "nsfw"),
        ],
    )
    async def test_a_rejection_carries_the_vendors_reason(
        self, emu: Emulator, flavour: str, reason: str
    ) -> None:
        """ContentRejected.reason is what the vendor said, in its own words."""
        emu.force(flavour.split("-", maxsplit=1)[0], Fault.CONTENT_REJECTED)
        error = await first_error(generator(provider(emu, flavour)))
        assert isinstance(error, ContentRejected)
        assert error.reason is not None
        assert error.reason.startswith(reason), error.reason

    async def test_unavailable_is_retried_and_then_succeeds(self, emu: Emulator) -> None:
        """A 503 with Retry-After on a create is retried; the retry makes the image."""
        emu.set_profile("fal", ProviderProfile(api="fal", retry_after=0.01))
        emu.force("fal", Fault.UNAVAILABLE)
        gen = generator(provider(emu, "fal"), retry=Retry(attempts=2, initial=0.01))
        async with gen:
            result = await gen.generate("a red fox")
        assert result.attempts[0].tries == 2
        assert emu.stats("fal").creates == 2

    async def test_odds_draw_faults_reproducibly(self) -> None:
        """Faults drawn from odds depend only on seed and prompt: two runs agree."""
        profile = ProviderProfile(
            api="openai", faults={Fault.SERVER_ERROR: 0.3, Fault.CONTENT_REJECTED: 0.2}, seed=5
        )
        runs = []
        for _ in range(2):
            async with Emulator({"openai": profile}) as emu:
                outcomes = []
                async with generator(emu.provider("openai", model="flux-schnell")) as gen:
                    for i in range(12):
                        try:
                            await gen.generate(f"prompt {i}")
                            outcomes.append("ok")
                        except AllProvidersFailed as exc:
                            error = exc.attempts[0].error
                            outcomes.append(type(error).__name__)
                runs.append(outcomes)
                expected = [emu.draw("openai", f"prompt {i}").fault for i in range(12)]
        assert runs[0] == runs[1]
        assert [o == "ok" for o in runs[0]] == [f is None for f in expected]
        assert {"ok", "ProviderUnavailable", "ContentRejected"} == set(runs[0])

    async def test_poll_faults_are_ridden_out(self) -> None:
        """5xx on fal's status polls are counted, and the provider still gets its image."""
        profile = ProviderProfile(
            api="fal", latency=Fixed(0.05), poll_faults={Fault.SERVER_ERROR: 0.3}, seed=2
        )
        async with Emulator({"fal": profile}) as emu:
            async with generator(provider(emu, "fal-queue")) as gen:
                result = await gen.generate("a red fox")
            stats = emu.stats("fal")
        assert result.provider == "fal"
        assert stats.faults.get("server_error", 0) >= 1
        assert stats.polls > stats.faults["server_error"]

    async def test_forced_success_overrides_the_odds(self) -> None:
        """force(name, None) makes the next create succeed whatever the odds say."""
        profile = ProviderProfile(api="openai", faults={Fault.SERVER_ERROR: 1.0})
        async with Emulator({"openai": profile}) as emu:
            emu.force("openai", None)
            async with generator(emu.provider("openai", model="flux-schnell")) as gen:
                result = await gen.generate("a red fox")
                with pytest.raises(AllProvidersFailed):
                    await gen.generate("a red fox")
        assert result.provider == "openai"

    async def test_refused_connections_are_retryable(self) -> None:
        """A closed port refuses the connection: a retryable ProviderUnavailable."""
        async with Emulator({"openai": ProviderProfile()}) as emu:
            dead = emu.provider("openai", base_url=f"{closed_port_url()}/v1")
            error = await first_error(generator(dead))
        assert type(error) is ProviderUnavailable
        assert error.retryable


class TestSockets:
    """Hangs, resets and disconnects, seen from a raw client."""

    async def test_hang_holds_until_the_client_leaves(self, emu: Emulator) -> None:
        """A hanging request never answers; the client's departure is counted."""
        emu.force("openai", Fault.HANG)
        async with httpx.AsyncClient(timeout=0.2) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post(
                    f"{emu.base_url('openai')}/images/generations",
                    json={"prompt": "x"},
                    headers={"Authorization": "Bearer k"},
                )
        await settle(lambda: emu.stats("openai").disconnects == 1)
        assert emu.stats("openai").billed == 0

    async def test_reset_is_a_connection_reset(self, emu: Emulator) -> None:
        """RESET closes the connection with an RST once the request is read."""
        emu.force("replicate", Fault.RESET)
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ReadError):
                await http.post(
                    f"{emu.base_url('replicate')}/predictions",
                    json={"version": "v", "input": {"prompt": "x"}},
                    headers={"Authorization": "Bearer k"},
                )
        assert emu.stats("replicate").faults == {"reset": 1}

    async def test_keep_alive_serves_many_requests_on_one_connection(self, emu: Emulator) -> None:
        """Sequential requests reuse one connection (HTTP/1.1 keep-alive)."""
        async with httpx.AsyncClient() as http:
            for _ in range(3):
                answer = await http.get(f"{emu.origin}/_emulator/health")
                assert answer.json()["ok"] is True
        assert emu.connections_total == 1

    async def test_stopping_ends_hanging_requests_and_closes_the_port(self) -> None:
        """Leaving the block drops hanging requests at once and stops listening."""
        profile = ProviderProfile(faults={Fault.HANG: 1.0})
        errors: list[BaseException] = []
        async with httpx.AsyncClient(timeout=10) as http:
            async with anyio.create_task_group() as group:
                async with Emulator({"openai": profile}) as emu:

                    async def hang() -> None:
                        try:
                            await http.post(
                                f"{emu.base_url('openai')}/images/generations",
                                json={"prompt": "x"},
                                headers={"Authorization": "Bearer k"},
                            )
                        except httpx.TransportError as exc:
                            errors.append(exc)

                    group.start_soon(hang)
                    await settle(lambda: emu.stats("openai").faults.get("hang") == 1)
                    origin = emu.origin
                assert emu.connections == 0
            with pytest.raises(httpx.ConnectError):
                await http.get(f"{origin}/_emulator/health")
        assert len(errors) == 1


class TestCounters:
    """Billed work and cancellations are counted where they happen."""

    async def test_race_losers_are_billed_and_cancelled(self) -> None:
        """A race bills every create; the queued loser is cancelled, the sync one dropped."""
        profiles = {
            "fast": ProviderProfile(api="openai"),
            "queued": ProviderProfile(api="fal", latency=Fixed(5.0)),
            "sync": ProviderProfile(api="openai", latency=Fixed(5.0)),
        }
        async with Emulator(profiles) as emu:
            gen = generator(
                emu.provider("fast", model="flux-schnell"),
                emu.provider("queued", queue=True, poll_interval=0.01),
                emu.provider("sync", model="flux-schnell"),
                strategy=Race(),
            )
            async with gen:
                result = await gen.generate("a red fox")
                await settle(lambda: emu.stats("queued").billed == 1)
            await settle(lambda: emu.stats("sync").disconnects == 1)
            stats = emu.all_stats()
        assert result.provider == "fast"
        assert [stats[n].billed for n in ("fast", "queued", "sync")] == [1, 1, 1]
        assert (stats["queued"].cancellations, stats["queued"].cancelled_running) == (1, 1)
        assert stats["sync"].cancellations == 0

    async def test_replicate_cancel_stops_a_running_prediction(self) -> None:
        """Replicate's cancel call reaches the prediction and stops it."""
        profile = ProviderProfile(api="replicate", latency=Fixed(30))
        async with Emulator({"replicate": profile}) as emu, httpx.AsyncClient() as http:
            created = await http.post(
                f"{emu.base_url('replicate')}/models/black-forest-labs/flux-schnell/predictions",
                json={"input": {"prompt": "x"}},
                headers={"Authorization": "Bearer k"},
            )
            prediction = created.json()
            replicate = emu.provider("replicate")
            assert isinstance(replicate, Replicate)
            ctx = ProviderContext(deadline=anyio.current_time() + 5, http_factory=lambda: http)
            await replicate.cancel(prediction["id"], ctx)
            polled = await http.get(
                prediction["urls"]["get"], headers={"Authorization": "Bearer k"}
            )
            stats = emu.stats("replicate")
        assert (created.status_code, prediction["status"]) == (201, "processing")
        assert polled.json()["status"] == "canceled"
        assert (stats.billed, stats.cancellations, stats.cancelled_running) == (1, 1, 1)

    async def test_fallback_bills_only_what_it_calls(self, emu: Emulator) -> None:
        """Fallback stops at the first success: the second provider is never called."""
        gen = generator(
            emu.provider("openai", model="flux-schnell"),
            emu.provider("replicate"),
            strategy=Fallback(),
        )
        async with gen:
            for i in range(3):
                await gen.generate(f"a red fox {i}")
        assert (emu.stats("openai").billed, emu.stats("replicate").requests) == (3, 0)

    async def test_reset_zeroes_counters_and_draws(self, emu: Emulator) -> None:
        """reset() forgets counts, jobs and forced faults."""
        emu.force("openai", Fault.SERVER_ERROR, count=2)
        async with generator(emu.provider("openai", model="flux-schnell")) as gen:
            with pytest.raises(AllProvidersFailed):
                await gen.generate("x")
            emu.reset()
            result: ImageResult = await gen.generate("x")
        assert result.provider == "openai"
        assert emu.stats("openai") == ProviderStats(
            requests=1, creates=1, billed=1, downloads=1, outputs=1
        )


class TestDraws:
    """Latencies and faults are drawn reproducibly from the profile."""

    def test_draws_are_keyed_by_prompt(self) -> None:
        """The same (instance, prompt, n) always draws the same; n and names change it."""
        profile = ProviderProfile(latency=LogNormal(median=2.0, sigma=1.0, scale=0.01))
        assert profile.draw("a", "fox", 0) == profile.draw("a", "fox", 0)
        assert profile.draw("a", "fox", 0) != profile.draw("a", "fox", 1)
        assert profile.draw("a", "fox", 0) != profile.draw("b", "fox", 0)

    def test_lognormal_median_and_cap(self) -> None:
        """LogNormal's draws centre on median x scale; cap bounds them."""
        latency = LogNormal(median=2.0, sigma=1.0, scale=0.01, cap=0.05)
        profile = ProviderProfile(latency=latency)
        draws = sorted(profile.draw("a", f"p{i}").latency for i in range(2001))
        assert draws[1000] == pytest.approx(0.02, rel=0.1)
        assert max(draws) == 0.05

    async def test_served_latency_is_the_drawn_one(self, emu: Emulator) -> None:
        """What the emulator reports as inference time is exactly the draw."""
        profile = ProviderProfile(api="fal", latency=LogNormal(median=0.02, sigma=0.5))
        emu.set_profile("fal", profile)
        async with generator(provider(emu, "fal")) as gen:
            result = await gen.generate("a red fox")
        assert result.provider == "fal"
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{emu.base_url('fal')}/fal-ai/flux/schnell",
                json={"prompt": "a red fox"},
                headers={"Authorization": "Key k"},
            )
        # The second create with this prompt is draw n=1.
        assert answer.json()["timings"]["inference"] == pytest.approx(
            emu.draw("fal", "a red fox", 1).latency, abs=1e-6
        )

    def test_profiles_round_trip_through_json(self) -> None:
        """to_dict/from_dict keep every field, through real JSON."""
        profile = ProviderProfile(
            api="fal",
            latency=LogNormal(median=2.0, sigma=0.5, scale=0.1, cap=3.0),
            faults={Fault.HANG: 0.1, Fault.OVERSIZED: 0.2},
            poll_faults={Fault.RESET: 0.5},
            seed=9,
            error_latency=Fixed(0.01),
            retry_after=2.5,
            keyed=False,
        )
        assert ProviderProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile

    @pytest.mark.parametrize(
        "bad",
        [
            {"api": "midjourney"},
            {"faults": {Fault.HANG: 0.7, Fault.RESET: 0.7}},
            {"faults": {Fault.HANG: -0.1}},
            {"poll_faults": {Fault.NOT_IMAGE: 0.1}},
            {"retry_after": -1},
        ],
    )
    def test_bad_profiles_are_refused(self, bad: dict[str, Any]) -> None:
        """Unknown APIs, odds outside [0, 1] or over 1, and poll-only misuse raise."""
        with pytest.raises(ValueError):
            ProviderProfile(**bad)

    def test_bad_instance_names_are_refused(self) -> None:
        """Instance names must be URL path segments and not start with '_'."""
        for name in ("", "a/b", "_emulator", "a b"):
            with pytest.raises(ValueError):
                Emulator({name: ProviderProfile()})


class TestControl:
    """The emulator is driven over HTTP too, for the separate-process mode."""

    async def test_control_routes(self, emu: Emulator) -> None:
        """force, profiles, stats and reset work over /_emulator."""
        control = f"{emu.origin}/_emulator"
        async with httpx.AsyncClient() as http:
            forced = await http.post(
                f"{control}/force", json={"provider": "openai", "fault": "hang", "count": 2}
            )
            added = await http.put(f"{control}/profiles/extra", json={"api": "unsplash"})
            profiles = (await http.get(f"{control}/profiles")).json()
            bad = await http.post(f"{control}/force", json={"provider": "openai", "fault": "x"})
            unknown = await http.get(f"{control}/nothing")
            stats = (await http.get(f"{control}/stats")).json()
            reset = await http.post(f"{control}/reset", json={})
        assert (forced.status_code, added.status_code, reset.status_code) == (200, 200, 200)
        assert (bad.status_code, unknown.status_code) == (400, 404)
        assert profiles["extra"]["api"] == "unsplash"
        assert emu.base_url("extra") == f"{emu.origin}/extra"
        assert set(stats) == {*APIS, "extra"}

    async def test_separate_process(self) -> None:
        """EmulatorProcess serves the same APIs from a child process and stops it on exit."""
        with EmulatorProcess({"openai": ProviderProfile()}) as emu:
            async with generator(emu.provider("openai", model="flux-schnell")) as gen:
                made = await gen.generate(ImageRequest(prompt="a red fox"))
                emu.force("openai", Fault.CONTENT_REJECTED)
                with pytest.raises(AllProvidersFailed) as info:
                    await gen.generate("a red fox")
            stats = emu.stats("openai")
            emu.set_profile("other", ProviderProfile(api="replicate"))
            emu.reset("openai")
            after = emu.all_stats()
            cpu = emu.cpu_seconds()
            pid = emu.pid
        assert made.provider == "openai"
        assert isinstance(info.value.attempts[0].error, ContentRejected)
        assert (stats.billed, stats.faults) == (1, {"content_rejected": 1})
        assert after["openai"] == ProviderStats()
        assert set(after) == {"openai", "other"}
        assert cpu is not None
        assert cpu > 0
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the child is gone (and reaped)


class LoopbackOnly(httpx.AsyncBaseTransport):
    """httpx's transport, for 127.0.0.1 only: a request to any other host fails the test."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        if request.url.host != "127.0.0.1":
            raise AssertionError(f"a request left loopback, for {request.url.host}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class TestFalPlatform:
    """fal's Platform API pricing lookup, which Fal.check() asks, beside the fal instance."""

    async def test_check_is_answered_by_the_emulator(self, emu: Emulator) -> None:
        """Fal(base_url=<emulator>).check() passes with a fal-shaped key and raises
        ProviderAuthError for a malformed one, without a request leaving 127.0.0.1."""
        transport = LoopbackOnly()
        async with httpx.AsyncClient(transport=transport) as http:
            ctx = ProviderContext(deadline=anyio.current_time() + 5, http_factory=lambda: http)
            await Fal(key="emulator:secret-key", base_url=emu.base_url("fal")).check(ctx)
            with pytest.raises(ProviderAuthError) as info:
                await Fal(key="not-a-fal-key", base_url=emu.base_url("fal")).check(ctx)
        assert "not-a-fal-key" not in str(info.value)
        assert transport.hosts == ["127.0.0.1", "127.0.0.1"]
        assert emu.stats("fal").requests == 2

    async def test_generator_checks_every_instance(self, emu: Emulator) -> None:
        """check_providers() is ok for all four APIs, on loopback only."""
        transport = LoopbackOnly()
        async with httpx.AsyncClient(transport=transport) as http:
            apis = ("replicate", "fal", "openai", "unsplash")
            async with generator(*(emu.provider(api) for api in apis), http=http) as gen:
                assert await gen.check_providers() == dict.fromkeys(apis, "ok")
        assert set(transport.hosts) == {"127.0.0.1"}

    async def test_pricing_route(self, emu: Emulator) -> None:
        """GET /v1/models/pricing: fal's documented shape; 401 without a key or with a key
        that is not id:secret; 422 without endpoint_id."""
        url = f"{emu.origin}/fal/v1/models/pricing"
        key = {"Authorization": "Key emulator:secret-key"}
        async with httpx.AsyncClient() as http:
            priced = await http.get(url, params={"endpoint_id": "a/b,c/d"}, headers=key)
            keyless = await http.get(url, params={"endpoint_id": "a/b"})
            malformed = await http.get(
                url, params={"endpoint_id": "a/b"}, headers={"Authorization": "Key nocolon"}
            )
            bearer = await http.get(
                url, params={"endpoint_id": "a/b"}, headers={"Authorization": "Bearer x:y"}
            )
            unnamed = await http.get(url, headers=key)
        assert priced.status_code == 200
        body = priced.json()
        assert [p["endpoint_id"] for p in body["prices"]] == ["a/b", "c/d"]
        assert set(body["prices"][0]) == {"endpoint_id", "unit_price", "unit", "currency"}
        assert (body["next_cursor"], body["has_more"]) == (None, False)
        assert [r.status_code for r in (keyless, malformed, bearer)] == [401, 401, 401]
        assert "detail" in malformed.json()
        assert unnamed.status_code == 422
