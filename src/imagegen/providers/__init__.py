"""Providers: the contract and the built-in implementations."""

from ._base import Provider, ProviderContext, ProviderImage
from ._placeholder import Placeholder

__all__ = ["Placeholder", "Provider", "ProviderContext", "ProviderImage"]
