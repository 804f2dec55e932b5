"""DescribeTable: the stored description, with the live item count and size."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.catalog import Table

ACTION = "dynamodb:DescribeTable"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


async def describe(table: Table, call: Call) -> dict[str, Any]:
    out = table.public_description()
    count, size = await call.engine.count(table.space)
    out["ItemCount"] = count
    out["TableSizeBytes"] = table.description.get("_size_bytes", size) if count else 0
    for index in out.get("GlobalSecondaryIndexes", []) + out.get("LocalSecondaryIndexes", []):
        space = table.description.get("_index_spaces", {}).get(index["IndexName"])
        if space:
            n, b = await call.engine.count(space)
            index["ItemCount"], index["IndexSizeBytes"] = n, b
    return out


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    table = await call.table(body["TableName"])
    return {"Table": await describe(table, call)}
