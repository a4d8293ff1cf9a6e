"""The run-time settings a generation runs with: one frozen :class:`Config`, swapped whole.

``configure()`` changes go through :func:`apply_changes`, which validates the
result as a whole, so a bad change changes nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ._default_image import DefaultImage, is_default_image
from ._errors import InvalidConfig, shown
from ._request import seconds
from .providers import Provider
from .strategies import CircuitBreaker, Retry, Selection

__all__ = ["NAMESPACE_RULE", "PROVIDER_NAME_RULE", "Config", "apply_changes"]

PROVIDER_NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NAMESPACE_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
#: What configure() takes besides enabled and priority.
_VALUES = ("strategy", "retry", "breaker", "timeout", "default_image")


def _check_providers(_: object, __: attrs.Attribute[Any], providers: tuple[Provider, ...]) -> None:
    if not providers:
        raise InvalidConfig("providers must name at least one Provider", field="providers")
    seen: set[str] = set()
    for provider in providers:
        if not isinstance(provider, Provider):
            raise InvalidConfig(
                f"providers must be Provider instances, not {type(provider).__name__}",
                field="providers",
            )
        name = provider.name
        if not isinstance(name, str) or not PROVIDER_NAME_RULE.match(name) or name == "default":
            raise InvalidConfig(
                f"provider name {name!r} must be 1-64 of letters, digits, '_', '.', '-' "
                "(and not 'default')",
                field="providers",
            )
        if name in seen:
            raise InvalidConfig(
                f"two providers are named {name!r}; names must be unique", field="providers"
            )
        seen.add(name)
        if (
            not isinstance(provider.tier, int)
            or isinstance(provider.tier, bool)
            or provider.tier < 0
        ):
            raise InvalidConfig(f"{name}.tier must be an integer >= 0", field="providers")
        timeout = provider.timeout
        if timeout is not None and seconds(timeout) is None:
            raise InvalidConfig(f"{name}.timeout must be None or seconds > 0", field="providers")


def _check_instance(
    kind: type, label: str
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise InvalidConfig(
                f"{attribute.name} must be {label}, not {value!r}", field=attribute.name
            )

    return check


def _check_timeout(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if seconds(value) is None:
        raise InvalidConfig(
            f"timeout must be a finite number of seconds > 0 (got {shown(value)})",
            field=attribute.name,
        )


def _check_default(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_default_image(value):
        raise InvalidConfig(
            "default_image must be DEFAULT, None, image bytes or a Provider", field=attribute.name
        )
    if isinstance(value, bytes) and not value:
        raise InvalidConfig("default_image bytes must not be empty", field=attribute.name)


@attrs.frozen(kw_only=True)
class Config:
    """Everything ``configure()`` may change, swapped whole so a change is atomic."""

    providers: tuple[Provider, ...] = attrs.field(validator=_check_providers)
    enabled: frozenset[str]
    strategy: Selection = attrs.field(
        validator=_check_instance(Selection, "a Selection (Race(), Hedge(), Fallback()...)")
    )
    retry: Retry = attrs.field(validator=_check_instance(Retry, "a Retry"))
    breaker: CircuitBreaker = attrs.field(
        validator=_check_instance(CircuitBreaker, "a CircuitBreaker")
    )
    timeout: float = attrs.field(validator=_check_timeout)
    default_image: DefaultImage = attrs.field(validator=_check_default)

    def tiers(self) -> list[list[Provider]]:
        """Enabled providers grouped by tier, lowest first, in priority order inside."""
        groups: dict[int, list[Provider]] = defaultdict(list)
        for provider in self.providers:
            if provider.name in self.enabled:
                groups[provider.tier].append(provider)
        return [groups[tier] for tier in sorted(groups)]


def _known(names: Mapping[str, Provider]) -> str:
    return ", ".join(names)


def _enabled(
    current: frozenset[str], value: object, names: Mapping[str, Provider]
) -> frozenset[str]:
    """``current`` with ``enabled={name: bool}`` applied."""
    if not isinstance(value, Mapping):
        raise InvalidConfig(
            f"enabled must map provider names to true or false (got {shown(value)})",
            field="enabled",
        )
    enabled = set(current)
    for name, on in value.items():
        if not isinstance(name, str) or name not in names:
            raise InvalidConfig(
                f"enabled: {shown(name)} is not a provider (known: {_known(names)})",
                field="enabled",
            )
        if not isinstance(on, bool):
            raise InvalidConfig(
                f"enabled: {name} must be true or false (got {shown(on)})", field="enabled"
            )
        (enabled.add if on else enabled.discard)(name)
    return frozenset(enabled)


def _priority(value: object, names: Mapping[str, Provider]) -> list[str]:
    """The names ``priority=[names]`` lists first, in order, duplicates dropped."""
    # A list: a string is not one, and a mapping ({"a": 1}) or a set has no order to
    # take (only its keys would be read, the numbers ignored).
    if not isinstance(value, Sequence) or isinstance(value, str | bytes | bytearray):
        raise InvalidConfig(
            f"priority must be a list of provider names, highest priority first "
            f"(got {shown(value)})",
            field="priority",
        )
    for name in value:
        if not isinstance(name, str) or name not in names:
            raise InvalidConfig(
                f"priority: {shown(name)} is not a provider (known: {_known(names)})",
                field="priority",
            )
    return list(dict.fromkeys(value))


def apply_changes(config: Config, changes: Mapping[str, Any]) -> Config:
    """``config`` with ``changes`` (what ``configure()`` takes) applied; validated whole.

    Raises:
        InvalidConfig: An unknown setting or provider name, or a bad value.
    """
    names = {p.name: p for p in config.providers}
    updates: dict[str, Any] = {}
    for key, value in changes.items():
        if key in _VALUES:
            updates[key] = value
        elif key == "enabled":
            updates["enabled"] = _enabled(updates.get("enabled", config.enabled), value, names)
        elif key == "priority":
            first = _priority(value, names)
            rest = [p for p in config.providers if p.name not in first]
            updates["providers"] = tuple(names[n] for n in first) + tuple(rest)
        else:
            raise InvalidConfig(f"{key} cannot be configured at run time", field=key)
    return attrs.evolve(config, **updates)
