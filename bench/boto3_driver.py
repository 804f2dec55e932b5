"""The end-to-end figure users see: several boto3 processes calling GetItem or PutItem in a loop.

Each process makes one client (creating one costs ~7 ms) and calls until its deadline or its call budget,
whichever comes first. One boto3 call costs the client 1.7-2 ms of CPU, so on this 2-core machine the
clients share the CPUs with the server: the figure is what an application on the same host would see.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

from presign import Credentials
from workloads import KV, kv_item, kv_key


@dataclass(frozen=True)
class BotoResult:
    calls: int
    seconds: float
    errors: int
    processes: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def _worker(
    endpoint: str, creds: Credentials, operation: str, seconds: float, budget: int, seed: int, out: Any
) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=creds.region,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret,
        aws_session_token=creds.session_token,
        config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60),
    )
    client.get_item(TableName=KV, Key={"pk": {"S": kv_key(0)}})  # connect and warm up
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    deadline = start + seconds
    i = seed * 100_000
    while time.perf_counter() < deadline and len(latencies) + errors < budget:
        t0 = time.perf_counter()
        try:
            if operation == "GetItem":
                client.get_item(TableName=KV, Key={"pk": {"S": kv_key(i)}})
            else:
                client.put_item(TableName=KV, Item=kv_item(i, seed=i + 1))
            latencies.append(time.perf_counter() - t0)
        except Exception:
            errors += 1
        i += 1
    out.put((len(latencies), time.perf_counter() - start, errors, latencies))


def run(
    endpoint: str,
    creds: Credentials,
    operation: str,
    *,
    processes: int,
    seconds: float,
    budget_per_process: int = 50_000,
) -> BotoResult:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(endpoint, creds, operation, seconds, budget_per_process, n, queue))
        for n in range(processes)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    calls = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    latencies = sorted(x for r in results for x in r[3])

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")
        )

    return BotoResult(calls, elapsed, sum(r[2] for r in results), processes, pct(0.5), pct(0.99))
