"""Property tests: request validation, dict round trips, size mapping, webhook signatures.

Each property is checked against an oracle written from the documented rules (docstrings,
DESIGN.md, the vendors' published formats), not against the implementation's own helpers,
so a change in behaviour shows up as a counter-example. Everything here is synchronous: the
functions under test do no I/O.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import math
import string
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegen import (
    AllProvidersFailed,
    Attempt,
    CircuitOpen,
    ContentRejected,
    Fal,
    ImageGenError,
    ImageRequest,
    ImageResult,
    InvalidConfig,
    InvalidRequest,
    Job,
    OpenAIImages,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Record,
    Replicate,
    StorageError,
    WebhookVerificationError,
)
from imagegen._webhooks import sign_standard_webhook, verify_fal_webhook, verify_standard_webhook
from imagegen.providers._fal import image_size
from imagegen.providers._openai import nearest_size
from imagegen.providers._replicate import aspect_ratio
from imagegen.providers._unsplash import orientation_for

# Bounded so the whole file stays well under 20 s; no deadline because a loaded CI machine
# makes per-example timings meaningless. Applied per test: a registered profile would be
# global and change every other test file's settings.
PROPERTY = settings(max_examples=150, deadline=None)
FEW = settings(max_examples=60, deadline=None)
GARBAGE = settings(max_examples=80, deadline=None)

# --- ImageRequest ------------------------------------------------------------------------

MISSING: Any = object()
FIELDS = (
    "prompt",
    "negative_prompt",
    "width",
    "height",
    "seed",
    "output_format",
    "metadata",
    "provider_options",
)

# Control characters as Unicode defines them (general category Cc): C0, DEL and C1.
CONTROL = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))
ALLOWED_CONTROL = "\n\t"


def is_control(char: str) -> bool:
    """C0 (U+0000-U+001F), DEL (U+007F) or C1 (U+0080-U+009F)."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def is_surrogate(char: str) -> bool:
    """A lone UTF-16 surrogate (U+D800-U+DFFF): JSON can carry one, UTF-8 cannot."""
    return 0xD800 <= ord(char) <= 0xDFFF


def text_rules(value: object, *, required: bool) -> list[str]:
    """The documented prompt rules that ``value`` breaks (regexes of their messages)."""
    if not isinstance(value, str):
        return ["must be a string"]
    trimmed = value.strip()
    if required and not trimmed:
        return ["must not be empty"]
    broken = []
    if len(trimmed) > 4000:
        broken.append("at most 4000 characters")
    if any(is_control(c) and c not in ALLOWED_CONTROL for c in trimmed):
        broken.append("control characters")
    if any(is_surrogate(c) for c in trimmed):
        broken.append("valid Unicode")
    return broken


def side_rules(value: object) -> list[str]:
    """Width/height: an int (not bool), 64..4096, a multiple of 8."""
    if not isinstance(value, int) or isinstance(value, bool):
        return ["must be an integer"]
    broken = []
    if not 64 <= value <= 4096:
        broken.append("between 64 and 4096")
    if value % 8:
        broken.append("multiple of 8")
    return broken


def seed_rules(value: object) -> list[str]:
    """None, or an int (not bool) from 0 to 2**32-1."""
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return ["must be an integer or None"]
    return [] if 0 <= value < 2**32 else ["between 0 and 4294967295"]


def normal_format(value: object) -> object:
    """The format as stored: trimmed, lower case, "jpg" read as "jpeg"."""
    if not isinstance(value, str):
        return value
    value = value.strip().lower()
    return "jpeg" if value == "jpg" else value


def format_rules(value: object) -> list[str]:
    """png, jpeg (or jpg) or webp, any case, surrounding spaces ignored."""
    return [] if normal_format(value) in ("png", "jpeg", "webp") else ["must be one of"]


def metadata_rules(value: object) -> list[str]:
    """A mapping of str to str, at most 2048 bytes of UTF-8 keys and values in all."""
    if not isinstance(value, Mapping):
        return ["must be a mapping of str to str"]
    broken = []
    texts = [t for pair in value.items() for t in pair if isinstance(t, str)]
    if any(is_surrogate(c) for t in texts for c in t):
        broken.append("valid Unicode")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        broken.append("must map str to str")
    elif not broken:
        size = sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in value.items())
        if size > 2048:
            broken.append("at most 2048 bytes")
    return broken


def options_rules(value: object) -> list[str]:
    """A mapping of provider name (str) to a mapping of that vendor's fields."""
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        return []
    return ["must map a provider name"]


RULES: dict[str, Callable[[object], list[str]]] = {
    "prompt": lambda v: text_rules(v, required=True),
    "negative_prompt": lambda v: [] if v is None else text_rules(v, required=False),
    "width": side_rules,
    "height": side_rules,
    "seed": seed_rules,
    "output_format": format_rules,
    "metadata": metadata_rules,
    "provider_options": options_rules,
}

