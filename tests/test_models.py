"""ImageRequest validation, and the dict forms of Attempt, Record and ImageResult."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegen import (
    AllProvidersFailed,
    Attempt,
    ContentRejected,
    ImageRequest,
    ImageResult,
    InvalidRequest,
    ProviderRateLimited,
    ProviderTimeout,
    Record,
)

PROMPT = "a red fox in the snow"
CREATED = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
FINISHED = CREATED + dt.timedelta(seconds=2.5)


def refused(field: str, rule: str, **fields: Any) -> InvalidRequest:
    """Build a request expected to fail on ``field`` with a message matching ``rule``."""
    fields.setdefault("prompt", PROMPT)
    with pytest.raises(InvalidRequest, match=rule) as info:
        ImageRequest(**fields)
    assert info.value.field == field
    assert field in str(info.value)
    return info.value


def roundtrip_json(data: dict[str, Any]) -> Any:
    """What a state backend gives back after storing ``data`` as JSON."""
    return json.loads(json.dumps(data))


class TestImageRequestBasics:
    def test_defaults(self) -> None:
        """A prompt alone gives a 1024x1024 PNG request with no seed and empty maps."""
        request = ImageRequest(prompt=PROMPT)
        assert request.prompt == PROMPT
        assert request.negative_prompt is None
        assert (request.width, request.height, request.seed) == (1024, 1024, None)
        assert request.output_format == "png"
        assert request.content_type == "image/png"
        assert dict(request.metadata) == {}
        assert dict(request.provider_options) == {}

    def test_keyword_only(self) -> None:
        """ImageRequest refuses positional arguments."""
        with pytest.raises(TypeError):
            ImageRequest(PROMPT)  # type: ignore[misc]

    def test_frozen(self) -> None:
        """A constructed request cannot be changed in place."""
        request = ImageRequest(prompt=PROMPT)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            request.width = 64  # type: ignore[misc]

    def test_invalid_request_is_a_value_error(self) -> None:
        """InvalidRequest is caught by a plain ``except ValueError``."""
        with pytest.raises(ValueError, match="prompt"):
            ImageRequest(prompt="")

    def test_evolve_revalidates(self) -> None:
        """attrs.evolve runs the same validation as the constructor."""
        request = ImageRequest(prompt=PROMPT)
        with pytest.raises(InvalidRequest) as info:
            attrs.evolve(request, width=100)
        assert info.value.field == "width"

    def test_summary_truncates_long_prompts(self) -> None:
        """summary() keeps sizes, format and seed and cuts the prompt preview to 200 chars."""
        request = ImageRequest(prompt="x" * 300, width=512, height=256, seed=7, metadata={"a": "b"})
        summary = request.summary()
        assert summary["prompt"] == "x" * 199 + "…"
        assert len(summary["prompt"]) == 200
        assert summary | {"prompt": None} == {
            "prompt": None,
            "width": 512,
            "height": 256,
            "seed": 7,
            "output_format": "png",
            "metadata": {"a": "b"},
        }


class TestPrompt:
    @pytest.mark.parametrize(
        ("value", "rule"),
        [
            ("", "empty"),
            ("   \n\t  ", "empty"),
            ("a" * 4001, "at most 4000"),
            ("  " + "a" * 4001 + "  ", "at most 4000"),
            ("a\x00b", "control characters"),
            ("a\x1bb", "control characters"),
            ("a\x7fb", "control characters"),
            ("a\rb", "control characters"),
            ("a\x9bb", "control characters"),
            (None, "must be a string"),
            (42, "must be a string"),
            (b"a red fox", "must be a string"),
        ],
        ids=[
            "empty",
            "whitespace",
            "4001",
            "4001-padded",
            "nul",
            "esc",
            "del",
            "cr",
            "c1-csi",
            "none",
            "int",
            "bytes",
        ],
    )
    def test_refused(self, value: object, rule: str) -> None:
        """Empty, too long, control characters and non-strings are refused on ``prompt``."""
        refused("prompt", rule, prompt=value)

    @pytest.mark.parametrize(
        ("value", "stored"),
        [
            ("  a red fox \n", "a red fox"),
            ("a" * 4000, "a" * 4000),
            ("\t " + "b" * 4000 + " \n", "b" * 4000),
            ("x", "x"),
            ("line one\nline\ttwo", "line one\nline\ttwo"),
            ("renard roux 🦊 über 狐", "renard roux 🦊 über 狐"),
        ],
        ids=["trimmed", "4000", "4000-padded", "one-char", "newline-tab", "unicode"],
    )
    def test_accepted_and_trimmed(self, value: str, stored: str) -> None:
        """Valid prompts are stored trimmed; newline and tab inside are kept."""
        assert ImageRequest(prompt=value).prompt == stored

    @given(st.text())
    def test_any_text_constructs_or_is_refused_on_prompt(self, text: str) -> None:
        """Any text either constructs with the trimmed prompt or raises InvalidRequest on prompt."""
        stripped = text.strip()
        valid = 0 < len(stripped) <= 4000 and all(
            c in "\n\t" or unicodedata.category(c) != "Cc" for c in stripped
        )
        if valid:
            assert ImageRequest(prompt=text).prompt == stripped
        else:
            with pytest.raises(InvalidRequest) as info:
                ImageRequest(prompt=text)
            assert info.value.field == "prompt"


class TestNegativePrompt:
    @pytest.mark.parametrize("value", [None, "", "   ", "\n\t"])
    def test_empty_becomes_none(self, value: str | None) -> None:
        """A missing, empty or whitespace-only negative prompt is stored as None."""
        assert ImageRequest(prompt=PROMPT, negative_prompt=value).negative_prompt is None

    def test_trimmed(self) -> None:
        """A negative prompt is stored trimmed, keeping inner newlines."""
        request = ImageRequest(prompt=PROMPT, negative_prompt="  blurry\nlow quality  ")
        assert request.negative_prompt == "blurry\nlow quality"

    @pytest.mark.parametrize(
        ("value", "rule"),
        [
            ("a" * 4001, "at most 4000"),
            ("blurry\x00", "control characters"),
            ("\x1b[31mred", "control characters"),
            ("a\x7f", "control characters"),
            (5, "must be a string"),
        ],
        ids=["4001", "nul", "esc", "del", "int"],
    )
    def test_refused(self, value: object, rule: str) -> None:
        """The negative prompt follows the prompt's rules, on field ``negative_prompt``."""
        refused("negative_prompt", rule, negative_prompt=value)

    def test_max_length_accepted(self) -> None:
        """A 4000-character negative prompt is accepted."""
        assert ImageRequest(prompt=PROMPT, negative_prompt="n" * 4000).negative_prompt == "n" * 4000


