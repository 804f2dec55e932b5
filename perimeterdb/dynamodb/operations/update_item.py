"""UpdateItem: edit an item's attributes (creating it if absent), optionally under a condition."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb import items, values, writes
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.expressions import legacy

ACTION = "dynamodb:UpdateItem"
RETURN_VALUES = ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW")


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


def _updated_part(item: dict[str, Any] | None, paths: tuple[Any, ...]) -> dict[str, Any]:
    if not item:
        return {}
    return ex.project(paths, item)


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    mode = body.get("ReturnValues", "NONE")
    if mode not in RETURN_VALUES:
        raise errors.validation(
            f"1 validation error detected: Value '{mode}' at 'returnValues' failed to satisfy constraint: "
            "Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
        )
    ex.check_parameter_mix(body, "UpdateItem")
    attribute_updates = None
    update = None
    if body.get("AttributeUpdates") is not None or body.get("Expected") is not None:
        condition = writes.bind_condition(body, "UpdateItem")
    else:
        bound = ex.compile_request_expressions(
            condition=body.get("ConditionExpression"),
            update=body.get("UpdateExpression"),
            names=body.get("ExpressionAttributeNames"),
            values=body.get("ExpressionAttributeValues"),
            operation="UpdateItem",
        )
        condition, update = bound.condition, bound.update
    table = await call.data_table(body["TableName"])
    key = writes.key_from_body(table, body["Key"])
    key_names = [k["AttributeName"] for k in table.key_schema]
    if body.get("AttributeUpdates") is not None:
        attribute_updates = legacy.validate_attribute_updates(body["AttributeUpdates"], key_names)
        paths: tuple[Any, ...] = tuple(ex.Path((name,)) for name in attribute_updates)
    elif update is not None:
        ex.check_no_key_updates(update, key_names)
        paths = update.paths()
    else:
        paths = ()
    write = writes.ItemWrite(
        table,
        key,
        items.row_key(table, key),
        "Update",
        condition=condition,
        update=update if update is not None else ex.UpdateExpression(),
        attribute_updates=attribute_updates,
    )
    old, new = await writes.execute(write, call.engine, body.get("ReturnValuesOnConditionCheckFailure"))
    out: dict[str, Any] = {}
    if mode == "ALL_OLD" and old:
        out["Attributes"] = old
    elif mode == "ALL_NEW" and new:
        out["Attributes"] = new
    elif mode == "UPDATED_OLD":
        part = _updated_part(old, paths)
        if part:
            out["Attributes"] = part
    elif mode == "UPDATED_NEW":
        part = _updated_part(new, paths)
        if part:
            out["Attributes"] = part
    size = max(values.item_size(new) if new else 0, values.item_size(old) if old else 0)
    return await writes.write_response(body, table, call.engine, key, size, out, old=old, new=new)
