"""The settings in force: ``configure()`` changes, experiment variants, and sharing them.

Changes are published to the state backend, and newer ones published by another
generator on the same backend (same namespace) are adopted, at most every
``ttl`` seconds, so ``PATCH /admin/config`` on one process reaches them all.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ._clock import Clock
from ._config import Config, apply_changes
from ._default_image import describe_default
from ._errors import ImageGenError, InvalidConfig, StorageError
from ._experiments import Experiment, Variant
from ._settings import changes_from_json, settings_json
from .state import StateBackend

__all__ = ["LiveConfig"]

logger = logging.getLogger("imagegen")

#: Seconds a generation waits for the shared settings before it goes on with its own.
_SHARED_BOUND = 0.25
#: The settings that are shared (``default_image`` stays with each process).
SHARED_NAMES = frozenset(("strategy", "timeout", "retry", "breaker", "enabled", "priority"))


class LiveConfig:
    """Holds the current :class:`Config`, swaps it on change, and keeps it in step with
    the shared settings in the state backend.

    Args:
        config: The settings to start with.
        state: Where shared settings live (key ``<prefix>config``).
        prefix: The generator's state-key prefix.
        clock: For the look-again interval and the version stamp.
        ttl: Seconds between looks at the shared settings.
        experiment: Variants applied on top of the current settings.
    """

    def __init__(
        self,
        config: Config,
        *,
        state: StateBackend,
        prefix: str,
        clock: Clock,
        ttl: float,
        experiment: Experiment | None,
    ) -> None:
        self.current = config
        self._own = config  # the constructor's settings: what a reset setting goes back to
        self._shared: set[str] = set()  # names in force from (or for) the shared settings
        self.ttl = ttl
        self.experiment = experiment
        self._state = state
        self._key = f"{prefix}config"
        self._clock = clock
        self._checked = -math.inf  # monotonic time of the last look at shared settings
        self._version = 0.0  # wall time of the shared settings we run with
        self._dirty = False  # configure() changes not yet published
        self._variant_base: Config | None = None
        self._variants: dict[str, Config] = {}
        if experiment is not None:
            self.check_variants(config)

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply ``changes`` atomically; they are published by the next :meth:`refresh`.

        Raises:
            InvalidConfig: Unknown setting or provider name, or a bad value.
        """
        # Variants only name providers and carry values checked on their own, so a
        # variant valid at construction stays valid under any accepted change.
        self.current = apply_changes(self.current, changes)
        shared = SHARED_NAMES.intersection(changes)
        if shared:
            # Published by the next generation (or publish()), since configure() is sync
            # and the backend is not. Only the settings changed are shared.
            self._shared |= shared
            self._dirty = True
        logger.info(
            "configuration changed: %s", ", ".join(f"{k}={v!r}" for k, v in changes.items())
        )

    def update(self, settings: Mapping[str, Any]) -> None:
        """:meth:`configure` from settings JSON, as :meth:`settings` writes it.

        ``default_image`` is only described in that JSON, so it cannot be set from
        it: the current description passes (a round trip changes nothing), any other
        value is refused.
        """
        if not isinstance(settings, Mapping):
            raise InvalidConfig(
                f"settings must be a JSON object of settings, not {type(settings).__name__}",
                field="settings",
            )
        settings = dict(settings)
        if settings.get("default_image", ...) == describe_default(self.current.default_image):
            del settings["default_image"]
        self.configure(changes_from_json(settings))

    def check_variants(self, config: Config) -> None:
        """Every variant of the experiment must apply cleanly on top of ``config``."""
        assert self.experiment is not None  # noqa: S101 - callers check
        for variant in self.experiment.variants:
            try:
                apply_changes(config, variant.settings)
            except InvalidConfig as exc:
                raise InvalidConfig(
                    f"experiment {self.experiment.name!r}, variant {variant.name!r}: {exc}",
                    field="experiment",
                ) from None

    def for_variant(self, variant: Variant | None) -> Config:
        """The settings a generation runs with: the current ones, its variant's on top."""
        config = self.current
        if variant is None:
            return config
        if self._variant_base is not config:
            self._variants.clear()
            self._variant_base = config
        cached = self._variants.get(variant.name)
        if cached is None:
            cached = self._variants[variant.name] = apply_changes(config, variant.settings)
        return cached

    def settings(self) -> dict[str, Any]:
        """The settings as JSON, the default image described in a word."""
        return {
            **settings_json(self.current),
            "default_image": describe_default(self.current.default_image),
        }

    async def publish(self) -> None:
        """Write the shared settings (those changed by :meth:`configure` here or adopted)
        to the state backend for every generator sharing it."""
        version = self._clock.time()
        current = settings_json(self.current)
        shared = {name: value for name, value in current.items() if name in self._shared}
        payload = {"version": version, "settings": shared}
        await self._state.set(self._key, json.dumps(payload).encode())
        self._version = version
        self._dirty = False
        self._checked = self._clock.monotonic()

    async def shared(self) -> dict[str, Any]:
        """The settings published in the state backend, as JSON; ``{}`` when there are none.

        Raises:
            StorageError: The backend failed.
        """
        return (await self._published())[1]

    async def _published(self) -> tuple[float, dict[str, Any]]:
        """The shared settings' version and settings; ``(0, {})`` for none or unreadable."""
        raw = await self._state.get(self._key)
        if raw is None:
            return 0.0, {}
        try:
            payload = json.loads(raw)
            version, settings = float(payload["version"]), payload["settings"]
        except (ValueError, KeyError, TypeError):
            return 0.0, {}
        if not isinstance(settings, Mapping) or not math.isfinite(version):
            return 0.0, {}
        return version, dict(settings)

    def _own_values(self, names: Iterable[str]) -> dict[str, Any]:
        """``configure()`` keywords putting ``names`` back to this generator's own settings."""
        own = settings_json(self._own)
        return changes_from_json({name: own[name] for name in names})

    async def reset(self, names: Iterable[str]) -> None:
        """Remove ``names`` (all when empty) from the shared settings; every generator
        sharing them goes back to its own (constructor, environment) values for those.

        A new version is published without them (not a deleted key), so running
        generators notice within their ``ttl``.

        Raises:
            InvalidConfig: A name is not a shared setting.
            StorageError: The backend failed.
        """
        names = list(names)
        for name in names:
            if name not in SHARED_NAMES:
                raise InvalidConfig(
                    f"{name!r} is not a shared setting (one of {', '.join(sorted(SHARED_NAMES))})",
                    field=name,
                )
        reset = set(names) if names else set(SHARED_NAMES)
        previous, published = await self._published()
        remaining = {name: value for name, value in published.items() if name not in reset}
        # Newer than what it replaces, even on a clock that has not moved since.
        version = max(self._clock.time(), math.nextafter(previous, math.inf))
        payload = {"version": version, "settings": remaining}
        await self._state.set(self._key, json.dumps(payload).encode())
        reverted = sorted(self._shared & reset)
        if reverted:
            self.current = apply_changes(self.current, self._own_values(reverted))
            logger.info("shared settings reset: %s", ", ".join(reverted))
        self._shared -= reset
        self._checked = -math.inf  # adopt what remains at the next look

    async def refresh(self, *, now: bool = False) -> None:
        """Publish our changes, or adopt newer shared ones, at most every ``ttl`` seconds.

        A generation waits at most a quarter of a second for it: a state backend that does
        not answer (or fails) leaves the settings in force as they are, logged.
        """
        if now:
            self._checked = -math.inf
        moment = self._clock.monotonic()
        if not self._dirty and moment - self._checked < self.ttl:
            return
        with self._clock.deadline_scope(moment + _SHARED_BOUND) as scope:
            if self._dirty:
                try:
                    await self.publish()
                except ImageGenError as exc:
                    logger.warning("could not publish the settings: %s", exc)
            else:
                await self._adopt(moment)
        if scope.cancelled_caught:
            logger.warning(
                "the state backend did not answer about the shared settings in %.1fs",
                _SHARED_BOUND,
            )

    async def _adopt(self, moment: float) -> None:
        """Adopt newer settings another generator published."""
        self._checked = moment
        try:
            raw = await self._state.get(self._key)
        except StorageError as exc:
            logger.warning("could not read the shared settings (%s); keeping these", exc)
            return
        if raw is None:
            return
        try:
            payload = json.loads(raw)
            version = float(payload["version"])
            if version <= self._version:
                return
            settings = dict(payload["settings"])
            shared = SHARED_NAMES.intersection(settings)
            names = {p.name for p in self.current.providers}
            # Providers this process does not have are left out, not refused.
            # (Shapes the filter cannot read go through as they are, to be refused.)
            enabled = settings.get("enabled")
            if isinstance(enabled, Mapping):
                settings["enabled"] = {k: v for k, v in enabled.items() if k in names}
            priority = settings.get("priority")
            if isinstance(priority, list):
                settings["priority"] = [n for n in priority if isinstance(n, str) and n in names]
            # Settings no longer shared (reset) go back to this generator's own.
            dropped = sorted(self._shared - shared)
            changes = {**self._own_values(dropped), **changes_from_json(settings)}
            if changes:
                self.configure(changes)
            self._shared = set(shared)
        except (ImageGenError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring shared settings that cannot be applied: %r", exc)
            return
        except Exception:
            logger.warning("could not read the shared settings", exc_info=True)
            return
        self._dirty = False  # adopted, not ours to publish
        self._version = version
        logger.info("adopted shared settings published at %s", version)
