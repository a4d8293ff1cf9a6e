"""Vertex AI with Application Default Credentials: a service account's key file, its
JWT exchanged for a token at the emulator's token endpoint, refreshed in a thread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.emulator import Emulator, closed_port_url
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from imagegen import (
    AllProvidersFailed,
    Google,
    ImageGenerator,
    MemoryStorage,
    ProviderAuthError,
    ProviderUnavailable,
    Retry,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def key_file(tmp_path: Path, private_key: str, token_uri: str) -> Path:
    """A service account's key file, as the Cloud console downloads it."""
    path = tmp_path / "service-account.json"
    info = {
        "type": "service_account",
        "project_id": "acme",
        "private_key_id": "0123456789abcdef",
        "private_key": private_key,
        "client_email": "images@acme.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path


def vertex(emu: Emulator) -> Google:
    return Google(project="acme", location="us-central1", base_url=f"{emu.origin}/google/v1")


def generator(provider: Google) -> ImageGenerator:
    return ImageGenerator(
        providers=[provider],
        storage=MemoryStorage(),
        default_image=None,
        retry=Retry(attempts=1),
    )


async def test_a_service_account_key_file(
    tmp_path: Path, private_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GOOGLE_APPLICATION_CREDENTIALS names the key file; one token serves both calls."""
    async with Emulator() as emu:
        path = key_file(tmp_path, private_key, f"{emu.origin}/google/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        provider = vertex(emu)
        async with generator(provider) as gen:
            first = await gen.generate("a red fox")
            second = await gen.generate("a grey wolf")
        stats = emu.stats("google")
    assert (first.provider, second.provider) == ("google", "google")
    assert (stats.tokens, stats.billed) == (1, 2)
    assert provider.tokens is not None
    assert provider.tokens.current is not None
    assert provider.tokens.current.startswith("ya29.emulator-")
    assert provider.tokens.current not in repr(provider)


async def test_an_unreachable_token_endpoint(
    tmp_path: Path, private_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No token, no call: the attempt fails as unavailable, and nothing is billed."""
    async with Emulator() as emu:
        path = key_file(tmp_path, private_key, f"{closed_port_url()}/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        async with generator(vertex(emu)) as gen:
            with pytest.raises(AllProvidersFailed) as caught:
                await gen.generate("a red fox")
        stats = emu.stats("google")
    error = caught.value.attempts[0].error
    assert isinstance(error, ProviderUnavailable)
    assert "token endpoint" in str(error)
    assert stats.creates == 0


async def test_a_missing_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ADC that finds no credentials is an auth error naming the problem."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    async with Emulator() as emu, generator(vertex(emu)) as gen:
        with pytest.raises(AllProvidersFailed) as caught:
            await gen.generate("a red fox")
    error = caught.value.attempts[0].error
    assert isinstance(error, ProviderAuthError)
    assert "Application Default Credentials" in str(error)
