"""The run-time settings as JSON: for the admin API, the CLI and sharing them through state.

``settings_json`` writes what ``configure()`` can change; ``changes_from_json`` reads
it back as ``configure()`` keywords, raising InvalidConfig with a dotted field name
(``retry.attempts``) for anything wrong. A strategy is ``{"kind": ..., fields}``,
its kind looked up among the :class:`~imagegen.Selection` classes imported so far
(:func:`selection_from_name` serves the environment's ``IMAGEGEN_STRATEGY`` from
the same table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._config import Config
from ._errors import InvalidConfig
from .strategies import CircuitBreaker, Retry, Selection, selection_kinds

__all__ = ["changes_from_json", "selection_from_name", "settings_json"]

_PLAIN = ("timeout", "enabled", "priority")


def settings_json(config: Config) -> dict[str, Any]:
    """What ``configure()`` can change, as JSON (no secrets: there are none in it)."""
    return {
        "strategy": config.strategy.to_dict(),
        "timeout": config.timeout,
        "retry": attrs.asdict(config.retry),
        "breaker": attrs.asdict(config.breaker),
        "enabled": {p.name: p.name in config.enabled for p in config.providers},
        "priority": [p.name for p in config.providers],
    }


def _kinds_text(kinds: Mapping[str, type[Selection]]) -> str:
    names = sorted(kinds)
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def _selection_class(kind: object, field: str) -> type[Selection]:
    kinds = selection_kinds()
    if not isinstance(kind, str) or kind not in kinds:
        raise InvalidConfig(
            f"{field} must be {_kinds_text(kinds)} (got {kind!r})",
            field=field,
        )
    return kinds[kind]


def selection_from_name(name: str, *, field: str) -> Selection:
    """A selection of the named kind with its defaults (``IMAGEGEN_STRATEGY=hedge``).

    Raises:
        InvalidConfig: No imported Selection has that kind, or it needs arguments.
    """
    selection: Selection = _build(_selection_class(name.strip().lower(), field), field, {})
    return selection


def _build(kind: type[Any], label: str, fields: object) -> Any:
    if not isinstance(fields, Mapping):
        raise InvalidConfig(f"{label} must be a JSON object of its fields", field=label)
    if attrs.has(kind):
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
    ``{"kind": <a Selection's kind>, ...fields}``; ``retry`` and ``breaker`` are
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
                msg = 'strategy must be {"kind": ..., fields}, kind one of ' + _kinds_text(
                    selection_kinds()
                )
                raise InvalidConfig(msg, field="strategy")
            fields = dict(value)
            kind = _selection_class(fields.pop("kind", None), "strategy.kind")
            changes["strategy"] = _build(kind, "strategy", fields)
        elif key == "retry":
            changes["retry"] = _build(Retry, "retry", value)
        elif key == "breaker":
            changes["breaker"] = _build(CircuitBreaker, "breaker", value)
        else:
            raise InvalidConfig(f"{key} cannot be changed at run time", field=key)
    return changes