printable = st.text(max_size=30)
with_controls = st.text(
    alphabet=st.sampled_from(CONTROL + "ab \n\t\u00a0\u2028\ud800\udfff"), max_size=12
)
padded = st.builds(
    lambda pad, s: pad + s + pad, st.sampled_from(["", " ", "\n\t ", "\u3000"]), printable
)
around_limit = st.builds(
    lambda n, pad, ch: pad + ch * n + pad,
    st.integers(3990, 4010),
    st.sampled_from(["", "  "]),
    st.sampled_from(["x", "é", "\n", "\x00"]),
)
not_text = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=4), st.just(["a"]))
# Empty after trimming: Python's str.strip() also trims U+001C..U+001F (control characters).
blank = st.text(alphabet=" \n\t\r\u3000\u2028\x1c\x1f", max_size=4)
prompts = st.one_of(printable, blank, with_controls, padded, around_limit, not_text)
negatives = st.one_of(
    st.just(MISSING), st.none(), printable, blank, with_controls, padded, around_limit, not_text
)
valid_sides = st.integers(8, 512).map(lambda n: n * 8)
sides = st.one_of(
    st.just(MISSING),
    valid_sides,
    st.integers(-100, 5000),
    st.integers(),
    st.booleans(),
    valid_sides.map(float),
    st.floats(allow_nan=True),
    valid_sides.map(str),
    st.none(),
)
seeds = st.one_of(
    st.just(MISSING),
    st.none(),
    st.integers(0, 2**32 - 1),
    st.integers(-(2**34), 2**34),
    st.sampled_from([-1, 0, 2**32 - 1, 2**32]),
    st.booleans(),
    st.floats(),
    st.text(alphabet="0123456789", min_size=1, max_size=3),
)
formats = st.one_of(
    st.just(MISSING),
    st.sampled_from(["png", "jpeg", "jpg", "webp", " PNG ", "JPG", "Webp\n", "gif", "", "jpe"]),
    st.text(max_size=6),
    st.none(),
    st.integers(),
)
metadata_text = (
    st.text(max_size=12)
    | st.text(alphabet="aé€😀", min_size=300, max_size=700)
    | st.text(alphabet="ab\ud800", max_size=6)  # a lone surrogate cannot be encoded
)
# One entry of n bytes in all (key "k" included), half of them in two-byte characters: the
# limit counts UTF-8 bytes, not characters.
near_metadata_limit = st.builds(
    lambda n, wide: {"k": "é" * wide + "a" * (n - 1 - 2 * wide)},
    st.integers(2040, 2056),
    st.integers(0, 1000),
)
metadata = st.one_of(
    st.just(MISSING),
    near_metadata_limit,
    st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=5),
    st.dictionaries(metadata_text, metadata_text, max_size=4),
    st.dictionaries(
        st.one_of(st.text(max_size=5), st.integers()),
        st.one_of(st.text(max_size=5), st.integers(), st.none()),
        max_size=3,
    ),
    st.sampled_from([None, "k=v", ["k", "v"], 3]),
)
vendor_fields = st.dictionaries(
    st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3
)
provider_options = st.one_of(
    st.just(MISSING),
    st.dictionaries(st.text(max_size=8), vendor_fields, max_size=3),
    st.dictionaries(
        st.one_of(st.text(max_size=8), st.integers()),
        st.one_of(vendor_fields, st.integers(), st.text(max_size=3), st.none()),
        max_size=3,
    ),
    st.sampled_from([None, "replicate", [("fal", {})]]),
)
FIELD_VALUES = {
    "prompt": prompts,
    "negative_prompt": negatives,
    "width": sides,
    "height": sides,
    "seed": seeds,
    "output_format": formats,
    "metadata": metadata,
    "provider_options": provider_options,
}
request_inputs = st.fixed_dictionaries(FIELD_VALUES).map(
    lambda d: {k: v for k, v in d.items() if v is not MISSING}
)


def broken_rules(kwargs: Mapping[str, object]) -> dict[str, list[str]]:
    """Every field of ``kwargs`` that breaks a documented rule, with the rules it breaks."""
    broken = {}
    for name, value in kwargs.items():
        rules = RULES[name](value)
        if rules:
            broken[name] = rules
    return broken


def check_request(kwargs: dict[str, Any]) -> None:
    """``ImageRequest(**kwargs)`` builds a normalised request or refuses a broken field."""
    broken = broken_rules(kwargs)
    if broken:
        with pytest.raises(InvalidRequest) as info:
            ImageRequest(**kwargs)
        error = info.value
        assert error.field in broken, (error.field, str(error), broken)
        message = str(error)
        assert error.field in message
        assert any(rule in message for rule in broken[error.field]), (message, broken)
        return
    request = ImageRequest(**kwargs)
    assert request.prompt == kwargs["prompt"].strip()
    negative = kwargs.get("negative_prompt")
    assert request.negative_prompt == (negative.strip() or None if negative else None)
    assert request.width == kwargs.get("width", 1024)
    assert request.height == kwargs.get("height", 1024)
    assert request.seed == kwargs.get("seed")
    assert request.output_format == normal_format(kwargs.get("output_format", "png"))
    assert request.content_type == f"image/{request.output_format}"
    assert dict(request.metadata) == dict(kwargs.get("metadata", {}))
    options = {k: dict(v) for k, v in request.provider_options.items()}
    assert options == {k: dict(v) for k, v in kwargs.get("provider_options", {}).items()}
    # Whatever was accepted still satisfies every rule once stored.
    assert not broken_rules({f: getattr(request, f) for f in FIELDS})


