"""Unsplash: the random-photo request, imgix sizing, credit, download tracking, the quota."""

from __future__ import annotations

import logging
import runpy
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from provider_support import session

from imagegen import (
    ContentRejected,
    DownloadPolicy,
    Fallback,
    ImageGenerator,
    ImageRequest,
    InvalidConfig,
    MemoryStorage,
    ProviderAuthError,
    ProviderContext,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from imagegen.providers._payloads import with_params
from imagegen.providers._unsplash import Unsplash, build_query, orientation_for
from imagegen.testing import FakeClock, failing, tiny_png

# Unsplash's documented test vector.
KEY = "TESTACCESSKEY"
API = "https://api.unsplash.com"
RANDOM_URL = f"{API}/photos/random"
TRACK_URL = f"{API}/photos/Ab12Cd34Ef5/download?ixid=X"
RAW = "https://images.unsplash.com/photo-1?ixid=X"
PROFILE = "https://unsplash.com/@janedoe?utm_source=imagegen&utm_medium=referral"
HOME = "https://unsplash.com/?utm_source=imagegen&utm_medium=referral"
PHOTO: dict[str, Any] = {
    "id": "Ab12Cd34Ef5",
    "created_at": "2025-05-01T10:00:00Z",
    "updated_at": "2025-06-01T10:00:00Z",
    "promoted_at": None,
    "width": 6000,
    "height": 4000,
    "color": "#c0a080",
    "blur_hash": "LKO2?U%2Tw=w]~RB",
    "description": None,
    "current_user_collections": [],
    "urls": {
        "raw": RAW,
        "full": f"{RAW}&q=85",
        "regular": f"{RAW}&w=1080",
        "small": f"{RAW}&w=400",
        "thumb": f"{RAW}&w=200",
    },
    "links": {
        "self": f"{API}/photos/Ab12Cd34Ef5",
        "html": "https://unsplash.com/photos/Ab12Cd34Ef5",
        "download": "https://unsplash.com/photos/Ab12Cd34Ef5/download?ixid=X",
        "download_location": TRACK_URL,
    },
    "user": {
        "id": "u9",
        "updated_at": "2025-06-01T10:00:00Z",
        "username": "janedoe",
        "name": "Jane Doe",
        "first_name": "Jane",
        "last_name": "Doe",
        "bio": None,
        "location": None,
        "total_collections": 0,
        "social": {"instagram_username": None, "portfolio_url": None, "twitter_username": None},
        "links": {
            "html": "https://unsplash.com/@janedoe",
            "photos": f"{API}/users/janedoe/photos",
            "self": f"{API}/users/janedoe",
        },
        "profile_image": {
            "small": "https://images.unsplash.com/profile-1?w=32",
            "medium": "https://images.unsplash.com/profile-1?w=64",
            "large": "https://images.unsplash.com/profile-1?w=128",
        },
    },
}
LIMITS = {"X-Ratelimit-Limit": "50", "X-Ratelimit-Remaining": "49"}
TRACKED = {"url": "https://images.unsplash.com/photo-1?ixid=X&fm=jpg"}
SIZED = f"{RAW}&w=1024&h=768&fit=crop&crop=entropy&fm=jpg&q=80"
EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "unsplash_provider.py"


def vector_request(**fields: Any) -> ImageRequest:
    """A request whose query is "bicycle" and whose size is landscape, as in the vector."""
    values: dict[str, Any] = {
        "prompt": "A photo of a bicycle",
        "width": 1024,
        "height": 768,
        "output_format": "jpeg",
    }
    values.update(fields)
    return ImageRequest(**values)


def photo_ok(remaining: int = 49, photo: Any = None) -> httpx.Response:
    headers = {"X-Ratelimit-Limit": "50", "X-Ratelimit-Remaining": str(remaining)}
    return httpx.Response(200, json=PHOTO if photo is None else photo, headers=headers)


def route_vector(mock: respx.MockRouter, *, remaining: int = 49) -> tuple[Any, Any]:
    """The random-photo route answering the vector photo, and the tracking route."""
    photo = mock.get(RANDOM_URL).mock(return_value=photo_ok(remaining))
    track = mock.get(TRACK_URL).mock(return_value=httpx.Response(200, json=TRACKED, headers=LIMITS))
    return photo, track


def assert_api_headers(request: httpx.Request) -> None:
    assert request.headers["Authorization"] == f"Client-ID {KEY}"
    assert request.headers["Accept-Version"] == "v1"
    assert request.headers["User-Agent"].startswith("imagegen")


class TestConstruction:
    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Name unsplash, tier 1, the public API, high content filter, hotlinking."""
        monkeypatch.delenv("UNSPLASH_ACCESS_KEY", raising=False)
        provider = Unsplash()
        assert (provider.name, provider.tier, provider.base_url) == ("unsplash", 1, API)
        assert provider.content_filter == "high"
        assert provider.app_name == "imagegen"
        assert not provider.copy_to_storage
        assert provider.min_remaining == 1
        assert provider.remaining is None
        assert not provider.has_key

    def test_key_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without access_key the provider reads UNSPLASH_ACCESS_KEY."""
        monkeypatch.setenv("UNSPLASH_ACCESS_KEY", KEY)
        assert Unsplash().auth_headers() == {
            "Authorization": f"Client-ID {KEY}",
            "Accept-Version": "v1",
        }

    def test_overrides(self) -> None:
        """name, tier and timeout overrides apply."""
        provider = Unsplash(access_key=KEY, name="stock", tier=2, timeout=5.0)
        assert (provider.name, provider.tier, provider.timeout) == ("stock", 2, 5.0)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("app_name", ""),
            ("app_name", "  "),
            ("content_filter", "medium"),
            ("copy_to_storage", "yes"),
            ("min_remaining", -1),
            ("min_remaining", True),
            ("min_remaining", 1.5),
            ("access_key", ""),
            ("base_url", "ftp://api.unsplash.com"),
        ],
    )
    def test_bad_options(self, field: str, value: object) -> None:
        """Bad options are InvalidConfig naming the field."""
        options: dict[str, Any] = {"access_key": KEY, field: value}
        with pytest.raises(InvalidConfig) as info:
            Unsplash(**options)
        assert info.value.field == field

    @pytest.mark.anyio
    async def test_missing_key_names_the_argument_and_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a key the error says to pass access_key= or set UNSPLASH_ACCESS_KEY."""
        monkeypatch.delenv("UNSPLASH_ACCESS_KEY", raising=False)
        with pytest.raises(ProviderAuthError) as info:
            await Unsplash().generate(ImageRequest(prompt="x"), ProviderContext(deadline=30))
        assert "access_key=" in str(info.value)
        assert "UNSPLASH_ACCESS_KEY" in str(info.value)

    def test_repr_hides_key(self) -> None:
        """The key is not in repr."""
        provider = Unsplash(access_key=KEY)
        assert KEY not in repr(provider)
        assert "key=set" in repr(provider)


class TestQueryBuilding:
    @pytest.mark.parametrize(
        ("prompt", "query"),
        [
            ("A photo of a bicycle", "bicycle"),
            ("a red bicycle leaning on a brick wall", "red bicycle leaning brick wall"),
            (
                "Highly detailed 8K photo, realistic style: Mountain LAKE at dawn",
                "mountain lake dawn",
            ),
            ("one two three four five six seven", "one two three four five"),
            ("cat, cat and CAT", "cat"),
            ("a highly detailed photo", "a highly detailed"),
            ("Café in Zürich", "café zürich"),
            ("!!! ???", ""),
        ],
    )
    def test_build_query(self, prompt: str, query: str) -> None:
        """Lowercased words without filler and style words, at most 5; all filler: first 3."""
        assert build_query(prompt) == query

    @pytest.mark.parametrize(
        ("width", "height", "orientation"),
        [
            (1024, 768, "landscape"),
            (1130, 1024, "landscape"),
            (1126, 1024, "squarish"),
            (1024, 1024, "squarish"),
            (922, 1024, "squarish"),
            (921, 1024, "portrait"),
            (768, 1024, "portrait"),
        ],
    )
    def test_orientation_for(self, width: int, height: int, orientation: str) -> None:
        """Ratio above 1.1 is landscape, below 0.9 portrait, otherwise squarish."""
        assert orientation_for(width, height) == orientation

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://unsplash.com/@janedoe", "https://unsplash.com/@janedoe?a=1&b=x%20y"),
            ("https://unsplash.com/?ref=z", "https://unsplash.com/?ref=z&a=1&b=x%20y"),
            ("https://u.example/p?a=0&k=%2B", "https://u.example/p?k=%2B&a=1&b=x%20y"),
            ("https://u.example/p?#frag", "https://u.example/p?a=1&b=x%20y#frag"),
        ],
    )
    def test_with_params(self, url: str, expected: str) -> None:
        """Parameters are appended to the query string, replacing ones of the same name."""
        assert with_params(url, {"a": "1", "b": "x y"}) == expected


class TestGenerate:
    @pytest.mark.anyio
    async def test_exact_request(self, clock: FakeClock) -> None:
        """GET /photos/random with the vector's query string and both headers, no body."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            photo, _track = route_vector(mock)
            await provider.generate(vector_request(), ctx)
        sent = photo.calls.last.request
        assert sent.method == "GET"
        assert str(sent.url) == (
            f"{RANDOM_URL}?query=bicycle&orientation=landscape&content_filter=high"
        )
        assert sent.content == b""
        assert_api_headers(sent)

    @pytest.mark.anyio
    async def test_vector_photo_becomes_a_hotlink(self, clock: FakeClock) -> None:
        """urls.raw gains w, h, fit, crop, fm and q; the image hotlinks Unsplash, credited."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, started):
            route_vector(mock)
            image = await provider.generate(vector_request(), ctx)
        assert image.url == SIZED
        assert image.hotlink
        assert image.data is None
        assert (image.width, image.height, image.content_type) == (1024, 768, "image/jpeg")
        assert image.attribution == f"Photo by Jane Doe ({PROFILE}) on Unsplash ({HOME})"
        assert image.raw == {
            "photographer": "Jane Doe",
            "profile": PROFILE,
            "unsplash": HOME,
            "photo_id": "Ab12Cd34Ef5",
        }
        assert started == []  # nothing billable, nothing to cancel
        assert ctx.handle is None
        assert provider.remaining == 49

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("output_format", "fm"), [("png", "png"), ("jpeg", "jpg"), ("webp", "webp")]
    )
    async def test_output_format(self, clock: FakeClock, output_format: str, fm: str) -> None:
        """fm follows output_format (jpeg is jpg) and the content type matches."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            route_vector(mock)
            image = await provider.generate(
                vector_request(output_format=output_format, width=512, height=512), ctx
            )
        assert image.url == f"{RAW}&w=512&h=512&fit=crop&crop=entropy&fm={fm}&q=80"
        assert image.content_type == f"image/{'jpeg' if fm == 'jpg' else fm}"

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("width", "height", "orientation"),
        [(1024, 768, "landscape"), (768, 1024, "portrait"), (1024, 1024, "squarish")],
    )
    async def test_orientation_is_sent(
        self, clock: FakeClock, width: int, height: int, orientation: str
    ) -> None:
        """The orientation parameter follows the requested size."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            photo, _track = route_vector(mock)
            await provider.generate(vector_request(width=width, height=height), ctx)
        assert photo.calls.last.request.url.params["orientation"] == orientation

    @pytest.mark.anyio
    async def test_query_encoding_and_content_filter(self, clock: FakeClock) -> None:
        """A several-word query is encoded in the query string; content_filter is the option."""
        provider = Unsplash(access_key=KEY, content_filter="low")
        async with session(clock) as (mock, ctx, _):
            photo, _track = route_vector(mock)
            await provider.generate(
                vector_request(prompt="a red bicycle leaning on a brick wall"), ctx
            )
        params = photo.calls.last.request.url.params
        assert params["query"] == "red bicycle leaning brick wall"
        assert params["content_filter"] == "low"

    @pytest.mark.anyio
    async def test_prompt_without_words_sends_no_query(self, clock: FakeClock) -> None:
        """A prompt of punctuation only asks for any random photo."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            photo, _track = route_vector(mock)
            await provider.generate(vector_request(prompt="!!!"), ctx)
        assert "query" not in photo.calls.last.request.url.params

    @pytest.mark.anyio
    async def test_provider_options_merge_last(self, clock: FakeClock) -> None:
        """provider_options join the query string last; lists are comma-joined, None removes."""
        provider = Unsplash(access_key=KEY)
        request = vector_request(
            provider_options={
                "unsplash": {"collections": ["123", "456"], "orientation": None, "query": "bike"},
                "fal": {"ignored": 1},
            }
        )
        async with session(clock) as (mock, ctx, _):
            photo, _track = route_vector(mock)
            await provider.generate(request, ctx)
        assert str(photo.calls.last.request.url) == (
            f"{RANDOM_URL}?query=bike&content_filter=high&collections=123%2C456"
        )

    @pytest.mark.anyio
    async def test_count_option_answers_a_list(self, clock: FakeClock) -> None:
        """With count the answer is an array: its first photo is used; an empty one fails."""
        provider = Unsplash(access_key=KEY)
        request = vector_request(provider_options={"unsplash": {"count": 1}})
        async with session(clock) as (mock, ctx, _):
            photo, _track = route_vector(mock)
            photo.mock(return_value=photo_ok(photo=[PHOTO]))
            image = await provider.generate(request, ctx)
            assert image.url == SIZED
            assert photo.calls.last.request.url.params["count"] == "1"
            photo.mock(return_value=photo_ok(photo=[]))
            with pytest.raises(ProviderError) as info:
                await provider.generate(request, ctx)
        assert not info.value.retryable

    @pytest.mark.anyio
    async def test_copy_to_storage_turns_hotlink_off(self, clock: FakeClock) -> None:
        """copy_to_storage=True returns the same URL for the generator to download."""
        provider = Unsplash(access_key=KEY, copy_to_storage=True)
        async with session(clock) as (mock, ctx, _):
            route_vector(mock)
            image = await provider.generate(vector_request(), ctx)
        assert image.url == SIZED
        assert not image.hotlink

    @pytest.mark.anyio
    async def test_app_name_and_links_with_query_strings(self, clock: FakeClock) -> None:
        """utm parameters are appended correctly to a profile link that has a query already."""
        provider = Unsplash(access_key=KEY, app_name="my app")
        photo = {
            **PHOTO,
            "user": {**PHOTO["user"], "links": {"html": "https://unsplash.com/@j?x=1"}},
        }
        async with session(clock) as (mock, ctx, _):
            route, _track = route_vector(mock)
            route.mock(return_value=photo_ok(photo=photo))
            image = await provider.generate(vector_request(), ctx)
        assert image.raw is not None
        assert image.raw["profile"] == (
            "https://unsplash.com/@j?x=1&utm_source=my%20app&utm_medium=referral"
        )
        assert (
            image.raw["unsplash"] == "https://unsplash.com/?utm_source=my%20app&utm_medium=referral"
        )
        assert image.attribution == (
            f"Photo by Jane Doe ({image.raw['profile']}) on Unsplash ({image.raw['unsplash']})"
        )

    @pytest.mark.anyio
    async def test_credit_without_name_or_profile(self, clock: FakeClock) -> None:
        """No name: the username; no profile: one from the username; no user: Unsplash only."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            route, _track = route_vector(mock)
            route.mock(return_value=photo_ok(photo={**PHOTO, "user": {"username": "jd"}}))
            image = await provider.generate(vector_request(), ctx)
            expected = "https://unsplash.com/@jd?utm_source=imagegen&utm_medium=referral"
            assert image.attribution == f"Photo by jd ({expected}) on Unsplash ({HOME})"
            route.mock(return_value=photo_ok(photo={**PHOTO, "user": None}))
            image = await provider.generate(vector_request(), ctx)
            assert image.attribution == f"Photo on Unsplash ({HOME})"
            route.mock(return_value=photo_ok(photo={**PHOTO, "user": {"name": "Ann"}}))
            image = await provider.generate(vector_request(), ctx)
            assert image.attribution == f"Photo by Ann on Unsplash ({HOME})"

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "photo",
        [
            {"id": "x"},
            {**PHOTO, "urls": {"raw": "javascript:alert(1)"}},
            {**PHOTO, "urls": None},
            "a string",
        ],
    )
    async def test_unexpected_photo_shapes(self, clock: FakeClock, photo: Any) -> None:
        """A 200 without a usable urls.raw is a non-retryable ProviderError."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            route, track = route_vector(mock)
            route.mock(return_value=photo_ok(photo=photo))
            with pytest.raises(ProviderError) as info:
                await provider.generate(vector_request(), ctx)
        assert type(info.value) is ProviderError
        assert not info.value.retryable
        assert not track.called

    @pytest.mark.anyio
    async def test_malformed_json(self, clock: FakeClock) -> None:
        """An unreadable 200 body is a retryable ProviderUnavailable."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            mock.get(RANDOM_URL).mock(return_value=httpx.Response(200, text="<html>oops"))
            with pytest.raises(ProviderUnavailable) as info:
                await provider.generate(vector_request(), ctx)
        assert info.value.retryable


class TestDownloadTracking:
    @pytest.mark.anyio
    async def test_download_location_is_called_with_auth(self, clock: FakeClock) -> None:
        """Choosing a photo sends GET download_location with both headers, once."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            _photo, track = route_vector(mock)
            await provider.generate(vector_request(), ctx)
        assert track.call_count == 1
        sent = track.calls.last.request
        assert sent.method == "GET"
        assert str(sent.url) == TRACK_URL
        assert_api_headers(sent)

    @pytest.mark.anyio
    async def test_tracking_goes_through_base_url(self, clock: FakeClock) -> None:
        """Behind a gateway the report goes to base_url plus download_location's path."""
        provider = Unsplash(access_key=KEY, base_url="https://gw.example/unsplash/")
        async with session(clock) as (mock, ctx, _):
            mock.get("https://gw.example/unsplash/photos/random").mock(return_value=photo_ok())
            track = mock.get("https://gw.example/unsplash/photos/Ab12Cd34Ef5/download?ixid=X")
            track.mock(return_value=httpx.Response(200, json=TRACKED))
            unsplash = mock.get(TRACK_URL)
            await provider.generate(vector_request(), ctx)
        assert track.called
        assert_api_headers(track.calls.last.request)
        assert not unsplash.called

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "failure",
        [
            httpx.Response(500, json={"errors": ["boom"]}),
            httpx.Response(404, json={"errors": ["Couldn't find Photo"]}),
            httpx.ConnectError("refused"),
        ],
    )
    async def test_tracking_failure_is_logged_not_raised(
        self, clock: FakeClock, failure: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed report logs a warning and the image is still returned."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            _photo, track = route_vector(mock)
            track.mock(side_effect=[failure])
            with caplog.at_level(logging.WARNING, logger="imagegen.providers"):
                image = await provider.generate(vector_request(), ctx)
        assert image.url == SIZED
        assert "reporting the download failed" in caplog.text
        assert KEY not in caplog.text

    @pytest.mark.anyio
    async def test_tracking_rate_limited_records_the_quota(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A rate-limited report still returns the image, and the next call is refused."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            photo, track = route_vector(mock)
            track.mock(return_value=httpx.Response(403, text="Rate Limit Exceeded"))
            with caplog.at_level(logging.WARNING, logger="imagegen.providers"):
                image = await provider.generate(vector_request(), ctx)
            assert image.url == SIZED
            assert provider.remaining == 0
            with pytest.raises(ProviderRateLimited):
                await provider.generate(vector_request(), ctx)
        assert photo.call_count == 1

    @pytest.mark.anyio
    async def test_hanging_tracking_is_bounded(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A report that never answers is given up after 5 seconds; the image is kept."""

        async def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/download"):
                await anyio.sleep_forever()
            return photo_ok()

        provider = Unsplash(access_key=KEY)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            ctx = ProviderContext(deadline=30, clock=clock, http_factory=lambda: http)
            with caplog.at_level(logging.WARNING, logger="imagegen.providers"):
                image = await provider.generate(vector_request(), ctx)
        assert image.url == SIZED
        assert clock.monotonic() == pytest.approx(5.0)
        assert "timed out" in caplog.text

    @pytest.mark.anyio
    async def test_missing_download_location_warns(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A photo without download_location is used, with a warning."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            route, track = route_vector(mock)
            route.mock(return_value=photo_ok(photo={**PHOTO, "links": None}))
            with caplog.at_level(logging.WARNING, logger="imagegen.providers"):
                image = await provider.generate(vector_request(), ctx)
        assert image.url == SIZED
        assert not track.called
        assert "no download_location" in caplog.text


class TestRateLimits:
    @pytest.mark.anyio
    async def test_stops_before_the_limit(self, clock: FakeClock) -> None:
        """Once X-Ratelimit-Remaining reaches min_remaining, the next call sends nothing."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            photo, track = route_vector(mock, remaining=2)
            track.mock(
                return_value=httpx.Response(
                    200, json=TRACKED, headers={"X-Ratelimit-Remaining": "1"}
                )
            )
            await provider.generate(vector_request(), ctx)
            assert provider.remaining == 1
            with pytest.raises(ProviderRateLimited) as info:
                await provider.generate(vector_request(), ctx)
        assert photo.call_count == 1
        assert track.call_count == 1
        assert info.value.retryable
        assert info.value.retry_after == 3600
        assert info.value.status is None

    @pytest.mark.anyio
    async def test_min_remaining_zero_spends_everything(self, clock: FakeClock) -> None:
        """With min_remaining=0 a last request is made at 1 left, none at 0."""
        provider = Unsplash(access_key=KEY, min_remaining=0)
        async with session(clock) as (mock, ctx, _):
            photo, track = route_vector(mock, remaining=1)
            track.mock(return_value=httpx.Response(200, json=TRACKED))
            await provider.generate(vector_request(), ctx)
            photo.mock(return_value=photo_ok(remaining=0))
            await provider.generate(vector_request(), ctx)
            with pytest.raises(ProviderRateLimited):
                await provider.generate(vector_request(), ctx)
        assert photo.call_count == 2

    @pytest.mark.anyio
    async def test_state_resets_after_an_hour(self, clock: FakeClock) -> None:
        """An hour after the last reading the provider asks again."""
        provider = Unsplash(access_key=KEY)
        async with session(clock, seconds=7200) as (mock, ctx, _):
            photo, _track = route_vector(mock, remaining=1)
            _track.mock(return_value=httpx.Response(200, json=TRACKED))
            await provider.generate(vector_request(), ctx)
            clock.advance(3599)
            with pytest.raises(ProviderRateLimited):
                await provider.generate(vector_request(), ctx)
            clock.advance(1)
            photo.mock(return_value=photo_ok(remaining=49))
            await provider.generate(vector_request(), ctx)
        assert photo.call_count == 2
        assert provider.remaining == 49

    @pytest.mark.anyio
    async def test_concurrent_calls_share_the_last_requests(self, clock: FakeClock) -> None:
        """Calls in flight count against the known quota, so they cannot all pass the floor."""
        provider = Unsplash(access_key=KEY)
        results: list[str] = []
        async with session(clock) as (mock, ctx, _):
            photo, track = route_vector(mock, remaining=3)
            track.mock(return_value=httpx.Response(200, json=TRACKED))
            await provider.generate(vector_request(), ctx)

            async def slow_photo(_: httpx.Request) -> httpx.Response:
                await clock.sleep(1)
                return photo_ok(remaining=2)

            photo.mock(side_effect=slow_photo)

            async def one() -> None:
                try:
                    await provider.generate(vector_request(), ctx)
                    results.append("ok")
                except ProviderRateLimited:
                    results.append("refused")

            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(one)
        assert sorted(results) == ["ok", "ok", "refused"]
        assert photo.call_count == 3

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(403, text="Rate Limit Exceeded"),
            httpx.Response(429, json={"errors": ["Too many requests"]}),
            httpx.Response(
                403, json={"errors": ["Forbidden"]}, headers={"X-Ratelimit-Remaining": "0"}
            ),
        ],
    )
    async def test_rate_limited_answers(self, clock: FakeClock, answer: httpx.Response) -> None:
        """429, 403 "Rate Limit Exceeded", 403 with 0 left: retryable in an hour; no more asking."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            photo = mock.get(RANDOM_URL).mock(return_value=answer)
            with pytest.raises(ProviderRateLimited) as info:
                await provider.generate(vector_request(), ctx)
            assert info.value.status == answer.status_code
            assert info.value.retryable
            assert info.value.retry_after == 3600
            assert provider.remaining == 0
            with pytest.raises(ProviderRateLimited):
                await provider.generate(vector_request(), ctx)
        assert photo.call_count == 1

    @pytest.mark.anyio
    async def test_error_answers_update_the_quota(self, clock: FakeClock) -> None:
        """X-Ratelimit-Remaining on an error answer is remembered too."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            photo = mock.get(RANDOM_URL).mock(
                return_value=httpx.Response(
                    404,
                    json={"errors": ["No photos found."]},
                    headers={"X-Ratelimit-Remaining": "1"},
                )
            )
            with pytest.raises(ProviderError):
                await provider.generate(vector_request(), ctx)
            assert provider.remaining == 1
            with pytest.raises(ProviderRateLimited):
                await provider.generate(vector_request(), ctx)
        assert photo.call_count == 1


