"""Test helpers, public so you can test your own code with them.

- :class:`FakeClock`: virtual time. Inside ``async with FakeClock() as clock:``
  time jumps to the next sleeper or deadline as soon as every task is blocked, so
  a 30-second deadline passes in no real time.
- :class:`FakeProvider`: instant, slow, failing or hanging, and it remembers calls
  and cancellations. :func:`instant`, :func:`slow`, :func:`failing` and
  :func:`hanging` build the common ones.
- :class:`EventRecorder`: a hook that keeps every event.

Example::

    async with FakeClock() as clock:
        gen = ImageGenerator(providers=[hanging("a"), slow("b", 2.0)], clock=clock)
        result = await gen.generate("a red fox")
        assert result.provider == "b" and clock.monotonic() == 2.0
"""

from ._clock import FakeClock
from ._fakes import ErrorSpec as ErrorSpec
from ._fakes import FakeProvider, failing, hanging, instant, slow, tiny_png
from ._recorder import EventRecorder

__all__ = [
    "EventRecorder",
    "FakeClock",
    "FakeProvider",
    "failing",
    "hanging",
    "instant",
    "slow",
    "tiny_png",
]
