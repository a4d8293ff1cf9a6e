"""Bad settings are refused with InvalidConfig naming the field, before anything changes.

``configure()``/``update_settings()`` (``priority``, ``enabled``), the fields of
``Retry`` and ``CircuitBreaker`` (from Python and from settings JSON), and the
``reason`` a breaker is forced with (from Python and ``POST /admin/circuit-breaker``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import httpx
import pytest

from imagegen import CircuitBreaker, ImageGenerator, InvalidConfig, MemoryState, Retry
from imagegen._settings import changes_from_json
from imagegen.server import create_app
from imagegen.testing import EventRecorder, FakeClock, instant

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
HUGE = 10**400  # an int, but no float: float(HUGE) overflows
UNPRINTABLE = 10**5000  # too long for repr() (the 4300-digit limit)


def two() -> ImageGenerator:
    return ImageGenerator(providers=[instant("a"), instant("b")])


def client(app: Any) -> httpx.AsyncClient:
    """A client talking to the app in process, no network."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


BAD_PRIORITY_AND_ENABLED = [
    ({"priority": None}, "priority"),
    ({"priority": 5}, "priority"),
    ({"priority": "ab"}, "priority"),
    ({"priority": {"b": 1, "a": 0}}, "priority"),  # a mapping's numbers would be ignored
    ({"priority": ["b", 1]}, "priority"),
    ({"priority": ["b", None]}, "priority"),
    ({"priority": [["b"]]}, "priority"),
    ({"priority": ["zz"]}, "priority"),
    ({"enabled": None}, "enabled"),
    ({"enabled": ["a"]}, "enabled"),
    ({"enabled": {"a": 1}}, "enabled"),
    ({"enabled": {"a": None}}, "enabled"),
    ({"enabled": {"zz": True}}, "enabled"),
]


class TestPriorityAndEnabled:
    @pytest.mark.parametrize(("changes", "field"), BAD_PRIORITY_AND_ENABLED)
    def test_configure_refuses(self, changes: dict[str, Any], field: str) -> None:
        """configure(): InvalidConfig naming the field (no TypeError), nothing changed."""
        gen = two()
        before = gen.settings()
        with pytest.raises(InvalidConfig) as info:
            gen.configure(timeout=5.0, **changes)
        assert info.value.field == field
        assert field in str(info.value)
        assert gen.settings() == before

    @pytest.mark.parametrize(("changes", "field"), BAD_PRIORITY_AND_ENABLED)
    def test_update_settings_refuses(self, changes: dict[str, Any], field: str) -> None:
        """update_settings() (the settings JSON): the same, nothing changed."""
        gen = two()
        before = gen.settings()
        with pytest.raises(InvalidConfig) as info:
            gen.update_settings({"timeout": 5.0, **changes})
        assert info.value.field == field
        assert gen.settings() == before

    def test_a_set_has_no_order(self) -> None:
        """priority={...} (a set) is refused: its order is arbitrary."""
        gen = two()
        with pytest.raises(InvalidConfig) as info:
            gen.configure(priority={"b"})
        assert info.value.field == "priority"
        assert [p.name for p in gen.providers] == ["a", "b"]

    def test_good_values_still_apply(self) -> None:
        """A list or tuple of names (repeats dropped) and a name-to-bool mapping apply."""
        gen = two()
        gen.configure(priority=("b", "b"), enabled={"a": False})
        assert [p.name for p in gen.providers] == ["b", "a"]
        gen.update_settings({"priority": ["a"], "enabled": {"a": True, "b": False}})
        assert [p.name for p in gen.providers] == ["a", "b"]
        assert gen.settings()["enabled"] == {"a": True, "b": False}

    @pytest.mark.parametrize(
        "timeout", [UNPRINTABLE, -UNPRINTABLE, HUGE], ids=["unprintable", "-unprintable", "huge"]
    )
    def test_timeout_too_large_to_print(self, timeout: int) -> None:
        """A timeout too long for repr(): InvalidConfig (not ValueError from the message)."""
        gen = two()
        with pytest.raises(InvalidConfig) as info:
            gen.configure(timeout=timeout)
        assert info.value.field == "timeout"
        assert gen.timeout == 30.0

    @pytest.mark.parametrize("settings", [None, "timeout=5", ["timeout", 5]])
    def test_update_settings_needs_an_object(self, settings: Any) -> None:
        """update_settings() of something other than a mapping: InvalidConfig, not TypeError."""
        with pytest.raises(InvalidConfig) as info:
            two().update_settings(settings)
        assert info.value.field == "settings"

    @pytest.mark.parametrize("shared", ['{"enabled": null}', '{"priority": {"b": 1}}'])
    async def test_shared_settings_of_the_wrong_shape_are_ignored(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture, shared: str
    ) -> None:
        """Shared settings with a bad enabled/priority are refused as such, logged, ignored."""
        gen = ImageGenerator(
            providers=[instant("a"), instant("b")], state=MemoryState(), clock=clock, config_ttl=0
        )
        raw = f'{{"version": 1e12, "settings": {shared}}}'
        await gen.state.set("imagegen::config", raw.encode())
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            await gen.generate("x")
        assert [p.name for p in gen.providers] == ["a", "b"]
        assert "ignoring shared settings that cannot be applied: InvalidConfig" in caplog.text