class TestErrors:
    @pytest.mark.anyio
    async def test_401_errors_body(self, clock: FakeClock) -> None:
        """401 {"errors": [...]} is a ProviderAuthError carrying the vendor's message."""
        provider = Unsplash(access_key=KEY)
        body = {"errors": ["OAuth error: The access token is invalid"]}
        async with session(clock) as (mock, ctx, _):
            mock.get(RANDOM_URL).mock(return_value=httpx.Response(401, json=body))
            with pytest.raises(ProviderAuthError) as info:
                await provider.generate(vector_request(), ctx)
        assert info.value.status == 401
        assert not info.value.retryable
        assert "The access token is invalid" in str(info.value)
        assert info.value.provider == "unsplash"

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("status", "body", "kind", "retryable"),
        [
            (403, {"errors": ["Missing permissions"]}, ProviderAuthError, False),
            (404, {"errors": ["Couldn't find Photo"]}, ProviderError, False),
            (400, {"errors": ["query is invalid"]}, ProviderError, False),
            (410, {"errors": ["Query flagged as spam"]}, ContentRejected, False),
            (500, {"errors": ["Internal error"]}, ProviderUnavailable, True),
            (503, None, ProviderUnavailable, True),
        ],
    )
    async def test_status_mapping(
        self,
        clock: FakeClock,
        status: int,
        body: Any,
        kind: type[ProviderError],
        retryable: bool,
    ) -> None:
        """Each status the Unsplash section lists maps to its error class."""
        provider = Unsplash(access_key=KEY)
        answer = httpx.Response(status, json=body) if body else httpx.Response(status)
        async with session(clock) as (mock, ctx, _):
            mock.get(RANDOM_URL).mock(return_value=answer)
            with pytest.raises(ProviderError) as info:
                await provider.generate(vector_request(), ctx)
        assert type(info.value) is kind
        assert info.value.status == status
        assert info.value.retryable is retryable
        assert KEY not in str(info.value)

    @pytest.mark.anyio
    async def test_transport_errors(self, clock: FakeClock) -> None:
        """Connection refused and a read timeout are both retryable: the GET creates nothing."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            route = mock.get(RANDOM_URL).mock(side_effect=httpx.ConnectError("refused"))
            with pytest.raises(ProviderUnavailable) as refused:
                await provider.generate(vector_request(), ctx)
            route.mock(side_effect=httpx.ReadTimeout("slow"))
            with pytest.raises(ProviderTimeout) as timeout:
                await provider.generate(vector_request(), ctx)
        assert refused.value.retryable
        assert timeout.value.retryable

    @pytest.mark.anyio
    async def test_missing_key_sends_nothing(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a key, generate() and check() raise ProviderAuthError before any request."""
        monkeypatch.delenv("UNSPLASH_ACCESS_KEY", raising=False)
        provider = Unsplash()
        async with session(clock) as (mock, ctx, _):
            route = mock.route().mock(return_value=httpx.Response(200))
            with pytest.raises(ProviderAuthError) as info:
                await provider.generate(vector_request(), ctx)
            with pytest.raises(ProviderAuthError):
                await provider.check(ctx)
        assert not route.called
        assert "UNSPLASH_ACCESS_KEY" in str(info.value)


