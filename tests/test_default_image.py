"""DEFAULT's image: drawn in a worker thread, once per size, never past the deadline."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from imagegen import DEFAULT, AllProvidersFailed, ImageGenerator, Placeholder
from imagegen._default_image import DefaultRenderer
from imagegen.testing import FakeClock, failing

pytestmark = pytest.mark.anyio


class Draws:
    """Counts Placeholder.render calls and the threads they ran on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pause: float = 0.0) -> None:
        self.threads: list[threading.Thread] = []
        real = Placeholder.render
        self.pause = pause

        def render(*args: object, **kwargs: object) -> bytes:
            self.threads.append(threading.current_thread())
            time.sleep(self.pause)
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Placeholder, "render", staticmethod(render))


class TestDefaultRenderer:
    async def test_large_ones_are_drawn_off_the_event_loop(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Over a megapixel the PNG is drawn in a worker thread, not on the loop's thread."""
        draws = Draws(monkeypatch)
        data = await DefaultRenderer().image(2048, 1024)
        assert data.startswith(b"\x89PNG")
        assert draws.threads[0] is not threading.current_thread()

    async def test_small_ones_are_drawn_in_place(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Up to a megapixel (about 10 ms, once per size) there is no thread hop."""
        draws = Draws(monkeypatch)
        await DefaultRenderer().image(1024, 1024)
        assert draws.threads == [threading.current_thread()]

    async def test_one_drawing_per_size(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Many generations falling back at once, and later ones, share one drawing."""
        draws = Draws(monkeypatch, pause=0.05)
        gen = ImageGenerator(providers=[failing("a")], default_image=DEFAULT)
        results = [await gen.generate("first", width=2048, height=1024) for _ in range(3)]
        other = await gen.generate("another prompt", width=2048, height=1024)
        assert len(draws.threads) == 1
        assert {r.data for r in results} == {other.data}
        assert (other.width, other.height, other.is_default) == (2048, 1024, True)

    async def test_sizes_are_kept_apart(self) -> None:
        """Each size gets its own image, of that size."""
        renderer = DefaultRenderer()
        small, wide = await renderer.image(64, 64), await renderer.image(128, 64)
        assert small != wide

    async def test_a_slow_drawing_does_not_hold_the_deadline(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A drawing slower than the deadline fails this generation; the next one gets it."""
        draws = Draws(monkeypatch, pause=1.0)
        gen = ImageGenerator(providers=[failing("a")], default_image=DEFAULT, timeout=0.3)
        with pytest.raises(AllProvidersFailed):
            await gen.generate("x", width=2048, height=1024)
        draws.pause = 0.0
        await anyio.sleep(1.2)  # the abandoned drawing finishes in its thread and is kept
        result = await gen.generate("x", width=2048, height=1024)
        assert result.is_default
        assert len(draws.threads) == 1

    async def test_fake_clock_generations_get_it_too(self, clock: FakeClock) -> None:
        """Under a fake clock the drawing still completes (real thread, virtual deadline)."""
        gen = ImageGenerator(providers=[failing("a")], clock=clock)
        result = await gen.generate("x", width=64, height=64)
        assert result.is_default
