"""Which ``provider_options`` an HTTP caller may set: none, unless the operator lists them.

``provider_options`` go to the vendor as they are, merged over what imagegen sends, so
they can change what a generation costs (the model, the image count, the quality, the
size). Python callers of the library are trusted with them; a caller of the HTTP API
gets only the keys the operator allows per provider with
``create_app(allow_provider_options={"openai": ["background"]})``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .. import InvalidConfig

__all__ = ["AllowList", "allow_list", "unlisted"]

#: Provider name -> the option keys HTTP callers may set for it.
AllowList = Mapping[str, frozenset[str]]

_FIELD = "allow_provider_options"


def allow_list(value: object) -> AllowList:
    """The operator's allow-list, checked and frozen; None allows nothing.

    Raises:
        InvalidConfig: Not a mapping of provider names to collections of option names
            (a bare string is refused: it would allow each of its letters).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidConfig(
            f"{_FIELD} must map provider names to the option keys allowed", field=_FIELD
        )
    allowed: dict[str, frozenset[str]] = {}
    for provider, keys in value.items():
        if not isinstance(provider, str) or not provider:
            raise InvalidConfig(f"{_FIELD} keys must be provider names", field=_FIELD)
        if (
            isinstance(keys, str | bytes)
            or not isinstance(keys, Collection)
            or not all(isinstance(key, str) and key for key in keys)
        ):
            raise InvalidConfig(
                f"{_FIELD}[{provider!r}] must be a collection of option names, not a single string",
                field=f"{_FIELD}.{provider}",
            )
        allowed[provider] = frozenset(keys)
    return allowed


def unlisted(options: object, allowed: AllowList) -> list[tuple[str, str]]:
    """A request's ``provider_options`` keys the allow-list leaves out, as
    ``(field, message)`` pairs, one per ``provider_options.<provider>.<key>``.

    Options that are not a mapping of mappings are left to
    :class:`~imagegen.ImageRequest`, which refuses them naming ``provider_options``.
    """
    if not isinstance(options, Mapping):
        return []
    return [
        (f"provider_options.{provider}.{key}", _refusal(provider, key, allowed))
        for provider, given in options.items()
        if isinstance(given, Mapping)
        for key in given
        if key not in allowed.get(provider, ())
    ]


def _refusal(provider: str, key: str, allowed: AllowList) -> str:
    keys = sorted(allowed.get(provider, ()))
    some = f"only {', '.join(keys)}" if keys else "none"
    return (
        f"provider option {key!r} for {provider!r} cannot be set through this API "
        f"(the operator allows {some})"
    )
