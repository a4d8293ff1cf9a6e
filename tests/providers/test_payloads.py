"""The small readers every vendor module shares: numbers, words, JSON, base64, URLs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from imagegen import InvalidConfig, ProviderError
from imagegen.providers._payloads import (
    SAFETY_WORDS,
    as_int,
    checked_url,
    decode_base64,
    decode_data_uri,
    is_http_url,
    is_number,
    json_or_none,
    mentions,
    same_origin,
)


class TestNumbers:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(1, True), (0.5, True), (True, False), (math.inf, False), (math.nan, False), ("1", False)],
    )
    def test_is_number(self, value: object, expected: bool) -> None:
        """Finite ints and floats are numbers; bools, infinities, NaN and text are not."""
        assert is_number(value) is expected

    @pytest.mark.parametrize(
        ("value", "expected"), [(768, 768), (False, None), (1.0, None), ("768", None)]
    )
    def test_as_int(self, value: object, expected: int | None) -> None:
        """Only a real int (not a bool, not a float) is kept."""
        assert as_int(value) == expected


class TestMentions:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("NSFW content detected", True),
            ({"error": {"code": "moderation_blocked"}}, True),
            (["fine", {"detail": "Safety system"}], True),
            ("a fine answer", False),
            (None, False),
            (42, False),
        ],
    )
    def test_words_in_text_or_json(self, value: Any, expected: bool) -> None:
        """Text is searched as it is, other values as their JSON, ignoring case."""
        assert mentions(value, SAFETY_WORDS) is expected

    def test_only_the_given_words(self) -> None:
        """A vendor's own word list decides, not the generic one."""
        assert not mentions("safety checker", ("nsfw",))


class TestDecoding:
    @pytest.mark.parametrize(("body", "expected"), [(b'{"a": 1}', {"a": 1}), (b"[1]", [1])])
    def test_json(self, body: bytes, expected: Any) -> None:
        """JSON bodies are parsed."""
        assert json_or_none(body) == expected

    @pytest.mark.parametrize("body", [b"<html>", b"", b"\xff\xfe\x00"])
    def test_not_json(self, body: bytes) -> None:
        """Anything else is None, never an exception."""
        assert json_or_none(body) is None

    def test_base64(self) -> None:
        """Strict base64: stray characters make it None."""
        assert decode_base64("aGk=") == b"hi"
        assert decode_base64("aGk=!") is None

    def test_data_uri(self) -> None:
        """A base64 data URI gives its bytes."""
        assert decode_data_uri("data:image/png;base64,aGk=", provider="v") == b"hi"

    @pytest.mark.parametrize(
        ("uri", "match"),
        [("data:image/png,raw", "is not base64"), ("data:image/png;base64,@@", "invalid")],
    )
    def test_bad_data_uri(self, uri: str, match: str) -> None:
        """A data URI that is not base64, or broken, is a final ProviderError naming the vendor."""
        with pytest.raises(ProviderError, match=match) as info:
            decode_data_uri(uri, provider="vendor")
        assert not info.value.retryable
        assert info.value.provider == "vendor"
        assert str(info.value).startswith("vendor's data URI")


class TestUrls:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("https://a.example/x", True),
            ("http://a.example", True),
            ("ftp://a.example", False),
            ("https://", False),
            (None, False),
        ],
    )
    def test_is_http_url(self, value: object, expected: bool) -> None:
        """An http(s) URL with a host."""
        assert is_http_url(value) is expected

    def test_https_only(self) -> None:
        """schemes= narrows the accepted schemes."""
        assert not is_http_url("http://a.example", schemes=("https",))

    def test_checked_url(self) -> None:
        """A configured URL loses its trailing slash."""
        assert checked_url("https://a.example/v1/", "base_url", "p") == "https://a.example/v1"

    @pytest.mark.parametrize("value", ["a.example", 7, "https://"])
    def test_checked_url_refuses(self, value: object) -> None:
        """Anything else is InvalidConfig naming the field and the provider."""
        with pytest.raises(InvalidConfig, match=r"^p: queue_url must be an http") as info:
            checked_url(value, "queue_url", "p")
        assert info.value.field == "queue_url"

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://q.example/r/1/status", "https://q.example/r/1/status"),
            ("https://evil.example/r/1", None),
            ("http://q.example/r/1", None),
            ("https://q.example:8443/r", None),
            (None, None),
        ],
    )
    def test_same_origin(self, url: object, expected: str | None) -> None:
        """A URL to follow is kept only on the configured scheme, host and port."""
        assert same_origin(url, "https://q.example/base") == expected
