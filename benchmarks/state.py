"""State operations per second for every backend, and what RedisState's thread hop costs.

Run: python -m benchmarks.state [--ops N] [--rounds R] [--tasks T]

Each operation (get, set, incr, set_if_absent, scan of a 100-key prefix) runs N times on
MemoryState, SQLiteState (a temporary file) and RedisState (a redis-server this script
starts on a free port of 127.0.0.1 and stops at the end; skipped, with a note, when
redis-server is not on PATH), one call at a time and from T concurrent tasks, on asyncio.
Every figure is the median of R rounds, each on a fresh backend that is already warm
(schema made, connections and worker threads up).

RedisState runs redis-py's sync client in anyio worker threads (redis.asyncio fails under
trio). The baseline column issues the very same Redis commands (the same Lua script for
incr, SET NX PX, SCAN MATCH) from the same sync client called directly, one at a time,
with no thread hop: the ratio and the µs/op difference are the cost of that design. The
direct client cannot overlap calls without threads, so its one-at-a-time figure is also
the baseline for the concurrent rows.

A second table gives MemoryState's cost per call, in ns, beside a plain dict doing the
same work behind the same ``async def`` (no ttl, no size bound, no recency) and beside
the cachetools ``TLRUCache`` MemoryState was built on before, in the same run: each
figure is N awaited calls on a store already holding 10,000 keys, as the minimum and the
median over at least 3 rounds. ``--memory-only`` prints this table alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from importlib.metadata import version
from pathlib import Path

import anyio
import anyio.to_thread
import cachetools
import redis

from imagegen import MemoryState, SQLiteState, StateBackend
from imagegen.state._redis import _INCR, RedisState

OPS = ("get", "set", "incr", "set_if_absent", "scan")
VALUE = b"x" * 100
KEYS = 100  # get/set cycle over this many keys; incr over 10 counters
SCAN_KEYS = 100  # keys under the scanned prefix, among the KEYS others
SCAN_SHARE = 10  # scan is far slower than the rest: it runs ops / SCAN_SHARE times

AsyncOp = Callable[[int], Awaitable[object]]
SyncOp = Callable[[int], object]


# --- a redis-server of our own ---------------------------------------------------------------


def _free_port() -> int:
    # redis-server cannot choose a free port itself: take one from the OS and pass it on.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(proc: subprocess.Popen[bytes], url: str) -> bool:
    probe = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    deadline = time.monotonic() + 5
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                return bool(probe.ping())
            except redis.ConnectionError:
                time.sleep(0.02)
        return False
    finally:
        probe.close()


@contextmanager
def redis_server(workdir: Path) -> Iterator[str | None]:
    """The URL of a fresh redis-server on 127.0.0.1, stopped on exit; None without one."""
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    for _attempt in range(3):  # the free port may be taken before the server binds it
        port = _free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(workdir), "--logfile", str(workdir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        if _answers_ping(proc, url):
            try:
                yield url
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            return
        proc.kill()
        proc.wait(timeout=10)
    raise RuntimeError("redis-server did not answer PING within 5 s")


# --- the operations ---------------------------------------------------------------------------


def async_op(state: StateBackend, name: str, tag: str) -> AsyncOp:
    """One call of ``name`` on a backend, varied by the call's index."""
    if name == "get":
        return lambda i: state.get(f"k:{i % KEYS}")
    if name == "set":
        return lambda i: state.set(f"k:{i % KEYS}", VALUE)
    if name == "incr":
        return lambda i: state.incr(f"c:{i % 10}")
    if name == "set_if_absent":  # a new key every time: the replay-protection case, a win
        return lambda i: state.set_if_absent(f"l:{tag}:{i}", VALUE, ttl=60)
    return lambda _i: state.scan("s:")


def sync_op(client: redis.Redis, name: str, tag: str) -> SyncOp:
    """The same Redis commands RedisState sends, from the sync client, with no thread hop."""
    if name == "get":
        return lambda i: client.get(f"k:{i % KEYS}")
    if name == "set":
        return lambda i: client.set(f"k:{i % KEYS}", VALUE)
    if name == "incr":
        script = client.register_script(_INCR)
        return lambda i: script(keys=[f"c:{i % 10}"], args=[1, ""])
    if name == "set_if_absent":
        return lambda i: client.set(f"l:{tag}:{i}", VALUE, px=60_000, nx=True)
    return lambda _i: [k.decode() for k in dict.fromkeys(client.scan_iter("s:*", count=1000))]


