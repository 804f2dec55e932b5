"""kill -9 at random points of a mixed workload, again and again, checking everything after each restart.

    .venv/bin/python soak/crash_loop.py --runs 100 [--seed 1] [--clients 4] [--data-dir DIR]

One data directory lives through all the runs. Each run starts the server (alternating ``--durability
full`` and ``normal``; every third run with ``--workers 2``), lets several client threads run a mixed
workload (puts, conditional counter updates, 4-item transactions, 5-item batches, increments in
transactions with a ClientRequestToken, and puts and deletes
that move items between the partitions of a global secondary index; in runs 5, 15, 25, ... a second index
is created at the start, so that its backfill races the writes and the kill), sends SIGKILL to the whole
process group at a random moment, and then checks:

1. SQLite's ``PRAGMA integrity_check`` on a copy of the database and its WAL as the kill left them;
2. after a restart, every acknowledged put and batch item is present and whole (its payload matches);
3. every transaction is all-or-nothing, and every acknowledged one is there;
4. each counter holds its last acknowledged value, or that value plus one if an update was in flight; a
   tokened increment in flight is sent again with its token, after which its counter holds exactly the
   number of increments (applied once, whether or not it had committed before the kill);
5. each moving item is in its last acknowledged state or in the state of the write that was in flight;
6. every item of the table is whole, and each index (once ACTIVE: an interrupted backfill must resume)
   holds exactly the items that have its key: querying it for each partition gives the same items as a
   scan.

Tables rotate every ten runs, so earlier tables stay in the file (and under its integrity check) while the
checks stay fast. Prints one line per run and "kill -9: C/N clean"; exit status 1 if any run was not clean.
The small version of this loop runs in CI (tests/e2e/test_crash_loop.py).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from tests.e2e.test_crash_durability import _payload  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

__all__ = ["CrashLoop", "RunReport"]

_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10)
GROUPS = 4  # GSI partitions: g0..g3
TX_SIZE = 4
BATCH_SIZE = 5
MOVERS = 4  # moving items per client


@dataclass
class RunReport:
    run: int
    acknowledged: int = 0
    in_flight: int = 0
    items: int = 0
    indexes: int = 0
    retried: int = 0  # tokened transactions sent again after the restart
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


@dataclass
class _Expected:
    """What the client side knows of one table, across runs."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # acknowledged, immutable items
    maybe_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # in flight at a kill
    transactions: dict[str, bool] = field(default_factory=dict)  # tx id -> acknowledged
    counters: dict[str, int] = field(default_factory=dict)  # acknowledged value
    counter_in_flight: set[str] = field(default_factory=set)
    token_counters: dict[str, int] = field(default_factory=dict)  # incremented by tokened transactions
    token_in_flight: dict[str, dict[str, Any]] = field(default_factory=dict)  # pk -> the request, to retry
    movers: dict[str, dict[str, Any] | None] = field(
        default_factory=dict
    )  # acknowledged state (None: deleted)
    mover_in_flight: dict[str, dict[str, Any] | None] = field(default_factory=dict)


def _whole(item: dict[str, Any]) -> bool:
    """Every item the workload writes carries ``i`` and ``payload = _payload(i)``."""
    try:
        return item["payload"]["S"] == _payload(int(item["i"]["N"]))
    except (KeyError, ValueError):
        return False


