"""ImageRequest(safety=...): one portable setting, each vendor's own control."""

from __future__ import annotations

import base64

import pytest
import respx

from imagegen import (
    Fal,
    ImageGenerator,
    ImageRequest,
    InvalidRequest,
    OpenAIImages,
    Replicate,
    RequestWarning,
    Unsplash,
)
from imagegen.testing import FakeClock, tiny_png

pytestmark = pytest.mark.anyio


def request(safety: str | None) -> ImageRequest:
    return ImageRequest(prompt="a fox", safety=safety)


@pytest.mark.parametrize(
    ("safety", "moderation", "checker", "disabled", "content_filter"),
    [
        (None, None, True, None, "high"),
        ("strict", "auto", True, False, "high"),
        ("relaxed", "low", False, True, "low"),
    ],
)
def test_each_vendor_gets_its_own_control(
    safety: str | None,
    moderation: str | None,
    checker: bool,
    disabled: bool | None,
    content_filter: str,
) -> None:
    asked = request(safety)
    assert OpenAIImages(api_key="sk-x").body_for(asked).get("moderation") == moderation
    assert Fal(key="a:b").body(asked)["enable_safety_checker"] is checker
    assert Replicate(api_token="r8_x").input(asked).get("disable_safety_checker") is disabled
    unsplash = Unsplash(access_key="k")
    assert unsplash._params(asked)["content_filter"] == content_filter


def test_dall_e_gets_no_moderation_field() -> None:
    assert "moderation" not in OpenAIImages(api_key="sk-x", model="dall-e-3").body_for(
        request("relaxed")
    )


async def test_a_model_without_a_control_warns(clock: FakeClock) -> None:
    answer = {"data": [{"b64_json": base64.b64encode(tiny_png()).decode()}]}
    gen = ImageGenerator(providers=[OpenAIImages(api_key="sk-x", model="dall-e-2")], clock=clock)
    with respx.mock() as mock:
        mock.post("https://api.openai.com/v1/images/generations").respond(200, json=answer)
        result = await gen.generate("a fox", width=256, height=256, safety="strict")
    assert RequestWarning("safety", "dall-e-2 has no safety setting", "openai") in (result.warnings)


@pytest.mark.parametrize("bad", ["off", "STRICT", 1, True])
def test_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidRequest, match="safety must be one of strict, relaxed") as c:
        ImageRequest(prompt="x", safety=bad)  # type: ignore[arg-type]
    assert c.value.field == "safety"
    assert request("strict").summary()["safety"] == "strict"
