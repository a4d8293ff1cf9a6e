"""The generator's parts, checked and wired once: what the facade's constructor builds.

Every part reaches the state backend through one guard (its failures become
``StorageError``s, and a backend that stops answering is noticed once, not by every
generation), and every key under one prefix per namespace.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import httpx

from ._clock import Clock
from ._config import NAMESPACE_RULE, Config
from ._download import DownloadPolicy
from ._errors import InvalidConfig
from ._events import Events, Hook
from ._experiments import Experiment
from ._guarded_state import guarded
from ._live_config import LiveConfig
from ._records import Records
from ._relay import WebhookRelay
from ._runtime import Runtime
from ._slots import CallSlots
from ._spending import Spending, SpendingCap
from ._tracking import Tracker
from .state import StateBackend
from .storage import Storage
from .strategies import HedgeBudget, ProviderBreaker

__all__ = ["Parts", "wire"]


@attrs.frozen(kw_only=True)
class Parts:
    """What the facade holds: the settings in force and the services they run on."""

    live: LiveConfig
    rt: Runtime


def _number(value: object, *, minimum: float, field: str, rule: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
        raise InvalidConfig(f"{field} must be {rule}", field=field)
    return float(value)


def _check(
    *,
    namespace: str | None,
    download: object,
    hooks: tuple[Hook, ...],
    max_in_flight: object,
    experiment: object,
    spending_cap: object,
) -> None:
    if namespace is not None and not NAMESPACE_RULE.match(namespace):
        raise InvalidConfig(
            "namespace must be 1-64 of letters, digits, '_' and '-'", field="namespace"
        )
    if not isinstance(download, DownloadPolicy):
        raise InvalidConfig("download must be a DownloadPolicy", field="download")
    if not all(callable(hook) for hook in hooks):
        raise InvalidConfig("hooks must be callables taking one Event", field="hooks")
    if max_in_flight is not None and (
        not isinstance(max_in_flight, int) or isinstance(max_in_flight, bool) or max_in_flight < 1
    ):
        raise InvalidConfig("max_in_flight must be None or an int >= 1", field="max_in_flight")
    if experiment is not None and not isinstance(experiment, Experiment):
        raise InvalidConfig("experiment must be an Experiment", field="experiment")
    if spending_cap is not None and not isinstance(spending_cap, SpendingCap):
        raise InvalidConfig("spending_cap must be a SpendingCap or None", field="spending_cap")


def wire(
    config: Config,
    *,
    state: StateBackend,
    storage: Storage | None,
    download: DownloadPolicy,
    hooks: tuple[Hook, ...],
    namespace: str | None,
    clock: Clock,
    config_ttl: float,
    experiment: Experiment | None,
    max_in_flight: int | None,
    spending_cap: SpendingCap | None,
    http: Callable[[], httpx.AsyncClient],
) -> Parts:
    """Check the constructor's arguments and build the parts.

    Raises:
        InvalidConfig: An argument broke a rule; the message names it.
    """
    _check(
        namespace=namespace,
        download=download,
        hooks=hooks,
        max_in_flight=max_in_flight,
        experiment=experiment,
        spending_cap=spending_cap,
    )
    ttl = _number(config_ttl, minimum=0, field="config_ttl", rule="seconds >= 0")
    backend = guarded(state, clock)
    # "imagegen:<namespace>:" (empty namespace: "imagegen::"): namespaces cannot hold
    # ":", so no namespace's keys can ever match another's prefix scan.
    prefix = f"imagegen:{namespace or ''}:"
    events = Events(hooks)
    live = LiveConfig(
        config, state=backend, prefix=prefix, clock=clock, ttl=ttl, experiment=experiment
    )
    tracker = Tracker(backend, prefix=prefix)
    spending = Spending(spending_cap, tracker, clock)
    rt = Runtime(
        clock=clock,
        state=backend,
        storage=storage,
        download=download,
        events=events,
        records=Records(
            tracker,
            clock=clock,
            events=events,
            experiment=experiment.name if experiment is not None else None,
            spent=spending.add if spending_cap is not None else None,
        ),
        slots=CallSlots(max_in_flight, clock),
        admission=CallSlots(max_in_flight, clock),
        relay=WebhookRelay(backend, prefix, clock),
        breakers={
            p.name: ProviderBreaker(
                p.name,
                settings=lambda: live.current.breaker,
                state=backend,
                clock=clock,
                emit=events.send,
                prefix=prefix,
            )
            for p in config.providers
        },
        http=http,
        state_prefix=prefix,
        key_prefix=f"{namespace}/" if namespace else "",
        budget=HedgeBudget(clock),
        spending=spending,
    )
    return Parts(live=live, rt=rt)