class TestImageRequestProperties:
    """Any input constructs a request that obeys every rule, or names the rule it broke."""

    @PROPERTY
    @given(kwargs=request_inputs)
    def test_constructs_or_names_a_broken_field(self, kwargs: dict[str, Any]) -> None:
        """A valid input builds a normalised request; an invalid one raises on a broken field."""
        check_request(kwargs)

    @PROPERTY
    @given(field=st.sampled_from(FIELDS[1:]), data=st.data())
    def test_one_field_at_a_time(self, field: str, data: st.DataObject) -> None:
        """With every other field valid, each field alone obeys its documented rules."""
        value = data.draw(FIELD_VALUES[field], label=field)
        check_request({"prompt": "a red fox"} | ({} if value is MISSING else {field: value}))

    @PROPERTY
    @given(
        meta=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4),
        options=st.dictionaries(st.text(max_size=8), vendor_fields, min_size=1, max_size=3),
    )
    def test_stored_mappings_are_frozen_copies(
        self, meta: dict[str, str], options: dict[str, dict[str, Any]]
    ) -> None:
        """Changing the caller's dicts later changes nothing, and the stored ones are read-only."""
        request = ImageRequest(prompt="p", metadata=meta, provider_options=options)
        before = (dict(request.metadata), {k: dict(v) for k, v in request.provider_options.items()})
        meta["added"] = "x"
        name = next(iter(options))
        options[name]["added"] = 1
        options["added"] = {}
        assert dict(request.metadata) == before[0]
        assert {k: dict(v) for k, v in request.provider_options.items()} == before[1]
        with pytest.raises(TypeError):
            request.metadata["x"] = "y"  # type: ignore[index]
        with pytest.raises(TypeError):
            request.options_for(name)["x"] = 1  # type: ignore[index]


# --- dict round trips --------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
durations = st.floats(min_value=0, max_value=1e6, allow_nan=False)
opt_text = st.none() | st.text(max_size=12)
PROVIDER_ERRORS = (
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderRateLimited,
    ProviderAuthError,
    ProviderQuotaExceeded,
    ContentRejected,
)
provider_errors = st.builds(
    lambda cls, message, **kw: cls(message, **kw),
    st.sampled_from(PROVIDER_ERRORS),
    st.text(max_size=20),
    provider=opt_text,
    status=st.none() | st.integers(100, 599),
    retry_after=st.none() | durations,
    retryable=st.none() | st.booleans(),
)
field_errors = st.builds(
    lambda cls, message, field: cls(message, field=field),
    st.sampled_from([InvalidRequest, InvalidConfig]),
    st.text(max_size=20),
    st.text(max_size=10),
)
plain_errors = st.builds(
    lambda cls, message: cls(message),
    st.sampled_from([ImageGenError, StorageError, WebhookVerificationError]),
    st.text(max_size=20),
)
leaf_errors = provider_errors | field_errors | plain_errors


def attempts_of(errors: st.SearchStrategy[ImageGenError]) -> st.SearchStrategy[Attempt]:
    """Attempts whose error, when there is one, comes from ``errors``."""
    return st.builds(
        Attempt,
        provider=st.text(max_size=10),
        outcome=st.sampled_from(["success", "error", "cancelled", "skipped"]),
        error=st.none() | errors,
        elapsed=durations,
        tries=st.integers(0, 20),
    )


attempts_errors = st.builds(
    lambda cls, message, attempts, generation_id: cls(
        message, attempts=attempts, generation_id=generation_id
    ),
    st.sampled_from([AllProvidersFailed, CircuitOpen]),
    st.text(max_size=20),
    st.lists(attempts_of(leaf_errors), max_size=3),
    opt_text,
)
any_errors = leaf_errors | attempts_errors
attempts = attempts_of(any_errors)
# Whole minutes, as ISO 8601 offsets are (Python 3.11 drops the microseconds of an odd
# offset when it reads its own isoformat() back; no real clock produces one).
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
datetimes = st.datetimes(timezones=st.none() | st.just(dt.UTC) | offsets)
results = st.builds(
    ImageResult,
    id=st.text(max_size=16),
    url=opt_text,
    key=opt_text,
    provider=st.text(max_size=10),
    content_type=st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
    size=st.integers(0, 2**40),
    width=st.none() | st.integers(1, 8192),
    height=st.none() | st.integers(1, 8192),
    sha256=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    elapsed=durations,
    attempts=st.lists(attempts, max_size=3).map(tuple),
    is_default=st.booleans(),
    source_url=opt_text,
    attribution=opt_text,
    created_at=datetimes,
    data=st.none() | st.binary(max_size=8),
)
jobs = st.builds(
    Job,
    id=st.text(max_size=16),
    status=st.sampled_from(["pending", "running", "succeeded", "failed"]),
    result=st.none() | results,
    error=st.none() | any_errors,
    deadline=st.none() | finite,
)
json_values = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | st.text(max_size=8)
)
records = st.builds(
    Record,
    id=st.text(max_size=16),
    status=st.sampled_from(["running", "succeeded", "failed"]),
    provider=opt_text,
    request=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    key=opt_text,
    url=opt_text,
    attempts=st.lists(attempts, max_size=3).map(tuple),
    error=st.none() | any_errors,
    created_at=datetimes,
    finished_at=st.none() | datetimes,
    is_default=st.booleans(),
)