class TestCheckAndCancel:
    @pytest.mark.anyio
    async def test_check_lists_one_photo(self, clock: FakeClock) -> None:
        """check() is GET /photos?per_page=1 with both headers, and records the quota."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            route = mock.get(f"{API}/photos").mock(
                return_value=httpx.Response(200, json=[PHOTO], headers=LIMITS)
            )
            await provider.check(ctx)
        sent = route.calls.last.request
        assert str(sent.url) == f"{API}/photos?per_page=1"
        assert_api_headers(sent)
        assert provider.remaining == 49

    @pytest.mark.anyio
    async def test_check_maps_errors_and_respects_the_quota(self, clock: FakeClock) -> None:
        """A bad key fails check(); a spent quota refuses it without a request."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            route = mock.get(f"{API}/photos").mock(
                return_value=httpx.Response(401, json={"errors": ["OAuth error"]})
            )
            with pytest.raises(ProviderAuthError):
                await provider.check(ctx)
            route.mock(
                return_value=httpx.Response(200, json=[], headers={"X-Ratelimit-Remaining": "1"})
            )
            await provider.check(ctx)
            with pytest.raises(ProviderRateLimited):
                await provider.check(ctx)
        assert route.call_count == 2

    @pytest.mark.anyio
    async def test_cancel_does_nothing(self, clock: FakeClock) -> None:
        """There is no remote work to cancel: cancel() sends nothing."""
        provider = Unsplash(access_key=KEY)
        async with session(clock) as (mock, ctx, _):
            route = mock.route().mock(return_value=httpx.Response(200))
            await provider.cancel("anything", ctx)
        assert not route.called