async def fill(state: StateBackend) -> None:
    """The keys every operation expects to find."""
    for i in range(KEYS):
        await state.set(f"k:{i}", VALUE)
    for i in range(SCAN_KEYS):
        await state.set(f"s:{i}", VALUE)


async def run(op: AsyncOp, n: int, tasks: int) -> float:
    """Operations per second: ``n`` calls of ``op``, from ``tasks`` tasks at once."""

    async def worker(first: int) -> None:
        for i in range(first, n, tasks):
            await op(i)

    start = time.perf_counter()
    if tasks == 1:
        await worker(0)
    else:
        async with anyio.create_task_group() as tg:
            for first in range(tasks):
                tg.start_soon(worker, first)
    return n / (time.perf_counter() - start)


def run_sync(op: SyncOp, n: int) -> float:
    """Operations per second of ``n`` direct calls, one after another."""
    start = time.perf_counter()
    for i in range(n):
        op(i)
    return n / (time.perf_counter() - start)


async def empty_hop(n: int) -> float:
    """Microseconds one anyio.to_thread.run_sync of a no-op takes, median of 3 runs."""
    limiter = anyio.CapacityLimiter(16)

    def nothing() -> None:
        return None

    async def hop(_i: int) -> None:
        await anyio.to_thread.run_sync(nothing, limiter=limiter)

    await run(hop, 100, 1)  # start the worker thread
    return statistics.median([1e6 / await run(hop, n, 1) for _ in range(3)])


# --- the measurements -------------------------------------------------------------------------


