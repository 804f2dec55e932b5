"""kill -9 during a stream of writes: every acknowledged write survives, and no item is corrupt."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from tests.support.server import ServerProcess


def _payload(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest() * 8


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()  # default durability: full
    client = server.client()
    client.create_table(
        TableName="crash",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(10**6))

    def writer() -> None:
        c = server.client()
        while not stop.is_set():
            with lock:
                i = next(counter)
            if i >= 5000:
                return
            try:
                c.put_item(
                    TableName="crash",
                    Item={"pk": {"S": f"k{i}"}, "i": {"N": str(i)}, "v": {"S": _payload(i)}},
                )
            except (ClientError, BotoCoreError, OSError):
                return  # the server is gone: this write was never acknowledged
            with lock:
                acknowledged.append(i)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(acknowledged) < 300:
        time.sleep(0.02)
    server.kill()  # SIGKILL mid-stream
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) >= 50, "the writers made too little progress to test anything"

    restarted = ServerProcess(tmp_path / "data", port=server.port).start()
    try:
        c = restarted.client()
        for i in acknowledged:
            item = c.get_item(TableName="crash", Key={"pk": {"S": f"k{i}"}}, ConsistentRead=True).get("Item")
            assert item is not None, f"acknowledged write k{i} was lost"
            assert item["v"]["S"] == _payload(int(item["i"]["N"]))
        # Every stored item, acknowledged or not, is whole.
        count = 0
        for page in c.get_paginator("scan").paginate(TableName="crash"):
            for item in page["Items"]:
                count += 1
                assert item["v"]["S"] == _payload(int(item["i"]["N"]))
        assert count >= len(acknowledged)
    finally:
        restarted.stop()
