"""DeleteItem: remove an item by key, optionally under a condition."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb import items, values, writes
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:DeleteItem"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    mode = writes.check_return_values(body, ("NONE", "ALL_OLD"))
    condition = writes.bind_condition(body, "DeleteItem")
    table = await call.data_table(body["TableName"])
    key = writes.key_from_body(table, body["Key"])
    write = writes.ItemWrite(table, key, items.row_key(table, key), "Delete", condition=condition)
    old_wanted = mode == "ALL_OLD" or body.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES")
    old, _ = await writes.execute(
        write, call.engine, body.get("ReturnValuesOnConditionCheckFailure"), old_wanted=old_wanted
    )
    out: dict[str, Any] = {}
    if mode == "ALL_OLD" and old is not None:
        out["Attributes"] = old
    size = values.item_size(old) if old else 0
    return await writes.write_response(body, table, call.engine, key, size, out, old=old)