def comparable(value: object) -> object:
    """A value equality can compare: errors by type, message and fields (not identity)."""
    if isinstance(value, ImageGenError):
        fields = {k: comparable(v) for k, v in sorted(vars(value).items())}
        return (type(value), str(value), fields)
    if attrs.has(type(value)):
        return (
            type(value),
            {a.name: comparable(getattr(value, a.name)) for a in attrs.fields(type(value))},
        )
    if isinstance(value, tuple | list):
        return tuple(comparable(v) for v in value)
    if isinstance(value, Mapping):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        # Equal datetimes in different offsets compare equal; lossless means the same offset.
        return (value, value.utcoffset(), value.isoformat())
    return value


def through_json(data: dict[str, Any]) -> Any:
    """What a state backend gives back after storing ``data`` as strict JSON."""
    return json.loads(json.dumps(data, allow_nan=False))


def without_data(result: ImageResult) -> ImageResult:
    """``result`` as its JSON keeps it: no bytes, neither its own nor its images'."""
    images = tuple(attrs.evolve(image, data=None) for image in result.images)
    return attrs.evolve(result, data=None, images=images)


class TestRoundTrips:
    """to_dict then from_dict, through JSON, gives back an equal value."""

    @PROPERTY
    @given(result=results)
    def test_image_result(self, result: ImageResult) -> None:
        """Every ImageResult field survives the trip; only ``data`` is left out by design."""
        back = ImageResult.from_dict(through_json(result.to_dict()))
        assert comparable(back) == comparable(without_data(result))
        assert "data" not in result.to_dict()

    @PROPERTY
    @given(job=jobs)
    def test_job(self, job: Job) -> None:
        """A Job keeps its status, deadline, error (kind and fields) and result."""
        back = Job.from_dict(through_json(job.to_dict()))
        expected = job if job.result is None else attrs.evolve(job, result=without_data(job.result))
        assert comparable(back) == comparable(expected)

    @PROPERTY
    @given(record=records)
    def test_record(self, record: Record) -> None:
        """A Record keeps its request summary, attempts, error and both times."""
        back = Record.from_dict(through_json(record.to_dict()))
        assert comparable(back) == comparable(record)

    @PROPERTY
    @given(error=any_errors)
    def test_error_kind_and_fields(self, error: ImageGenError) -> None:
        """An error inside an attempt comes back as the same class with the same fields."""
        attempt = Attempt(provider="p", outcome="error", error=error)
        back = Attempt.from_dict(through_json(attempt.to_dict()))
        assert type(back.error) is type(error)
        assert comparable(back.error) == comparable(error)
        if isinstance(error, ProviderError):
            assert back.error.retryable == error.retryable  # type: ignore[union-attr]


# --- size mapping ------------------------------------------------------------------------

# The documented allowed values, copied from the providers' docstrings and the vendors' pages.
OPENAI_SIZES = {
    "gpt-image-1": {(1024, 1024), (1536, 1024), (1024, 1536)},
    "gpt-image-1-mini": {(1024, 1024), (1536, 1024), (1024, 1536)},
    "dall-e-3": {(1024, 1024), (1792, 1024), (1024, 1792)},
    "dall-e-2": {(256, 256), (512, 512), (1024, 1024)},
}
FLUX_RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]
FAL_PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
valid_sizes = st.tuples(valid_sides, valid_sides)
# Requests whose area is exactly between two of dall-e-2's squares (on a log scale).
area_ties = st.sampled_from(
    [(256, 512), (512, 256), (128, 1024), (512, 1024), (1024, 512), (256, 2048), (128, 4096)]
)
openai_sizes = valid_sizes | area_ties
# Exactly on Unsplash's thresholds: width/height of 1.1 (88:80) and 0.9 (72:80).
on_thresholds = st.integers(1, 46).flatmap(
    lambda m: st.sampled_from([(88 * m, 80 * m), (72 * m, 80 * m)])
)


def log_distance(a: Fraction, b: Fraction) -> float:
    """How far apart two ratios are on a log scale (2x and 1/2x are equally far)."""
    return abs(math.log(a) - math.log(b))


def ratio_of(label: str) -> Fraction:
    """``"16:9"`` as the Fraction 16/9."""
    w, h = label.split(":")
    return Fraction(int(w), int(h))


def flipped(label: str) -> str:
    """``"16:9"`` -> ``"9:16"``."""
    w, h = label.split(":")
    return f"{h}:{w}"


