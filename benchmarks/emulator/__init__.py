"""A local HTTP emulator of the image APIs imagegen speaks: Replicate, fal, OpenAI Images, Unsplash.

One small HTTP/1.1 server (h11 on anyio, so it runs on asyncio and trio and owns its
sockets: it can hang a request or reset a connection) serves any number of named
*instances*, each speaking one vendor's API under its own path prefix, with the
JSON shapes the vendors document, and real image bytes (PNG, JPEG, WebP) for
outputs. Each instance has a :class:`ProviderProfile`: a latency distribution, the
odds of each :class:`Fault`, and a seed.

Two ways to run it:

- in-process, from tests: ``async with Emulator({"a": ProviderProfile(api="openai")}) as emu:``
  then ``emu.provider("a")`` is an imagegen provider pointed at it, on a free port of
  127.0.0.1;
- as a separate process, so the server does not share a CPU with the client under
  test: ``python -m benchmarks.emulator --port 0 --config profiles.json`` (it prints
  ``imagegen emulator listening on http://127.0.0.1:PORT``), or
  ``with EmulatorProcess(profiles) as emu:`` which starts and stops it. The same
  control methods work on both; the process is driven over ``/_emulator/...``.

Draws are reproducible (keyed by prompt) and faults can be forced; each instance
counts what it was asked, made and billed (:class:`ProviderStats`).

Where things are:

- ``_profiles``: :class:`ProviderProfile`, latencies (:class:`Fixed`, :class:`LogNormal`),
  :class:`Fault` and what each fault does, :class:`Draw` and how draws are keyed;
- ``_stats``: :class:`ProviderStats`, the counters; ``_instance``: one instance's state;
- ``_images``: the output bytes; ``_http``: h11 plumbing, resets, :func:`closed_port_url`;
  ``_errors``: each vendor's auth scheme and error bodies;
- ``_server``: :class:`Emulator` (lifecycle, connections, routing, the ``/_emulator``
  control API), built on ``_base`` (URLs and providers, shared with the child process) and
  ``_routes`` (steps every vendor shares), with each vendor's routes in ``_replicate``,
  ``_fal``, ``_openai`` and ``_unsplash``;
- ``_process``: :class:`EmulatorProcess`; ``_cli``: the command line (``__main__``).
"""

from __future__ import annotations

from ._cli import load_profiles as load_profiles
from ._cli import main as main
from ._http import closed_port_url
from ._images import image_bytes
from ._process import EmulatorProcess
from ._profiles import (
    APIS,
    POLL_FAULTS,
    Draw,
    Fault,
    Fixed,
    Latency,
    LogNormal,
    ProviderProfile,
    default_profiles,
)
from ._profiles import Api as Api
from ._profiles import latency_from as latency_from
from ._server import Emulator
from ._stats import ProviderStats

__all__ = [
    "APIS",
    "POLL_FAULTS",
    "Draw",
    "Emulator",
    "EmulatorProcess",
    "Fault",
    "Fixed",
    "Latency",
    "LogNormal",
    "ProviderProfile",
    "ProviderStats",
    "closed_port_url",
    "default_profiles",
    "image_bytes",
]
