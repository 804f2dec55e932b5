"""BatchGetItem: up to 100 items from several tables; beyond 16 MB of items the rest is unprocessed."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import capacity, items, paging, values, writes
from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.operations.get_item import bind_projection

ACTION = "dynamodb:BatchGetItem"
MAX_KEYS = 100
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(name)) for name in body["RequestItems"]]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    request_items: dict[str, dict[str, Any]] = body["RequestItems"]
    total = 0
    for spec in request_items.values():
        total += len(spec.get("Keys") or [])
        if total > MAX_KEYS:
            raise errors.validation("Too many items requested for the BatchGetItem call")
    projections = []
    for spec in request_items.values():
        # Projection, names and key values are checked before any table is looked up (DynamoDB's order).
        projections.append(bind_projection(spec))
        for raw_key in spec["Keys"]:
            values.validate_item(raw_key)
    plans = []
    for (name, spec), projection in zip(request_items.items(), projections, strict=True):
        table = await paging.find_table(call, name)
        keys = []
        seen: set[tuple[bytes, bytes]] = set()
        for raw_key in spec["Keys"]:
            key = writes.key_from_body(table, raw_key)
            row = items.row_key(table, key)
            if (row.hk, row.rk) in seen:
                raise errors.validation("Provided list of item keys contains duplicates")
            seen.add((row.hk, row.rk))
            keys.append((raw_key, row))
        plans.append((name, spec, table, projection, keys))
    responses: dict[str, list[dict[str, Any]]] = {}
    unprocessed: dict[str, dict[str, Any]] = {}
    consumed_list = []
    size_total = 0
    mode = body.get("ReturnConsumedCapacity")
    for name, spec, table, projection, keys in plans:
        consistent = bool(spec.get("ConsistentRead", False))
        found: list[dict[str, Any]] = responses.setdefault(name, [])
        units = 0.0
        left: list[dict[str, Any]] = []
        for raw_key, row in keys:
            if size_total > MAX_RESPONSE_BYTES:
                left.append(raw_key)
                continue
            item = items.decode_item(await call.engine.get(row))
            size = values.item_size(item) if item else 0
            units += capacity.read_units(size, consistent=consistent)
            if item is not None:
                size_total += size
                found.append(ex.project(projection, item) if projection else item)
        if left:
            unprocessed[name] = {**spec, "Keys": left}
        if mode in ("TOTAL", "INDEXES") and units:
            consumed_list.append(capacity.consumed(mode, table.name, units, kind="Read"))
    out: dict[str, Any] = {"Responses": responses, "UnprocessedKeys": unprocessed}
    if mode in ("TOTAL", "INDEXES"):
        out["ConsumedCapacity"] = consumed_list
    return out