class TestThroughGenerator:
    @pytest.mark.anyio
    async def test_hotlinked_result(self, clock: FakeClock) -> None:
        """With MemoryStorage the result is the Unsplash URL, credited, and nothing is stored."""
        storage = MemoryStorage()
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                _photo, track = route_vector(mock)
                async with ImageGenerator(
                    providers=[failing("ai"), Unsplash(access_key=KEY)],
                    http=http,
                    storage=storage,
                    clock=clock,
                ) as gen:
                    result = await gen.generate(vector_request())
        assert result.provider == "unsplash"
        assert result.url == SIZED
        assert result.key is None
        assert result.data is None
        assert result.attribution == f"Photo by Jane Doe ({PROFILE}) on Unsplash ({HOME})"
        assert (result.width, result.height) == (1024, 768)
        assert not result.is_default
        assert storage.objects == {}
        assert track.call_count == 1
        assert [a.provider for a in result.attempts] == ["ai", "unsplash"]

    @pytest.mark.anyio
    async def test_copy_to_storage_stores_the_bytes(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """copy_to_storage=True downloads the sized photo into storage, still credited."""

        async def public_dns(host: str, port: int, **_: Any) -> list[Any]:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

        monkeypatch.setattr("imagegen._download.anyio.getaddrinfo", public_dns)
        storage = MemoryStorage()
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                route_vector(mock)
                sized_png = SIZED.replace("fm=jpg", "fm=png")
                image = mock.get(sized_png).mock(
                    return_value=httpx.Response(
                        200, content=tiny_png(), headers={"Content-Type": "image/png"}
                    )
                )
                async with ImageGenerator(
                    providers=[Unsplash(access_key=KEY, copy_to_storage=True)],
                    http=http,
                    storage=storage,
                    download=DownloadPolicy(),
                    clock=clock,
                ) as gen:
                    result = await gen.generate(vector_request(output_format="png"))
        assert image.called
        assert result.key is not None
        assert result.key in storage.objects
        assert result.url == f"memory://{result.key}"
        assert result.source_url == sized_png
        assert result.attribution is not None
        assert "Jane Doe" in result.attribution

    @pytest.mark.anyio
    async def test_rate_limit_does_not_wait_an_hour(self, clock: FakeClock) -> None:
        """A 403 rate limit is not waited out: the default image comes at once, one request made."""
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=False) as mock:
                photo = mock.get(RANDOM_URL).mock(
                    return_value=httpx.Response(403, text="Rate Limit Exceeded")
                )
                async with ImageGenerator(
                    providers=[Unsplash(access_key=KEY)],
                    strategy=Fallback(),
                    http=http,
                    clock=clock,
                ) as gen:
                    result = await gen.generate(vector_request())
        assert result.is_default
        assert photo.call_count == 1
        assert clock.monotonic() < 1
        assert result.attempts[0].error is not None
        assert result.attempts[0].error.kind == "ProviderRateLimited"


