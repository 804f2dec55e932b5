"""TransactGetItems: up to 100 items read as one consistent snapshot."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import capacity, items, paging, transactions, values, writes
from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.catalog import Table

ACTION = "dynamodb:TransactGetItems"
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for entry in body["TransactItems"]:
        get = entry.get("Get") or {}
        pair = ("dynamodb:GetItem", call.table_arn(get.get("TableName", "")))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    tables: dict[str, Table] = {}
    plans = []
    for entry in body["TransactItems"]:
        get = entry.get("Get")
        if get is None:
            raise errors.validation(
                "1 validation error detected: Value null at 'transactItems.1.member.get' failed to satisfy constraint: Member must not be null"
            )
        ex.check_parameter_mix(get)
        bound = ex.compile_request_expressions(
            projection=get.get("ProjectionExpression"), names=get.get("ExpressionAttributeNames")
        )
        name = get["TableName"]
        if name not in tables:
            tables[name] = await paging.find_table(call, name)
        raw_key = get.get("Key")
        if isinstance(raw_key, dict):
            raw_key = values.validate_item(raw_key)  # malformed values fail the request itself
        plans.append((name, raw_key, bound.projection))
    # A key that does not match its table's schema cancels the transaction with a ValidationError reason
    # (as in TransactWriteItems), not a ValidationException for the request.
    for position, (name, raw_key, projection) in enumerate(plans):
        try:
            key = writes.key_from_body(tables[name], raw_key)
        except errors.ApiError as error:
            if error.code != "ValidationException":
                raise
            raise transactions.cancel_invalid(position, len(plans), error) from None
        plans[position] = (name, items.row_key(tables[name], key), projection)
    transactions.check_unique([row for _, row, _ in plans])
    raws = await transactions.read_consistent(call.engine, [row for _, row, _ in plans])
    responses: list[dict[str, Any]] = []
    units: dict[str, float] = {}
    total = 0
    for (name, _, projection), raw in zip(plans, raws, strict=True):
        item = items.decode_item(raw)
        size = values.item_size(item) if item else 0
        total += size
        units[name] = units.get(name, 0.0) + 2 * capacity.read_units(size, consistent=True)
        if item is None:
            responses.append({})
        else:
            responses.append({"Item": ex.project(projection, item) if projection else item})
    if total > MAX_RESPONSE_BYTES:
        reasons = [{"Code": "None"} for _ in plans]
        raise transactions.cancelled(reasons)  # AWS cancels a read over 4 MB
    out: dict[str, Any] = {"Responses": responses}
    mode = body.get("ReturnConsumedCapacity")
    if mode in ("TOTAL", "INDEXES"):
        out["ConsumedCapacity"] = [
            capacity.consumed(mode, tables[name].name, u, kind="Read") for name, u in units.items()
        ]
    return out
