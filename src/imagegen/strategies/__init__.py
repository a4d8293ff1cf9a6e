"""Strategies: which providers to call and when, how to retry, when to stop calling."""

from ._breaker import BreakerSnapshot, CircuitBreaker, ProviderBreaker
from ._retry import Retry
from ._selection import Fallback, Hedge, Race, Selection

__all__ = [
    "BreakerSnapshot",
    "CircuitBreaker",
    "Fallback",
    "Hedge",
    "ProviderBreaker",
    "Race",
    "Retry",
    "Selection",
]
