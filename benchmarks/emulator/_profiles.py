"""Profiles: how an emulated instance behaves (latency, faults, seed) and what it draws.

Draws are reproducible: an instance's latency and fault for a request come from a
random generator seeded by ``(seed, instance, prompt, n)``, where ``n`` counts
earlier creates with that prompt. The same prompt therefore meets the same latency
at every run and under any concurrency, and a benchmark can compute the oracle
(for example, the minimum over three providers) from :meth:`ProviderProfile.draw`.

Faults can also be forced, deterministically: ``emu.force("a", Fault.HANG, count=3)``
makes the next three creates on ``a`` hang, whatever the odds say.

What each fault does (``billed`` means the emulator created a prediction, queue job
or image, and counted it):

================  =================================================================
fault             effect on a create (POST / GET photos/random)
================  =================================================================
SERVER_ERROR      500 with the vendor's error body; nothing billed
UNAVAILABLE       503 with ``Retry-After`` (fal: an infrastructure ``error_type``)
RATE_LIMITED      429 with ``Retry-After`` and ``retry-after-ms``; nothing billed
UNAUTHORIZED      401 with the vendor's error body; nothing billed
HANG              the request is read and never answered; nothing billed
RESET             the connection is reset (RST) once the request is read
MALFORMED_JSON    a 2xx whose JSON is cut short; billed
FAILED            the work fails: Replicate ``failed``, fal ``error`` / 422, OpenAI a
                  500 after the latency, Google a 200 with ``finishReason`` ``NO_IMAGE``,
                  BFL a task ``Error``, Bedrock ``Inference error`` (Stability) or a 424
                  (Amazon) (billed); Unsplash 404 "No photos found"
CONTENT_REJECTED  Replicate ``failed`` with an NSFW message, fal 422
                  ``content_policy_violation``, BFL ``Content Moderated`` (billed); OpenAI 400
                  ``content_policy_violation``, Google a 200 whose ``promptFeedback``
                  has ``blockReason`` ``PROHIBITED_CONTENT``, Bedrock ``Filter reason:
                  prompt`` (Stability) or a 400 (Amazon), Unsplash 410 (not billed)
NOT_IMAGE         billed; the output URL (or b64 payload) is an HTML page, 200
OVERSIZED         billed; the output is ``oversize_bytes`` long (PNG magic, then zeros)
STALL             billed; the create is accepted (its work made) and never answered
CUT_OFF           billed; the answer's head and half its body are sent, then the
                  connection is reset (RST): a reset mid-response
================  =================================================================

STALL and CUT_OFF are what a client cannot tell apart from HANG and RESET, except
that the work exists: a client that sends the create again pays twice.

``poll_faults`` apply the first seven (:data:`POLL_FAULTS`) to status polls, result
fetches and download-tracking GETs instead.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from typing import Any, Literal

import attrs

Api = Literal[
    "replicate", "fal", "openai", "unsplash", "google", "bfl", "bedrock", "azure", "together",
    "xai", "stability", "huggingface",
]  # fmt: skip
APIS: tuple[Api, ...] = (
    "replicate", "fal", "openai", "unsplash", "google", "bfl", "bedrock", "azure", "together",
    "xai", "stability", "huggingface",
)  # fmt: skip


class Fault(enum.Enum):
    """What can go wrong with a request (see the module docstring for each effect)."""

    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    HANG = "hang"
    RESET = "reset"
    MALFORMED_JSON = "malformed_json"
    FAILED = "failed"
    CONTENT_REJECTED = "content_rejected"
    NOT_IMAGE = "not_image"
    OVERSIZED = "oversized"
    STALL = "stall"
    CUT_OFF = "cut_off"


#: Faults that answer before any work exists.
_REFUSALS = frozenset(
    {
        Fault.SERVER_ERROR,
        Fault.UNAVAILABLE,
        Fault.RATE_LIMITED,
        Fault.UNAUTHORIZED,
        Fault.HANG,
        Fault.RESET,
    }
)
#: Faults a poll can meet.
POLL_FAULTS = frozenset(_REFUSALS | {Fault.MALFORMED_JSON})


# -- latency ----------------------------------------------------------------------------------


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a number >= 0 (got {value!r})")


@attrs.frozen
class Fixed:
    """Always ``seconds``."""

    seconds: float = attrs.field(default=0.0, validator=_non_negative)

    def sample(self, _rng: random.Random) -> float:
        """``seconds``."""
        return float(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"fixed": seconds}``."""
        return {"fixed": self.seconds}


