"""Providers: the contract, the HTTP base, and the built-in implementations."""

from ._base import (
    Provider,
    ProviderContext,
    ProviderImage,
    WebhookDelivery,
    WebhookInbox,
    WebhookReceiver,
)
from ._fal import Fal
from ._http import FormFile, HTTPProvider
from ._openai import OpenAIImages
from ._placeholder import Placeholder
from ._replicate import Replicate
from ._unsplash import Unsplash

__all__ = [
    "Fal",
    "FormFile",
    "HTTPProvider",
    "OpenAIImages",
    "Placeholder",
    "Provider",
    "ProviderContext",
    "ProviderImage",
    "Replicate",
    "Unsplash",
    "WebhookDelivery",
    "WebhookInbox",
    "WebhookReceiver",
]