class TestOpenAISizes:
    """OpenAI sizes: an allowed size, nearest by aspect then area, monotone and symmetric."""

    @PROPERTY
    @given(model=st.sampled_from(sorted(OPENAI_SIZES)), size=openai_sizes)
    def test_nearest_allowed_size(self, model: str, size: tuple[int, int]) -> None:
        """The chosen size is allowed, no allowed size has a closer aspect, then a closer area."""
        width, height = size
        chosen = nearest_size(model, width, height)
        allowed = OPENAI_SIZES[model]
        assert chosen in allowed
        wanted = Fraction(width, height)
        best_aspect = min(log_distance(Fraction(w, h), wanted) for w, h in allowed)
        assert log_distance(Fraction(*chosen), wanted) <= best_aspect + 1e-12
        same_aspect = [s for s in allowed if Fraction(*s) == Fraction(*chosen)]
        area = Fraction(width * height)
        chosen_area = log_distance(Fraction(chosen[0] * chosen[1]), area)
        for w, h in same_aspect:
            other = log_distance(Fraction(w * h), area)
            assert chosen_area <= other + 1e-12
            if math.isclose(chosen_area, other, abs_tol=1e-12):
                assert chosen[0] * chosen[1] >= w * h  # a tie goes to the larger size

    @PROPERTY
    @given(model=st.sampled_from(sorted(OPENAI_SIZES)), a=openai_sizes, b=openai_sizes)
    def test_monotone(self, model: str, a: tuple[int, int], b: tuple[int, int]) -> None:
        """A wider request never gets a narrower size; at one aspect, a bigger never a smaller."""
        (wa, ha), (wb, hb) = sorted([a, b], key=lambda s: (Fraction(*s), s[0] * s[1]))
        chosen_a, chosen_b = nearest_size(model, wa, ha), nearest_size(model, wb, hb)
        assert Fraction(*chosen_a) <= Fraction(*chosen_b)
        if Fraction(wa, ha) == Fraction(wb, hb):
            assert chosen_a[0] * chosen_a[1] <= chosen_b[0] * chosen_b[1]

    @PROPERTY
    @given(model=st.sampled_from(sorted(OPENAI_SIZES)), size=openai_sizes)
    def test_transposed_request_gets_transposed_size(
        self, model: str, size: tuple[int, int]
    ) -> None:
        """Swapping width and height swaps the chosen size: no orientation is favoured."""
        width, height = size
        w, h = nearest_size(model, width, height)
        assert nearest_size(model, height, width) == (h, w)

    @FEW
    @given(model=st.sampled_from(["my-gateway-model", "flux-pro", "sdxl"]), size=valid_sizes)
    def test_unknown_models_get_the_size_asked(self, model: str, size: tuple[int, int]) -> None:
        """A model outside the known families gets exactly the requested size."""
        assert nearest_size(model, *size) == size

    @PROPERTY
    @given(model=st.sampled_from(sorted(OPENAI_SIZES)), size=openai_sizes)
    def test_request_body_uses_an_allowed_size(self, model: str, size: tuple[int, int]) -> None:
        """The body OpenAIImages sends for any valid request names an allowed size."""
        provider = OpenAIImages(api_key="test-key", model=model)
        body = provider.body_for(ImageRequest(prompt="p", width=size[0], height=size[1]))
        w, h = (int(n) for n in body["size"].split("x"))
        assert (w, h) in OPENAI_SIZES[model]


