"""GetItem: read one item by key, with an optional projection."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import capacity, items, values, writes
from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.expressions import legacy

ACTION = "dynamodb:GetItem"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


_PROJECTION_PARAMETERS = (
    "ProjectionExpression",
    "AttributesToGet",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
)


def bind_projection(body: dict[str, Any]) -> tuple[Any, ...] | None:
    """ProjectionExpression (with names) or legacy AttributesToGet, as projection paths."""
    if not any(name in body for name in _PROJECTION_PARAMETERS):
        return None  # the whole item: nothing to check or bind
    ex.check_parameter_mix(body, "GetItem")
    if body.get("AttributesToGet") is not None:
        if body.get("ExpressionAttributeNames") is not None:
            raise errors.validation("ExpressionAttributeNames can only be specified when using expressions")
        return legacy.attributes_to_get_paths(body["AttributesToGet"])
    bound = ex.compile_request_expressions(
        projection=body.get("ProjectionExpression"),
        names=body.get("ExpressionAttributeNames"),
        values=body.get("ExpressionAttributeValues"),
        operation="GetItem",
    )
    return bound.projection


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    projection = bind_projection(body)
    table = await call.data_table(body["TableName"])
    key = writes.key_from_body(table, body["Key"])
    stored = await call.engine.get(items.row_key(table, key))
    out: dict[str, Any] = {}
    item = None
    if stored is not None:
        if projection:
            item = items.decode_item(stored)
            out["Item"] = ex.project(projection, item)
        else:
            # The stored form is the item's wire form (validated and normalised when written): it goes
            # out as it is, without being decoded and encoded again.
            out["Item"] = items.wire_item(stored)
    if body.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES"):  # sizing an item costs: only when asked
        consistent = bool(body.get("ConsistentRead", False))
        if item is None and stored is not None:
            item = items.decode_item(stored)
        units = capacity.read_units(values.item_size(item) if item else 0, consistent=consistent)
        out["ConsumedCapacity"] = capacity.consumed(
            body["ReturnConsumedCapacity"], table.name, units, kind="Read"
        )
    return out
