"""The TTL sweep reads a bounded number of rows per interval and resumes where it stopped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from perimeterdb.dynamodb import items, ttl
from perimeterdb.dynamodb.catalog import Catalog
from perimeterdb.storage.engine import Decision, Put
from perimeterdb.storage.sqlite import SQLiteEngine


def test_sweep_is_bounded_and_resumes(tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "db", durability="off")

    async def scenario() -> None:
        catalog = Catalog(engine)
        table = await catalog.create(
            "111122223333",
            "us-east-1",
            "ttl-table",
            {
                "TableName": "ttl-table",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "TableArn": "arn:aws:dynamodb:us-east-1:111122223333:table/ttl-table",
                "_ttl": {"AttributeName": "exp", "Enabled": True},
            },
        )
        past = str(int(time.time()) - 60)
        rows = []
        for i in range(12):
            item = {"pk": {"S": f"k{i}"}, "exp": {"N": past}}
            rows.append(Put(items.row_key(table, {"pk": item["pk"]}), items.encode_item(item)))
        await engine.atomic((), lambda _: Decision(rows))
        before = engine.rows_read
        first = await ttl.expire_table(engine, table, budget=5)
        assert first <= 5
        assert engine.rows_read - before <= 5 + 5  # the scan and the re-read inside the write
        total = first
        for _ in range(5):
            total += await ttl.expire_table(engine, table, budget=5)
        assert total == 12
        assert (await engine.count(table.space))[0] == 0

    asyncio.run(scenario())
    engine.close()
