"""Settings from environment variables, for ``ImageGenerator.from_env()`` and the CLI."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._config import NAMESPACE_RULE
from ._errors import InvalidConfig
from ._settings import selection_from_name
from .providers import BUILT_IN, Placeholder, Provider
from .state import RedisState, SQLiteState, StateBackend
from .storage import LocalStorage, R2Storage, Storage, r2_client

__all__ = ["settings_from_env"]

logger = logging.getLogger("imagegen")


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


def _providers(environ: Mapping[str, str]) -> list[Provider]:
    """One hosted provider per key found, in the order of ``BUILT_IN`` (AI first, stock last)."""
    return [p for vendor in BUILT_IN if (p := vendor.from_env(environ)) is not None]


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    return next((environ[name] for name in names if environ.get(name)), None)


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
    """R2Storage when an R2 bucket is named, else LocalStorage under the data directory."""
    public = environ.get("IMAGEGEN_PUBLIC_BASE_URL") or None
    bucket = _first(environ, "IMAGEGEN_R2_BUCKET", "R2_BUCKET")
    if bucket is None:
        return LocalStorage(data_dir / "images", base_url=public)
    settings = {
        "account": ("IMAGEGEN_R2_ACCOUNT_ID", "R2_ACCOUNT_ID"),
        "key_id": ("IMAGEGEN_R2_ACCESS_KEY_ID", "R2_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        "secret": (
            "IMAGEGEN_R2_SECRET_ACCESS_KEY",
            "R2_SECRET_ACCESS_KEY",
            "AWS_SECRET_ACCESS_KEY",
        ),
    }
    found: dict[str, str] = {}
    for what, names in settings.items():
        value = _first(environ, *names)
        if value is None:
            raise InvalidConfig(
                f"an R2 bucket is named, but {names[0]} (or {', '.join(names[1:])}) is not set",
                field=names[0],
            )
        found[what] = value
    expires = environ.get("IMAGEGEN_R2_PRESIGN_EXPIRES")
    presign = int(_float(environ, "IMAGEGEN_R2_PRESIGN_EXPIRES", 1)) if expires else None
    return R2Storage(
        client=r2_client(found["account"], found["key_id"], found["secret"]),
        bucket_name=bucket,
        public_base_url=public,
        presign_expires=presign,
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
    if (environ.get("IMAGEGEN_DEFAULT_IMAGE") or "").strip().lower() == "none":
        kwargs["default_image"] = None
    return kwargs, [state]