SIDES = ("width", "height")


class TestSides:
    @pytest.mark.parametrize("field", SIDES)
    @pytest.mark.parametrize(
        ("value", "rule"),
        [
            (True, "integer"),
            (False, "integer"),
            (1024.0, "integer"),
            (64.5, "integer"),
            ("1024", "integer"),
            (None, "integer"),
            (63, "between 64 and 4096"),
            (4097, "between 64 and 4096"),
            (0, "between 64 and 4096"),
            (-1024, "between 64 and 4096"),
            (4104, "between 64 and 4096"),
            (100, "multiple of 8"),
            (65, "multiple of 8"),
            (4095, "multiple of 8"),
        ],
    )
    def test_refused(self, field: str, value: object, rule: str) -> None:
        """Non-ints (bool, float, str), out-of-range and non-multiples of 8 are refused."""
        refused(field, rule, **{field: value})

    @pytest.mark.parametrize("field", SIDES)
    @pytest.mark.parametrize("value", [64, 72, 1024, 4088, 4096])
    def test_accepted(self, field: str, value: int) -> None:
        """Multiples of 8 from 64 to 4096 inclusive are accepted and kept."""
        assert getattr(ImageRequest(prompt=PROMPT, **{field: value}), field) == value

    @given(
        width=st.integers(min_value=8, max_value=512).map(lambda n: n * 8),
        height=st.integers(min_value=8, max_value=512).map(lambda n: n * 8),
    )
    def test_any_valid_pair_constructs(self, width: int, height: int) -> None:
        """Every width/height pair of multiples of 8 in range constructs and keeps its values."""
        request = ImageRequest(prompt=PROMPT, width=width, height=height)
        assert (request.width, request.height) == (width, height)

    @given(st.one_of(st.integers(max_value=63), st.integers(min_value=4097)))
    def test_any_int_out_of_range_is_refused(self, width: int) -> None:
        """Every int outside 64..4096 is refused with field ``width``."""
        with pytest.raises(InvalidRequest) as info:
            ImageRequest(prompt=PROMPT, width=width)
        assert info.value.field == "width"


