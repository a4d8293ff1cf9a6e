"""Test helpers, public so you can test your own code, and your own parts, with them.

- :class:`FakeClock`: virtual time. Inside ``async with FakeClock() as clock:``
  time jumps to the next sleeper or deadline as soon as every task is blocked, so
  a 30-second deadline passes in no real time.
- :class:`FakeProvider`: instant, slow, failing or hanging, and it remembers calls
  and cancellations. :func:`instant`, :func:`slow`, :func:`failing` and
  :func:`hanging` build the common ones.
- :class:`EventRecorder`: a hook that keeps every event.
- :class:`FaultyState` and :class:`FaultyStorage`: wrap a state backend or a storage
  and make a share of its calls fail or stall (or all of them, switched at run time),
  for chaos tests of your own service.
- :class:`StateBackendSuite`, :class:`StorageSuite` and :class:`ProviderSuite`:
  conformance suites, pytest test classes to subclass in your tests, that check your
  own state backend, storage or provider against the contract imagegen relies on.

The fakes need no pytest: use them under any test runner. The suites are pytest
classes; they import pytest when first used (``from imagegen.testing import
StorageSuite``), never on ``import imagegen.testing``.

Example::

    async with FakeClock() as clock:
        gen = ImageGenerator(providers=[hanging("a"), slow("b", 2.0)], clock=clock)
        result = await gen.generate("a red fox")
        assert result.provider == "b" and clock.monotonic() == 2.0
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from ._clock import FakeClock
from ._fakes import ErrorSpec as ErrorSpec
from ._fakes import FakeProvider, failing, hanging, instant, slow, tiny_png
from ._faults import FaultyState, FaultyStorage
from ._recorder import EventRecorder

if TYPE_CHECKING:
    from ._provider_suite import ProviderSuite
    from ._state_suite import StateBackendSuite
    from ._storage_suite import StorageSuite

__all__ = [
    "EventRecorder",
    "FakeClock",
    "FakeProvider",
    "FaultyState",
    "FaultyStorage",
    "ProviderSuite",
    "StateBackendSuite",
    "StorageSuite",
    "failing",
    "hanging",
    "instant",
    "slow",
    "tiny_png",
]

# The suites import pytest, which users of the fakes may not have: they load on first use.
_SUITES = {
    "ProviderSuite": "._provider_suite",
    "StateBackendSuite": "._state_suite",
    "StorageSuite": "._storage_suite",
}
#: Modules a suite's checks live in besides its own.
_PARTS = {"StateBackendSuite": ("._state_batches",)}


def __getattr__(name: str) -> object:
    module = _SUITES.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    qualified = __name__ + module
    if qualified not in sys.modules:
        import pytest  # noqa: PLC0415 - only the suites need it

        # The suites check with plain asserts: have pytest explain a failing one.
        pytest.register_assert_rewrite(qualified, *(__name__ + p for p in _PARTS.get(name, ())))
    value = getattr(importlib.import_module(qualified), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUITES})