@attrs.frozen(kw_only=True)
class LogNormal:
    """``scale * median * exp(sigma * N(0, 1))``: a heavy right tail for larger ``sigma``.

    ``scale`` shrinks time for a run (median 2 s at ``scale=0.01`` is 20 ms); ``cap``
    (seconds, after scaling) bounds the tail.
    """

    median: float = attrs.field(validator=_non_negative)
    sigma: float = attrs.field(validator=_non_negative)
    scale: float = attrs.field(default=1.0, validator=_non_negative)
    cap: float | None = None

    def sample(self, rng: random.Random) -> float:
        """One draw."""
        value = self.scale * self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return value if self.cap is None else min(value, self.cap)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"lognormal": {...}}``."""
        return {"lognormal": attrs.asdict(self)}


Latency = Fixed | LogNormal


def latency_from(data: Mapping[str, Any] | float) -> Latency:
    """A latency from its JSON form (a bare number is :class:`Fixed`)."""
    if isinstance(data, int | float):
        return Fixed(float(data))
    if "fixed" in data:
        return Fixed(float(data["fixed"]))
    if "lognormal" in data:
        return LogNormal(**data["lognormal"])
    raise ValueError(f"unknown latency {data!r}")


# -- profiles ---------------------------------------------------------------------------------


def _faults(value: Mapping[Fault | str, float] | None) -> dict[Fault, float]:
    return {Fault(k): float(v) for k, v in (value or {}).items()}


def _check_odds(_: object, attribute: attrs.Attribute[dict[Fault, float]], value: object) -> None:
    assert isinstance(value, dict)
    if any(not 0 <= p <= 1 for p in value.values()) or sum(value.values()) > 1 + 1e-9:
        raise ValueError(f"{attribute.name}: odds must be in [0, 1] and sum to at most 1")


def _check_api(_: object, __: attrs.Attribute[str], value: object) -> None:
    if value not in APIS:
        raise ValueError(f"api must be one of {', '.join(APIS)} (got {value!r})")


@attrs.frozen
class Draw:
    """What one create meets: its latency (seconds) and fault (None: it succeeds)."""

    latency: float
    fault: Fault | None


@attrs.frozen(kw_only=True)
class ProviderProfile:
    """How one emulated provider behaves.

    Args:
        api: Which vendor API it speaks: ``replicate``, ``fal``, ``openai``, ``unsplash``,
            ``google``, ``bfl``, ``bedrock``, ``azure``, ``together``, ``xai``,
            ``stability``, ``huggingface``.
        latency: Time from create to finished work.
        faults: Odds of each fault per create (summing to at most 1).
        poll_faults: Odds of each fault per status poll, result fetch or tracking GET
            (only the faults in :data:`POLL_FAULTS`).
        seed: Seeds every draw.
        error_latency: Delay before an error answer (5xx, 429, 401, reset, rejection).
        download_latency: Delay before an output file is served.
        retry_after: Seconds announced by 429 and 503 answers.
        image_side: Width and height of the PNG outputs (JPEG and WebP are 16x16).
        oversize_bytes: Length of an OVERSIZED output.
        keyed: Draw by prompt (reproducible under concurrency); False draws in
            arrival order.
    """

    api: Api = attrs.field(default="openai", validator=_check_api)
    latency: Latency = Fixed(0.0)
    faults: dict[Fault, float] = attrs.field(factory=dict, converter=_faults, validator=_check_odds)
    poll_faults: dict[Fault, float] = attrs.field(
        factory=dict, converter=_faults, validator=_check_odds
    )
    seed: int = 0
    error_latency: Latency = Fixed(0.0)
    download_latency: Latency = Fixed(0.0)
    retry_after: float = attrs.field(default=1.0, validator=_non_negative)
    image_side: int = 64
    oversize_bytes: int = 2_000_000
    keyed: bool = True

    def __attrs_post_init__(self) -> None:
        wrong = set(self.poll_faults) - POLL_FAULTS
        if wrong:
            raise ValueError(f"poll_faults cannot hold {sorted(f.value for f in wrong)}")

    def draw(self, name: str, key: str = "", n: int = 0) -> Draw:
        """The latency and fault of the ``n``-th create keyed ``key`` on instance ``name``."""
        rng = random.Random(f"{self.seed}:{name}:{key}:{n}")
        latency = self.latency.sample(rng)
        return Draw(latency, _pick(self.faults, rng.random()))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see :meth:`from_dict`)."""
        return {
            "api": self.api,
            "latency": self.latency.to_dict(),
            "faults": {f.value: p for f, p in self.faults.items()},
            "poll_faults": {f.value: p for f, p in self.poll_faults.items()},
            "seed": self.seed,
            "error_latency": self.error_latency.to_dict(),
            "download_latency": self.download_latency.to_dict(),
            "retry_after": self.retry_after,
            "image_side": self.image_side,
            "oversize_bytes": self.oversize_bytes,
            "keyed": self.keyed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderProfile:
        """A profile from :meth:`to_dict`'s form; missing keys take their defaults."""
        fields = dict(data)
        for name in ("latency", "error_latency", "download_latency"):
            if name in fields:
                fields[name] = latency_from(fields[name])
        return cls(**fields)


def _pick(odds: Mapping[Fault, float], u: float) -> Fault | None:
    total = 0.0
    for fault in Fault:  # enum order, so the same u picks the same fault every run
        total += odds.get(fault, 0.0)
        if u < total:
            return fault
    return None


def default_profiles() -> dict[str, ProviderProfile]:
    """One instance per API, named after it, answering at once without faults."""
    return {api: ProviderProfile(api=api) for api in APIS}