class TestSeed:
    @pytest.mark.parametrize("value", [None, 0, 1, 2**32 - 1])
    def test_accepted(self, value: int | None) -> None:
        """None and 0..2**32-1 are accepted and kept."""
        assert ImageRequest(prompt=PROMPT, seed=value).seed == value

    @pytest.mark.parametrize(
        ("value", "rule"),
        [
            (True, "integer"),
            (1.0, "integer"),
            ("7", "integer"),
            (-1, r"between 0 and 4294967295"),
            (2**32, r"between 0 and 4294967295"),
        ],
        ids=["bool", "float", "str", "minus-one", "2**32"],
    )
    def test_refused(self, value: object, rule: str) -> None:
        """A bool, a float, a string or an int out of 0..2**32-1 is refused on ``seed``."""
        refused("seed", rule, seed=value)


class TestOutputFormat:
    @pytest.mark.parametrize(
        ("value", "stored", "content_type"),
        [
            ("png", "png", "image/png"),
            ("PNG", "png", "image/png"),
            ("jpeg", "jpeg", "image/jpeg"),
            ("jpg", "jpeg", "image/jpeg"),
            ("JPG", "jpeg", "image/jpeg"),
            ("webp", "webp", "image/webp"),
            ("WebP", "webp", "image/webp"),
        ],
    )
    def test_accepted(self, value: str, stored: str, content_type: str) -> None:
        """png, jpeg and webp are accepted in any case; jpg is read as jpeg."""
        request = ImageRequest(prompt=PROMPT, output_format=value)
        assert request.output_format == stored
        assert request.content_type == content_type

    @pytest.mark.parametrize("value", ["gif", "bmp", "", "image/png", None, 3])
    def test_refused(self, value: object) -> None:
        """Any other format is refused on ``output_format``, listing the allowed ones."""
        refused("output_format", "one of png, jpeg", output_format=value)


class TestMetadata:
    @pytest.mark.parametrize(
        "metadata",
        [
            {"k": "v" * 2047},
            {"a" * 1024: "", "b" * 1024: ""},
            {"k": "é" * 1023 + "x"},
            {},
        ],
        ids=["2048-one-entry", "2048-keys-only", "2048-utf8", "empty"],
    )
    def test_at_most_2048_bytes_accepted(self, metadata: dict[str, str]) -> None:
        """Metadata totalling up to 2048 UTF-8 bytes (keys plus values) is accepted and kept."""
        assert dict(ImageRequest(prompt=PROMPT, metadata=metadata).metadata) == metadata

    @pytest.mark.parametrize(
        "metadata",
        [
            {"k": "v" * 2048},
            {"a" * 1024: "x", "b" * 1024: ""},
            {"k": "é" * 1024},
        ],
        ids=["2049-one-entry", "2049-keys-count", "2049-utf8-bytes-not-chars"],
    )
    def test_over_2048_bytes_refused(self, metadata: dict[str, str]) -> None:
        """Metadata over 2048 UTF-8 bytes is refused, counting bytes rather than characters."""
        refused("metadata", "at most 2048 bytes", metadata=metadata)

    @pytest.mark.parametrize(
        ("metadata", "rule"),
        [
            ({"k": 1}, "str to str"),
            ({"k": None}, "str to str"),
            ({1: "v"}, "str to str"),
            ([("k", "v")], "mapping of str to str"),
            (None, "mapping of str to str"),
        ],
        ids=["int-value", "none-value", "int-key", "list", "none"],
    )
    def test_wrong_types_refused(self, metadata: object, rule: str) -> None:
        """Metadata must be a mapping of str to str."""
        refused("metadata", rule, metadata=metadata)

    def test_immutable(self) -> None:
        """The stored metadata cannot be changed through the request."""
        request = ImageRequest(prompt=PROMPT, metadata={"k": "v"})
        with pytest.raises(TypeError):
            request.metadata["k"] = "x"  # type: ignore[index]

    def test_is_a_copy(self) -> None:
        """Changing the caller's dict afterwards does not change (or unvalidate) the request."""
        source = {"k": "v"}
        request = ImageRequest(prompt=PROMPT, metadata=source)
        source["k"] = "changed"
        source["big"] = "x" * 5000
        assert dict(request.metadata) == {"k": "v"}


