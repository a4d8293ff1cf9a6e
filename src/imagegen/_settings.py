"""The run-time settings as JSON: for the admin API and for sharing them through state.

``settings_json`` writes what ``configure()`` can change; ``changes_from_json`` reads
it back as ``configure()`` keywords, raising InvalidConfig with a dotted field name
(``retry.attempts``) for anything wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import InvalidConfig
from .strategies import CircuitBreaker, Fallback, Hedge, Race, Retry

if TYPE_CHECKING:
    from ._generator import _Config

__all__ = ["changes_from_json", "settings_json"]

STRATEGIES: dict[str, type[Race | Hedge | Fallback]] = {
    "race": Race,
    "hedge": Hedge,
    "fallback": Fallback,
}
_PLAIN = ("timeout", "enabled", "priority")


def settings_json(config: _Config) -> dict[str, Any]:
    """What ``configure()`` can change, as JSON (no secrets: there are none in it)."""
    strategy = config.strategy
    return {
        "strategy": {"kind": type(strategy).__name__.lower(), **attrs.asdict(strategy)},
        "timeout": config.timeout,
        "retry": attrs.asdict(config.retry),
        "breaker": attrs.asdict(config.breaker),
        "enabled": {p.name: p.name in config.enabled for p in config.providers},
        "priority": [p.name for p in config.providers],
    }


def _build(kind: type[Any], label: str, fields: object) -> Any:
    if not isinstance(fields, Mapping):
        raise InvalidConfig(f"{label} must be a JSON object of its fields", field=label)
    known = {a.name for a in attrs.fields(kind)}
    for name in fields:
        if name not in known:
            raise InvalidConfig(f"{label} has no field {name!r}", field=f"{label}.{name}")
    try:
        return kind(**fields)
    except InvalidConfig as exc:
        raise InvalidConfig(f"{label}: {exc}", field=f"{label}.{exc.field}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidConfig(f"{label}: {exc}", field=label) from None


def changes_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """``configure()`` keywords from JSON settings.

    ``timeout``, ``enabled`` and ``priority`` pass as they are; ``strategy`` is
    ``{"kind": "race|hedge|fallback", ...fields}``; ``retry`` and ``breaker`` are
    objects of their fields (defaults for those left out).

    Raises:
        InvalidConfig: Naming the field, dotted for nested ones.
    """
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key in _PLAIN:
            changes[key] = value
        elif key == "strategy":
            if not isinstance(value, Mapping):
                msg = 'strategy must be {"kind": "race|hedge|fallback", ...}'
                raise InvalidConfig(msg, field="strategy")
            fields = dict(value)
            kind = fields.pop("kind", None)
            if kind not in STRATEGIES:
                msg = "strategy.kind must be race, hedge or fallback"
                raise InvalidConfig(msg, field="strategy.kind")
            changes["strategy"] = _build(STRATEGIES[kind], "strategy", fields)
        elif key == "retry":
            changes["retry"] = _build(Retry, "retry", value)
        elif key == "breaker":
            changes["breaker"] = _build(CircuitBreaker, "breaker", value)
        else:
            raise InvalidConfig(f"{key} cannot be changed at run time", field=key)
    return changes