class TestReplicateAspectRatio:
    """Replicate's aspect_ratio: one of flux-schnell's, nearest on a log scale, monotone."""

    @PROPERTY
    @given(size=valid_sizes)
    def test_nearest_allowed_ratio(self, size: tuple[int, int]) -> None:
        """The label is one flux-schnell accepts, and no accepted ratio is nearer."""
        label = aspect_ratio(*size)
        assert label in FLUX_RATIOS
        wanted = Fraction(*size)
        best = min(log_distance(ratio_of(r), wanted) for r in FLUX_RATIOS)
        assert log_distance(ratio_of(label), wanted) <= best + 1e-12

    @PROPERTY
    @given(a=valid_sizes, b=valid_sizes)
    def test_monotone(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        """A wider request never maps to a narrower ratio."""
        low, high = sorted([a, b], key=lambda s: Fraction(*s))
        assert ratio_of(aspect_ratio(*low)) <= ratio_of(aspect_ratio(*high))

    @PROPERTY
    @given(size=valid_sizes)
    def test_transposed(self, size: tuple[int, int]) -> None:
        """Swapping width and height flips the ratio."""
        assert aspect_ratio(size[1], size[0]) == flipped(aspect_ratio(*size))

    @FEW
    @given(size=valid_sizes, fmt=st.sampled_from(["png", "jpeg", "webp"]))
    def test_input_uses_it(self, size: tuple[int, int], fmt: str) -> None:
        """Replicate.input() sends that ratio and a format flux-schnell knows."""
        request = ImageRequest(prompt="p", width=size[0], height=size[1], output_format=fmt)
        data = Replicate(api_token="test-token").input(request)
        assert data["aspect_ratio"] == aspect_ratio(*size)
        assert data["output_format"] in ("png", "jpg", "webp")


class TestFalImageSize:
    """fal's image_size names a preset only for its exact pixels, else carries the pixels."""

    @PROPERTY
    @given(size=valid_sizes | st.sampled_from(sorted(FAL_PRESETS.values())))
    def test_decodes_back_to_the_request(self, size: tuple[int, int]) -> None:
        """Read back (preset name or pixels), the image_size is exactly the size asked."""
        value = image_size(*size)
        if isinstance(value, str):
            assert FAL_PRESETS[value] == size
        else:
            assert value == {"width": size[0], "height": size[1]}
            assert size not in FAL_PRESETS.values()

    @FEW
    @given(size=valid_sizes)
    def test_body_uses_it(self, size: tuple[int, int]) -> None:
        """Fal.body() sends that image_size."""
        body = Fal(key="test-key").body(ImageRequest(prompt="p", width=size[0], height=size[1]))
        assert body["image_size"] == image_size(*size)


class TestUnsplashOrientation:
    """Unsplash orientation: landscape above 1.1, portrait below 0.9, else squarish."""

    @PROPERTY
    @given(size=valid_sizes | on_thresholds)
    def test_thresholds(self, size: tuple[int, int]) -> None:
        """The orientation follows the documented width/height thresholds, exactly."""
        width, height = size
        expected = (
            "landscape"
            if 10 * width > 11 * height
            else "portrait"
            if 10 * width < 9 * height
            else "squarish"
        )
        assert orientation_for(width, height) == expected


# --- Standard Webhooks (Replicate) -------------------------------------------------------

B64 = string.ascii_letters + string.digits + "+/"
secrets_ = st.builds(
    lambda key, prefixed: ("whsec_" if prefixed else "") + base64.b64encode(key).decode(),
    st.binary(min_size=1, max_size=64),
    st.booleans(),
)
# Header values as a server hands them over: surrounding whitespace is never part of one.
header_text = st.text(min_size=1, max_size=40).filter(lambda s: s == s.strip() and s != "")
timestamps = st.integers(0, 10**11)
bodies = st.binary(max_size=512)


def standard_headers(msg_id: str, timestamp: str, signature: str) -> dict[str, str]:
    """The three Standard Webhooks headers."""
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}


def replace_char(text: str, index: int, char: str) -> str:
    """``text`` with the character at ``index`` replaced by ``char``."""
    return text[:index] + char + text[index + 1 :]


def other_char(data: st.DataObject, old: str, alphabet: str | None = None) -> str:
    """A character different from ``old``."""
    chars = st.sampled_from(alphabet) if alphabet else st.characters(exclude_categories=("Cs",))
    return data.draw(chars.filter(lambda c: c != old), label="char")


def refused(call: Callable[[], object]) -> None:
    """``call`` raises WebhookVerificationError."""
    with pytest.raises(WebhookVerificationError):
        call()