class TestExample:
    def test_without_key_explains_and_exits(
        self,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """With no UNSPLASH_ACCESS_KEY the example prints one line and sends nothing."""
        monkeypatch.delenv("UNSPLASH_ACCESS_KEY", raising=False)
        monkeypatch.setattr(sys, "argv", [EXAMPLE.name])
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route().mock(return_value=httpx.Response(500))
            runpy.run_path(str(EXAMPLE), run_name="__main__")
        out = capsys.readouterr().out
        assert "UNSPLASH_ACCESS_KEY" in out
        assert out.count("\n") == 1
        assert not route.called

    def test_with_key_prints_the_hotlink(
        self,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
    ) -> None:
        """With a key (and Unsplash mocked) the example prints the hotlink and the credit."""
        monkeypatch.setenv("UNSPLASH_ACCESS_KEY", KEY)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [EXAMPLE.name])
        with respx.mock(assert_all_called=False) as mock:
            mock.get(RANDOM_URL).mock(return_value=photo_ok())
            mock.get(TRACK_URL).mock(return_value=httpx.Response(200, json=TRACKED))
            runpy.run_path(str(EXAMPLE), run_name="__main__")
        out = capsys.readouterr().out
        assert "unsplash" in out
        assert "https://images.unsplash.com/photo-1?ixid=X&w=" in out
        assert "Photo by Jane Doe" in out

    def test_fallback_writes_the_placeholder(
        self,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
    ) -> None:
        """When Unsplash refuses the key, the placeholder's bytes are written to a file."""
        monkeypatch.setenv("UNSPLASH_ACCESS_KEY", KEY)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [EXAMPLE.name, "a lighthouse"])
        with respx.mock(assert_all_called=False) as mock:
            mock.get(RANDOM_URL).mock(
                return_value=httpx.Response(401, json={"errors": ["OAuth error"]})
            )
            runpy.run_path(str(EXAMPLE), run_name="__main__")
        out = capsys.readouterr().out
        assert "placeholder: wrote unsplash-example.png" in out
        assert "unsplash: ProviderAuthError" in out
        assert (tmp_path / "unsplash-example.png").stat().st_size > 0
