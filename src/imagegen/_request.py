"""What to draw: :class:`ImageRequest`, validated on construction before anything is sent."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ._errors import InvalidRequest
from ._inputs import InputImage, input_image, input_images
from ._shape import (
    MAX_SIDE,
    MIN_SIDE,
    RESOLUTIONS,
    SIDE_STEP,
    check_aspect_ratio,
    check_resolution,
    parse_aspect_ratio,
    resolution_name,
    size_for,
)

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "ImageRequest",
    "check_experiment_key",
    "request_from",
]

MAX_PROMPT = 4000
MAX_SEED = 2**32 - 1
MAX_IMAGES = 10  # n: images one generation may make
#: The portable safety levels: each vendor's strictest setting, or its most permissive.
SAFETY_LEVELS = ("strict", "relaxed")
MAX_METADATA_BYTES = 2048
FORMATS = ("png", "jpeg", "webp")
_FORMAT_ALIASES = {"jpg": "jpeg"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def _is_int(value: object) -> bool:
    # bool is an int subclass; True is no width.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_text(field: str, value: object, *, required: bool) -> None:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string, not {type(value).__name__}", field=field)
    if required and not value:
        raise InvalidRequest(f"{field} must not be empty or only whitespace", field=field)
    if len(value) > MAX_PROMPT:
        raise InvalidRequest(
            f"{field} must be at most {MAX_PROMPT} characters (got {len(value)})", field=field
        )
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" and char not in "\n\t":
            raise InvalidRequest(
                f"{field} must not contain control characters (found U+{ord(char):04X}); "
                "only newline and tab are allowed",
                field=field,
            )
        if category == "Cs":
            raise InvalidRequest(_surrogate(field, char), field=field)


def _surrogate(field: str, char: str) -> str:
    # A lone surrogate (from JSON's "\ud800") cannot be encoded: refuse it here rather
    # than fail deep inside a provider or the placeholder.
    return f"{field} must be valid Unicode text (found a lone surrogate U+{ord(char):04X})"


def surrogate_problem(text: str, field: str) -> str | None:
    """Why ``text`` cannot be ``field`` when it holds a lone surrogate (which no encoder
    takes: not the HTTP API, the log nor a backend), or None."""
    char = next((c for c in text if unicodedata.category(c) == "Cs"), None)
    return None if char is None else _surrogate(field, char)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _strip_optional(value: object) -> object:
    value = _strip(value)
    return None if value == "" else value


def _validate_prompt(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_text(attribute.name, value, required=True)


def _validate_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_text(attribute.name, value, required=False)


def _validate_side(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = attribute.name
    if not _is_int(value):
        raise InvalidRequest(f"{name} must be an integer, not {type(value).__name__}", field=name)
    assert isinstance(value, int)  # noqa: S101 - narrowing for the type checker
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise InvalidRequest(
            f"{name} must be between {MIN_SIDE} and {MAX_SIDE} pixels (got {value})", field=name
        )
    if value % SIDE_STEP:
        raise InvalidRequest(f"{name} must be a multiple of {SIDE_STEP} (got {value})", field=name)


def _validate_seed(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not _is_int(value):
        raise InvalidRequest(
            f"seed must be an integer or None, not {type(value).__name__}", field=attribute.name
        )
    assert isinstance(value, int)  # noqa: S101 - narrowing for the type checker
    if not 0 <= value <= MAX_SEED:
        raise InvalidRequest(f"seed must be between 0 and {MAX_SEED} (got {value})", field="seed")


def _side_default(index: int) -> Any:
    """The default width (0) or height (1): from ``aspect_ratio`` and ``resolution``."""

    def default(request: ImageRequest) -> int:
        # Defaults are drawn before the validators run: a bad tier is refused there.
        tier = request.resolution if request.resolution in RESOLUTIONS else None
        return size_for(parse_aspect_ratio(request.aspect_ratio), tier)[index]

    return attrs.Factory(default, takes_self=True)


def _validate_aspect(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_aspect_ratio(value, attribute.name)


def _validate_resolution(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_resolution(value, attribute.name)


def _validate_n(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_IMAGES:
        raise InvalidRequest(
            f"n must be a whole number from 1 to {MAX_IMAGES} (got {value!r})",
            field=attribute.name,
        )


def _validate_safety(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and value not in SAFETY_LEVELS:
        raise InvalidRequest(
            f"safety must be one of {', '.join(SAFETY_LEVELS)}, or None (got {value!r})",
            field=attribute.name,
        )


def _convert_mask(value: object) -> InputImage | None:
    return None if value is None else input_image(value, "mask")


def _convert_format(value: object) -> object:
    if isinstance(value, str):
        value = value.strip().lower()
        return _FORMAT_ALIASES.get(value, value)
    return value


def _validate_format(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in FORMATS:
        raise InvalidRequest(
            f"output_format must be one of png, jpeg (or jpg), webp (got {value!r})",
            field=attribute.name,
        )


def frozen_mapping(value: object) -> object:
    """A mapping as a read-only copy (an attrs converter); anything else as it is, for
    the validator to name."""
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value


def _validate_metadata(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = attribute.name
    if not isinstance(value, Mapping):
        raise InvalidRequest("metadata must be a mapping of str to str", field=name)
    total = 0
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidRequest(
                f"metadata must map str to str (entry {key!r}: {type(item).__name__})", field=name
            )
        problem = surrogate_problem(key + item, name)
        if problem is not None:
            raise InvalidRequest(problem, field=name)
        total += len(key.encode()) + len(item.encode())
    if total > MAX_METADATA_BYTES:
        raise InvalidRequest(
            f"metadata must be at most {MAX_METADATA_BYTES} bytes in all, keys and values "
            f"as UTF-8 (got {total})",
            field=name,
        )


def _freeze_options(value: object) -> object:
    if isinstance(value, Mapping):
        return MappingProxyType(
            {
                k: MappingProxyType(dict(v)) if isinstance(v, Mapping) else v
                for k, v in value.items()
            }
        )
    return value


def _validate_options(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = attribute.name
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        raise InvalidRequest(
            "provider_options must map a provider name to a mapping of that vendor's fields",
            field=name,
        )


@attrs.frozen(kw_only=True, hash=False)
class ImageRequest:
    """What to draw. Validated on construction: a bad value raises
    :class:`InvalidRequest` naming the field, before anything is sent.

    Args:
        prompt: 1 to 4000 characters after trimming; newline and tab allowed, other
            control characters refused.
        negative_prompt: What to avoid, for providers that take it; same rules.
        aspect_ratio: ``"W:H"`` (``"16:9"``), 1:4 to 4:1, instead of ``width`` and
            ``height``: the size becomes about a megapixel of that shape (16:9 is
            1408x792, exactly 16:9), and providers that take a ratio get the ratio
            itself. Giving
            both it and a width or height that differs is refused.
        resolution: ``"1K"``, ``"2K"`` or ``"4K"`` (``"2k"`` is read as ``"2K"``):
            about 1, 4 or 16 megapixels in the shape ``aspect_ratio`` asks for
            (square without one), the long side at most 4096; with the same rule
            against a width or height that differs.
        width: Pixels, 64 to 4096, a multiple of 8.
        height: Pixels, 64 to 4096, a multiple of 8.
        seed: 0 to 2**32-1, or None for the provider's choice.
        images: Images to start from (editing, image-to-image, references), each
            bytes, an https URL, a ``data:image/...;base64,`` URI or an
            :class:`InputImage`; at most 16. Only providers that take input images
            are called (the others are skipped, their breakers untouched).
        mask: Where to edit (transparent pixels), in the same forms; needs ``images``.
        safety: ``"strict"`` or ``"relaxed"``: set on each vendor's own safety control
            (OpenAI's ``moderation``, fal's and Replicate's safety checker, Unsplash's
            ``content_filter``); None leaves each vendor's default. A vendor without
            such a control warns (``ImageResult.warnings``).
        n: How many images, 1 to 10: each made by its own provider call, all at
            once, under the one deadline (``ImageResult.images``); with a ``seed``,
            image ``i`` is drawn with ``seed + i``.
        output_format: ``"png"``, ``"jpeg"`` (``"jpg"`` is read as jpeg) or ``"webp"``.
        metadata: str to str, at most 2 KB in all; stored with the record.
        provider_options: Per provider name, extra vendor fields passed through as is.
    """

    prompt: str = attrs.field(converter=_strip, validator=_validate_prompt)
    negative_prompt: str | None = attrs.field(
        default=None, converter=_strip_optional, validator=_validate_negative
    )
    # Before width and height: their defaults are read from it.
    aspect_ratio: str | None = attrs.field(
        default=None, converter=_strip_optional, validator=_validate_aspect
    )
    resolution: str | None = attrs.field(
        default=None, converter=resolution_name, validator=_validate_resolution
    )
    width: int = attrs.field(default=_side_default(0), validator=_validate_side)
    height: int = attrs.field(default=_side_default(1), validator=_validate_side)
    seed: int | None = attrs.field(default=None, validator=_validate_seed)
    n: int = attrs.field(default=1, validator=_validate_n)
    images: tuple[InputImage, ...] = attrs.field(default=(), converter=input_images)
    mask: InputImage | None = attrs.field(default=None, converter=_convert_mask)
    safety: str | None = attrs.field(default=None, validator=_validate_safety)
    output_format: str = attrs.field(
        default="png", converter=_convert_format, validator=_validate_format
    )
    metadata: Mapping[str, str] = attrs.field(
        factory=dict, converter=frozen_mapping, validator=_validate_metadata
    )
    provider_options: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, converter=_freeze_options, validator=_validate_options
    )

    def __attrs_post_init__(self) -> None:
        if self.mask is not None and not self.images:
            raise InvalidRequest("mask needs an image to edit: give images too", field="mask")
        ratio = parse_aspect_ratio(self.aspect_ratio)
        if ratio is None and self.resolution is None:
            return
        if (self.width, self.height) != size_for(ratio, self.resolution):
            field = "aspect_ratio" if ratio is not None else "resolution"
            raise InvalidRequest(
                f"{field} is exclusive with width and height: give the shape, or the size "
                f"(got {field}={getattr(self, field)!r}, {self.width}x{self.height})",
                field=field,
            )

    @property
    def content_type(self) -> str:
        """The MIME type matching ``output_format``."""
        return CONTENT_TYPES[self.output_format]

    def options_for(self, provider: str) -> Mapping[str, Any]:
        """The ``provider_options`` entry for one provider (empty when none)."""
        return self.provider_options.get(provider, MappingProxyType({}))

    def summary(self) -> dict[str, Any]:
        """What a record keeps of the request: sizes, format, seed and a prompt preview."""
        preview = self.prompt if len(self.prompt) <= 200 else self.prompt[:199] + "…"
        summary: dict[str, Any] = {
            "prompt": preview,
            "width": self.width,
            "height": self.height,
            "seed": self.seed,
            "output_format": self.output_format,
            "metadata": dict(self.metadata),
        }
        if self.aspect_ratio is not None:
            summary["aspect_ratio"] = self.aspect_ratio
        if self.resolution is not None:
            summary["resolution"] = self.resolution
        if self.n != 1:
            summary["n"] = self.n
        if self.safety is not None:
            summary["safety"] = self.safety
        if self.images:  # how many, never the bytes
            summary["images"] = len(self.images)
            summary["mask"] = self.mask is not None
        return summary


_REQUEST_FIELDS = frozenset(a.name for a in attrs.fields(ImageRequest))
MAX_EXPERIMENT_KEY = 256


def request_from(request: ImageRequest | str, fields: Mapping[str, Any]) -> ImageRequest:
    """``request`` itself, or an ImageRequest built from a prompt and keyword fields.

    Raises:
        InvalidRequest: An unknown field, fields beside an ImageRequest, or a bad value.
    """
    if isinstance(request, ImageRequest):
        if fields:
            field = next(iter(fields))
            raise InvalidRequest(
                "pass either an ImageRequest or a prompt with fields, not both", field=field
            )
        return request
    for field in fields:
        if field not in _REQUEST_FIELDS:
            raise InvalidRequest(f"{field} is not an ImageRequest field", field=field)
    return ImageRequest(prompt=request, **fields)


def check_experiment_key(key: object) -> str | None:
    """An experiment key is a short string (a user id, a session id), or None.

    Raises:
        InvalidRequest: It is not (a lone surrogate, which no encoder takes, included).
    """
    if key is None or (
        isinstance(key, str)
        and 0 < len(key) <= MAX_EXPERIMENT_KEY
        and surrogate_problem(key, "experiment_key") is None
    ):
        return key
    raise InvalidRequest(
        f"experiment_key must be a string of 1 to {MAX_EXPERIMENT_KEY} characters",
        field="experiment_key",
    )


def finite_number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not a number (bools are not),
    not finite, or an int too large for a float (``10**400``)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def is_price(value: object) -> bool:
    """A finite number of USD >= 0 (not a bool)."""
    number = finite_number(value)
    return number is not None and number >= 0


def whole_number(value: object) -> int | None:
    """``value`` when it is an int (not a bool) a float can hold, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and finite_number(value) is not None:
        return value
    return None


def seconds(value: object) -> float | None:
    """``value`` as a finite number of seconds > 0, or None when it is not one
    (an int too large for a float, ``10**400``, would overflow the deadline arithmetic)."""
    number = finite_number(value)
    return number if number is not None and number > 0 else None


def check_timeout(value: object) -> float | None:
    """A per-call ``timeout``: None, or a finite number of seconds > 0.

    Raises:
        InvalidRequest: It is neither.
    """
    if value is None:
        return None
    number = seconds(value)
    if number is None:
        raise InvalidRequest(
            f"timeout must be a finite number of seconds > 0 (got {value!r})", field="timeout"
        )
    return number