class TestStandardWebhookProperties:
    """Replicate deliveries: signing and verifying agree; any tampering is refused."""

    @PROPERTY
    @given(
        secret=secrets_,
        msg_id=header_text,
        timestamp=timestamps,
        tolerance=st.integers(0, 10**6),
        data=st.data(),
        body=bodies,
    )
    def test_accepts_within_tolerance_refuses_beyond(
        self,
        secret: str,
        msg_id: str,
        timestamp: int,
        tolerance: int,
        data: st.DataObject,
        body: bytes,
    ) -> None:
        """A signed delivery passes within +-tolerance of now (bounds included), fails past it."""
        headers = standard_headers(
            msg_id, str(timestamp), sign_standard_webhook(secret, msg_id, timestamp, body)
        )
        skew = data.draw(st.integers(-tolerance, tolerance), label="skew")
        assert (
            verify_standard_webhook(
                secret, headers, body, now=timestamp + skew, tolerance=tolerance
            )
            == msg_id
        )
        beyond = data.draw(st.integers(tolerance + 1, tolerance + 10**9), label="beyond")
        sign = data.draw(st.sampled_from([-1, 1]), label="sign")
        with pytest.raises(WebhookVerificationError, match=r"older than|in the future"):
            verify_standard_webhook(
                secret, headers, body, now=timestamp + sign * beyond, tolerance=tolerance
            )

    @PROPERTY
    @given(secret=secrets_, msg_id=header_text, timestamp=timestamps, body=bodies, data=st.data())
    def test_any_changed_part_is_refused(
        self, secret: str, msg_id: str, timestamp: int, body: bytes, data: st.DataObject
    ) -> None:
        """One changed byte of the body, or character of the id, timestamp or signature, fails."""
        signature = sign_standard_webhook(secret, msg_id, timestamp, body)
        ts = str(timestamp)
        part = data.draw(st.sampled_from(["body", "id", "timestamp", "signature"]), label="part")
        if part == "body":
            if not body:
                body_changed = b"\x00"
            else:
                i = data.draw(st.integers(0, len(body) - 1), label="index")
                delta = data.draw(st.integers(1, 255), label="delta")
                body_changed = body[:i] + bytes([(body[i] + delta) % 256]) + body[i + 1 :]
            # math.inf: the time window must not be what refuses it.
            refused(
                lambda: verify_standard_webhook(
                    secret,
                    standard_headers(msg_id, ts, signature),
                    body_changed,
                    now=0,
                    tolerance=math.inf,
                )
            )
            return
        text = {"id": msg_id, "timestamp": ts, "signature": signature}[part]
        i = data.draw(st.integers(0, len(text) - 1), label="index")
        alphabet = {"timestamp": string.digits + " x-", "signature": B64 + ",= v"}.get(part)
        changed = replace_char(text, i, other_char(data, text[i], alphabet))
        values = {"id": msg_id, "timestamp": ts, "signature": signature, part: changed}
        headers = standard_headers(values["id"], values["timestamp"], values["signature"])
        try:
            verify_standard_webhook(secret, headers, body, now=0, tolerance=math.inf)
        except WebhookVerificationError:
            return
        # The one way through: base64's last character has spare bits, so a second spelling
        # of the same MAC decodes to the same bytes. Anything else passing is a bug.
        assert part == "signature"
        assert changed.startswith("v1,")
        assert base64.b64decode(changed[3:]) == base64.b64decode(signature[3:])

    @PROPERTY
    @given(
        secret=secrets_,
        timestamp=timestamps,
        body=bodies,
        others=st.lists(
            st.one_of(
                st.binary(min_size=32, max_size=32).map(
                    lambda b: "v1," + base64.b64encode(b).decode()
                ),
                st.binary(min_size=1, max_size=64).map(
                    lambda b: "v1a," + base64.b64encode(b).decode()
                ),
                st.text(alphabet=B64 + ",=", min_size=1, max_size=20),
            ),
            max_size=5,
        ),
        data=st.data(),
    )
    def test_one_valid_signature_among_several(
        self, secret: str, timestamp: int, body: bytes, others: list[str], data: st.DataObject
    ) -> None:
        """Several entries (rotation, other versions, junk) pass iff one is the valid one."""
        valid = sign_standard_webhook(secret, "msg_1", timestamp, body)
        where = data.draw(st.integers(0, len(others)), label="where")
        with_valid = [*others[:where], valid, *others[where:]]
        now = float(timestamp)
        headers = standard_headers("msg_1", str(timestamp), " ".join(with_valid))
        assert verify_standard_webhook(secret, headers, body, now=now) == "msg_1"
        if others:
            without = standard_headers("msg_1", str(timestamp), " ".join(others))
            refused(lambda: verify_standard_webhook(secret, without, body, now=now))

    @GARBAGE
    @given(
        secret=secrets_ | st.text(max_size=20),
        overrides=st.dictionaries(
            st.sampled_from(["webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE"])
            | st.text(max_size=20),
            st.text(max_size=60),
            max_size=5,
        ),
        drop=st.sets(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"])),
        body=bodies,
        now=finite,
        tolerance=st.floats(min_value=0, allow_nan=False),
    )
    def test_header_garbage_raises_only_verification_errors(
        self,
        secret: str,
        overrides: dict[str, str],
        drop: set[str],
        body: bytes,
        now: float,
        tolerance: float,
    ) -> None:
        """Any headers, secret and clock: a verification error, never another exception."""
        headers = standard_headers(
            "msg_1",
            "1767225600",
            sign_standard_webhook(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1767225600, body
            ),
        )
        for name in drop:
            del headers[name]
        headers.update(overrides)
        # Anything but WebhookVerificationError escapes and fails the test.
        with contextlib.suppress(WebhookVerificationError):
            verify_standard_webhook(secret, headers, body, now=now, tolerance=tolerance)


# --- fal (Ed25519 over a JWKS) -----------------------------------------------------------

seeds32 = st.binary(min_size=32, max_size=32)


def jwk(seed: bytes) -> dict[str, str]:
    """The OKP JWK (unpadded base64url ``x``) of the key made from ``seed``."""
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).decode().rstrip("=")}


def fal_sign(seed: bytes, request_id: str, user_id: str, timestamp: str, body: bytes) -> str:
    """Sign as fal documents it: Ed25519 over id, user, timestamp, sha256 hex, hex-encoded."""
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()])
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message.encode()).hex()


def fal_headers(request_id: str, user_id: str, timestamp: str, signature: str) -> dict[str, str]:
    """fal's four webhook headers, spelt as fal sends them."""
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": timestamp,
        "X-Fal-Webhook-Signature": signature,
    }


