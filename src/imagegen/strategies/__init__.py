"""Strategies: which providers to call and when, how to retry, when to stop calling.

Each is a small object with behaviour: a :class:`Selection` (``Race``, ``Hedge``,
``Fallback`` or your own subclass) launches a tier's providers through the
:class:`Tier` it is handed; :class:`Retry` runs its own loop; a
:class:`ProviderBreaker` answers "may I call?" and learns from outcomes.
"""

from ._breaker import ProviderBreaker
from ._breaker_settings import BreakerSnapshot, CircuitBreaker
from ._fallback import Fallback
from ._hedge import Hedge, HedgeBudget
from ._latency import LatencyWindow
from ._race import Race
from ._retry import Retry
from ._selection import Selection, Tier, selection_kinds

__all__ = [
    "BreakerSnapshot",
    "CircuitBreaker",
    "Fallback",
    "Hedge",
    "HedgeBudget",
    "LatencyWindow",
    "ProviderBreaker",
    "Race",
    "Retry",
    "Selection",
    "Tier",
    "selection_kinds",
]
