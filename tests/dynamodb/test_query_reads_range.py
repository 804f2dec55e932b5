"""A Query reads one key range, never the table: proved by counting rows the storage engine returns."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.catalog import Catalog
from perimeterdb.dynamodb.items import row_key, write_changes
from perimeterdb.dynamodb.operations import query
from perimeterdb.storage.engine import Decision
from perimeterdb.storage.sqlite import SQLiteEngine

ACCOUNT, REGION = "000000000000", "us-east-1"


def test_query_reads_only_its_range(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = SQLiteEngine(tmp_path / "db.sqlite3", durability="off")
        try:
            catalog = Catalog(engine)
            table = await catalog.create(
                ACCOUNT,
                REGION,
                "t",
                {
                    "TableName": "t",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "N"},
                    ],
                    "TableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t",
                },
            )
            changes = []
            for p in range(200):
                for s in range(10):
                    item = {"pk": {"S": f"p{p}"}, "sk": {"N": str(s)}}
                    changes += write_changes(table, row_key(table, item), None, item)
            await engine.atomic([], lambda _c: Decision(changes))
            await catalog.get(ACCOUNT, REGION, "t")  # the table description is cached from here on
            call = Call(account=ACCOUNT, region=REGION, principal=None, catalog=catalog, engine=engine)  # type: ignore[arg-type]

            async def run(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
                before = engine.rows_read
                out = await query.run({"TableName": "t", **body}, call)
                return out, engine.rows_read - before

            out, read = await run(
                {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p17"}}}
            )
            assert out["Count"] == 10 and read == 10
            out, read = await run(
                {
                    "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                    "ExpressionAttributeValues": {":p": {"S": "p3"}, ":a": {"N": "2"}, ":b": {"N": "4"}},
                }
            )
            assert out["Count"] == 3 and read == 3
            out, read = await run(
                {
                    "KeyConditionExpression": "pk = :p",
                    "ExpressionAttributeValues": {":p": {"S": "p5"}},
                    "Limit": 2,
                    "ScanIndexForward": False,
                }
            )
            items = orjson.loads(orjson.dumps(out["Items"]))  # whole items may go out as stored (Fragments)
            assert [i["sk"]["N"] for i in items] == ["9", "8"] and read == 2
        finally:
            engine.close()

    asyncio.run(scenario())
