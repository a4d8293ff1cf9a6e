"""What the emulator scenarios share: percentiles, markdown tables, plots, clients, LiteLLM.

Plots use matplotlib's Agg backend and go to ``docs/img/<name>.png``. LiteLLM is
imported only when a scenario asks for it, with its cost-map download and
telemetry switched off first, since it must never reach the network.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import random
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import anyio
import httpx

from imagegen import DownloadPolicy

REPO = Path(__file__).resolve().parent.parent
IMG = REPO / "docs" / "img"

#: What the generator fetches emulator output under: plain http on 127.0.0.1.
EMULATOR_DOWNLOADS = DownloadPolicy(allow_http=True, allow_private_networks=True)


# -- numbers ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linearly interpolated between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float, digits: int = 1) -> str:
    """Seconds as milliseconds, for a table cell."""
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, title: str = "") -> str:
    """A markdown table (first column left-aligned, the rest right-aligned); printed too."""
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text, end="\n\n", flush=True)
    return text


def machine() -> str:
    """Python, CPU count and the versions that matter, for the top of a report."""
    names = ("anyio", "httpx", "h11", "trio", "litellm")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    cores = os.cpu_count()
    return f"Python {platform.python_version()}, {cores} cores; " + ", ".join(found)


# -- plots ------------------------------------------------------------------------------------


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (a benchmark-only dependency)."""
    import matplotlib  # noqa: PLC0415 - benchmark-only dependency, imported when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


_plots = IMG


def scratch_plots() -> None:
    """Send plots to a temporary directory: a smoke run must not replace the documented ones."""
    global _plots  # noqa: PLW0603 - one switch for the whole process
    _plots = Path(tempfile.gettempdir()) / "imagegen-benchmarks"


def save(fig: Any, name: str) -> Path:
    """Write ``fig`` to ``docs/img/<name>.png`` (see :func:`scratch_plots`) and close it."""
    _plots.mkdir(parents=True, exist_ok=True)
    path = _plots / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    print(f"plot: {path}\n", flush=True)
    return path


# -- clients ----------------------------------------------------------------------------------


def http_client() -> httpx.AsyncClient:
    """A client made the way ImageGenerator makes its own (same timeouts, default pool)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False)


async def timed_calls(
    call: Callable[[int], Awaitable[object]],
    indices: Sequence[int],
    *,
    concurrency: int,
) -> list[float]:
    """Seconds each ``call(i)`` took, at most ``concurrency`` at a time; failures raise."""
    limiter = anyio.CapacityLimiter(concurrency)
    times: list[float] = [math.nan] * len(indices)

    async def one(slot: int, index: int) -> None:
        async with limiter:
            start = time.perf_counter()
            await call(index)
            times[slot] = time.perf_counter() - start

    async with anyio.create_task_group() as group:
        for slot, index in enumerate(indices):
            group.start_soon(one, slot, index)
    return times


async def open_loop(
    call: Callable[[int], Awaitable[object]],
    indices: Sequence[int],
    *,
    rate: float,
    seed: int = 1,
) -> list[float]:
    """Seconds each ``call(i)`` took, started at Poisson arrivals of ``rate`` per second.

    Arrivals do not wait for earlier calls (an open loop), so a slow strategy is not
    rewarded with a lighter load, and every run meets the same arrival times.
    """
    rng = random.Random(seed)
    times: list[float] = [math.nan] * len(indices)

    async def one(slot: int, index: int) -> None:
        start = time.perf_counter()
        await call(index)
        times[slot] = time.perf_counter() - start

    async with anyio.create_task_group() as group:
        due = time.perf_counter()
        for slot, index in enumerate(indices):
            due += rng.expovariate(rate)
            await anyio.sleep(max(0.0, due - time.perf_counter()))
            group.start_soon(one, slot, index)
    return times


# -- LiteLLM ----------------------------------------------------------------------------------


def litellm() -> Any:
    """The litellm module, offline: local cost map, no telemetry, quiet logs."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm as module  # noqa: PLC0415 - benchmark-only dependency, slow to import

    module.telemetry = False
    module.suppress_debug_info = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return module


def deployment(name: str, api_base: str, **params: Any) -> dict[str, Any]:
    """One ``model_list`` entry: an OpenAI-compatible image model at ``api_base``."""
    return {
        "model_name": name,
        "litellm_params": {
            "model": "openai/flux-schnell",
            "api_base": api_base,
            "api_key": "sk-emulator",
            **params,
        },
    }


def router_settings(router: Any) -> dict[str, Any]:
    """The settings a Router runs with, as it reports them (for the docs)."""
    names = ("num_retries", "timeout", "allowed_fails", "cooldown_time", "routing_strategy")
    with warnings.catch_warnings():
        # Some of these attributes are deprecated in favour of Router.settings(), which
        # does not hold them all.
        warnings.simplefilter("ignore", DeprecationWarning)
        return {name: getattr(router, name, None) for name in names}
