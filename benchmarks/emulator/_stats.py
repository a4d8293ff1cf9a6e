"""Counters: what each instance was asked, made, billed and cancelled.

Counters (:class:`ProviderStats`, per instance) count requests, creates, billed work,
cancellations (and those that stopped running work), client disconnects, polls,
downloads, download reports, streamed answers, OAuth tokens, and each fault applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

_COUNTERS = (
    "requests",
    "creates",
    "billed",
    "cancellations",
    "cancelled_running",
    "disconnects",
    "polls",
    "downloads",
    "tracked",
    "streams",
    "tokens",
)


@attrs.frozen(kw_only=True)
class ProviderStats:
    """One instance's counters since start (or the last :meth:`Emulator.reset`).

    Attributes:
        requests: API requests (everything but output downloads).
        creates: Requests that asked for new work (create, submit, generate, random photo).
        billed: Creates that made a prediction, queue job or image.
        cancellations: Cancel requests (Replicate ``/cancel``, fal ``PUT cancel_url``).
        cancelled_running: Those that stopped work still running.
        disconnects: Requests whose client left before the answer was sent.
        polls: Status polls and result fetches.
        downloads: Output file GETs.
        tracked: Unsplash download-tracking GETs.
        streams: OpenAI creates answered as a stream of events (``"stream": true``).
        tokens: OAuth tokens handed out (Google's token endpoint, for service accounts).
        outputs: Billed work that made its image (ready, not cancelled first, not
            failed or stalled): what a vendor billing only outputs charges for.
        faults: How many times each fault (by value) was applied.
    """

    requests: int = 0
    creates: int = 0
    billed: int = 0
    cancellations: int = 0
    cancelled_running: int = 0
    disconnects: int = 0
    polls: int = 0
    downloads: int = 0
    tracked: int = 0
    streams: int = 0
    tokens: int = 0
    outputs: int = 0
    faults: dict[str, int] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderStats:
        """From :meth:`to_dict`'s form."""
        return cls(**data)
