"""What the in-process and the child-process emulators share: URLs, providers, draws."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from imagegen import (
    XAI,
    AzureOpenAI,
    Bedrock,
    BlackForestLabs,
    Fal,
    Google,
    HuggingFace,
    OpenAIImages,
    Provider,
    Replicate,
    Stability,
    Together,
    Unsplash,
)

from ._profiles import Draw, ProviderProfile, default_profiles


class _EmulatorBase:
    """URLs, imagegen providers and draws, shared by the in-process and process emulators."""

    def __init__(self, profiles: Mapping[str, ProviderProfile] | None) -> None:
        self._profiles: dict[str, ProviderProfile] = dict(
            default_profiles() if profiles is None else profiles
        )
        for name in self._profiles:
            _check_name(name)
        self.origin = ""

    def profile(self, name: str) -> ProviderProfile:
        """The profile instance ``name`` runs with."""
        return self._profiles[name]

    @property
    def names(self) -> tuple[str, ...]:
        """The instances, in the order they were given."""
        return tuple(self._profiles)

    def base_url(self, name: str) -> str:
        """What to pass as ``base_url=`` to the instance's imagegen provider.

        Replicate, OpenAI and BFL: ``{origin}/{name}/v1``; fal: ``{origin}/{name}/run`` (its
        queue is :meth:`queue_url`, its Platform API ``{origin}/{name}/v1``: where ``Fal``
        looks for both, given this ``base_url`` alone); Unsplash: ``{origin}/{name}``;
        Google: the Gemini API's ``{origin}/{name}/v1beta`` (Vertex AI's root is
        ``{origin}/{name}/v1``, its token endpoint ``{origin}/{name}/token``); Bedrock:
        ``{origin}/{name}``, its clients' ``endpoint_url``; Azure: ``{origin}/{name}``,
        the resource's ``endpoint``; Together and xAI: ``{origin}/{name}/v1``; Stability
        and Hugging Face (its router and its Hub both): ``{origin}/{name}``.
        """
        api = self._profiles[name].api
        root = f"{self.origin}/{name}"
        if api == "fal":
            return f"{root}/run"
        if api == "unsplash":
            return root
        if api == "google":
            return f"{root}/v1beta"
        if api in ("bedrock", "azure", "stability", "huggingface"):
            return root
        return f"{root}/v1"

    def queue_url(self, name: str) -> str:
        """fal's queue host for instance ``name``: ``{origin}/{name}/queue``."""
        return f"{self.origin}/{name}/queue"

    def provider(self, instance: str, /, **kwargs: Any) -> Provider:
        """An imagegen provider for ``instance``, named after it, with a dummy key.

        ``kwargs`` go to the provider's constructor (``name=``, ``timeout=``, ``model=``,
        ``poll_interval=``...; ``base_url=`` too, to point it elsewhere). A Google
        instance with ``project=`` is Vertex AI, with a dummy access token.
        """
        name = instance
        api = self._profiles[name].api
        kwargs.setdefault("name", name)
        if api == "google" and "project" in kwargs:
            kwargs.setdefault("base_url", f"{self.origin}/{name}/v1")
            return Google(access_token="ya29.emulator-token", **kwargs)
        kwargs.setdefault("base_url", self.base_url(name))
        if api == "replicate":
            return Replicate(api_token="r8_emulator", **kwargs)
        if api == "fal":
            kwargs.setdefault("queue_url", self.queue_url(name))
            return Fal(key="emulator:secret-key", **kwargs)
        if api == "openai":
            return OpenAIImages(api_key="sk-emulator", **kwargs)
        if api == "google":
            return Google(api_key="AIza-emulator", **kwargs)
        if api == "bfl":
            return BlackForestLabs(api_key="bfl-emulator", **kwargs)
        if api == "bedrock":
            kwargs["endpoint_url"] = kwargs.pop("base_url")
            return Bedrock(session=bedrock_session(), **kwargs)
        if api == "azure":
            kwargs["endpoint"] = kwargs.pop("base_url")
            kwargs.setdefault("deployment", "gpt-image-1")
            return AzureOpenAI(api_key="azure-emulator-key", **kwargs)
        if api == "together":
            return Together(api_key="together-emulator", **kwargs)
        if api == "xai":
            return XAI(api_key="xai-emulator", **kwargs)
        if api == "stability":
            return Stability(api_key="sk-stability-emulator", **kwargs)
        if api == "huggingface":
            kwargs.setdefault("hub_url", kwargs["base_url"])
            return HuggingFace(api_key="hf_emulator", **kwargs)
        return Unsplash(access_key="emulator-access-key", **kwargs)

    def draw(self, name: str, prompt: str = "", n: int = 0) -> Draw:
        """What the ``n``-th create with ``prompt`` meets on ``name`` (forced faults aside)."""
        profile = self._profiles[name]
        return profile.draw(name, prompt if profile.keyed else "", n)


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith("_") or quote(name, safe="") != name:
        raise ValueError(f"instance names must be URL-safe path segments (got {name!r})")


def bedrock_session() -> Any:
    """A boto3 session with the emulator's dummy AWS credentials (boto3 is needed)."""
    import boto3.session  # noqa: PLC0415 - only Bedrock's instances need boto3

    return boto3.session.Session(
        aws_access_key_id="AKIAEMULATOR0000",
        aws_secret_access_key="emulator-aws-secret",
        region_name="us-west-2",
    )
