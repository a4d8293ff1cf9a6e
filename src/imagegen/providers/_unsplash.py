"""Unsplash: a stock photo that matches the prompt, the fallback when AI providers fail.

Unsplash's API guidelines shape this provider more than its endpoints do: the photo
is hotlinked from ``images.unsplash.com`` (not copied into storage unless asked),
the photographer and Unsplash are credited with ``utm`` links, and using a photo is
reported to its ``download_location``. The demo quota is 50 requests an hour, so
the provider stops asking shortly *before* the limit instead of running into it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from .._errors import (
    ContentRejected,
    InvalidConfig,
    ProviderError,
    ProviderRateLimited,
)
from .._models import ImageRequest
from ._base import ProviderContext, ProviderImage
from ._http import HTTPProvider
from ._payloads import is_http_url, with_params

__all__ = ["Unsplash", "build_query", "orientation_for"]

# Unsplash sends no reset header and the hourly window's start is unknown
# (help.unsplash.com 3887917), so "come back in an hour" is the only safe estimate.
_WINDOW = 3600.0
# Reporting a download must not eat the deadline of an image already in hand.
_TRACK_TIMEOUT = 5.0
_MAX_QUERY_WORDS = 5
_FALLBACK_WORDS = 3

_CONTENT_FILTERS = ("low", "high")
_FILTER_FOR = {"strict": "high", "relaxed": "low"}  # ImageRequest.safety
_FORMATS = {"png": "png", "jpeg": "jpg", "webp": "webp"}

# Filler words, and words that describe the rendering rather than the subject: a
# stock search does better with the subject alone.
_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "and",
        "or",
        "by",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "near",
        "is",
        "are",
        "very",
        "some",
        "its",
        "their",
        "this",
        "that",
    }
)
_STYLE_WORDS = frozenset(
    {
        "photo",
        "photos",
        "photograph",
        "photography",
        "photographic",
        "picture",
        "image",
        "style",
        "styled",
        "realistic",
        "photorealistic",
        "hyperrealistic",
        "ultrarealistic",
        "4k",
        "8k",
        "hd",
        "uhd",
        "highly",
        "detailed",
        "high",
        "quality",
        "resolution",
        "cinematic",
        "lighting",
        "masterpiece",
        "trending",
        "artstation",
        "octane",
        "render",
        "rendered",
        "sharp",
        "focus",
    }
)
_SKIP_WORDS = _STOP_WORDS | _STYLE_WORDS
_WORD = re.compile(r"[^\W_]+")


def build_query(prompt: str) -> str:
    """The search words for ``prompt``: lowercased, without filler or style words, at most 5.

    When every word is filler ("a highly detailed photo"), the prompt's first three
    words are used instead, so the search still says something.
    """
    words = _WORD.findall(prompt.lower())
    kept: list[str] = []
    for word in words:
        if word not in _SKIP_WORDS and word not in kept:
            kept.append(word)
    return " ".join(kept[:_MAX_QUERY_WORDS] or words[:_FALLBACK_WORDS])


def orientation_for(width: int, height: int) -> str:
    """``landscape`` above a 1.1 width/height ratio, ``portrait`` below 0.9, else ``squarish``."""
    ratio = width / height
    if ratio > 1.1:
        return "landscape"
    if ratio < 0.9:
        return "portrait"
    return "squarish"


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _http_url(value: object) -> str | None:
    text = _text(value)
    return text if is_http_url(text) else None


def _param(value: object) -> str:
    if isinstance(value, list | tuple):  # collections, topics: comma-separated ids
        return ",".join(map(str, value))
    return str(value)


class Unsplash(HTTPProvider):
    """A stock photo from Unsplash's ``GET /photos/random``, searched with the prompt's words.

    Tier 1 by default: tried when the AI providers of tier 0 have failed.

    The query is :func:`build_query` of the prompt; the orientation comes from the
    requested size (:func:`orientation_for`), and the photo is returned cropped to
    exactly ``width`` x ``height`` through imgix parameters on ``urls.raw``
    (``w``, ``h``, ``fit=crop``, ``crop=entropy``, ``fm`` from ``output_format``,
    ``q=80``). ``provider_options["unsplash"]`` is merged into the query string
    last (``collections``, ``topics``, ``username``...; ``None`` removes a
    parameter).

    As Unsplash's guidelines require, the result hotlinks ``images.unsplash.com``
    (``ImageResult.url`` is the Unsplash URL and nothing is stored) unless
    ``copy_to_storage=True``; ``attribution`` credits the photographer and
    Unsplash with ``utm_source=<app_name>&utm_medium=referral`` links; and the
    photo's ``download_location`` is requested when a photo is chosen. A failed
    download report is logged and does not fail the image.

    Rate limits: the last ``X-Ratelimit-Remaining`` seen is remembered; once it is
    at or below ``min_remaining`` the provider raises
    :class:`~imagegen.ProviderRateLimited` without sending anything, until an hour
    has passed on the generator's clock. A 429, or a 403 whose body says
    ``Rate Limit Exceeded``, counts as a spent quota the same way.

    Args:
        access_key: The app's Access Key; default: ``UNSPLASH_ACCESS_KEY``.
        base_url: The API root. The key is only ever sent there: download reports
            go to ``base_url`` plus the path of ``download_location``.
        app_name: Your app's name on Unsplash, used as ``utm_source``.
        content_filter: ``"high"`` (default; safest) or ``"low"``.
        copy_to_storage: Download the photo into the generator's storage instead of
            hotlinking it (only if your agreement with Unsplash allows it).
        min_remaining: Stop asking when the remaining hourly quota is this low;
            ``0`` spends it all.
        name: Override the provider's name.
        tier: Override the tier.
        timeout: Override the per-call timeout (seconds).
    """

    name = "unsplash"
    tier = 1
    paid = False
    default_base_url: ClassVar[str] = "https://api.unsplash.com"
    env_var: ClassVar[str | None] = "UNSPLASH_ACCESS_KEY"
    key_argument: ClassVar[str] = "access_key"
    auth_scheme: ClassVar[str] = "Client-ID"
    env_settings: ClassVar[Mapping[str, str]] = {"base_url": "IMAGEGEN_UNSPLASH_BASE_URL"}
    unsupported: Mapping[str, str] = {
        "seed": "a stock photo search takes no seed",
        "negative_prompt": "a stock photo search takes no negative prompt",
    }

    def __init__(
        self,
        *,
        access_key: str | None = None,
        base_url: str = "https://api.unsplash.com",
        app_name: str = "imagegen",
        content_filter: str = "high",
        copy_to_storage: bool = False,
        min_remaining: int = 1,
        name: str | None = None,
        tier: int | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(
            api_key=access_key, base_url=base_url, name=name, tier=tier, timeout=timeout
        )
        if not isinstance(app_name, str) or not app_name.strip():
            raise InvalidConfig(
                f"{self.name}: app_name must be a non-empty string", field="app_name"
            )
        if content_filter not in _CONTENT_FILTERS:
            raise InvalidConfig(
                f"{self.name}: content_filter must be 'low' or 'high' (got {content_filter!r})",
                field="content_filter",
            )
        if not isinstance(copy_to_storage, bool):
            raise InvalidConfig(
                f"{self.name}: copy_to_storage must be True or False", field="copy_to_storage"
            )
        if (
            isinstance(min_remaining, bool)
            or not isinstance(min_remaining, int)
            or min_remaining < 0
        ):
            raise InvalidConfig(
                f"{self.name}: min_remaining must be an int >= 0 (got {min_remaining!r})",
                field="min_remaining",
            )
        self.app_name = app_name.strip()
        self.content_filter = content_filter
        self.copy_to_storage = copy_to_storage
        self.min_remaining = min_remaining
        # The quota as last reported, and when (ctx.clock.time()); None = unknown.
        self._remaining: int | None = None
        self._seen_at = 0.0
        self._error_remaining: int | None = None

    @property
    def remaining(self) -> int | None:
        """The hourly quota left as last reported by Unsplash (None: not known yet)."""
        return self._remaining

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Client-ID <key>`` plus ``Accept-Version: v1``."""
        headers = super().auth_headers()
        headers["Accept-Version"] = "v1"
        return headers

    def _referral(self, url: str) -> str:
        return with_params(url, {"utm_source": self.app_name, "utm_medium": "referral"})

    # -- the quota -----------------------------------------------------------------

    def _note(self, ctx: ProviderContext, remaining: int | None) -> None:
        if remaining is not None:
            self._remaining = remaining
            self._seen_at = ctx.clock.time()

    def _guard(self, ctx: ProviderContext) -> None:
        """Refuse, without a request, when the last known quota is at the floor."""
        if self._remaining is None:
            return
        if ctx.clock.time() - self._seen_at >= _WINDOW:
            self._remaining = None  # a new hourly window has begun
            return
        if self._remaining <= self.min_remaining:
            raise ProviderRateLimited(
                f"hourly quota nearly spent ({self._remaining} left, "
                f"min_remaining={self.min_remaining}); not asking again this hour",
                provider=self.name,
                retry_after=_WINDOW,
            )
        # Count the request now, so concurrent calls do not all take the last one.
        self._remaining -= 1

    async def _get(
        self,
        ctx: ProviderContext,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        guard: bool = True,
    ) -> httpx.Response:
        if guard:
            self._guard(ctx)
        try:
            response = await self.request(ctx, "GET", path, params=params)
        except ProviderRateLimited:
            self._error_remaining = None
            self._note(ctx, 0)
            raise
        except ProviderError:
            # classify() stashed the error response's header just before request()
            # raised, with no await in between, so no other call can have replaced it.
            remaining, self._error_remaining = self._error_remaining, None
            self._note(ctx, remaining)
            raise
        self._note(ctx, _remaining_header(response))
        return response

    def classify(
        self, response: httpx.Response, body: Any, message: str, retry_after: float | None
    ) -> ProviderError | None:
        """Unsplash's own signals: the hourly rate limit, and 410 for a flagged query.

        429, or a 403 whose body says ``Rate Limit Exceeded`` or whose
        ``X-Ratelimit-Remaining`` is 0, is ProviderRateLimited for an hour; 410
        ("Query flagged as spam") is ContentRejected. The rate limit is retryable in
        principle, but its ``retry_after`` of an hour is past any deadline, so the
        generator moves on instead of waiting.
        """
        status = response.status_code
        remaining = _remaining_header(response)
        self._error_remaining = remaining
        if status == 429 or (
            status == 403 and ("rate limit exceeded" in response.text.lower() or remaining == 0)
        ):
            return ProviderRateLimited(
                message, provider=self.name, status=status, retry_after=_WINDOW
            )
        if status == 410:
            return ContentRejected(message, provider=self.name, status=status)
        return super().classify(response, body, message, retry_after)

    # -- the provider ------------------------------------------------------------------

    def _params(self, request: ImageRequest) -> dict[str, str]:
        params = {
            "query": build_query(request.prompt),
            "orientation": orientation_for(request.width, request.height),
            "content_filter": _FILTER_FOR.get(request.safety or "", self.content_filter),
        }
        if not params["query"]:
            del params["query"]  # a prompt of punctuation only: any photo will do
        for key, value in request.options_for(self.name).items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = _param(value)
        return params

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ProviderImage:
        """Pick a random photo for the prompt, report its use, and return it at the size asked."""
        response = await self._get(ctx, "/photos/random", self._params(request))
        photo = self.json(response)
        if isinstance(photo, list):  # provider_options asked for a count
            if not photo:
                raise ProviderError(
                    "no photo matches the query", provider=self.name, retryable=False
                )
            photo = photo[0]
        if not isinstance(photo, dict):
            raise ProviderError(
                "unexpected answer: not a photo object", provider=self.name, retryable=False
            )
        urls = photo.get("urls")
        raw_url = _http_url(urls.get("raw")) if isinstance(urls, dict) else None
        if raw_url is None:
            raise ProviderError(
                "unexpected answer: the photo has no urls.raw", provider=self.name, retryable=False
            )
        image_format = _FORMATS[request.output_format]
        url = with_params(
            raw_url,
            {
                "w": str(request.width),
                "h": str(request.height),
                "fit": "crop",
                "crop": "entropy",
                "fm": image_format,
                "q": "80",
            },
        )
        links = photo.get("links")
        links = links if isinstance(links, dict) else {}
        await self._track(ctx, _http_url(links.get("download_location")))
        credit = self._credit(photo)
        return ProviderImage(
            url=url,
            hotlink=not self.copy_to_storage,
            width=request.width,
            height=request.height,
            content_type=request.content_type,
            attribution=credit.pop("attribution"),
            raw=credit,
        )

    def _credit(self, photo: Mapping[str, Any]) -> dict[str, Any]:
        user = photo.get("user")
        user = user if isinstance(user, dict) else {}
        username = _text(user.get("username"))
        name = _text(user.get("name")) or username
        user_links = user.get("links")
        profile = _http_url(user_links.get("html")) if isinstance(user_links, dict) else None
        if profile is None and username is not None:
            profile = f"https://unsplash.com/@{quote(username)}"
        profile = self._referral(profile) if profile else None
        unsplash = self._referral("https://unsplash.com/")
        by = ""
        if name:
            by = f" by {name} ({profile})" if profile else f" by {name}"
        return {
            "attribution": f"Photo{by} on Unsplash ({unsplash})",
            "photographer": name,
            "profile": profile,
            "unsplash": unsplash,
            "photo_id": photo.get("id"),
        }

    async def _track(self, ctx: ProviderContext, location: str | None) -> None:
        """Report the photo's use to ``download_location``; a failure only logs."""
        if location is None:
            ctx.logger.warning("%s: the photo has no download_location to report", self.name)
            return
        parts = urlsplit(location)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        deadline = min(ctx.deadline, ctx.clock.monotonic() + _TRACK_TIMEOUT)
        with ctx.clock.deadline_scope(deadline) as scope:
            try:
                # Not guarded by min_remaining: the guidelines require the report, and
                # the reserve is there for it.
                await self._get(ctx, path, guard=False)
            except ProviderError as exc:
                ctx.logger.warning(
                    "%s: reporting the download failed: %s", self.name, self.redact(str(exc))
                )
        if scope.cancelled_caught:
            ctx.logger.warning(
                "%s: reporting the download timed out after %.0fs", self.name, _TRACK_TIMEOUT
            )

    async def check(self, ctx: ProviderContext) -> None:
        """``GET /photos?per_page=1``: checks the key without choosing a photo.

        It bills nothing (the API is free) but does use one request of the hourly
        quota, and it is refused like any other call once the quota is nearly spent.
        """
        await self._get(ctx, "/photos", {"per_page": "1"})


def _remaining_header(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["x-ratelimit-remaining"])
    except (KeyError, ValueError):
        return None
