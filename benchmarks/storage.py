"""Upload throughput through R2Storage.put against a bare boto3 put_object loop.

Run: python -m benchmarks.storage [--objects 200] [--size-kib 64] [--concurrency 8]
     [--rounds 5] [--backend asyncio|trio] [--in-process]

Both paths upload the same objects (same size, Content-Type, Cache-Control and
metadata) with the same concurrency through the same boto3 client to moto's S3
server on 127.0.0.1: R2Storage.put from one event loop, `concurrency` uploads in
flight (its CapacityLimiter bounds the worker threads), and bare boto3 from a
ThreadPoolExecutor of `concurrency` threads. Rounds alternate the two paths after a
warm-up of each, and the table shows the median round. The server runs in its own
process by default, so it does not compete with the client for this process's GIL;
--in-process uses ThreadedMotoServer instead (both paths then share the GIL with it).
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import anyio
import boto3
from botocore.config import Config

from imagegen.storage._r2 import DEFAULT_CACHE_CONTROL, R2Storage

BUCKET = "imagegen-bench"
METADATA = {"generation-id": "0" * 26, "provider": "bench", "prompt-sha256": "ab" * 32}


@contextmanager
def moto_server(in_process: bool) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; yields its endpoint URL and stops it afterwards."""
    if in_process:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only when asked

        # verbose=False still leaves werkzeug logging every request to stderr.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def make_client(endpoint: str, concurrency: int) -> Any:
    """A client configured as r2_client() configures one, pointed at the local server."""
    admin = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    admin.create_bucket(Bucket=BUCKET)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="auto",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=max(16, concurrency),
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def bare(client: Any, payloads: list[bytes], concurrency: int) -> float:
    """Seconds for put_object of every payload from `concurrency` threads."""

    def put(i: int) -> None:
        client.put_object(
            Bucket=BUCKET,
            Key=f"bare/{i}.bin",
            Body=payloads[i],
            ContentType="image/png",
            CacheControl=DEFAULT_CACHE_CONTROL,
            Metadata=METADATA,
        )

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        start = time.perf_counter()
        list(pool.map(put, range(len(payloads))))
        return time.perf_counter() - start


async def through_storage(storage: R2Storage, payloads: list[bytes]) -> float:
    """Seconds for R2Storage.put of every payload, all started at once (the limiter bounds)."""

    async def put(i: int) -> None:
        await storage.put(f"r2/{i}.bin", payloads[i], content_type="image/png", metadata=METADATA)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(len(payloads)):
            tg.start_soon(put, i)
    return time.perf_counter() - start


def row(name: str, objects: int, size: int, seconds: float) -> str:
    mib = objects * size / 2**20
    return (
        f"| {name} | {objects} | {seconds:.3f} | {objects / seconds:,.0f} | {mib / seconds:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--size-kib", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--in-process", action="store_true", help="ThreadedMotoServer")
    args = parser.parse_args()

    size = args.size_kib * 1024
    # Distinct bytes per object, made once, outside every timing.
    payloads = [i.to_bytes(4, "big") * (size // 4) for i in range(args.objects)]
    with moto_server(args.in_process) as endpoint:
        client = make_client(endpoint, args.concurrency)
        storage = R2Storage(
            client=client, bucket_name=BUCKET, key_prefix="images/", max_workers=args.concurrency
        )

        def run_storage() -> float:
            return anyio.run(through_storage, storage, payloads, backend=args.backend)

        bare(client, payloads, args.concurrency)  # warm-up: connections, models, moto
        run_storage()
        bare_times, storage_times = [], []
        for _ in range(args.rounds):
            bare_times.append(bare(client, payloads, args.concurrency))
            storage_times.append(run_storage())

    b, s = statistics.median(bare_times), statistics.median(storage_times)
    server = "in-process ThreadedMotoServer" if args.in_process else "moto_server subprocess"
    print(
        f"{args.objects} x {args.size_kib} KiB, concurrency {args.concurrency}, "
        f"backend {args.backend}, {server}, median of {args.rounds} rounds\n"
    )
    print("| path | objects | seconds | objects/s | MiB/s |")
    print("|---|---:|---:|---:|---:|")
    print(row("boto3 put_object, thread pool", args.objects, size, b))
    print(row("R2Storage.put", args.objects, size, s))
    print(f"\nR2Storage throughput / bare boto3: {b / s:.2f} ({(b / s - 1) * 100:+.1f}%)")
    print(
        "Per-round seconds, bare: "
        + ", ".join(f"{t:.3f}" for t in bare_times)
        + "; R2Storage: "
        + ", ".join(f"{t:.3f}" for t in storage_times)
    )


if __name__ == "__main__":
    main()