class Bench:
    """Fresh, warm backends on demand, and the medians of their rounds."""

    def __init__(self, workdir: Path, redis_url: str | None, ops: int, rounds: int) -> None:
        self.workdir = workdir
        self.redis_url = redis_url
        self.ops = ops
        self.rounds = rounds
        self.runs = 0
        self.admin = None if redis_url is None else redis.Redis.from_url(redis_url)

    def fresh(self, backend: str) -> StateBackend:
        self.runs += 1
        if backend == "memory":
            return MemoryState()
        if backend == "sqlite":
            return SQLiteState(self.workdir / f"state-{self.runs}.db")
        assert self.admin is not None
        assert self.redis_url is not None
        self.admin.flushdb()
        return RedisState(self.redis_url)

    def count(self, name: str) -> int:
        return max(self.ops // SCAN_SHARE, 1) if name == "scan" else self.ops

    async def backend(self, backend: str, name: str, tasks: int) -> float:
        """Median ops/s of ``name`` on ``backend`` from ``tasks`` tasks."""
        results = []
        for _ in range(self.rounds):
            state = self.fresh(backend)
            try:
                await fill(state)
                await run(async_op(state, "get", "warm"), 4 * tasks, tasks)  # threads, pool
                op = async_op(state, name, f"r{self.runs}")
                results.append(await run(op, self.count(name), tasks))
            finally:
                await state.aclose()
        return statistics.median(results)

    async def direct(self, name: str) -> float:
        """Median ops/s of ``name``'s Redis commands from the sync client, no thread hop."""
        assert self.redis_url is not None
        results = []
        for _ in range(self.rounds):
            state = self.fresh("redis")  # flushes; filled the same way as for RedisState
            await fill(state)
            await state.aclose()
            client = redis.Redis.from_url(self.redis_url)
            try:
                client.ping()  # connect outside the timing, as the warm-up does above
                self.runs += 1
                results.append(run_sync(sync_op(client, name, f"r{self.runs}"), self.count(name)))
            finally:
                client.close()
        return statistics.median(results)

    def close(self) -> None:
        if self.admin is not None:
            self.admin.close()


# --- MemoryState against a plain dict ---------------------------------------------------------

MEMORY_KEYS = 10_000  # keys already in the store (each with a ttl) when a round starts
MEMORY_TTL = 3600.0
STAT_COUNTERS = ("stats:calls", "stats:ok", "stats:ms")  # a call's counters, as incr_many
MEMORY_OPS: tuple[tuple[str, str], ...] = (
    ("get", "get of a key that is there"),
    ("get-miss", "get of a key that is not"),
    ("set", "set of a key that is there, with a ttl"),
    ("set-new", "set of a new key, with a ttl"),
    ("incr", "incr of a counter that is there, with a ttl"),
    ("incr_many", "incr_many of a call's 3 counters, with a ttl"),
    ("set_if_absent", "set_if_absent of a new key, with a ttl (a win)"),
)


class DictState:
    """The floor: plain dicts behind the same async methods; no ttl, bound or recency."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.counts: dict[str, int] = {}

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self.values[key] = value

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        self.counts[key] = value = self.counts.get(key, 0) + amount
        return value

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        counts = self.counts
        for key, amount in amounts.items():
            counts[key] = counts.get(key, 0) + amount

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if key in self.values:
            return False
        self.values[key] = value
        return True


class TLRUState:
    """MemoryState as it was before: entries in a cachetools TLRUCache (get/set/incr only)."""

    def __init__(self, maxsize: int = 100_000) -> None:
        self.timer = time.monotonic
        self.data: cachetools.TLRUCache[str, tuple[bytes, float]] = cachetools.TLRUCache(
            maxsize=maxsize, ttu=lambda _key, entry, _now: entry[1], timer=time.monotonic
        )

    def expiry(self, ttl: float | None) -> float:
        return float("inf") if ttl is None else self.timer() + ttl

    async def get(self, key: str) -> bytes | None:
        entry = self.data.get(key)
        return None if entry is None else entry[0]

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self.data[key] = (bytes(value), self.expiry(ttl))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self.bump(key, amount, ttl)

    async def incr_many(self, amounts: Mapping[str, int], *, ttl: float | None = None) -> None:
        for key, amount in amounts.items():
            self.bump(key, amount, ttl)

    def bump(self, key: str, amount: int, ttl: float | None) -> int:
        entry = self.data.get(key)
        if entry is None:
            value, expiry = amount, self.expiry(ttl)
        else:
            value, expiry = int(entry[0]) + amount, entry[1]
        self.data[key] = (str(value).encode(), expiry)
        return value

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if self.data.get(key) is not None:
            return False
        self.data[key] = (bytes(value), self.expiry(ttl))
        return True


Store = DictState | TLRUState | MemoryState


def memory_op(store: Store, name: str, tag: str, n: int) -> AsyncOp:
    """Call ``i`` of ``name`` (a MEMORY_OPS name) on ``store``; keys are made beforehand."""
    keys = [f"k:{i}" for i in range(KEYS)]
    counters = [f"c:{i}" for i in range(10)]
    if name == "get":
        return lambda i: store.get(keys[i % KEYS])
    if name == "get-miss":
        missing = [f"m:{i}" for i in range(KEYS)]
        return lambda i: store.get(missing[i % KEYS])
    if name == "set":
        return lambda i: store.set(keys[i % KEYS], VALUE, ttl=MEMORY_TTL)
    if name == "incr":
        return lambda i: store.incr(counters[i % 10], ttl=MEMORY_TTL)
    if name == "incr_many":
        amounts = dict.fromkeys(STAT_COUNTERS, 1)
        return lambda _i: store.incr_many(amounts, ttl=MEMORY_TTL)
    fresh = [f"n:{tag}:{i}" for i in range(n)]
    if name == "set-new":
        return lambda i: store.set(fresh[i], VALUE, ttl=MEMORY_TTL)
    return lambda i: store.set_if_absent(fresh[i], VALUE, ttl=MEMORY_TTL)


async def memory_ns(make: Callable[[], Store], name: str, ops: int, tag: str) -> float:
    """ns per call of ``name`` over ``ops`` calls, on a fresh store of MEMORY_KEYS keys."""
    store = make()
    for i in range(MEMORY_KEYS):
        await store.set(f"f:{i}", VALUE, ttl=MEMORY_TTL)
    for i in range(KEYS):
        await store.set(f"k:{i}", VALUE, ttl=MEMORY_TTL)
    for key in (*STAT_COUNTERS, *(f"c:{i}" for i in range(10))):
        await store.incr(key, ttl=MEMORY_TTL)
    warm = min(ops, 1000)
    await run(memory_op(store, name, f"{tag}w", warm), warm, 1)
    return 1e9 / await run(memory_op(store, name, tag, ops), ops, 1)


async def memory_table(ops: int, rounds: int) -> None:
    """MemoryState's ns per call beside a plain dict's and the former TLRUCache's."""
    rounds = max(rounds, 3)
    makers: tuple[Callable[[], Store], ...] = (DictState, MemoryState, TLRUState)
    print(
        f"# MemoryState, ns per call (min / median of {rounds} rounds of {ops:,} calls; "
        f"{MEMORY_KEYS:,} keys held)\n\n"
        f"Python {platform.python_version()}, cachetools {version('cachetools')}, asyncio. "
        "Every store's methods are `async def`, awaited one at a time; the three stores "
        "take turns within each round.\n"
    )
    print("| op | plain dict | MemoryState | ÷ dict | before: TLRUCache | before ÷ now |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, what in MEMORY_OPS:
        results: list[list[float]] = [[] for _ in makers]
        for round_ in range(rounds):
            for make, figures in zip(makers, results, strict=True):
                figures.append(await memory_ns(make, name, ops, f"r{round_}"))
        base, now, before = results
        ratio = statistics.median(now) / statistics.median(base)
        gain = statistics.median(before) / statistics.median(now)
        row = f"| {what} | {_ns(base)} | {_ns(now)} | {ratio:.1f}x | {_ns(before)} | {gain:.1f}x |"
        print(row)


def _ns(results: list[float]) -> str:
    return f"{min(results):,.0f} / {statistics.median(results):,.0f}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


async def main(ops: int, rounds: int, tasks: int, *, memory_only: bool = False) -> None:
    await memory_table(max(ops, 100_000), rounds)
    if memory_only:
        return
    print()
    with (
        tempfile.TemporaryDirectory(prefix="imagegen-bench-") as tmp,
        redis_server(Path(tmp)) as url,
    ):
        bench = Bench(Path(tmp), url, ops, rounds)
        try:
            server = "not run: redis-server is not on PATH (apt-get install redis-server)"
            if bench.admin is not None:
                server = f"redis-server {bench.admin.info('server')['redis_version']} on 127.0.0.1"
            print(
                f"# State backends, operations per second (median of {rounds} rounds; "
                f"{ops} calls per op, scan {bench.count('scan')})\n\n"
                f"Python {platform.python_version()}, anyio {version('anyio')}, "
                f"redis-py {version('redis')}, {server}, {os.cpu_count()} CPUs, asyncio.\n"
                f"RedisState uses max_workers=16 worker threads and connections.\n"
            )
            print(
                "| op | tasks | MemoryState | SQLiteState | RedisState "
                "| Redis sync, direct | RedisState ÷ direct |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|")
            direct: dict[str, float] = {}
            for name in OPS:
                if url is not None:
                    direct[name] = await bench.direct(name)
                for n_tasks in (1, tasks):
                    memory = await bench.backend("memory", name, n_tasks)
                    sqlite = await bench.backend("sqlite", name, n_tasks)
                    red = base = None
                    cost = "n/a"
                    if url is not None:
                        red, base = await bench.backend("redis", name, n_tasks), direct[name]
                        cost = f"{red / base:.2f}x"
                        if n_tasks == 1:
                            cost += f" (+{1e6 / red - 1e6 / base:.0f} µs/op)"
                    print(
                        f"| {name} | {n_tasks} | {_fmt(memory)} | {_fmt(sqlite)} | {_fmt(red)} "
                        f"| {_fmt(base)} | {cost} |"
                    )
            if url is not None:
                hop = await empty_hop(ops)
                print(
                    f"\nDirect: one call at a time (a sync client cannot overlap calls without "
                    f"threads), the baseline for both rows. An empty thread hop "
                    f"(anyio.to_thread.run_sync of a no-op, 16-slot limiter) costs "
                    f"{hop:.0f} µs here."
                )
            else:
                print(f"\nRedis columns: {server}.")
        finally:
            bench.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=2000, help="calls per operation and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--tasks", type=int, default=50, help="concurrent tasks")
    parser.add_argument(
        "--memory-only", action="store_true", help="only MemoryState against a plain dict"
    )
    args = parser.parse_args()
    anyio.run(
        partial(main, args.ops, args.rounds, args.tasks, memory_only=args.memory_only),
        backend="asyncio",
    )
