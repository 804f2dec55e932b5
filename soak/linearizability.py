"""Record histories of concurrent conditional writes and consistent reads against a real server, and check
each with the Wing-Gong checker of tests/support/linearizability.py.

    .venv/bin/python soak/linearizability.py --histories 100 [--workers 1,2] [--clients 6] [--ops 60]

Each history: a fresh table, a few keys, several client threads (each with its own connection and no SDK
retries, so that every request is one attempt) doing, at random, ConsistentRead GetItem, PutItem and
UpdateItem with a ConditionExpression on the item's value (a compare-and-set), and a few unconditional
PutItems. Every call's invocation and return times are taken on one monotonic clock; a call that failed
with anything but ConditionalCheckFailedException has an unknown outcome (it may or may not have taken
effect) and is recorded as such. Prints one line per server configuration and the total
"linearizability: A anomalies in N histories"; exit status 1 when there is any anomaly.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from tests.support.linearizability import CheckResult, Op, check_history  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

__all__ = ["make_table", "record_history", "run_histories"]

_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=20)


def make_table(server: ServerProcess) -> str:
    name = "lin-" + uuid.uuid4().hex[:10]
    client = server.client()
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def record_history(
    server: ServerProcess, table: str, *, clients: int = 4, ops: int = 30, keys: int = 2, seed: int = 0
) -> tuple[list[Op], int]:
    """Run the workload and return its history and the number of calls of unknown outcome."""
    history: list[Op] = []
    lock = threading.Lock()
    unknown = [0]
    start = threading.Barrier(clients)

    def client_loop(c: int) -> None:
        rng = random.Random(seed * 1000 + c)
        ddb = server.client(config=_CONFIG)
        last: dict[str, Any] = {}
        start.wait()
        for n in range(ops):
            key = f"k{rng.randrange(keys)}"
            roll = rng.random()
            if roll < 0.4:
                op = _read(ddb, table, key, c)
            else:
                new = f"c{c}-{n}"
                expected = last.get(key) if rng.random() < 0.85 else rng.choice([None, f"c{c}-x"])
                if roll < 0.7:
                    op = _cas_put(ddb, table, key, expected, new, c)
                elif roll < 0.95:
                    op = _cas_update(ddb, table, key, expected, new, c)
                else:
                    op = _write(ddb, table, key, new, c)
            if op.ret is None:
                with lock:
                    unknown[0] += 1
            if op.kind == "read" and op.ret is not None:
                last[key] = op.result
            elif op.kind in ("cas", "write") and op.ret is not None and op.result is not False:
                last[key] = op.new
            with lock:
                history.append(op)

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return history, unknown[0]


def _now() -> int:
    return time.monotonic_ns()


def _condition(expected: Any) -> dict[str, Any]:
    if expected is None:
        return {"ConditionExpression": "attribute_not_exists(val)"}
    return {
        "ConditionExpression": "val = :expected",
        "ExpressionAttributeValues": {":expected": {"S": expected}},
    }


def _read(ddb: Any, table: str, key: str, c: int) -> Op:
    call = _now()
    try:
        item = ddb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
    except (ClientError, BotoCoreError, OSError):
        return Op(call, None, "read", key, client=c)
    ret = _now()
    value = item["val"]["S"] if item and "val" in item else None
    return Op(call, ret, "read", key, result=value, client=c)


def _cas_put(ddb: Any, table: str, key: str, expected: Any, new: str, c: int) -> Op:
    cond = _condition(expected)
    return _conditional(
        lambda: ddb.put_item(TableName=table, Item={"pk": {"S": key}, "val": {"S": new}}, **cond),
        key,
        expected,
        new,
        c,
    )


def _cas_update(ddb: Any, table: str, key: str, expected: Any, new: str, c: int) -> Op:
    cond = _condition(expected)
    values = {**cond.pop("ExpressionAttributeValues", {}), ":new": {"S": new}}
    return _conditional(
        lambda: ddb.update_item(
            TableName=table,
            Key={"pk": {"S": key}},
            UpdateExpression="SET val = :new",
            ExpressionAttributeValues=values,
            **cond,
        ),
        key,
        expected,
        new,
        c,
    )


def _conditional(send: Any, key: str, expected: Any, new: str, c: int) -> Op:
    call = _now()
    try:
        send()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return Op(call, _now(), "cas", key, expected, new, False, c)
        return Op(call, None, "cas", key, expected, new, None, c)
    except (BotoCoreError, OSError):
        return Op(call, None, "cas", key, expected, new, None, c)
    return Op(call, _now(), "cas", key, expected, new, True, c)


def _write(ddb: Any, table: str, key: str, new: str, c: int) -> Op:
    call = _now()
    try:
        ddb.put_item(TableName=table, Item={"pk": {"S": key}, "val": {"S": new}})
    except (ClientError, BotoCoreError, OSError):
        return Op(call, None, "write", key, new=new, client=c)
    return Op(call, _now(), "write", key, new=new, client=c)


def run_histories(
    server: ServerProcess, histories: int, *, clients: int, ops: int, keys: int, seed: int = 0
) -> tuple[list[CheckResult], int, int]:
    """Record and check ``histories`` histories; return the results, the operation and unknown counts."""
    results = []
    total_ops = 0
    total_unknown = 0
    for h in range(histories):
        table = make_table(server)
        history, unknown = record_history(server, table, clients=clients, ops=ops, keys=keys, seed=seed + h)
        total_ops += len(history)
        total_unknown += unknown
        results.append(check_history(history))
    return results, total_ops, total_unknown


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--histories", type=int, default=100, help="per server configuration")
    parser.add_argument("--workers", default="1,2", help="server --workers values to run against")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--ops", type=int, default=60, help="operations per client per history")
    parser.add_argument("--keys", type=int, default=3)
    args = parser.parse_args()
    anomalies = 0
    undecided = 0
    total = 0
    for workers in [int(w) for w in args.workers.split(",")]:
        with tempfile.TemporaryDirectory(prefix="perimeterdb-lin-") as tmp:
            server = ServerProcess(Path(tmp) / "data", extra_args=["--workers", str(workers)]).start()
            try:
                started = time.monotonic()
                results, ops, unknown = run_histories(
                    server,
                    args.histories,
                    clients=args.clients,
                    ops=args.ops,
                    keys=args.keys,
                    seed=workers * 10**6,
                )
            finally:
                server.stop()
        bad = [r for r in results if r.ok is False]
        gave_up = [r for r in results if r.ok is None]
        anomalies += len(bad)
        undecided += len(gave_up)
        total += len(results)
        print(
            f"--workers {workers}: {len(results)} histories, {ops} operations ({unknown} of unknown outcome), "
            f"{len(bad)} anomalies, {len(gave_up)} undecided, {time.monotonic() - started:.0f} s",
            flush=True,
        )
        for r in bad[:5]:
            print("    " + r.detail, flush=True)
    print(f"linearizability: {anomalies} anomalies in {total} histories ({undecided} undecided)")
    return 1 if anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