class TestProviderOptions:
    def test_accepted_and_looked_up(self) -> None:
        """Options are kept per provider; options_for() gives an empty mapping for others."""
        request = ImageRequest(
            prompt=PROMPT, provider_options={"replicate": {"num_inference_steps": 4}}
        )
        assert dict(request.options_for("replicate")) == {"num_inference_steps": 4}
        assert dict(request.options_for("fal")) == {}

    @pytest.mark.parametrize(
        "options",
        [{"replicate": 4}, {"replicate": "steps=4"}, {"replicate": None}, {1: {}}, ["x"], None],
        ids=["int-value", "str-value", "none-value", "int-key", "list", "none"],
    )
    def test_refused(self, options: object) -> None:
        """provider_options must map a provider name (str) to a mapping."""
        refused("provider_options", "provider name to a mapping", provider_options=options)

    def test_immutable_copy(self) -> None:
        """Both levels are frozen copies: the caller's dicts can change without effect."""
        inner: dict[str, Any] = {"steps": 4}
        outer = {"fal": inner}
        request = ImageRequest(prompt=PROMPT, provider_options=outer)
        inner["steps"] = 50
        outer["other"] = {}
        assert dict(request.options_for("fal")) == {"steps": 4}
        assert set(request.provider_options) == {"fal"}
        with pytest.raises(TypeError):
            request.provider_options["fal"]["steps"] = 1  # type: ignore[index]


ERRORS = [
    None,
    ProviderTimeout("slow", provider="a"),
    ProviderRateLimited("slow down", provider="a", status=429, retry_after=2.5),
    ContentRejected("nsfw", provider="b", status=400),
    InvalidRequest("width must be a multiple of 8", field="width"),
]


def assert_same_error(back: object, original: object) -> None:
    """``back`` is the same class as ``original`` with the same message and fields."""
    if original is None:
        assert back is None
        return
    assert type(back) is type(original)
    assert str(back) == str(original)
    assert back.to_dict() == original.to_dict()  # type: ignore[attr-defined]


class TestAttempt:
    @pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
    def test_round_trip(self, error: Any) -> None:
        """Attempt.from_dict(to_dict()) through JSON keeps every field and the error's class."""
        attempt = Attempt(provider="a", outcome="error", error=error, elapsed=1.25, tries=3)
        data = attempt.to_dict()
        assert data["error"] == (None if error is None else error.to_dict())
        back = Attempt.from_dict(roundtrip_json(data))
        assert (back.provider, back.outcome, back.elapsed, back.tries) == ("a", "error", 1.25, 3)
        assert_same_error(back.error, error)

    def test_from_dict_defaults(self) -> None:
        """Missing elapsed, tries and error default to 0.0, 0 and None."""
        back = Attempt.from_dict({"provider": "a", "outcome": "skipped"})
        assert back == Attempt(provider="a", outcome="skipped", error=None, elapsed=0.0, tries=0)


def make_record(**changes: Any) -> Record:
    fields: dict[str, Any] = {
        "id": "gen-1",
        "status": "succeeded",
        "provider": "a",
        "request": ImageRequest(prompt=PROMPT, seed=3, metadata={"user": "u1"}).summary(),
        "key": "images/gen-1.png",
        "url": "https://cdn.example/images/gen-1.png",
        "attempts": (
            Attempt(provider="b", outcome="error", error=ERRORS[2], elapsed=0.5, tries=2),
            Attempt(provider="a", outcome="success", elapsed=1.5, tries=1),
        ),
        "error": None,
        "created_at": CREATED,
        "finished_at": FINISHED,
        "is_default": False,
    }
    return Record(**(fields | changes))


