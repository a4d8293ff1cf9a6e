"""The built-in vendor registry: each vendor builds itself from an environment mapping."""

from __future__ import annotations

import pytest

from imagegen.providers import (
    BUILT_IN,
    XAI,
    AzureOpenAI,
    Bedrock,
    BlackForestLabs,
    Fal,
    Google,
    HTTPProvider,
    HuggingFace,
    OpenAIImages,
    Replicate,
    Stability,
    Together,
    Unsplash,
)

KEYS = {
    Replicate: {"REPLICATE_API_TOKEN": "r8_secret-value-123"},
    Fal: {"FAL_KEY": "fal-id:secret-value-123"},
    OpenAIImages: {"OPENAI_API_KEY": "sk-secret-value-123"},
    Google: {"GEMINI_API_KEY": "AIza-secret-value-123"},
    BlackForestLabs: {"BFL_API_KEY": "bfl_secret-value-123"},
    Bedrock: {"AWS_BEARER_TOKEN_BEDROCK": "ABSK-secret-value-123"},
    AzureOpenAI: {
        "AZURE_OPENAI_API_KEY": "azure-secret-value-123",
        "AZURE_OPENAI_ENDPOINT": "https://acme.openai.azure.com",
        "AZURE_OPENAI_DEPLOYMENT": "images",
    },
    Together: {"TOGETHER_API_KEY": "together-secret-value-123"},
    XAI: {"XAI_API_KEY": "xai-secret-value-123"},
    Stability: {"STABILITY_API_KEY": "sk-secret-value-123"},
    HuggingFace: {"HF_TOKEN": "hf_secret-value-123"},
    Unsplash: {"UNSPLASH_ACCESS_KEY": "secret-value-123"},
}


@pytest.fixture(autouse=True)
def _no_keys_in_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment holds no vendor key, so only the mapping can supply one."""
    others = {
        "FAL_KEY_ID": "",
        "FAL_KEY_SECRET": "",
        "GOOGLE_API_KEY": "",
        "AZURE_OPENAI_AD_TOKEN": "",
    }
    for variables in (*KEYS.values(), others):
        for name in variables:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REPLICATE_WEBHOOK_SECRET", raising=False)


def test_the_order_is_ai_first_stock_last() -> None:
    """from_env tries the AI vendors before the stock photos."""
    assert (
        Replicate, Fal, OpenAIImages, AzureOpenAI, Google, BlackForestLabs, Bedrock, Stability,
        Together, XAI, HuggingFace, Unsplash,
    ) == BUILT_IN  # fmt: skip


@pytest.mark.parametrize("vendor", BUILT_IN, ids=lambda v: v.__name__)
def test_no_key_no_provider(vendor: type[HTTPProvider]) -> None:
    """Without its key a vendor is not built, whatever else is set."""
    assert vendor.from_env({"IMAGEGEN_FAL_APP": "a/b", "IMAGEGEN_OPENAI_MODEL": "m"}) is None


@pytest.mark.parametrize("vendor", BUILT_IN, ids=lambda v: v.__name__)
def test_the_key_builds_it(vendor: type[HTTPProvider]) -> None:
    """With its key a vendor is built, holding the key and never showing it."""
    provider = vendor.from_env(KEYS[vendor])
    assert type(provider) is vendor
    # Bedrock's credentials are boto3's to find: only the HTTP vendors hold a key.
    assert provider.has_key if isinstance(provider, HTTPProvider) else vendor is Bedrock
    assert next(iter(KEYS[vendor].values())) not in repr(provider)


def test_fal_key_from_id_and_secret() -> None:
    """fal's key may come as FAL_KEY_ID and FAL_KEY_SECRET, joined with ':'."""
    fal = Fal.from_env({"FAL_KEY_ID": "id", "FAL_KEY_SECRET": "secret-value-123"})
    assert fal is not None
    assert fal.auth_headers() == {"Authorization": "Key id:secret-value-123"}
    assert Fal.from_env({"FAL_KEY_ID": "id"}) is None


def test_fal_key_wins_over_id_and_secret() -> None:
    """FAL_KEY is used when both forms are set."""
    fal = Fal.from_env({"FAL_KEY": "whole", "FAL_KEY_ID": "id", "FAL_KEY_SECRET": "s"})
    assert fal is not None
    assert fal.auth_headers() == {"Authorization": "Key whole"}


def test_settings_reach_their_vendor() -> None:
    """Each vendor reads its own settings variables, and only when they are set."""
    environ = {
        **KEYS[Replicate],
        **KEYS[Fal],
        **KEYS[OpenAIImages],
        "IMAGEGEN_REPLICATE_MODEL": "owner/model",
        "IMAGEGEN_REPLICATE_WEBHOOK_URL": "https://hooks.example/replicate",
        "REPLICATE_WEBHOOK_SECRET": "whsec_abc",
        "IMAGEGEN_FAL_APP": "fal-ai/flux/dev",
        "IMAGEGEN_FAL_WEBHOOK_AUTH": "token",
        "IMAGEGEN_FAL_WEBHOOK_URL": "",
        "OPENAI_BASE_URL": "https://gateway.example/v1",
    }
    replicate, fal, openai = (vendor.from_env(environ) for vendor in BUILT_IN[:3])
    assert isinstance(replicate, Replicate)
    assert (replicate.model, replicate.webhook_url) == (
        "owner/model",
        "https://hooks.example/replicate",
    )
    assert replicate._webhook_secret == "whsec_abc"
    assert isinstance(fal, Fal)
    assert (fal.app, fal.webhook_auth, fal.webhook_url) == ("fal-ai/flux/dev", "token", None)
    assert isinstance(openai, OpenAIImages)
    assert (openai.model, openai.base_url) == ("gpt-image-1", "https://gateway.example/v1")
