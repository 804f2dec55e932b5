"""BatchWriteItem: up to 25 puts and deletes over several tables, applied in one atomic storage write.

DynamoDB applies each write on its own; applying the whole batch at once is stronger and lets a crash
leave all of it or none of it. Nothing is ever left unprocessed, so ``UnprocessedItems`` is always empty.
"""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import capacity, indexes, items, paging, values, writes
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.catalog import Table
from perimeterdb.storage.engine import Decision, RowChange

ACTION = "dynamodb:BatchWriteItem"
MAX_WRITES = 25


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(name)) for name in body["RequestItems"]]


def _check_values(request: dict[str, Any]) -> dict[str, Any]:
    """What DynamoDB checks before it looks the table up: one action, its attribute values, the item size.
    Returns the normalized item (or key), so that it is validated once."""
    put, delete = request.get("PutRequest"), request.get("DeleteRequest")
    if (put is None) == (delete is None):
        raise errors.validation(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported "
            "datatypes"
        )
    if put is not None:
        item = values.validate_item(put.get("Item"))
        values.check_item_size(item)
        return item
    return values.validate_item(delete.get("Key"))


def _check_put_key(table: Table, item: dict[str, Any]) -> None:
    """BatchWriteItem reports a put whose item lacks a key attribute (or has it with another type) as a key
    that does not match the schema, unlike PutItem."""
    types = table.attribute_types
    for element in table.key_schema:
        value = item.get(element["AttributeName"])
        if value is None or types[element["AttributeName"]] not in value:
            raise errors.validation("The provided key element does not match the schema")


def _prepare(table: Table, request: dict[str, Any], normalized: dict[str, Any]) -> writes.ItemWrite:
    """The write of one request, from its ``normalized`` item or key (``_check_values``)."""
    if request.get("PutRequest") is not None:
        _check_put_key(table, normalized)
        item = writes.check_new_item_values(table, normalized)
        key = values.key_of(item, table.key_schema)
        return writes.ItemWrite(table, key, items.row_key(table, key), "Put", item=item)
    key = writes.key_from_body(table, normalized)
    return writes.ItemWrite(table, key, items.row_key(table, key), "Delete")


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    request_items: dict[str, list[dict[str, Any]]] = body["RequestItems"]
    if sum(len(requests) for requests in request_items.values()) > MAX_WRITES:
        raise errors.validation("Too many items requested for the BatchWriteItem call")
    normalized = [[_check_values(request) for request in requests] for requests in request_items.values()]
    planned: list[tuple[str, writes.ItemWrite]] = []
    tables: dict[str, Table] = {}
    for (name, requests), checked in zip(request_items.items(), normalized, strict=True):
        table = await paging.find_table(call, name)
        tables[name] = table
        seen: set[tuple[bytes, bytes]] = set()
        for request, value in zip(requests, checked, strict=True):
            write = _prepare(table, request, value)
            ident = (write.row.hk, write.row.rk)
            if ident in seen:
                raise errors.validation("Provided list of item keys contains duplicates")
            seen.add(ident)
            planned.append((name, write))

    # A write nobody needs the old item of (no capacity asked for, no index rows to maintain) is not read.
    sizes_wanted = body.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES")
    blind = [not sizes_wanted and write.can_be_blind() for _, write in planned]

    def decide(current: list[bytes | None]) -> Decision:
        changes: list[RowChange] = []
        outcomes: list[tuple[Any, Any]] = []
        read = iter(current)
        for (_, write), unread in zip(planned, blind, strict=True):
            if unread:
                row_changes, new = write.blind_changes()
                changes.extend(row_changes)
                outcomes.append((None, new))
                continue
            old = items.decode_item(next(read))
            new = write.apply(old)
            outcomes.append((old, new))
            if new is None and old is None:
                continue
            changes.extend(items.write_changes(write.table, write.row, old, new))  # type: ignore[arg-type]
        return Decision(changes, outcomes)

    outcomes = await call.engine.atomic(
        [write.row for (_, write), unread in zip(planned, blind, strict=True) if not unread], decide
    )
    out: dict[str, Any] = {"UnprocessedItems": {}}
    mode = body.get("ReturnConsumedCapacity")
    if mode in ("TOTAL", "INDEXES"):
        units: dict[str, float] = {name: 0.0 for name in request_items}
        gsi: dict[str, dict[str, float]] = {name: {} for name in request_items}
        lsi: dict[str, dict[str, float]] = {name: {} for name in request_items}
        for (name, write), (old, new) in zip(planned, outcomes, strict=True):
            size = max(values.item_size(new) if new else 0, values.item_size(old) if old else 0)
            units[name] += capacity.write_units(size)
            touched_indexes = indexes.write_units(write.table, old, new)
            for totals, touched in zip((gsi[name], lsi[name]), touched_indexes, strict=True):
                for index_name, index_units in touched.items():  # each index the write touched
                    totals[index_name] = totals.get(index_name, 0.0) + index_units
        out["ConsumedCapacity"] = [
            capacity.consumed(
                mode, tables[name].name, u, kind="Write", gsi_units=gsi[name], lsi_units=lsi[name]
            )
            for name, u in units.items()
        ]
    if body.get("ReturnItemCollectionMetrics") == "SIZE":
        metrics: dict[str, list[dict[str, Any]]] = {}
        for name, write in planned:
            if indexes.has_lsi(write.table):
                metrics.setdefault(name, []).append(
                    await indexes.item_collection_metrics(write.table, call.engine, write.key)
                )
        out["ItemCollectionMetrics"] = metrics
    return out
