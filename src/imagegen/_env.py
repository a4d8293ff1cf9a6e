"""Settings from environment variables, for ``ImageGenerator.from_env()`` and the CLI."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._config import NAMESPACE_RULE
from ._download import DownloadPolicy
from ._errors import InvalidConfig
from ._settings import selection_from_name
from ._spending import SpendingCap
from .providers import BUILT_IN, Placeholder, Provider
from .state import RedisState, SQLiteState, StateBackend
from .storage import LocalStorage, R2Storage, Storage, r2_client

__all__ = ["settings_from_env"]

logger = logging.getLogger("imagegen")

#: The words of IMAGEGEN_DOWNLOAD_ALLOW, and the DownloadPolicy field each turns on.
_DOWNLOAD_ALLOW = {"http": "allow_http", "private": "allow_private_networks"}


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise InvalidConfig(f"{name} must be a number of seconds > 0 (got {raw!r})", field=name)
    return value


def _max_in_flight(environ: Mapping[str, str]) -> int | None:
    name = "IMAGEGEN_MAX_IN_FLIGHT"
    raw = (environ.get(name) or "").strip()
    if raw == "":
        return 100
    if raw.lower() == "none":
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidConfig(f"{name} must be an integer >= 1 or none (got {raw!r})", field=name)
    return int(raw)


def _spending_cap(environ: Mapping[str, str]) -> SpendingCap:
    """IMAGEGEN_SPENDING_CAP: ``20`` (USD a day, all providers), ``openai=5,fal=2.5``
    (per provider), or both (``20,openai=5``)."""
    name = "IMAGEGEN_SPENDING_CAP"
    raw = environ.get(name) or ""
    daily: float | None = None
    per_provider: dict[str, float] = {}
    for item in (part.strip() for part in raw.split(",")):
        provider, sep, amount = item.rpartition("=")
        try:
            usd = float(amount)
        except ValueError:
            usd = math.nan
        if not item or not 0 <= usd < math.inf or (sep and not provider.strip()):
            raise InvalidConfig(
                f"{name} must be USD a day for all providers, name=USD pairs, or both, "
                f"comma-separated, such as 20,openai=5 (got {raw!r})",
                field=name,
            )
        if sep:
            per_provider[provider.strip()] = usd
        else:
            daily = usd
    return SpendingCap(daily=daily, per_provider=per_provider)


def _download(environ: Mapping[str, str]) -> DownloadPolicy | None:
    """The DownloadPolicy IMAGEGEN_DOWNLOAD_ALLOW asks for; None when it is unset or empty."""
    name = "IMAGEGEN_DOWNLOAD_ALLOW"
    raw = environ.get(name) or ""
    words = {word.strip().lower() for word in raw.split(",")} - {""}
    if words - _DOWNLOAD_ALLOW.keys():
        raise InvalidConfig(
            f"{name} must be http, private or both, comma-separated (got {raw!r})", field=name
        )
    return DownloadPolicy(**{_DOWNLOAD_ALLOW[w]: True for w in words}) if words else None


def _providers(environ: Mapping[str, str]) -> list[Provider]:
    """One hosted provider per key found, in the order of ``BUILT_IN`` (AI first, stock last)."""
    return [p for vendor in BUILT_IN if (p := vendor.from_env(environ)) is not None]


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    return next((environ[name] for name in names if environ.get(name)), None)


def _first_named(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` that is set (not empty), and its value."""
    return next(((name, environ[name]) for name in names if environ.get(name)), None)


def _state(environ: Mapping[str, str], data_dir: Path) -> StateBackend:
    """RedisState when IMAGEGEN_REDIS_URL is set, else SQLite under the data directory."""
    url = environ.get("IMAGEGEN_REDIS_URL")
    if not url:
        return SQLiteState(data_dir / "state.sqlite3")
    try:
        return RedisState(url)
    except InvalidConfig as exc:
        raise InvalidConfig(f"IMAGEGEN_REDIS_URL: {exc}", field="IMAGEGEN_REDIS_URL") from None


