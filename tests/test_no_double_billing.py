"""Never bill twice: a create whose outcome is unknown is not sent again; the next provider answers.

Each AI vendor on the emulator accepts the create (its work is made, and billed)
and then fails to answer it properly: it never answers (the call runs into its
timeout), it resets the connection halfway through the answer, or it sends a
truncated JSON body. However many tries the retry policy allows, the emulator
receives exactly one create, and the image comes from the next provider. A slow
job (longer than the call's timeout) is followed by its id, then cancelled: not
created again either.
"""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.emulator import Emulator, Fault, Fixed, ProviderProfile

from imagegen import DownloadPolicy, Fallback, ImageGenerator, ImageResult, Retry

pytestmark = pytest.mark.anyio

POLICY = DownloadPolicy(allow_http=True, allow_private_networks=True, max_bytes=100_000)
TIMEOUT = 0.4  # seconds one call to the failing vendor may take
#: Each AI vendor, as its provider is built: the API and the constructor's options.
VENDORS: dict[str, tuple[str, dict[str, Any]]] = {
    "replicate": ("replicate", {"poll_interval": 0.02}),
    "fal-sync": ("fal", {"queue": False, "queue_threshold": 1e6}),
    "fal-queue": ("fal", {"queue": True, "poll_interval": 0.02}),
    "openai": ("openai", {"model": "flux-schnell"}),
}
#: The ways a create's answer can be lost after the vendor made the work.
LOST = {
    "timeout-after-send": Fault.STALL,
    "reset-mid-response": Fault.CUT_OFF,
    "truncated-json": Fault.MALFORMED_JSON,
}


async def generate_with_failover(
    vendor: str,
    attempts: int,
    *,
    fault: Fault | None = None,
    latency: float = 0.0,
    call_timeout: float = TIMEOUT,
) -> tuple[ImageResult, Any, Any]:
    """One generation: ``vendor`` (faulted, or slow) first, then a healthy backup.

    Returns the result, the vendor's emulator counters and the backup's.
    """
    api, options = VENDORS[vendor]
    profiles = {
        "vendor": ProviderProfile(api=api, latency=Fixed(latency)),  # type: ignore[arg-type]
        "backup": ProviderProfile(api="openai"),
    }
    async with Emulator(profiles) as emu:
        if fault is not None:
            emu.force("vendor", fault)
        gen = ImageGenerator(
            providers=[
                emu.provider("vendor", timeout=call_timeout, **options),
                emu.provider("backup", model="flux-schnell"),
            ],
            strategy=Fallback(),
            retry=Retry(attempts=attempts, initial=0.01, maximum=0.05),
            download=POLICY,
            default_image=None,
        )
        async with gen:
            result = await gen.generate("a red fox")
        return result, emu.stats("vendor"), emu.stats("backup")


@pytest.mark.parametrize("attempts", [3, 5])
@pytest.mark.parametrize("lost", list(LOST))
@pytest.mark.parametrize("vendor", list(VENDORS))
async def test_a_lost_answer_is_never_created_again(vendor: str, lost: str, attempts: int) -> None:
    """Exactly one create reaches the vendor; the image comes from the next provider."""
    result, stats, backup = await generate_with_failover(vendor, attempts, fault=LOST[lost])
    assert (stats.creates, stats.billed) == (1, 1), stats
    assert result.provider == "backup"
    assert backup.creates == 1
    first = result.attempts[0]
    assert (first.provider, first.outcome, first.tries) == ("vendor", "error", 1)
    assert first.error is not None
    assert not first.error.retryable


#: A budget a slow job's id comes back within: fal's queue answers the submit at once;
#: Replicate holds the create open for Prefer: wait=1, a second less than 2.2 s.
FOLLOWED = {"replicate": 2.2, "fal-queue": TIMEOUT}


@pytest.mark.parametrize("vendor", list(FOLLOWED))
async def test_a_slow_job_is_followed_not_created_again(vendor: str) -> None:
    """A job slower than the call is followed by its id and cancelled, never re-created."""
    result, stats, _ = await generate_with_failover(
        vendor, 5, latency=30.0, call_timeout=FOLLOWED[vendor]
    )
    assert stats.creates == 1, stats
    assert stats.polls >= 1  # followed
    assert stats.cancellations == 1  # and stopped once the call gave up on it
    assert result.provider == "backup"
    first = result.attempts[0]
    assert (first.provider, first.tries) == ("vendor", 1)
    assert first.error is not None
    assert not first.error.retryable