class TestRecord:
    @pytest.mark.parametrize(
        "changes",
        [
            {},
            {"status": "running", "provider": None, "key": None, "url": None, "attempts": ()},
            {"status": "running", "finished_at": None, "attempts": ()},
            {
                "status": "failed",
                "provider": None,
                "key": None,
                "url": None,
                "error": AllProvidersFailed("every provider failed", generation_id="gen-1"),
            },
            {"status": "succeeded", "provider": "default", "is_default": True},
        ],
        ids=["succeeded", "running", "no-finish", "failed", "default"],
    )
    def test_round_trip(self, changes: dict[str, Any]) -> None:
        """Record.from_dict(to_dict()) through JSON gives back every field, errors by class."""
        record = make_record(**changes)
        data = record.to_dict()
        assert data["created_at"] == CREATED.isoformat()
        back = Record.from_dict(roundtrip_json(data))
        assert back.to_dict() == data
        for name in ("id", "status", "provider", "key", "url", "created_at", "finished_at"):
            assert getattr(back, name) == getattr(record, name), name
        assert back.is_default is record.is_default
        assert dict(back.request) == dict(record.request)
        assert_same_error(back.error, record.error)
        assert len(back.attempts) == len(record.attempts)
        for got, want in zip(back.attempts, record.attempts, strict=True):
            assert (got.provider, got.outcome, got.elapsed, got.tries) == (
                want.provider,
                want.outcome,
                want.elapsed,
                want.tries,
            )
            assert_same_error(got.error, want.error)

    def test_times_keep_their_timezone(self) -> None:
        """Times come back timezone-aware and equal to the originals."""
        back = Record.from_dict(roundtrip_json(make_record().to_dict()))
        assert back.created_at.tzinfo is not None
        assert back.finished_at == FINISHED


def make_result(data: bytes | None = None) -> ImageResult:
    return ImageResult(
        id="gen-9",
        url=None,
        key=None,
        provider="placeholder",
        content_type="image/png",
        size=len(data or b""),
        width=64,
        height=64,
        sha256="0" * 64,
        elapsed=0.25,
        attempts=(
            Attempt(provider="a", outcome="error", error=ERRORS[1], elapsed=0.1, tries=1),
            Attempt(provider="placeholder", outcome="success", elapsed=0.15, tries=1),
        ),
        created_at=CREATED,
        data=data,
    )


