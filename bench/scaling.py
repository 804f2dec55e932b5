"""GetItem and Query latency, and the server's memory, as the table grows (10k, 100k, 1M items by default).

The table (``scale``: pk S, sk N; 100 items of 1 KB per partition) is created through the API; its rows
are then written by a bulk loader *through the storage engine* (``SQLiteEngine.atomic_sync``, large
batches, partitions in key order) while the server is stopped, since 1M items through BatchWriteItem would
take most of the run's budget on 2 cores. Loading stops at the deadline and the report says what it
reached. After each step the server is started afresh, warmed, measured with wrk at low concurrency
(latency, not throughput), and its RSS read from /proc.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import log, rss_mib
from presign import sign_all, write_request_file
from systems import System, start_perimeterdb
from workloads import payload

TABLE = "scale"
PER_PARTITION = 100


@dataclass
class ScaleStep:
    target: int
    items: int
    load_seconds: float
    db_mib: float
    get: dict[str, float] = field(default_factory=dict)
    query: dict[str, float] = field(default_factory=dict)
    rss_start_mib: float = 0.0
    rss_mib: float = 0.0


@dataclass
class ScaleReport:
    steps: list[ScaleStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _pk(p: int) -> str:
    return f"s{p:07d}"


def bulk_load(data_dir: Path, account: str, start_partition: int, end_partition: int, deadline: float) -> int:
    """Write partitions [start, end) straight through the storage engine; returns the partitions written."""
    from perimeterdb.dynamodb import items
    from perimeterdb.dynamodb.catalog import Catalog
    from perimeterdb.storage.engine import Decision, Put
    from perimeterdb.storage.keys import encode_key_value, partition_hash
    from perimeterdb.storage.sqlite import SQLiteEngine

    engine = SQLiteEngine(data_dir / "perimeterdb.sqlite3", durability="off")
    try:
        table = asyncio.run(Catalog(engine).find(account, "us-east-1", TABLE))
        if table is None:
            raise RuntimeError("the scale table is not in the catalog")
        order = sorted(
            range(start_partition, end_partition),
            key=lambda p: (partition_hash(encode_key_value("S", _pk(p))), _pk(p)),
        )
        written = 0
        chunk = 40  # partitions per job: 4000 rows, about 4 MB
        for offset in range(0, len(order), chunk):
            if time.monotonic() > deadline:
                break
            puts = []
            for p in order[offset : offset + chunk]:
                for s in range(PER_PARTITION):
                    item = {"pk": {"S": _pk(p)}, "sk": {"N": str(s)}, "v": {"S": payload(p * 1000 + s)}}
                    key = items.row_key(table, {"pk": item["pk"], "sk": item["sk"]})
                    puts.append(Put(key, items.encode_item(item)))
            engine.atomic_sync((), lambda _, puts=puts: Decision(puts))
            written += len(order[offset : offset + chunk])
        return written
    finally:
        engine.close()


def _measure(
    system: System, partitions: int, work: Path, seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    import wrk_driver

    rng = random.Random(11)
    gets = [
        {
            "TableName": TABLE,
            "Key": {
                "pk": {"S": _pk(rng.randrange(partitions))},
                "sk": {"N": str(rng.randrange(PER_PARTITION))},
            },
        }
        for _ in range(3000)
    ]
    queries = []
    for _ in range(1000):
        a = rng.randrange(PER_PARTITION - 10)
        queries.append(
            {
                "TableName": TABLE,
                "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                "ExpressionAttributeValues": {
                    ":p": {"S": _pk(rng.randrange(partitions))},
                    ":a": {"N": str(a)},
                    ":b": {"N": str(a + 9)},
                },
            }
        )
    out: list[dict[str, float]] = []
    for operation, bodies in (("GetItem", gets), ("Query", queries)):
        path = work / f"scale-{operation}.bin"
        write_request_file(path, sign_all(system.host, operation, bodies, system.creds))
        wrk_driver.run(system.port, path, seconds=1, connections=2)  # warm the page cache
        r = wrk_driver.run(system.port, path, seconds=seconds, connections=2, server_pid=system.process.pid)
        out.append({"rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "errors": r.errors})
    return out[0], out[1]


def run(work: Path, sizes: list[int], *, load_budget: float, seconds: float) -> ScaleReport:
    report = ScaleReport()
    base = work / "scaling"
    system = start_perimeterdb(base, "perimeterdb-scale", "perimeterdb (scaling)")
    try:
        client = system.client()
        account = system.client("sts").get_caller_identity()["Account"]
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    finally:
        system.stop()
    assert system.data_dir is not None
    data_dir = system.data_dir
    deadline = time.monotonic() + load_budget
    partitions = 0
    for target in sizes:
        want = target // PER_PARTITION
        t0 = time.monotonic()
        if want > partitions:
            log(f"scaling: bulk-loading to {target} items")
            partitions += bulk_load(data_dir, account, partitions, want, deadline)
        load_seconds = time.monotonic() - t0
        items_now = partitions * PER_PARTITION
        if partitions < want:
            report.notes.append(
                f"loading stopped at the {load_budget:.0f} s budget: {items_now} of {target} items"
            )
        db_mib = sum(f.stat().st_size for f in data_dir.glob("perimeterdb.sqlite3*")) / 2**20
        system = start_perimeterdb(base, "perimeterdb-scale", "perimeterdb (scaling)")
        try:
            step = ScaleStep(
                target, items_now, load_seconds, db_mib, rss_start_mib=rss_mib(system.process.pid)
            )
            step.get, step.query = _measure(system, partitions, base, seconds)
            step.rss_mib = rss_mib(system.process.pid)
            report.steps.append(step)
            log(
                f"scaling: {items_now} items: get p50 {step.get['p50_ms']:.2f} ms, rss {step.rss_mib:.0f} MiB"
            )
        finally:
            system.stop()
        if partitions < want:
            break
    return report
