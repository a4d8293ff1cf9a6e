"""Run every benchmark of docs/benchmarks.md: ``python -m benchmarks [--quick]``.

Each scenario runs in its own process (``python -m benchmarks.<name> ...``), one
after the other, so none inherits another's imports, threads or memory; their
tables go to stdout and their plots to ``docs/img/``. ``--quick`` is a smoke run
(small sizes, about two minutes); ``--only``/``--skip`` pick scenarios by name.
The exit status is non-zero if any scenario failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

#: (name, arguments for the documented run, arguments for --quick), in run order.
TRIO = ["--backend", "trio"]
SCENARIOS: tuple[tuple[str, list[str], list[str]], ...] = (
    ("overhead", ["--rounds", "9"], ["--rounds", "1"]),
    ("overhead-trio", ["--rounds", "9", *TRIO], ["--rounds", "1", *TRIO]),
    ("hooks", ["--rounds", "10"], ["--quick"]),
    ("state", [], ["--ops", "200", "--rounds", "1"]),
    ("storage", [], ["--objects", "20", "--rounds", "1"]),
    ("http_overhead", [], ["--quick"]),
    ("strategies", [], ["--quick"]),
    ("hedge_bound", [], []),
    ("failover", [], ["--quick"]),
    ("dead_primary", [], ["--images", "20"]),
    ("throughput", [], ["--quick"]),
    ("burst", [], ["--quick"]),
)
#: Scenarios that run LiteLLM beside imagegen (``--no-litellm`` turns it off).
WITH_LITELLM = frozenset({"http_overhead", "strategies", "failover", "throughput"})


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of every scenario")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--skip", default="", help="comma-separated scenario names")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    args = parser.parse_args(argv)
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    known = {name for name, _, _ in SCENARIOS}
    if unknown := (only | skip) - known:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))} (known: {sorted(known)})")
    root = Path(__file__).resolve().parent.parent
    timings: list[tuple[str, float, int]] = []
    started = time.perf_counter()
    for name, full, quick in SCENARIOS:
        if (only and name not in only) or name in skip:
            continue
        module = name.removesuffix("-trio")
        command = [sys.executable, "-m", f"benchmarks.{module}", *(quick if args.quick else full)]
        if args.no_litellm and name in WITH_LITELLM:
            command.append("--no-litellm")
        print(f"\n## {name}: {' '.join(command[1:])}\n", flush=True)
        begun = time.perf_counter()
        status = subprocess.call(command, cwd=root)
        timings.append((name, time.perf_counter() - begun, status))
    print("\n## Summary\n")
    for name, seconds, status in timings:
        print(f"- {name}: {seconds:.0f} s{'' if status == 0 else f' (FAILED, exit {status})'}")
    print(f"- total: {time.perf_counter() - started:.0f} s")
    return 1 if any(status for _, _, status in timings) else 0


if __name__ == "__main__":
    sys.exit(main())