def _storage(environ: Mapping[str, str], data_dir: Path) -> Storage:
    """R2Storage when a bucket is named, else LocalStorage under the data directory.

    The bucket is on R2 (the account id names the endpoint), or on the S3-compatible
    endpoint IMAGEGEN_S3_ENDPOINT_URL names (then no account id is needed, nor used).
    """
    public = environ.get("IMAGEGEN_PUBLIC_BASE_URL") or None
    bucket = _first(environ, "IMAGEGEN_R2_BUCKET", "R2_BUCKET")
    if bucket is None:
        return LocalStorage(data_dir / "images", base_url=public)
    endpoint = _first_named(environ, "IMAGEGEN_S3_ENDPOINT_URL")
    region = _first_named(environ, "IMAGEGEN_S3_REGION")
    settings: dict[str, tuple[str, ...]] = {
        "access_key_id": ("IMAGEGEN_R2_ACCESS_KEY_ID", "R2_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        "secret_access_key": (
            "IMAGEGEN_R2_SECRET_ACCESS_KEY",
            "R2_SECRET_ACCESS_KEY",
            "AWS_SECRET_ACCESS_KEY",
        ),
    }
    if endpoint is None:
        settings = {"account_id": ("IMAGEGEN_R2_ACCOUNT_ID", "R2_ACCOUNT_ID"), **settings}
    found: dict[str, tuple[str, str]] = {}  # r2_client's argument -> (variable, value)
    for what, names in settings.items():
        named = _first_named(environ, *names)
        if named is None:
            raise InvalidConfig(
                f"a bucket is named, but {names[0]} (or {', '.join(names[1:])}) is not set",
                field=names[0],
            )
        found[what] = named
    optional = {"endpoint_url": endpoint, "region": region}
    found.update({what: named for what, named in optional.items() if named is not None})
    expires = environ.get("IMAGEGEN_R2_PRESIGN_EXPIRES")
    presign = int(_float(environ, "IMAGEGEN_R2_PRESIGN_EXPIRES", 1)) if expires else None

    def value(what: str) -> str | None:
        return found[what][1] if what in found else None

    try:
        client = r2_client(
            value("account_id"),
            found["access_key_id"][1],
            found["secret_access_key"][1],
            endpoint_url=value("endpoint_url"),
            region=value("region"),
        )
    except InvalidConfig as exc:
        if exc.field not in found:
            raise
        variable = found[exc.field][0]
        raise InvalidConfig(f"{variable}: {exc}", field=variable) from None
    return R2Storage(
        client=client, bucket_name=bucket, public_base_url=public, presign_expires=presign
    )


def settings_from_env(
    environ: Mapping[str, str], *, environment: str | None = None
) -> tuple[dict[str, Any], list[Any]]:
    """Constructor keywords for ImageGenerator, and the resources it should close."""
    data_dir = Path(environ.get("IMAGEGEN_DATA_DIR") or "imagegen-data").absolute()
    namespace = environment or environ.get("IMAGEGEN_ENV") or None
    if namespace is not None and not NAMESPACE_RULE.match(namespace):
        source = "environment" if environment else "IMAGEGEN_ENV"
        raise InvalidConfig(
            f"{source} must be 1-64 of letters, digits, '_' and '-' (got {namespace!r})",
            field=source,
        )
    # The same kind table as the settings JSON: a user's Selection, once imported, too.
    strategy = selection_from_name(
        environ.get("IMAGEGEN_STRATEGY") or "race", field="IMAGEGEN_STRATEGY"
    )
    state = _state(environ, data_dir)
    providers = _providers(environ) or [Placeholder()]
    kwargs: dict[str, Any] = {
        "providers": providers,
        "strategy": strategy,
        "storage": _storage(environ, data_dir),
        "state": state,
        "timeout": _float(environ, "IMAGEGEN_TIMEOUT", 30.0),
        "namespace": namespace,
        "config_ttl": _float(environ, "IMAGEGEN_CONFIG_TTL", 5.0),
        "max_in_flight": _max_in_flight(environ),
    }
    if (environ.get("IMAGEGEN_SPENDING_CAP") or "").strip():
        kwargs["spending_cap"] = _spending_cap(environ)
    if (environ.get("IMAGEGEN_DEFAULT_IMAGE") or "").strip().lower() == "none":
        kwargs["default_image"] = None
    download = _download(environ)
    if download is not None:
        kwargs["download"] = download
    return kwargs, [state]
