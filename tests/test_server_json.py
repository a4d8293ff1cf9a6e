"""Hostile and malformed input to the HTTP API: 400 or 422 problems, never a 500.

The explicit cases come from the issue (100k nested arrays, a 5,000-digit integer, an
extreme timezone offset) and from RFC 8259/7493; the property tests throw generated
bodies, JSON documents and query strings at every route that reads them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagegen import ImageGenerator
from imagegen.server import create_app
from imagegen.testing import FakeProvider, instant

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}
MAX_DEPTH = 32  # documented in docs/server.md and docs/security.md

# Bounded so the file runs in seconds; no deadline: a loaded machine makes timings noise.
# caplog is cleared at the start of each example, so sharing it between examples is safe.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

BODY_ROUTES = [
    ("POST", "/images/generate"),
    ("PATCH", "/admin/config"),
    ("POST", "/admin/circuit-breaker"),
]


def nested(depth: int, leaf: str = "0") -> str:
    """``depth`` arrays, one inside the other, around ``leaf``."""
    return "[" * depth + leaf + "]" * depth


def escaped(text: str) -> str:
    """``text`` percent-encoded byte by byte; lone surrogates become invalid UTF-8."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def client(app: Any) -> httpx.AsyncClient:
    """A client talking to the app in process, no network."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def served() -> tuple[FakeProvider, Any]:
    """A fresh provider and the app serving it with an admin token."""
    provider = instant("a")
    return provider, create_app(ImageGenerator(providers=[provider]), admin_token=TOKEN)


def problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The response is a problem with one of these statuses; returns its body."""
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    return body


def no_500(response: httpx.Response, caplog: pytest.LogCaptureFixture) -> None:
    """Not a server error, nothing logged at ERROR; an error answer is a problem."""
    assert response.status_code < 500, response.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    if response.status_code >= 400:
        problem(response, response.status_code)


