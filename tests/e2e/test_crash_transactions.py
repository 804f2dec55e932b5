"""kill -9 during transactions and batches: after restart each one is there entirely or not at all."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from botocore.config import Config

from tests.support.server import ServerProcess

TABLE = "crashy"
TX_SIZE = 50
BATCH_SIZE = 25


def _writer(client: Any, kind: str, stop: threading.Event, sent: list[str]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        group = f"{kind}-{threading.get_ident()}-{n}"
        sent.append(group)
        try:
            if kind == "tx":
                client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": TABLE,
                                "Item": {"pk": {"S": f"{group}-{i}"}, "g": {"S": group}},
                            }
                        }
                        for i in range(TX_SIZE)
                    ]
                )
            else:
                client.batch_write_item(
                    RequestItems={
                        TABLE: [
                            {"PutRequest": {"Item": {"pk": {"S": f"{group}-{i}"}, "g": {"S": group}}}}
                            for i in range(BATCH_SIZE)
                        ]
                    }
                )
        except Exception:
            return  # the server went away


def test_kill_during_transactions_and_batches(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()
    try:
        admin = server.client("dynamodb")
        admin.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        stop = threading.Event()
        sent: list[str] = []
        config = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5)
        threads = [
            threading.Thread(
                target=_writer, args=(server.client("dynamodb", config=config), kind, stop, sent)
            )
            for kind in ("tx", "tx", "batch", "batch")
        ]
        for t in threads:
            t.start()
        time.sleep(1.0)
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        server.start()
        client = server.client("dynamodb")
        groups: Counter[str] = Counter()
        kwargs: dict[str, Any] = {}
        for _ in range(1000):
            page = client.scan(TableName=TABLE, ProjectionExpression="g", **kwargs)
            groups.update(item["g"]["S"] for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        assert groups, "nothing was written before the kill"
        for group, count in groups.items():
            expected = TX_SIZE if group.startswith("tx") else BATCH_SIZE
            assert count == expected, f"{group} is partial: {count} of {expected}"
    finally:
        server.stop()
        server.kill()