class TestFalWebhookProperties:
    """fal deliveries: signed ones pass under any published key; tampering is refused."""

    @PROPERTY
    @given(
        seed=seeds32,
        others=st.lists(seeds32, max_size=3),
        request_id=header_text,
        user_id=header_text,
        timestamp=timestamps,
        tolerance=st.integers(0, 10**6),
        body=bodies,
        data=st.data(),
    )
    def test_accepts_under_any_key_within_tolerance(
        self,
        seed: bytes,
        others: list[bytes],
        request_id: str,
        user_id: str,
        timestamp: int,
        tolerance: int,
        body: bytes,
        data: st.DataObject,
    ) -> None:
        """Signed by one key of the JWKS and timely it passes; without that key or late, not."""
        others = [o for o in others if o != seed]
        ts = str(timestamp)
        headers = fal_headers(
            request_id, user_id, ts, fal_sign(seed, request_id, user_id, ts, body)
        )
        where = data.draw(st.integers(0, len(others)), label="where")
        keys = [jwk(o) for o in others]
        jwks = {"keys": [*keys[:where], jwk(seed), *keys[where:]]}
        skew = data.draw(st.integers(-tolerance, tolerance), label="skew")
        verified = verify_fal_webhook(
            headers, body, jwks=jwks, now=timestamp + skew, tolerance=tolerance
        )
        assert verified == request_id
        if keys:
            with pytest.raises(WebhookVerificationError, match="no JWKS key"):
                verify_fal_webhook(headers, body, jwks={"keys": keys}, now=timestamp)
        late = timestamp + data.draw(st.sampled_from([-1, 1])) * (
            tolerance + data.draw(st.integers(1, 10**9))
        )
        with pytest.raises(WebhookVerificationError, match=r"older than|in the future"):
            verify_fal_webhook(headers, body, jwks=jwks, now=late, tolerance=tolerance)

    @PROPERTY
    @given(
        seed=seeds32,
        request_id=header_text,
        user_id=header_text,
        timestamp=timestamps,
        body=bodies,
        data=st.data(),
    )
    def test_any_changed_part_is_refused(
        self,
        seed: bytes,
        request_id: str,
        user_id: str,
        timestamp: int,
        body: bytes,
        data: st.DataObject,
    ) -> None:
        """One changed byte of the body or character of any signed header fails."""
        ts = str(timestamp)
        values = {
            "request_id": request_id,
            "user_id": user_id,
            "timestamp": ts,
            "signature": fal_sign(seed, request_id, user_id, ts, body),
        }
        jwks = {"keys": [jwk(seed)]}
        part = data.draw(st.sampled_from(["body", *values]), label="part")
        if part == "body":
            if body:
                i = data.draw(st.integers(0, len(body) - 1), label="index")
                body = (
                    body[:i]
                    + bytes([(body[i] + data.draw(st.integers(1, 255))) % 256])
                    + body[i + 1 :]
                )
            else:
                body = b" "
        else:
            text = values[part]
            i = data.draw(st.integers(0, len(text) - 1), label="index")
            alphabet = {
                "timestamp": string.digits + " x-",
                "signature": string.hexdigits + "g ",
            }.get(part)
            old = text[i]
            # Hex is read in either case (documented), so a case change is the same signature.
            char = data.draw(
                (
                    st.sampled_from(alphabet)
                    if alphabet
                    else st.characters(exclude_categories=("Cs",))
                ).filter(lambda c: c.lower() != old.lower() if part == "signature" else c != old),
                label="char",
            )
            values[part] = replace_char(text, i, char)
        headers = fal_headers(
            values["request_id"], values["user_id"], values["timestamp"], values["signature"]
        )
        refused(lambda: verify_fal_webhook(headers, body, jwks=jwks, now=0, tolerance=math.inf))

    @GARBAGE
    @given(
        overrides=st.dictionaries(
            st.sampled_from(
                [
                    "x-fal-webhook-request-id",
                    "X-Fal-Webhook-User-Id",
                    "X-FAL-WEBHOOK-TIMESTAMP",
                    "X-Fal-Webhook-Signature",
                ]
            )
            | st.text(max_size=20),
            st.text(max_size=140) | st.text(alphabet=string.hexdigits, min_size=126, max_size=130),
            max_size=5,
        ),
        jwks=st.fixed_dictionaries(
            {},
            optional={
                "keys": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "kty": st.sampled_from(["OKP", "RSA", ""]) | st.integers(),
                            "crv": st.sampled_from(["Ed25519", "X25519"]) | st.none(),
                            "x": st.text(max_size=50)
                            | st.integers()
                            | seeds32.map(lambda s: jwk(s)["x"]),
                        },
                    )
                    | st.text(max_size=5)
                    | st.integers(),
                    max_size=3,
                )
                | st.text(max_size=5)
                | st.none()
            },
        ),
        body=bodies,
        now=finite,
        tolerance=st.floats(min_value=0, allow_nan=False),
    )
    def test_garbage_raises_only_verification_errors(
        self,
        overrides: dict[str, str],
        jwks: dict[str, Any],
        body: bytes,
        now: float,
        tolerance: float,
    ) -> None:
        """Any headers, JWKS and clock: a verification error, never another exception."""
        seed = bytes(32)
        headers = fal_headers(
            "req", "user", "1767225600", fal_sign(seed, "req", "user", "1767225600", body)
        )
        headers.update(overrides)
        with contextlib.suppress(WebhookVerificationError):
            verify_fal_webhook(headers, body, jwks=jwks, now=now, tolerance=tolerance)
