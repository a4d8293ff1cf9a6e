"""Each newer vendor raced against another on the emulator: the faster one wins, the
slower one's call is dropped (or its remote job cancelled), and both are billed as the
vendors bill."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from benchmarks.emulator import Emulator, Fixed, ProviderProfile

from imagegen import DownloadPolicy, ImageGenerator, MemoryStorage, Race, Retry

pytestmark = pytest.mark.anyio

POLICY = DownloadPolicy(allow_http=True, allow_private_networks=True)
#: (vendor under test, its rival, how the rival's provider is built).
PAIRS: list[tuple[str, str, dict[str, Any]]] = [
    ("google", "openai", {"model": "flux-schnell"}),
    ("google", "fal", {"queue": True, "poll_interval": 0.01}),
    ("bfl", "openai", {"model": "flux-schnell"}),
    ("bedrock", "google", {}),
    ("azure", "fal", {"queue": True, "poll_interval": 0.01}),
    ("together", "openai", {"model": "flux-schnell"}),
    ("xai", "google", {}),
    ("stability", "replicate", {}),
    ("huggingface", "bfl", {"poll_interval": 0.01}),
]
#: Options of the vendors under test.
OWN: dict[str, dict[str, Any]] = {
    "google": {}, "bfl": {"poll_interval": 0.01}, "bedrock": {}, "azure": {}, "together": {},
    "xai": {}, "stability": {}, "huggingface": {},
}  # fmt: skip


async def settle(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await anyio.sleep(0.01)
    raise AssertionError("the emulator never got there")


@pytest.mark.parametrize("faster", ["vendor", "rival"])
@pytest.mark.parametrize(
    ("vendor", "rival", "options"), PAIRS, ids=[f"{v}-{r}" for v, r, _ in PAIRS]
)
async def test_the_faster_wins(
    vendor: str, rival: str, options: dict[str, Any], faster: str
) -> None:
    fast, slow = Fixed(0.02), Fixed(5.0)
    profiles = {
        vendor: ProviderProfile(api=vendor, latency=fast if faster == "vendor" else slow),  # type: ignore[arg-type]
        rival: ProviderProfile(api=rival, latency=slow if faster == "vendor" else fast),  # type: ignore[arg-type]
    }
    async with Emulator(profiles) as emu:
        gen = ImageGenerator(
            providers=[emu.provider(vendor, **OWN[vendor]), emu.provider(rival, **options)],
            strategy=Race(),
            retry=Retry(attempts=1),
            storage=MemoryStorage(),
            default_image=None,
            download=POLICY,
        )
        async with gen:
            result = await gen.generate("a red fox")
        winner, loser = (vendor, rival) if faster == "vendor" else (rival, vendor)
        # The loser's synchronous call is dropped; its queued job is cancelled. BFL has
        # no cancel: its task runs on (and is billed), only the polls stop. Bedrock's
        # call runs in a thread, which cannot be stopped: it waits for its answer.
        if loser not in ("bfl", "bedrock"):
            await settle(lambda: emu.stats(loser).disconnects + emu.stats(loser).cancellations >= 1)
        stats = emu.all_stats()
    assert result.provider == winner
    assert result.key is not None
    assert result.content_type == ("image/jpeg" if winner == "xai" else "image/png")  # xAI: JPEG
    assert {a.provider for a in result.attempts} == {vendor, rival}
    assert stats[winner].billed == 1
    # A loser still setting up (Bedrock builds its boto3 client first) sends nothing.
    assert stats[loser].creates == 1 or (loser == "bedrock" and stats[loser].creates == 0)
