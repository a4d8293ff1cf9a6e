"""Providers: the contract, the HTTP base and its submit/poll helpers, the built-in vendors."""

from ._azure import AzureOpenAI
from ._base import (
    Provider,
    ProviderContext,
    ProviderImage,
    WebhookDelivery,
    WebhookInbox,
    WebhookReceiver,
)
from ._bedrock import Bedrock
from ._bfl import BlackForestLabs
from ._fal import Fal
from ._google import Google
from ._http import FormFile, HTTPProvider
from ._huggingface import HuggingFace
from ._openai import OpenAIImages
from ._openai_like import XAI, Together
from ._placeholder import Placeholder
from ._polling import (
    DONE,
    RUNNING,
    PollSchedule,
    Progress,
    RemoteWork,
    fetch_result,
    submit_work,
    wait_for_work,
)
from ._registry import BUILT_IN, Vendor
from ._replicate import Replicate
from ._stability import Stability
from ._unsplash import Unsplash

__all__ = [
    "BUILT_IN",
    "DONE",
    "RUNNING",
    "XAI",
    "AzureOpenAI",
    "Bedrock",
    "BlackForestLabs",
    "Fal",
    "FormFile",
    "Google",
    "HTTPProvider",
    "HuggingFace",
    "OpenAIImages",
    "Placeholder",
    "PollSchedule",
    "Progress",
    "Provider",
    "ProviderContext",
    "ProviderImage",
    "RemoteWork",
    "Replicate",
    "Stability",
    "Together",
    "Unsplash",
    "Vendor",
    "WebhookDelivery",
    "WebhookInbox",
    "WebhookReceiver",
    "fetch_result",
    "submit_work",
    "wait_for_work",
]
