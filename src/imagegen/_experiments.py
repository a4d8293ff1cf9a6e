"""Experiments: named variants of the settings, shared out by weight, compared on live traffic."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._errors import InvalidConfig
from ._request import frozen_mapping

__all__ = ["Experiment", "Variant"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME_RULE = "1-64 of letters, digits, '_' and '-'"


def _check_name(what: str) -> Any:
    def check(_: object, __: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not _NAME.match(value):
            raise InvalidConfig(f"{what} name must be {_NAME_RULE} (got {value!r})", field=what)

    return check


def _check_weight(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidConfig(f"variant weight must be a number > 0 (got {value!r})", field="weight")


def _check_settings(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidConfig(
            "variant settings must map configure() names to values", field="settings"
        )


@attrs.frozen
class Variant:
    """One arm of an experiment: a name, a weight and the settings it changes.

    ``settings`` takes what :meth:`ImageGenerator.configure` takes (``strategy``,
    ``retry``, ``breaker``, ``timeout``, ``default_image``, ``enabled``,
    ``priority``), applied on top of the generator's current settings for the
    generations assigned to it. An empty ``settings`` is the control.

    Example::

        Variant("hedge", weight=1, settings={"strategy": Hedge(delay=0.5)})
    """

    name: str = attrs.field(validator=_check_name("variant"))
    weight: float = attrs.field(default=1.0, validator=_check_weight)
    settings: Mapping[str, Any] = attrs.field(
        factory=dict, converter=frozen_mapping, validator=_check_settings
    )


def _check_variants(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not value:
        raise InvalidConfig("an experiment needs at least one variant", field="variants")
    if not all(isinstance(v, Variant) for v in value):
        raise InvalidConfig("variants must be Variant values", field="variants")
    names = [v.name for v in value]
    if len(set(names)) != len(names):
        raise InvalidConfig(f"variant names must be unique (got {names})", field="variants")


def _tuple(value: object) -> object:
    return tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


@attrs.frozen
class Experiment:
    """Named variants of the settings; each generation runs one, chosen by weight.

    With a key (``generate(..., experiment_key=user_id)``) the choice is sticky:
    the same key always gets the same variant, in every process, as long as the
    variants and weights stay the same. Without one, each generation draws anew.
    Records and results name the variant, and :meth:`ImageGenerator.variant_stats`
    counts outcomes, calls and latency per variant.

    Example::

        Experiment("hedge-vs-race", [
            Variant("race", settings={"strategy": Race()}),
            Variant("hedge", settings={"strategy": Hedge(delay=0.5)}),
        ])
    """

    name: str = attrs.field(validator=_check_name("experiment"))
    variants: tuple[Variant, ...] = attrs.field(converter=_tuple, validator=_check_variants)

    def assign(self, key: str | None = None) -> Variant:
        """The variant for ``key`` (sticky), or a weighted random draw without one."""
        if key is None:
            point = random.random()
        else:
            digest = hashlib.sha256(f"{self.name}\0{key}".encode()).digest()
            point = int.from_bytes(digest[:8], "big") / 2**64
        edges = list(itertools.accumulate(v.weight for v in self.variants))
        # min(): float rounding may leave point * total a hair past the last edge.
        index = bisect.bisect_right(edges, point * edges[-1])
        return self.variants[min(index, len(self.variants) - 1)]