class TestNotJson:
    """Bodies this server does not take as JSON: 400, nothing generated."""

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(nested(100_000).encode(), id="100k-nested-arrays"),
            pytest.param(("{" + '"a":{' * 50_000 + "}" * 50_001).encode(), id="50k-objects"),
            pytest.param(nested(MAX_DEPTH + 1).encode(), id="one-too-deep"),
            pytest.param(b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}", id="5000-digits"),
            pytest.param(b'{"prompt": "x", "seed": -' + b"9" * 400 + b"}", id="400-digits"),
            pytest.param(b'{"prompt": "x", "seed": ' + b"9" * 309 + b"}", id="beyond-double"),
            pytest.param(b'{"prompt": "x", "seed": 1e400}', id="float-overflow"),
            pytest.param(b'{"prompt": "x", "seed": NaN}', id="NaN"),
            pytest.param(b'{"prompt": "x", "seed": Infinity}', id="Infinity"),
            pytest.param(b'{"prompt": "x", "seed": -Infinity}', id="-Infinity"),
            pytest.param(b'{"prompt": "a fox", "prompt": "a bear"}', id="duplicate-key"),
            pytest.param(b'{"prompt": "x", "metadata": {"k": "1", "k": "2"}}', id="nested-dup"),
            pytest.param('{"prompt": "x"}'.encode("utf-16"), id="utf-16"),
            pytest.param('{"prompt": "x"}'.encode("utf-32"), id="utf-32"),
            pytest.param(b'\xef\xbb\xbf{"prompt": "x"}', id="utf-8-bom"),
            pytest.param(b'{"prompt": "\xff"}', id="invalid-utf-8"),
            pytest.param(b'{"prompt": "\xed\xa0\x80"}', id="encoded-surrogate"),
            pytest.param(b"", id="empty"),
            pytest.param(b'{"prompt": "x"} {}', id="trailing-data"),
        ],
    )
    @pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
    async def test_answers_400(
        self, raw: bytes, method: str, path: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """400 problem on every JSON route, and the provider is never called."""
        provider, app = served()
        async with client(app) as http:
            response = await http.request(method, path, content=raw, headers={**JSON, **AUTH})
        assert "not valid JSON" in problem(response, 400)["detail"]
        assert provider.calls == 0
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    async def test_nesting_up_to_the_limit_is_json(self) -> None:
        """MAX_DEPTH levels parse: the answer is about the field, not the JSON."""
        provider, app = served()
        options = '{"a": {"k": ' + nested(MAX_DEPTH - 3) + "}}"
        raw = '{"prompt": "x", "provider_options": ' + options + "}"
        async with client(app) as http:
            response = await http.post("/images/generate", content=raw, headers=JSON)
        assert problem(response, 422)["errors"][0]["field"] == "provider_options.a.k"
        assert provider.calls == 0

    async def test_big_numbers_within_a_double_are_json(self) -> None:
        """A 300-digit integer is JSON: refused as a bad seed (422), not as JSON."""
        provider, app = served()
        raw = b'{"prompt": "x", "seed": ' + b"9" * 300 + b"}"
        async with client(app) as http:
            response = await http.post("/images/generate", content=raw, headers=JSON)
        assert problem(response, 422)["errors"][0]["field"] == "seed"
        assert provider.calls == 0


class TestLoneSurrogates:
    """``"\\ud800"`` is JSON no UTF-8 encoder takes: 422 naming the member holding it."""

    @pytest.mark.parametrize(
        ("method", "path", "raw", "field"),
        [
            ("POST", "/images/generate", '{"prompt": "x", "experiment_key": "\\ud800"}', None),
            ("POST", "/images/generate", '{"prompt": "x", "\\udfff": 1}', "body"),
            (
                "POST",
                "/images/generate",
                '{"prompt": "x", "provider_options": {"a": {"k": ["\\ud800"]}}}',
                "provider_options",
            ),
            (
                "POST",
                "/admin/circuit-breaker",
                '{"provider": "a", "action": "open", "reason": "\\ud800"}',
                "reason",
            ),
            ("PATCH", "/admin/config", '{"enabled": {"\\ud800": true}}', "enabled"),
            ("PATCH", "/admin/config", '"\\ud800"', "body"),
        ],
    )
    async def test_answers_422(self, method: str, path: str, raw: str, field: str | None) -> None:
        """422 naming the top-level member (or the body); nothing generated or changed."""
        provider, app = served()
        async with client(app) as http:
            response = await http.request(method, path, content=raw, headers={**JSON, **AUTH})
        body = problem(response, 422)
        assert [e["field"] for e in body["errors"]] == [field or "experiment_key"]
        assert "lone surrogate" in body["detail"]
        assert provider.calls == 0


class TestSettingsShapes:
    """PATCH /admin/config with settings of the wrong shape."""

    @pytest.mark.parametrize("payload", [{"priority": None}, {"priority": 5}])
    async def test_wrong_shape_is_422(self, payload: dict[str, Any]) -> None:
        """A shape the settings check misses still answers 422, and nothing changes."""
        gen = ImageGenerator(providers=[instant("a")])
        before = gen.settings()
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.patch("/admin/config", json=payload, headers=AUTH)
        assert [e["field"] for e in problem(response, 422)["errors"]] in (["priority"], ["body"])
        assert gen.settings() == before

    async def test_foreign_error_from_update_is_422(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """update_settings raising a TypeError on odd input: 422 naming the body, no 500."""
        gen = ImageGenerator(providers=[instant("a")])

        def update_settings(settings: Any) -> None:
            raise TypeError("'NoneType' object is not iterable")

        monkeypatch.setattr(gen, "update_settings", update_settings)
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.patch("/admin/config", json={"priority": None}, headers=AUTH)
        body = problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["body"]
        assert "TypeError" in body["detail"]
        assert not [r for r in caplog.records if r.exc_info]


class TestStatsDates:
    """``?since=``/``?until=`` of /admin/stats."""

    @pytest.mark.parametrize(
        "value",
        [
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:30:00+23:59",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59.999999-23:59:59.999999",
        ],
    )
    @pytest.mark.parametrize("param", ["since", "until"])
    async def test_extreme_offset_is_422(self, param: str, value: str) -> None:
        """A time whose UTC day is outside the calendar: 422 naming the parameter."""
        _, app = served()
        async with client(app) as http:
            response = await http.get("/admin/stats", params={param: value}, headers=AUTH)
        body = problem(response, 422)
        assert [e["field"] for e in body["errors"]] == [param]

    @pytest.mark.parametrize(
        "value",
        [
            "0001-01-01",
            "9999-12-31",
            "9999-12-31T23:59:59+00:00",
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59.999999",
        ],
    )
    async def test_calendar_edges_are_taken(self, value: str) -> None:
        """The first and last days, and naive times, are valid bounds."""
        _, app = served()
        async with client(app) as http:
            response = await http.get(
                "/admin/stats", params={"since": value, "until": value}, headers=AUTH
            )
        assert response.status_code == 200, response.text


# -- generated input -----------------------------------------------------------------------

# Text with every code point, lone surrogates included (JSON escapes them as \udXXX).
any_text = st.text(st.characters(exclude_categories=()), max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and the infinities included: json.dumps writes them out
    | any_text
    | st.sampled_from(["a", "open", "reset", "png", "hedge", "race", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
GENERATE_FIELDS = (
    "prompt",
    "negative_prompt",
    "width",
    "height",
    "seed",
    "output_format",
    "metadata",
    "provider_options",
    "async",
    "experiment_key",
)
CONFIG_FIELDS = ("timeout", "enabled", "priority", "strategy", "retry", "breaker")


def objects(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects with some of these member names (and the odd other one)."""
    return st.dictionaries(
        st.sampled_from(names) | any_text, json_values | objects_below(names), max_size=6
    )


def objects_below(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects one level down with the same names (``retry.attempts``, ``a.k``...)."""
    keys = st.sampled_from(("a", "attempts", "kind", "delay", "window", "k", *names))
    return st.dictionaries(keys, json_values, max_size=4)


class TestGenerated:
    """Generated input on every route: never a 500."""

    @FUZZ
    @given(raw=st.binary(max_size=200))
    @pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
    async def test_any_bytes(
        self, method: str, path: str, raw: bytes, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Arbitrary bytes as a body: an answer, never a 500."""
        caplog.clear()
        _, app = served()
        async with client(app) as http:
            response = await http.request(method, path, content=raw, headers={**JSON, **AUTH})
        no_500(response, caplog)

    @FUZZ
    @given(data=objects(GENERATE_FIELDS), allow_nan=st.booleans())
    async def test_generate_objects(
        self, data: dict[str, Any], allow_nan: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Generated request objects: 200, 202, 400, 422 or 503 (async without jobs)."""
        caplog.clear()
        raw = json.dumps(data, allow_nan=True)
        _, app = served()
        async with client(app) as http:
            response = await http.post("/images/generate", content=raw, headers=JSON)
        if response.status_code == 503:  # "async": true, and this generator runs no jobs
            assert data.get("async") is True
        else:
            no_500(response, caplog)

    @FUZZ
    @given(data=objects(CONFIG_FIELDS))
    async def test_config_objects(
        self, data: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Generated settings: 200, 400 or 422, never a 500."""
        caplog.clear()
        _, app = served()
        async with client(app) as http:
            response = await http.patch(
                "/admin/config", content=json.dumps(data), headers={**JSON, **AUTH}
            )
            no_500(response, caplog)
            after = await http.get("/health")  # the settings taken do not break the generator
        assert after.status_code in (200, 503)

    @FUZZ
    @given(data=objects(("provider", "action", "reason")))
    async def test_breaker_objects(
        self, data: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Generated breaker actions: 200, 400, 404 or 422, never a 500."""
        caplog.clear()
        _, app = served()
        async with client(app) as http:
            response = await http.post(
                "/admin/circuit-breaker", content=json.dumps(data), headers={**JSON, **AUTH}
            )
        no_500(response, caplog)

    @FUZZ
    @given(
        since=st.one_of(
            any_text,
            st.datetimes(timezones=st.timezones() | st.none()).map(dt.datetime.isoformat),
            st.dates().map(dt.date.isoformat),
        ),
        until=st.one_of(any_text, st.datetimes(timezones=st.timezones()).map(str)),
        provider=any_text,
    )
    async def test_stats_queries(
        self, since: str, until: str, provider: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Generated query strings for /admin/stats: 200 or 422, never a 500."""
        caplog.clear()
        _, app = served()
        query = f"since={escaped(since)}&until={escaped(until)}&provider={escaped(provider)}"
        async with client(app) as http:
            response = await http.get(f"/admin/stats?{query}", headers=AUTH)
        no_500(response, caplog)

    @FUZZ
    @given(job_id=any_text.filter(lambda s: s not in (".", "..")), deep=any_text)
    async def test_path_and_query_text(
        self, job_id: str, deep: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Any job id, provider name or ?deep= value: an answer, never a 500."""
        caplog.clear()
        _, app = served()
        async with client(app) as http:
            job = await http.get(f"/jobs/{escaped(job_id)}")
            health = await http.get(f"/health?deep={escaped(deep)}")
            hook = await http.post(f"/webhooks/{escaped(job_id)}", content=b"{}")
        for response in (job, health, hook):
            if response.status_code != 503:  # /health's own degraded answer
                no_500(response, caplog)