RETRY_BAD = [
    ({"jitter": "x"}, "jitter"),
    ({"jitter": 1}, "jitter"),
    ({"jitter": None}, "jitter"),
    ({"attempts": 2.0}, "attempts"),
    ({"attempts": "3"}, "attempts"),
    ({"attempts": False}, "attempts"),
    ({"attempts": HUGE}, "attempts"),
    ({"attempts": UNPRINTABLE}, "attempts"),
    ({"initial": math.nan}, "initial"),
    ({"initial": math.inf}, "initial"),
    ({"initial": -0.1}, "initial"),
    ({"initial": True}, "initial"),
    ({"initial": HUGE}, "initial"),
    ({"maximum": math.inf}, "maximum"),
    ({"maximum": HUGE}, "maximum"),
    ({"maximum": None}, "maximum"),
    ({"multiplier": math.nan}, "multiplier"),
    ({"multiplier": math.inf}, "multiplier"),
    ({"multiplier": 0.99}, "multiplier"),
    ({"multiplier": HUGE}, "multiplier"),
    ({"multiplier": -UNPRINTABLE}, "multiplier"),
]


class TestRetryFields:
    @pytest.mark.parametrize(("kwargs", "field"), RETRY_BAD)
    def test_retry_refuses(self, kwargs: dict[str, Any], field: str) -> None:
        """Retry(...) with a field of the wrong type or out of range: InvalidConfig naming it,
        with a short message even for a number too long to print."""
        with pytest.raises(InvalidConfig) as info:
            Retry(**kwargs)
        assert info.value.field == field
        assert str(info.value).startswith(f"{field} must be")
        assert len(str(info.value)) < 200

    @pytest.mark.parametrize(("kwargs", "field"), RETRY_BAD)
    def test_settings_json_refuses(self, kwargs: dict[str, Any], field: str) -> None:
        """The same from settings JSON, the field dotted; the settings stay as they were."""
        with pytest.raises(InvalidConfig) as info:
            changes_from_json({"retry": kwargs})
        assert info.value.field == f"retry.{field}"
        gen = two()
        before = gen.settings()
        with pytest.raises(InvalidConfig):
            gen.update_settings({"retry": kwargs})
        assert gen.settings() == before

    def test_edges_are_accepted(self) -> None:
        """The bounds themselves, ints and large finite numbers are fine."""
        retry = Retry(attempts=1, initial=0, maximum=0, multiplier=1, jitter=False)
        assert retry.backoff(1) == 0.0
        assert Retry(attempts=10**300, maximum=1e300).attempts == 10**300

    def test_backoff_after_thousands_of_tries_does_not_overflow(self) -> None:
        """multiplier**(tries-1) past the float range: the cap is the maximum (or 0)."""
        assert Retry(attempts=5000, jitter=False).backoff(3000) == 8.0
        assert Retry(attempts=5000, initial=0, jitter=False).backoff(3000) == 0.0
        assert Retry(attempts=5000, multiplier=10**300, jitter=False).backoff(10) == 8.0