class TestImageResult:
    def test_to_dict_leaves_data_out_and_uses_iso_times(self) -> None:
        """to_dict() has no ``data``, ISO 8601 times and JSON-ready attempts."""
        result = make_result(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
        data = result.to_dict()
        assert "data" not in data
        assert data["created_at"] == "2026-01-02T03:04:05.678000+00:00"
        assert dt.datetime.fromisoformat(data["created_at"]) == CREATED
        assert data["attempts"] == [a.to_dict() for a in result.attempts]
        assert data["attempts"][0]["error"]["kind"] == "ProviderTimeout"
        assert roundtrip_json(data) == data
        assert {k for k in data if k != "data"} == {
            f.name for f in attrs.fields(ImageResult) if f.name != "data"
        }

    def test_repr_does_not_dump_bytes(self) -> None:
        """The repr shows the byte count, not the bytes."""
        payload = b"SECRETPIXELS" * 1000
        text = repr(make_result(payload))
        assert f"<{len(payload)} bytes>" in text
        assert "SECRETPIXELS" not in text
        assert len(text) < 2000

    def test_repr_without_data(self) -> None:
        """Without data the repr says data=None."""
        assert "data=None" in repr(make_result(None))


class TestAspectRatio:
    @pytest.mark.parametrize(
        ("ratio", "size"),
        [
            ("1:1", (1024, 1024)),
            ("16:9", (1408, 792)),
            ("9:16", (792, 1408)),
            ("4:3", (1184, 888)),
            ("3:2", (1248, 832)),
            ("21:9", (1568, 672)),
            ("32:18", (1408, 792)),  # reduced first
            ("4:1", (2048, 512)),
            (" 16:9 ", (1408, 792)),
        ],
    )
    def test_the_size_has_exactly_the_shape(self, ratio: str, size: tuple[int, int]) -> None:
        """About a megapixel, sides multiples of 8, and exactly the ratio asked for."""
        request = ImageRequest(prompt="x", aspect_ratio=ratio)
        assert (request.width, request.height) == size
        w, h = (int(t) for t in ratio.strip().split(":"))
        assert request.width * h == request.height * w
        assert 0.6 < request.width * request.height / 2**20 < 1.1
        assert request.summary()["aspect_ratio"] == ratio.strip()

    def test_the_same_size_given_too_is_taken(self) -> None:
        request = ImageRequest(prompt="x", aspect_ratio="16:9", width=1408, height=792)
        assert (request.width, request.height) == (1408, 792)

    @pytest.mark.parametrize(
        ("fields", "rule"),
        [
            ({"aspect_ratio": "16:9", "width": 512}, "exclusive with width and height"),
            ({"aspect_ratio": "1:1", "height": 512}, "exclusive with width and height"),
            ({"aspect_ratio": "16x9"}, '"W:H" with whole numbers'),
            ({"aspect_ratio": "1.85:1"}, '"W:H" with whole numbers'),
            ({"aspect_ratio": "0:1"}, '"W:H" with whole numbers'),
            ({"aspect_ratio": "-1:1"}, '"W:H" with whole numbers'),
            ({"aspect_ratio": "\u0661:\u0662"}, '"W:H" with whole numbers'),
            ({"aspect_ratio": 16}, '"W:H" with whole numbers'),
            ({"aspect_ratio": "5:1"}, "between 1:4 and 4:1"),
            ({"aspect_ratio": "1:5"}, "between 1:4 and 4:1"),
            ({"aspect_ratio": "101:100"}, "at most 100 once reduced"),
        ],
    )
    def test_refused_naming_the_field(self, fields: dict[str, Any], rule: str) -> None:
        with pytest.raises(InvalidRequest, match=re.escape(rule)) as caught:
            ImageRequest(prompt="x", **fields)
        assert caught.value.field == "aspect_ratio"

    def test_absent_from_the_summary_when_not_given(self) -> None:
        assert "aspect_ratio" not in ImageRequest(prompt="x").summary()


class TestResolution:
    @pytest.mark.parametrize(
        ("fields", "size"),
        [
            ({"resolution": "1K"}, (1024, 1024)),
            ({"resolution": "2K"}, (2048, 2048)),
            ({"resolution": "4K"}, (4096, 4096)),
            ({"resolution": "2k"}, (2048, 2048)),  # read as 2K
            ({"resolution": " 4k "}, (4096, 4096)),
            ({"resolution": "1K", "aspect_ratio": "16:9"}, (1408, 792)),
            ({"resolution": "2K", "aspect_ratio": "16:9"}, (2688, 1512)),
            ({"resolution": "2K", "aspect_ratio": "3:2"}, (2520, 1680)),
            ({"resolution": "4K", "aspect_ratio": "16:9"}, (4096, 2304)),  # long side capped
            ({"resolution": "4K", "aspect_ratio": "9:16"}, (2304, 4096)),
            ({"resolution": "2K", "width": 2048, "height": 2048}, (2048, 2048)),
        ],
    )
    def test_a_tier_is_a_size(self, fields: dict[str, Any], size: tuple[int, int]) -> None:
        """About 1, 4 or 16 megapixels, in the shape asked for, no side past 4096."""
        request = ImageRequest(prompt="x", **fields)
        assert (request.width, request.height) == size
        assert request.resolution == fields["resolution"].strip().upper()
        assert request.summary()["resolution"] == request.resolution
        tier = {"1K": 1024, "2K": 2048, "4K": 4096}[request.resolution]
        assert request.width * request.height <= tier * tier * 1.1
        assert max(request.width, request.height) <= 4096

    @pytest.mark.parametrize(
        ("fields", "rule"),
        [
            ({"resolution": "8K"}, "one of 1K, 2K, 4K"),
            ({"resolution": 2048}, "one of 1K, 2K, 4K"),
            ({"resolution": "2K", "width": 1024}, "exclusive with width and height"),
            ({"resolution": "4K", "height": 512}, "exclusive with width and height"),
        ],
    )
    def test_refused_naming_the_field(self, fields: dict[str, Any], rule: str) -> None:
        with pytest.raises(InvalidRequest, match=re.escape(rule)) as caught:
            ImageRequest(prompt="x", **fields)
        assert caught.value.field == "resolution"

    def test_a_ratio_and_a_tier_that_disagree_with_the_size_name_the_ratio(self) -> None:
        with pytest.raises(InvalidRequest) as caught:
            ImageRequest(prompt="x", resolution="2K", aspect_ratio="16:9", width=1408, height=792)
        assert caught.value.field == "aspect_ratio"

    def test_absent_from_the_summary_when_not_given(self) -> None:
        assert "resolution" not in ImageRequest(prompt="x").summary()
