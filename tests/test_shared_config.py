"""configure() changes reach every generator sharing a state backend, within config_ttl."""

from __future__ import annotations

import logging

import pytest

from imagegen import Fallback, Hedge, ImageGenerator, InvalidConfig, MemoryState, Retry
from imagegen._settings import changes_from_json
from imagegen.testing import FakeClock, instant

pytestmark = pytest.mark.anyio


def pair(clock: FakeClock, **kwargs: object) -> tuple[ImageGenerator, ImageGenerator]:
    """Two generators (two 'processes') on one backend, same providers."""
    state = MemoryState()
    make = lambda: ImageGenerator(  # noqa: E731 - two identical generators
        providers=[instant("a"), instant("b")], state=state, clock=clock, **kwargs
    )
    return make(), make()


class TestSharedSettings:
    async def test_change_reaches_the_other_within_ttl(self, clock: FakeClock) -> None:
        """A published change is adopted by the other generator once its config_ttl passes."""
        one, two = pair(clock)
        await two.generate("x")  # two has looked at the shared settings at t=0
        one.configure(timeout=7.0, strategy=Fallback(), priority=["b"], enabled={"a": False})
        await one.publish_config()
        clock.advance(4.0)
        await two.generate("x")
        assert two.timeout == 30.0  # not yet: two looked less than 5 s ago
        clock.advance(1.0)
        result = await two.generate("x")
        assert two.timeout == 7.0
        assert isinstance(two.strategy, Fallback)
        assert [p.name for p in two.providers] == ["b", "a"]
        assert result.provider == "b"

    async def test_next_generation_publishes_local_changes(self, clock: FakeClock) -> None:
        """configure() alone is published by the next generate(), no explicit call needed."""
        one, two = pair(clock, config_ttl=0.0)
        one.configure(retry=Retry(attempts=1))
        await one.generate("x")
        await two.generate("x")
        assert two.retry == Retry(attempts=1)

    async def test_own_settings_are_not_re_adopted(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A generator does not adopt what it published itself."""
        one, _ = pair(clock, config_ttl=0.0)
        one.configure(timeout=9.0)
        with caplog.at_level(logging.INFO, logger="imagegen"):
            await one.generate("x")
            await one.generate("x")
        assert "adopted" not in caplog.text

    async def test_bad_shared_settings_are_ignored(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Unreadable or invalid shared settings are logged; the old settings stay."""
        one, two = pair(clock, config_ttl=0.0)
        await two.state.set("imagegen::config", b'{"version": 1e12, "settings": {"timeout": -1}}')
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            await two.generate("x")
        assert two.timeout == 30.0
        assert "cannot be applied" in caplog.text
        await two.state.set("imagegen::config", b"not json")
        await two.generate("x")
        assert two.timeout == 30.0
        assert one.timeout == 30.0

    async def test_namespaces_do_not_share(self, clock: FakeClock) -> None:
        """Generators in different namespaces keep their own settings."""
        state = MemoryState()
        staging = ImageGenerator(
            providers=[instant("a")], state=state, namespace="staging", clock=clock, config_ttl=0
        )
        prod = ImageGenerator(
            providers=[instant("a")], state=state, namespace="prod", clock=clock, config_ttl=0
        )
        staging.configure(timeout=3.0)
        await staging.publish_config()
        await prod.generate("x")
        assert prod.timeout == 30.0

    def test_bad_config_ttl(self) -> None:
        """config_ttl must be seconds >= 0."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=[instant("a")], config_ttl=-1)
        assert info.value.field == "config_ttl"


class TestSettingsJson:
    def test_round_trip(self) -> None:
        """settings_json and changes_from_json round-trip every run-time setting."""
        gen = ImageGenerator(
            providers=[instant("a"), instant("b")],
            strategy=Hedge(delay=1.5, budget=0.2),
            retry=Retry(attempts=2),
        )
        settings = gen.settings()
        assert settings.pop("default_image") == "placeholder"
        changes = changes_from_json(settings)
        assert changes["strategy"] == Hedge(delay=1.5, budget=0.2)
        assert changes["retry"] == Retry(attempts=2)
        assert changes["enabled"] == {"a": True, "b": True}
        assert changes["priority"] == ["a", "b"]

    def test_settings_fed_back_change_nothing(self) -> None:
        """update_settings(settings()) is a no-op, the described default image included."""
        gen = ImageGenerator(providers=[instant("a"), instant("b")], strategy=Hedge(delay=1.0))
        before = gen.settings()
        gen.update_settings(before)
        assert gen.settings() == before
        with pytest.raises(InvalidConfig) as info:
            gen.update_settings({**before, "default_image": None})
        assert info.value.field == "default_image"

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"strategy": "race"}, "strategy"),
            ({"strategy": {"kind": "chaos"}}, "strategy.kind"),
            ({"retry": {"attempts": 0}}, "retry.attempts"),
            ({"retry": {"tries": 3}}, "retry.tries"),
            ({"retry": {"jitter": "x"}}, "retry.jitter"),
            ({"retry": {"initial": 10**400}}, "retry.initial"),
            ({"priority": None}, "priority"),
            ({"priority": {"a": 1}}, "priority"),
            ({"enabled": None}, "enabled"),
            ({"breaker": []}, "breaker"),
            ({"storage": "x"}, "storage"),
        ],
    )
    def test_bad_json_names_the_field(self, data: dict[str, object], field: str) -> None:
        """Bad settings raise InvalidConfig with the dotted field name."""
        with pytest.raises(InvalidConfig) as info:
            ImageGenerator(providers=[instant("a")]).update_settings(data)
        assert info.value.field == field
