"""The generator for code without an event loop: scripts, notebooks' plain cells, WSGI apps.

:class:`SyncGenerator` runs an :class:`~imagegen.ImageGenerator` on an event loop of
its own, in a thread anyio starts for it (a blocking portal), and blocks its caller
until each call ends: the same pipeline, deadlines, retries and records as ``await``.
Its limits: one loop thread per ``SyncGenerator`` (share one across threads rather
than making one per request: its calls may come from many threads at once); it must
not be used from inside async code, where it would block the event loop for the
whole call (it refuses, with :class:`~imagegen.InvalidConfig`); and a call cannot be
cancelled from the calling thread except by its own ``timeout``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._errors import InvalidConfig, NotRunning
from ._generator import ImageGenerator

if TYPE_CHECKING:
    import datetime as dt
    from types import TracebackType

    from ._models import ImageResult, Job, ProviderDayStats, Record
    from ._request import ImageRequest

__all__ = ["SyncGenerator", "generate_sync"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _refuse_inside_a_loop(what: str) -> None:
    """Raise when called from async code: blocking there would stall its event loop."""
    try:
        anyio.get_current_task()
    except RuntimeError:
        return  # no event loop here: blocking is what the caller wants
    raise InvalidConfig(
        f"{what} blocks its caller; in async code, await the ImageGenerator's methods",
        field="SyncGenerator",
    )


class SyncGenerator:
    """An :class:`~imagegen.ImageGenerator` with blocking methods (see the module docs).

    Example::

        with SyncGenerator(ImageGenerator.from_env()) as gen:
            result = gen.generate("a lighthouse at dusk")
            print(result.url)

    Args:
        generator: The generator to run; entered on ``__enter__`` and closed on
            ``__exit__``, in the loop thread.
        backend: ``"asyncio"`` (default) or ``"trio"`` (needs trio installed).
    """

    def __init__(self, generator: ImageGenerator, *, backend: str = "asyncio") -> None:
        self.generator = generator
        self.backend = backend
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._entered: AbstractContextManager[ImageGenerator] | None = None

    def __enter__(self) -> SyncGenerator:
        _refuse_inside_a_loop("SyncGenerator")
        if self._portal is not None:
            raise InvalidConfig("this SyncGenerator is already open", field="SyncGenerator")
        cm = start_blocking_portal(self.backend)
        portal = cm.__enter__()
        # Entered and exited in one task of the loop thread: the generator's task
        # groups must close in the task that opened them.
        entered = portal.wrap_async_context_manager(self.generator)
        try:
            entered.__enter__()
        except BaseException:
            cm.__exit__(None, None, None)
            raise
        self._portal_cm, self._portal, self._entered = cm, portal, entered
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        cm, entered = self._portal_cm, self._entered
        self._portal = self._portal_cm = self._entered = None
        if cm is None or entered is None:
            return
        try:
            entered.__exit__(exc_type, exc, tb)
        finally:
            cm.__exit__(None, None, None)

    def _call(self, method: Callable[_P, Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        portal = self._portal
        if portal is None:
            raise NotRunning("a SyncGenerator runs calls only inside `with`")
        _refuse_inside_a_loop("SyncGenerator")
        return portal.call(functools.partial(method, *args, **kwargs))

    def generate(self, request: ImageRequest | str, /, **fields: Any) -> ImageResult:
        """:meth:`ImageGenerator.generate`, blocking until it returns."""
        return self._call(self.generator.generate, request, **fields)

    def submit(self, request: ImageRequest | str, /, **fields: Any) -> str:
        """:meth:`ImageGenerator.submit`: the job runs in the loop thread."""
        return self._call(self.generator.submit, request, **fields)

    def job(self, job_id: str) -> Job | None:
        """:meth:`ImageGenerator.job`."""
        return self._call(self.generator.job, job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> ImageResult:
        """:meth:`ImageGenerator.wait`, blocking until the job ends (or ``timeout``)."""
        return self._call(self.generator.wait, job_id, timeout)

    def record(self, generation_id: str) -> Record | None:
        """:meth:`ImageGenerator.record`."""
        return self._call(self.generator.record, generation_id)

    def stats(
        self,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        provider: str | None = None,
    ) -> list[ProviderDayStats]:
        """:meth:`ImageGenerator.stats`."""
        return self._call(self.generator.stats, since, until, provider)

    def health(self, *, deep: bool = False) -> dict[str, Any]:
        """:meth:`ImageGenerator.health`."""
        return self._call(self.generator.health, deep=deep)

    def __repr__(self) -> str:
        state = "open" if self._portal is not None else "closed"
        return f"SyncGenerator({self.generator!r}, {state})"


def generate_sync(request: ImageRequest | str, /, **fields: Any) -> ImageResult:
    """One image, blocking, from a generator built from the environment and closed
    afterwards (:meth:`ImageGenerator.from_env`): for a script's single call. Make a
    :class:`SyncGenerator` for several.
    """
    with SyncGenerator(ImageGenerator.from_env()) as gen:
        return gen.generate(request, **fields)