class CrashLoop:
    def __init__(
        self, data_dir: Path, *, seed: int = 0, clients: int = 4, max_workload_s: float = 1.5
    ) -> None:
        self.data_dir = data_dir
        self.rng = random.Random(seed)
        self.clients = clients
        self.max_workload_s = max_workload_s
        self.expected: dict[str, _Expected] = {}
        self.token_salt = f"{seed}-{random.Random().getrandbits(32):08x}"  # tokens live 10 minutes
        self.counter = 0
        self.lock = threading.Lock()

    # --- one run ---------------------------------------------------------------------------------------

    def run_once(self, run: int) -> RunReport:
        report = RunReport(run)
        durability = "full" if run % 2 == 0 else "normal"
        args = ["--durability", durability] + (["--workers", "2"] if run % 3 == 2 else [])
        server = _start(ServerProcess(self.data_dir, extra_args=args))
        try:
            table = f"crash{run // 10}"
            if table not in self.expected:
                self._create_table(server, table)
                self.expected[table] = _Expected()
            exp = self.expected[table]
            stop = threading.Event()
            threads = [
                threading.Thread(target=self._client, args=(server, table, exp, run, c, stop, report))
                for c in range(self.clients)
            ]
            for t in threads:
                t.start()
            if run % 10 == 5:  # a second index, backfilled while the clients write and the kill comes
                self._add_index(server, table)
            deadline = time.monotonic() + 20  # let every client get going (bounded), then a random moment
            while report.acknowledged < 2 * self.clients and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(self.rng.uniform(0.0, self.max_workload_s))
            server.kill()  # SIGKILL to the whole process group, mid-workload
            stop.set()
            for t in threads:
                t.join(timeout=60)
        finally:
            server.kill()
        report.problems += self._integrity_check()
        server = _start(ServerProcess(self.data_dir, port=server.port))
        try:
            self._verify(server, table, exp, report)
        finally:
            server.stop()
            server.kill()
        return report

    def _create_table(self, server: ServerProcess, table: str) -> None:
        server.client().create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_g",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "pk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )

    def _add_index(self, server: ServerProcess, table: str) -> None:
        try:
            server.client(config=_CONFIG).update_table(
                TableName=table,
                AttributeDefinitions=[
                    {"AttributeName": "g", "AttributeType": "S"},
                    {"AttributeName": "i", "AttributeType": "N"},
                ],
                GlobalSecondaryIndexUpdates=[
                    {
                        "Create": {
                            "IndexName": "by_g_i",
                            "KeySchema": [
                                {"AttributeName": "g", "KeyType": "HASH"},
                                {"AttributeName": "i", "KeyType": "RANGE"},
                            ],
                            "Projection": {"ProjectionType": "ALL"},
                        }
                    }
                ],
            )
        except (ClientError, BotoCoreError, OSError):
            pass  # the kill may come first; the check below compares whatever index exists

    def _next_i(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def _item(self, pk: str, **extra: Any) -> dict[str, Any]:
        i = self._next_i()
        return {"pk": {"S": pk}, "i": {"N": str(i)}, "payload": {"S": _payload(i)}, **extra}

    def _client(
        self,
        server: ServerProcess,
        table: str,
        exp: _Expected,
        run: int,
        c: int,
        stop: threading.Event,
        report: RunReport,
    ) -> None:
        rng = random.Random(self.rng.random() + c)
        ddb = server.client(config=_CONFIG)
        n = 0
        while not stop.is_set():
            n += 1
            roll = rng.random()
            g = {"S": f"g{rng.randrange(GROUPS)}"}
            if roll < 0.3:
                ok = self._put(ddb, table, exp, self._item(f"p{run}-{c}-{n}", g=g), report)
            elif roll < 0.5:
                ok = self._counter(ddb, table, exp, f"ctr-{c}", report)
            elif roll < 0.7:
                tx = f"{run}-{c}-{n}"
                items = [
                    self._item(f"t{tx}-{j}", tx={"S": tx}, g={"S": f"g{j % GROUPS}"}) for j in range(TX_SIZE)
                ]
                ok = self._transaction(ddb, table, exp, tx, items, report)
            elif roll < 0.8:
                items = [self._item(f"b{run}-{c}-{n}-{j}", g=g) for j in range(BATCH_SIZE)]
                ok = self._batch(ddb, table, exp, items, report)
            elif roll < 0.9:
                ok = self._token_counter(
                    ddb, table, exp, f"tok-{c}", f"{run}-{c}-{n}-{self.token_salt}", report
                )
            else:
                pk = f"m-{c}-{rng.randrange(MOVERS)}"
                ok = self._move(
                    ddb, table, exp, pk, None if rng.random() < 0.2 else self._item(pk, g=g), report
                )
            if not ok:
                return  # the server is gone; this thread's last operation may be in flight

    # Each operation returns False when the call failed for a reason other than its condition (the server
    # died): that operation is then "in flight", and may or may not have taken effect.

    def _attempt(self, send: Callable[[], Any]) -> tuple[bool, Any]:
        try:
            return True, send()
        except ClientError as error:
            return False, error
        except (BotoCoreError, OSError) as error:
            return False, error

    def _put(self, ddb: Any, table: str, exp: _Expected, item: dict[str, Any], report: RunReport) -> bool:
        pk = item["pk"]["S"]
        with self.lock:
            exp.maybe_items[pk] = item
        ok, _ = self._attempt(lambda: ddb.put_item(TableName=table, Item=item))
        with self.lock:
            if ok:
                exp.maybe_items.pop(pk, None)
                exp.items[pk] = item
                report.acknowledged += 1
            else:
                report.in_flight += 1
        return ok

    def _counter(self, ddb: Any, table: str, exp: _Expected, pk: str, report: RunReport) -> bool:
        with self.lock:
            value = exp.counters.get(pk, 0)
            exp.counter_in_flight.add(pk)
        item = self._item(pk)

        def send() -> Any:
            return ddb.update_item(
                TableName=table,
                Key={"pk": {"S": pk}},
                UpdateExpression="SET n = if_not_exists(n, :zero) + :one, i = :i, payload = :p",
                ConditionExpression="attribute_not_exists(n) OR n = :v" if value == 0 else "n = :v",
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":v": {"N": str(value)},
                    ":i": item["i"],
                    ":p": item["payload"],
                },
            )

        ok, error = self._attempt(send)
        with self.lock:
            if ok:
                exp.counter_in_flight.discard(pk)
                exp.counters[pk] = value + 1
                report.acknowledged += 1
            elif isinstance(error, ClientError) and _code(error) == "ConditionalCheckFailedException":
                exp.counter_in_flight.discard(pk)
                report.problems.append(
                    f"counter {pk}: the server does not hold its acknowledged value {value}"
                )
                return False
            else:
                report.in_flight += 1
        return ok

    def _transaction(
        self, ddb: Any, table: str, exp: _Expected, tx: str, items: list[dict[str, Any]], report: RunReport
    ) -> bool:
        with self.lock:
            exp.transactions[tx] = False
        ok, _ = self._attempt(
            lambda: ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                    for item in items
                ]
            )
        )
        with self.lock:
            if ok:
                exp.transactions[tx] = True
                report.acknowledged += 1
            else:
                report.in_flight += 1
            for item in items:
                (exp.items if ok else exp.maybe_items)[item["pk"]["S"]] = item
        return ok

    def _batch(
        self, ddb: Any, table: str, exp: _Expected, items: list[dict[str, Any]], report: RunReport
    ) -> bool:
        with self.lock:
            for item in items:
                exp.maybe_items[item["pk"]["S"]] = item
        ok, answer = self._attempt(
            lambda: ddb.batch_write_item(
                RequestItems={table: [{"PutRequest": {"Item": item}} for item in items]}
            )
        )
        with self.lock:
            if not ok:
                report.in_flight += 1
                return False
            unprocessed = {
                r["PutRequest"]["Item"]["pk"]["S"] for r in answer.get("UnprocessedItems", {}).get(table, [])
            }
            for item in items:
                pk = item["pk"]["S"]
                if pk not in unprocessed:
                    exp.maybe_items.pop(pk, None)
                    exp.items[pk] = item
            report.acknowledged += 1
        return True

    def _token_counter(
        self, ddb: Any, table: str, exp: _Expected, pk: str, token: str, report: RunReport
    ) -> bool:
        """An increment in a transaction with a ClientRequestToken: if it is in flight at the kill, the
        verification sends it again with the same token, which must apply it exactly once in all."""
        item = self._item(pk)
        request = {
            "ClientRequestToken": token,
            "TransactItems": [
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": pk}},
                        "UpdateExpression": "SET n = if_not_exists(n, :zero) + :one, i = :i, payload = :p",
                        "ExpressionAttributeValues": {
                            ":zero": {"N": "0"},
                            ":one": {"N": "1"},
                            ":i": item["i"],
                            ":p": item["payload"],
                        },
                    }
                }
            ],
        }
        with self.lock:
            exp.token_in_flight[pk] = request
        ok, _ = self._attempt(lambda: ddb.transact_write_items(**request))
        with self.lock:
            if ok:
                del exp.token_in_flight[pk]
                exp.token_counters[pk] = exp.token_counters.get(pk, 0) + 1
                report.acknowledged += 1
            else:
                report.in_flight += 1
        return ok

    def _move(
        self, ddb: Any, table: str, exp: _Expected, pk: str, item: dict[str, Any] | None, report: RunReport
    ) -> bool:
        with self.lock:
            exp.mover_in_flight[pk] = item
        if item is None:
            ok, _ = self._attempt(lambda: ddb.delete_item(TableName=table, Key={"pk": {"S": pk}}))
        else:
            ok, _ = self._attempt(lambda: ddb.put_item(TableName=table, Item=item))
        with self.lock:
            if ok:
                exp.mover_in_flight.pop(pk, None)
                exp.movers[pk] = item
                report.acknowledged += 1
            else:
                report.in_flight += 1
        return ok

    # --- checks ----------------------------------------------------------------------------------------

    def _integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check`` on a copy of the database and WAL exactly as the kill left them."""
        db = self.data_dir / "perimeterdb.sqlite3"
        with tempfile.TemporaryDirectory(prefix="perimeterdb-ic-") as tmp:
            for suffix in ("", "-wal"):
                source = Path(f"{db}{suffix}")
                if source.exists():
                    shutil.copyfile(source, Path(tmp) / f"copy.sqlite3{suffix}")
            conn = sqlite3.connect(Path(tmp) / "copy.sqlite3")
            try:
                rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            finally:
                conn.close()
        return [] if rows == ["ok"] else [f"integrity_check: {rows[:5]}"]

    def _verify(self, server: ServerProcess, table: str, exp: _Expected, report: RunReport) -> None:
        ddb = server.client(config=_CONFIG)
        problems = report.problems
        stored: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = ddb.scan(**kwargs)
            for item in page["Items"]:
                stored[item["pk"]["S"]] = item
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        report.items = len(stored)
        # 2. Acknowledged items are there and whole; items in flight are there whole or not at all.
        for pk, item in exp.items.items():
            if stored.get(pk) != item and not pk.startswith("ctr-") and not pk.startswith("m-"):
                problems.append(f"acknowledged item {pk} is {'missing' if pk not in stored else 'changed'}")
        for pk, item in list(exp.maybe_items.items()):
            if pk in stored:
                if stored[pk] != item:
                    problems.append(f"item {pk} (in flight at the kill) is not the item sent")
                exp.items[pk] = item
            del exp.maybe_items[pk]
        for pk, item in stored.items():
            if not _whole(item):
                problems.append(f"item {pk} is not whole: {item}")
        # 3. Transactions.
        for tx, acknowledged in list(exp.transactions.items()):
            present = [f"t{tx}-{j}" in stored for j in range(TX_SIZE)]
            if any(present) and not all(present):
                problems.append(f"transaction {tx} is partial: {sum(present)} of {TX_SIZE}")
            if acknowledged and not all(present):
                problems.append(f"acknowledged transaction {tx} is missing")
            if not acknowledged and not any(present):
                for j in range(TX_SIZE):
                    exp.items.pop(f"t{tx}-{j}", None)
                del exp.transactions[tx]
        # 4. Counters.
        for pk in set(exp.counters) | exp.counter_in_flight:
            value = exp.counters.get(pk, 0)
            item = stored.get(pk)
            actual = int(item["n"]["N"]) if item is not None else 0
            allowed = {value, value + 1} if pk in exp.counter_in_flight else {value}
            if actual not in allowed:
                problems.append(f"counter {pk} is {actual}, expected one of {sorted(allowed)}")
            exp.counters[pk] = actual
        exp.counter_in_flight.clear()
        # 4b. Tokened increments: the one in flight is sent again with its token (the server must not apply
        # it twice if it committed before the kill), then each counter holds exactly its increments.
        for pk, request in exp.token_in_flight.items():
            report.retried += 1
            ddb.transact_write_items(**request)
            exp.token_counters[pk] = exp.token_counters.get(pk, 0) + 1
            stored[pk] = ddb.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]
        exp.token_in_flight.clear()
        for pk, count in exp.token_counters.items():
            actual = int(stored[pk]["n"]["N"]) if pk in stored else 0
            if actual != count:
                problems.append(f"tokened counter {pk} is {actual}, expected exactly {count}")
        # 5. Moving items.
        for pk in set(exp.movers) | set(exp.mover_in_flight):
            allowed_states = [exp.movers.get(pk)]
            if pk in exp.mover_in_flight:
                allowed_states.append(exp.mover_in_flight[pk])
            if stored.get(pk) not in allowed_states:
                problems.append(f"moving item {pk} is in neither its acknowledged nor its in-flight state")
            exp.movers[pk] = stored.get(pk)
        exp.mover_in_flight.clear()
        # 6. Each index holds exactly the items with its key (a backfill interrupted by the kill must
        # resume and finish: wait for the index to be ACTIVE, bounded).
        deadline = time.monotonic() + 120
        while True:
            described = ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
            index_names = [i["IndexName"] for i in described]
            if all(i["IndexStatus"] == "ACTIVE" for i in described) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        report.indexes = len(index_names)
        for index, status in ((i["IndexName"], i["IndexStatus"]) for i in described):
            if status != "ACTIVE":
                problems.append(f"index {index} is still {status} two minutes after the restart")
        for index, group in ((name, group) for name in index_names for group in range(GROUPS)):
            g = f"g{group}"
            via_index: dict[str, dict[str, Any]] = {}
            kwargs = {
                "TableName": table,
                "IndexName": index,
                "KeyConditionExpression": "g = :g",
                "ExpressionAttributeValues": {":g": {"S": g}},
            }
            while True:
                page = ddb.query(**kwargs)
                for item in page["Items"]:
                    if item["pk"]["S"] in via_index:
                        problems.append(f"index {index} returns {item['pk']['S']} twice")
                    via_index[item["pk"]["S"]] = item
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            via_scan = {
                pk: item
                for pk, item in stored.items()
                if item.get("g") == {"S": g} and (index == "by_g" or "i" in item)
            }
            if via_index != via_scan:
                extra = sorted(set(via_index) - set(via_scan))[:3]
                missing = sorted(set(via_scan) - set(via_index))[:3]
                changed = sorted(k for k in set(via_index) & set(via_scan) if via_index[k] != via_scan[k])[:3]
                problems.append(
                    f"index {index}/{g} differs from the table: extra {extra} missing {missing} stale {changed}"
                )


def _start(server: ServerProcess) -> ServerProcess:
    """Start the server; a start that fails on an import error (a checkout being edited) is retried."""
    for attempt in range(5):
        try:
            return server.start(timeout=60)
        except RuntimeError as error:
            if ("ImportError" not in str(error) and "ModuleNotFoundError" not in str(error)) or attempt == 4:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a new temporary directory")
    args = parser.parse_args()
    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="perimeterdb-crash-")
        data_dir = Path(tmp) / "data"
    loop = CrashLoop(data_dir, seed=args.seed, clients=args.clients)
    clean = 0
    started = time.monotonic()
    try:
        for run in range(args.runs):
            report = loop.run_once(run)
            clean += report.clean
            print(
                f"run {run:3d}: {'clean' if report.clean else 'NOT CLEAN'}  acknowledged={report.acknowledged} "
                f"in_flight={report.in_flight} retried={report.retried} items={report.items} indexes={report.indexes}",
                flush=True,
            )
            for problem in report.problems[:10]:
                print("    " + problem, flush=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"kill -9: {clean}/{args.runs} clean ({time.monotonic() - started:.0f} s)")
    return 0 if clean == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