class TestBreakerFields:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"window": math.nan}, "window"),
            ({"window": math.inf}, "window"),
            ({"window": HUGE}, "window"),
            ({"reset_timeout": math.inf}, "reset_timeout"),
            ({"reset_timeout": True}, "reset_timeout"),
            ({"failure_threshold": HUGE}, "failure_threshold"),
            ({"minimum_calls": UNPRINTABLE}, "minimum_calls"),
            ({"consecutive_failures": HUGE}, "consecutive_failures"),
            ({"failure_rate": True}, "failure_rate"),
            ({"failure_rate": math.nan}, "failure_rate"),
        ],
    )
    def test_breaker_refuses(self, kwargs: dict[str, Any], field: str) -> None:
        """Non-finite or float-overflowing numbers are refused, naming the (dotted) field."""
        with pytest.raises(InvalidConfig) as info:
            CircuitBreaker(**kwargs)
        assert info.value.field == field
        assert len(str(info.value)) < 200
        with pytest.raises(InvalidConfig) as info:
            changes_from_json({"breaker": kwargs})
        assert info.value.field == f"breaker.{field}"


BAD_REASONS = [
    pytest.param("x\ud800", id="lone-surrogate"),
    pytest.param("\udfff", id="lone-low-surrogate"),
    pytest.param("y" * 1001, id="too-long"),
    pytest.param(5, id="int"),
    pytest.param(None, id="none"),
    pytest.param(b"maintenance", id="bytes"),
]


class TestForcedReason:
    @pytest.mark.parametrize("action", ["force_open", "force_close"])
    @pytest.mark.parametrize("reason", BAD_REASONS)
    async def test_refused_before_anything_changes(
        self, clock: FakeClock, action: str, reason: Any
    ) -> None:
        """InvalidConfig naming reason; the breaker stays as it was and nothing is emitted."""
        rec = EventRecorder()
        gen = ImageGenerator(providers=[instant("a")], hooks=[rec], clock=clock)
        handle = gen.breaker_for("a")
        with pytest.raises(InvalidConfig) as info:
            await getattr(handle, action)(reason=reason)
        assert info.value.field == "reason"
        snap = await handle.snapshot()
        assert (snap.state, snap.forced, snap.reason) == ("closed", False, None)
        assert not rec.of("breaker_state_changed")
        assert (await gen.generate("x")).provider == "a"

    async def test_reasons_up_to_the_limit_are_kept(self, clock: FakeClock) -> None:
        """1000 characters of any valid text (paired surrogates make one character)."""
        gen = ImageGenerator(providers=[instant("a")], clock=clock)
        reason = "é🙂\n" + "z" * 997
        await gen.breaker_for("a").force_open(reason=reason)
        snap = await gen.breaker_for("a").snapshot()
        assert (snap.state, snap.reason) == ("open", reason)


class TestAdminCircuitBreaker:
    @pytest.mark.parametrize("action", ["open", "close"])
    @pytest.mark.parametrize(
        "reason",
        ['"x\\ud800"', '"\\udc00"', '"' + "y" * 1001 + '"', "5", "[]"],
        ids=["lone-surrogate", "lone-low-surrogate", "too-long", "number", "list"],
    )
    async def test_bad_reason_is_422(self, action: str, reason: str) -> None:
        """POST /admin/circuit-breaker with a reason the breaker refuses: 422 naming reason,
        the breaker unchanged, and the admin routes still answer (no 500)."""
        gen = ImageGenerator(providers=[instant("a")])
        raw = f'{{"provider": "a", "action": "{action}", "reason": {reason}}}'
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.post("/admin/circuit-breaker", content=raw, headers=AUTH)
            assert response.status_code == 422, response.text
            assert [e["field"] for e in response.json()["errors"]] == ["reason"]
            providers = await http.get("/admin/providers", headers=AUTH)
        assert providers.status_code == 200
        breaker = providers.json()["providers"][0]["breaker"]
        assert (breaker["state"], breaker["forced"]) == ("closed", False)

    async def test_good_reason_is_kept(self) -> None:
        """A reason of 1000 characters is taken and shown."""
        gen = ImageGenerator(providers=[instant("a")])
        payload = {"provider": "a", "action": "open", "reason": "r" * 1000}
        async with client(create_app(gen, admin_token=TOKEN)) as http:
            response = await http.post("/admin/circuit-breaker", json=payload, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["reason"] == "r" * 1000
