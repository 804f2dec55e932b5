"""Secondary indexes: what each index stores, its row keys, and how a write of an item changes them.

Every LSI and GSI lives in a storage space of its own (``description["_index_spaces"]``: index name ->
space). An index row is keyed ``(space, hash(ihk), ihk, irk)`` where ``ihk`` is the encoded index hash
key and ``irk`` makes the row unique per table item while keeping the index sort-key order::

    irk = escaped(index range key) + TERM + escaped(table hash key) + TERM + table range key

(the first two parts only when the index has a sort key). ``escaped`` doubles every 0x00 byte as
0x00 0x01 and ``TERM`` is 0x00 0x00, so bytewise order of ``irk`` is the order of the index sort key,
then of the table key. The row's value is the item as the index projects it (KEYS_ONLY, INCLUDE or ALL).
An item without the index key attributes has no row (sparse indexes).

``changes_for(table, old, new)`` gives the index row changes for one item write; ``items.write_changes``
adds them to the same atomic write as the item itself. GSIs added by UpdateTable are backfilled in the
background (``apply_updates`` / ``resume_backfills``), one atomic read-then-index step per batch of items.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from perimeterdb import errors
from perimeterdb.dynamodb import capacity
from perimeterdb.dynamodb.catalog import KeyAttr, Table
from perimeterdb.dynamodb.values import item_size, key_piece_fits
from perimeterdb.storage.engine import Decision, Delete, KeyRange, Put, RowChange, RowKey
from perimeterdb.storage.keys import encode_key_value, partition_hash

if TYPE_CHECKING:
    from perimeterdb.dynamodb.call import Call
    from perimeterdb.dynamodb.catalog import Catalog
    from perimeterdb.storage.engine import StorageEngine

log = logging.getLogger(__name__)

Item = dict[str, dict[str, Any]]
TERM = b"\x00\x00"
_AFTER_TERM = b"\x00\x01"
_INVALID = "One or more parameter values were invalid: "
BACKFILL_BATCH = 100
MAX_GSIS = 20


def escape(data: bytes) -> bytes:
    return data.replace(b"\x00", b"\x00\x01")


def successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    is_global: bool
    hash_key: KeyAttr
    range_key: KeyAttr | None
    projection_type: str  # KEYS_ONLY | INCLUDE | ALL
    non_key: tuple[str, ...]
    space: str | None  # None while the index has no storage (should not happen for live indexes)
    status: str  # ACTIVE | CREATING | DELETING (LSIs are always ACTIVE)
    arn: str

    @property
    def key_schema(self) -> list[dict[str, str]]:
        out = [{"AttributeName": self.hash_key.name, "KeyType": "HASH"}]
        if self.range_key is not None:
            out.append({"AttributeName": self.range_key.name, "KeyType": "RANGE"})
        return out

    @property
    def kind(self) -> str:
        return "GlobalSecondaryIndexes" if self.is_global else "LocalSecondaryIndexes"


def _index_from(table: Table, raw: Mapping[str, Any], is_global: bool) -> Index:
    types = table.attribute_types
    hash_name = next(k["AttributeName"] for k in raw["KeySchema"] if k["KeyType"] == "HASH")
    range_name = next((k["AttributeName"] for k in raw["KeySchema"] if k["KeyType"] == "RANGE"), None)
    projection = raw.get("Projection", {})
    return Index(
        name=raw["IndexName"],
        is_global=is_global,
        hash_key=KeyAttr(hash_name, types.get(hash_name, "S")),
        range_key=KeyAttr(range_name, types.get(range_name, "S")) if range_name else None,
        projection_type=projection.get("ProjectionType", "ALL"),
        non_key=tuple(projection.get("NonKeyAttributes", ())),
        space=table.description.get("_index_spaces", {}).get(raw["IndexName"]),
        status=raw.get("IndexStatus", "ACTIVE"),
        arn=raw.get("IndexArn", f"{table.arn}/index/{raw['IndexName']}"),
    )


def all_indexes(table: Table) -> list[Index]:
    out = [_index_from(table, raw, False) for raw in table.description.get("LocalSecondaryIndexes", [])]
    out += [_index_from(table, raw, True) for raw in table.description.get("GlobalSecondaryIndexes", [])]
    return out


def find(table: Table, name: str) -> Index | None:
    return next((index for index in all_indexes(table) if index.name == name), None)


def allocate_spaces(description: dict[str, Any]) -> None:
    """Give every index of a new table description a storage space (call before ``catalog.create``)."""
    spaces = description.setdefault("_index_spaces", {})
    for kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
        for raw in description.get(kind, []):
            spaces.setdefault(raw["IndexName"], "i:" + secrets.token_hex(8))
    if not spaces:
        del description["_index_spaces"]


# --- what an index stores ---------------------------------------------------------------------------------


def key_names(table: Table, index: Index) -> list[str]:
    """Table key attributes then the index key attributes, without repeats (LastEvaluatedKey's members)."""
    names = [k["AttributeName"] for k in table.key_schema]
    for element in index.key_schema:
        if element["AttributeName"] not in names:
            names.append(element["AttributeName"])
    return names


def projected_names(table: Table, index: Index) -> set[str] | None:
    """The top-level attributes an index stores, or None when it stores every attribute (ALL)."""
    if index.projection_type == "ALL":
        return None
    names = set(key_names(table, index))
    if index.projection_type == "INCLUDE":
        names.update(index.non_key)
    return names


def index_entry(table: Table, index: Index, item: Mapping[str, Any] | None) -> Item | None:
    """The item as the index stores it, or None when the item is not in the index (sparse)."""
    if item is None:
        return None
    for attr in (index.hash_key, index.range_key):
        if attr is None:
            continue
        value = item.get(attr.name)
        if value is None or attr.type not in value:
            return None
        if not key_piece_fits(attr.type, value[attr.type], attr is index.hash_key):
            return None  # an empty or oversized key value (written before the index existed) is not indexed
    names = projected_names(table, index)
    if names is None:
        return dict(item)
    return {name: value for name, value in item.items() if name in names}


def _encoded(attr: KeyAttr, item: Mapping[str, Any]) -> bytes:
    return encode_key_value(attr.type, item[attr.name][attr.type])


def table_key_suffix(table: Table, item: Mapping[str, Any]) -> bytes:
    hk = _encoded(table.hash_key, item)
    range_attr = table.range_key
    rk = _encoded(range_attr, item) if range_attr is not None else b""
    return escape(hk) + TERM + rk


def row_key(table: Table, index: Index, item: Mapping[str, Any]) -> RowKey:
    """The index row of an item that has the index's key attributes."""
    assert index.space is not None
    ihk = _encoded(index.hash_key, item)
    suffix = table_key_suffix(table, item)
    irk = escape(_encoded(index.range_key, item)) + TERM + suffix if index.range_key is not None else suffix
    return RowKey(index.space, partition_hash(ihk), ihk, irk)


def changes_for(table: Table, old: Item | None, new: Item | None) -> list[RowChange]:
    """The index row changes that go with replacing ``old`` by ``new`` (None: absent) for one item."""
    changes: list[RowChange] = []
    for index in all_indexes(table):
        if index.space is None or index.status == "DELETING":
            continue
        changes.extend(entry_changes(table, index, old, new))
    return changes


def entry_changes(table: Table, index: Index, old: Item | None, new: Item | None) -> list[RowChange]:
    old_entry = index_entry(table, index, old)
    new_entry = index_entry(table, index, new)
    old_key = row_key(table, index, old) if old_entry is not None and old is not None else None
    new_key = row_key(table, index, new) if new_entry is not None and new is not None else None
    out: list[RowChange] = []
    if old_key is not None and old_key != new_key:
        out.append(Delete(old_key))
    if new_key is not None and new_entry is not None and (old_key != new_key or old_entry != new_entry):
        out.append(Put(new_key, orjson.dumps(new_entry)))
    return out


def write_units(
    table: Table, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> tuple[dict[str, float], dict[str, float]]:
    """The write units a change of one item costs each index it touches, (GSIs, LSIs), as DynamoDB counts
    them: the entry written (its projected size, by the 1 KB), plus the old entry deleted when the index key
    changed; an index whose entry is unchanged, or that holds the item neither before nor after, costs
    nothing and is not listed."""
    gsi: dict[str, float] = {}
    lsi: dict[str, float] = {}
    for index in all_indexes(table):
        old_entry = index_entry(table, index, old)
        new_entry = index_entry(table, index, new)
        if old_entry == new_entry:
            continue
        units = 0.0
        if old_entry is not None and (
            new_entry is None or row_key(table, index, old_entry) != row_key(table, index, new_entry)
        ):
            units += capacity.write_units(item_size(old_entry))  # the old entry deleted
        if new_entry is not None:
            units += capacity.write_units(item_size(new_entry))
        (gsi if index.is_global else lsi)[index.name] = units
    return gsi, lsi


# --- key ranges for Query ---------------------------------------------------------------------------------


def sort_range(
    operator: str, values: Sequence[Mapping[str, Any]], type_name: str, *, escaped: bool
) -> KeyRange:
    """The storage range of a sort-key clause; ``escaped`` for index rows (escaped key + TERM + suffix)."""
    enc = [encode_key_value(type_name, v[type_name]) for v in values]
    if not escaped:
        if operator == "EQ":
            return KeyRange(enc[0], True, enc[0], True)
        if operator == "LT":
            return KeyRange(hi=enc[0], hi_inclusive=False)
        if operator == "LE":
            return KeyRange(hi=enc[0], hi_inclusive=True)
        if operator == "GT":
            return KeyRange(lo=enc[0], lo_inclusive=False)
        if operator == "GE":
            return KeyRange(lo=enc[0], lo_inclusive=True)
        if operator == "BETWEEN":
            return KeyRange(enc[0], True, enc[1], True)
        return KeyRange(enc[0], True, successor(enc[0]), False)  # BEGINS_WITH
    low = [escape(e) + TERM for e in enc]
    high = [escape(e) + _AFTER_TERM for e in enc]
    if operator == "EQ":
        return KeyRange(low[0], True, high[0], False)
    if operator == "LT":
        return KeyRange(hi=low[0], hi_inclusive=False)
    if operator == "LE":
        return KeyRange(hi=high[0], hi_inclusive=False)
    if operator == "GT":
        return KeyRange(lo=high[0], lo_inclusive=True)
    if operator == "GE":
        return KeyRange(lo=low[0], lo_inclusive=True)
    if operator == "BETWEEN":
        return KeyRange(low[0], True, high[1], False)
    prefix = escape(enc[0])
    return KeyRange(prefix, True, successor(prefix), False)


# --- item collections (LSIs) -------------------------------------------------------------------------------

ITEM_COLLECTION_LIMIT = 10 * 1024 * 1024 * 1024


async def item_collection_size(table: Table, engine: StorageEngine, item_key: Mapping[str, Any]) -> int:
    """Bytes of the item collection (table rows and LSI rows) sharing ``item_key``'s partition key."""
    from perimeterdb.dynamodb.values import item_size

    hk = _encoded(table.hash_key, item_key)
    total = 0
    for row in await engine.query(table.space, partition_hash(hk), hk, KeyRange()):
        total += item_size(orjson.loads(row.value))
    for index in all_indexes(table):
        if index.is_global or index.space is None:
            continue
        for row in await engine.query(index.space, partition_hash(hk), hk, KeyRange()):
            total += item_size(orjson.loads(row.value))
    return total


def has_lsi(table: Table) -> bool:
    return bool(table.description.get("LocalSecondaryIndexes"))


async def item_collection_metrics(
    table: Table, engine: StorageEngine, item_key: Mapping[str, Any]
) -> dict[str, Any]:
    """ReturnItemCollectionMetrics=SIZE for a write to a table with LSIs."""
    size = await item_collection_size(table, engine, item_key)
    gb = size / (1024**3)
    low = float(math.floor(gb))
    return {
        "ItemCollectionKey": {table.hash_key.name: item_key[table.hash_key.name]},
        "SizeEstimateRangeGB": [low, low + 1.0],
    }


def collection_too_large(table: Table) -> errors.ApiError:
    return errors.item_collection_size_limit("Item collection size limit exceeded.")


def _projection(projection: dict[str, Any]) -> dict[str, Any]:
    out = {"ProjectionType": projection.get("ProjectionType", "ALL")}
    if projection.get("NonKeyAttributes"):
        out["NonKeyAttributes"] = list(projection["NonKeyAttributes"])
    return out


def index_description(arn: str, index: dict[str, Any], *, is_global: bool, billing: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "IndexName": index["IndexName"],
        "KeySchema": index["KeySchema"],
        "Projection": _projection(index["Projection"]),
        "IndexSizeBytes": 0,
        "ItemCount": 0,
        "IndexArn": f"{arn}/index/{index['IndexName']}",
    }
    if is_global:
        out["IndexStatus"] = "ACTIVE"
        out["ProvisionedThroughput"] = capacity.throughput_description(index.get("ProvisionedThroughput"))
        if billing == "PAY_PER_REQUEST":
            out["ProvisionedThroughput"] = capacity.throughput_description(None)
    return out


# --- UpdateTable: creating and deleting GSIs ---------------------------------------------------------------


async def apply_updates(
    table: Table, description: dict[str, Any], body: dict[str, Any], call: Call
) -> dict[str, Any]:
    """Apply ``GlobalSecondaryIndexUpdates`` to a copy of the description; start backfills afterwards."""
    updates = body["GlobalSecondaryIndexUpdates"]
    gsis: list[dict[str, Any]] = description.get("GlobalSecondaryIndexes", [])
    lsis: list[dict[str, Any]] = description.get("LocalSecondaryIndexes", [])
    billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    billing = body.get("BillingMode", billing)
    spaces: dict[str, str] = dict(description.get("_index_spaces", {}))
    definitions: list[dict[str, str]] = list(description["AttributeDefinitions"])
    for new_def in body.get("AttributeDefinitions") or []:
        existing = next((d for d in definitions if d["AttributeName"] == new_def["AttributeName"]), None)
        if existing is None:
            definitions.append(dict(new_def))
        elif existing["AttributeType"] != new_def["AttributeType"]:
            raise errors.validation(
                _INVALID
                + "Attribute type for attribute name "
                + new_def["AttributeName"]
                + " does not match "
                "the existing attribute definition"
            )
    creating: list[str] = []
    for update in updates:
        actions = [k for k in ("Create", "Update", "Delete") if update.get(k) is not None]
        if len(actions) != 1:
            raise errors.validation(
                _INVALID + "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, "
                "GlobalSecondaryIndexUpdate.Delete must not be null"
            )
        action = actions[0]
        spec = update[action]
        name = spec["IndexName"]
        current = next((g for g in gsis if g["IndexName"] == name), None)
        if action == "Create":
            if current is not None or any(i["IndexName"] == name for i in lsis):
                raise errors.validation("Attempting to create an index which already exists")
            if any(g.get("IndexStatus") in ("CREATING", "DELETING") for g in gsis) or creating:
                raise errors.limit_exceeded(
                    "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per "
                    "table"
                )
            if len(gsis) >= MAX_GSIS:
                raise errors.limit_exceeded(
                    "Subscriber limit exceeded: The number of global secondary indexes for this table exceeds "
                    f"the maximum of {MAX_GSIS}"
                )
            defined = [d["AttributeName"] for d in definitions]
            names = [k["AttributeName"] for k in spec["KeySchema"]]
            missing = [n for n in names if n not in defined]
            if missing:
                raise errors.validation(
                    _INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
                    f"Keys: [{', '.join(names)}], AttributeDefinitions: [{', '.join(defined)}]"
                )
            if len(names) == 2 and names[0] == names[1]:
                raise errors.validation(
                    "Both the Hash Key and the Range Key element in the KeySchema have the same name"
                )
            check_projection(spec)
            if billing == "PAY_PER_REQUEST" and spec.get("ProvisionedThroughput") is not None:
                raise errors.validation(
                    _INVALID + f"ProvisionedThroughput should not be specified for index: {name} when "
                    "BillingMode is PAY_PER_REQUEST"
                )
            if billing != "PAY_PER_REQUEST" and spec.get("ProvisionedThroughput") is None:
                raise errors.validation(
                    _INVALID + f"ProvisionedThroughput must be specified for index: {name}"
                )
            new_index = index_description(table.arn, spec, is_global=True, billing=billing)
            new_index["IndexStatus"] = "CREATING"
            new_index["Backfilling"] = True
            gsis = [*gsis, new_index]
            spaces[name] = "i:" + secrets.token_hex(8)
            creating.append(name)
        elif any(i["IndexName"] == name for i in lsis):
            raise errors.validation(
                f"Cannot {action.lower()} an index that is not a GlobalSecondaryIndex: {name}"
            )
        elif current is None:
            raise errors.resource_not_found(f"Requested resource not found: Index: {name} not found")
        elif action == "Delete":
            if current.get("IndexStatus") in ("CREATING", "DELETING"):
                raise errors.resource_in_use(
                    f"Attempt to change a resource which is still in use: Index: {name}"
                )
            deleting = copy.deepcopy(current)
            deleting["IndexStatus"] = "DELETING"
            gsis = [deleting if g["IndexName"] == name else g for g in gsis]
        else:  # Update: provisioned throughput of one GSI
            if billing == "PAY_PER_REQUEST":
                raise errors.validation(
                    _INVALID + "ProvisionedThroughput cannot be specified for index when BillingMode is "
                    "PAY_PER_REQUEST"
                )
            throughput = spec.get("ProvisionedThroughput") or {}
            updated = copy.deepcopy(current)
            updated["ProvisionedThroughput"].update(
                {k: throughput[k] for k in ("ReadCapacityUnits", "WriteCapacityUnits") if k in throughput}
            )
            gsis = [updated if g["IndexName"] == name else g for g in gsis]
    description["AttributeDefinitions"] = definitions
    description["GlobalSecondaryIndexes"] = gsis
    if not gsis:
        description.pop("GlobalSecondaryIndexes")
    description["_index_spaces"] = spaces
    _schedule_background(call.catalog, call.engine, table)
    return description


def check_projection(spec: Mapping[str, Any]) -> None:
    """DynamoDB's checks of an index's Projection (CreateTable and UpdateTable alike)."""
    projection = spec.get("Projection") or {}
    kind = projection.get("ProjectionType")
    if kind is None:
        raise errors.validation(_INVALID + "Unknown ProjectionType: null")
    if projection.get("NonKeyAttributes") is not None and kind != "INCLUDE":
        raise errors.validation(_INVALID + f"ProjectionType is {kind}, but NonKeyAttributes is specified")
    if kind == "INCLUDE" and not projection.get("NonKeyAttributes"):
        raise errors.validation(
            _INVALID + "NonKeyAttributes must not be empty when ProjectionType is INCLUDE"
        )


_RUNNING: dict[tuple[str, str, str], asyncio.Task[None]] = {}


def _schedule_background(catalog: Catalog, engine: StorageEngine, table: Table) -> None:
    ident = (table.account, table.region, table.name)
    running = _RUNNING.get(ident)
    if running is not None and not running.done():
        return
    task = asyncio.get_running_loop().create_task(_index_worker(catalog, engine, ident))
    _RUNNING[ident] = task


async def resume_backfills(catalog: Catalog, engine: StorageEngine) -> None:
    """At start-up: finish the index creations and deletions a stopped server left pending."""
    catalog.invalidate()
    for table in await catalog.all_tables():
        if any(
            g.get("IndexStatus") in ("CREATING", "DELETING")
            for g in table.description.get("GlobalSecondaryIndexes", [])
        ):
            _schedule_background(catalog, engine, table)


BACKFILL_GRACE_SECONDS = 1.0


async def _index_worker(catalog: Catalog, engine: StorageEngine, ident: tuple[str, str, str]) -> None:
    """Backfill CREATING GSIs and drop DELETING ones, then record the new status in the catalog."""
    try:
        for _ in range(2000):  # wait (bounded) for UpdateTable to store the description
            await asyncio.sleep(0.01)
            catalog.invalidate()
            table = await catalog.find(*ident)
            if table is None:
                return
            pending = [
                g
                for g in table.description.get("GlobalSecondaryIndexes", [])
                if g.get("IndexStatus") in ("CREATING", "DELETING")
                and g["IndexName"] in table.description.get("_index_spaces", {})
            ]
            if pending:
                # Writes that loaded the old description (in this process or another) may still be in
                # flight. A no-op write through this process's writer queue fences the ones queued here;
                # the grace period covers requests in other processes, which refresh their caches at
                # their next request (the shared generation). The backfill then sees all their items.
                await engine.atomic((), lambda _: Decision(()))
                await asyncio.sleep(BACKFILL_GRACE_SECONDS)
                break
        else:
            return
        for raw in pending:
            index = _index_from(table, raw, True)
            if index.status == "CREATING":
                await _backfill(engine, table, index)
            else:
                assert index.space is not None
                await engine.drop_space(index.space)
        await _finish(catalog, ident, {g["IndexName"]: g["IndexStatus"] for g in pending})
    except Exception:
        log.exception("index maintenance failed for %s", ident)


async def _backfill(engine: StorageEngine, table: Table, index: Index) -> None:
    after: RowKey | None = None
    while True:
        rows = await engine.scan(table.space, after=after, limit=BACKFILL_BATCH)
        if not rows:
            return
        keys = [row.key for row in rows]

        def decide(current: list[bytes | None], keys: list[RowKey] = keys) -> Decision:
            changes: list[RowChange] = []
            for raw in current:
                if raw is not None:
                    changes.extend(entry_changes(table, index, None, orjson.loads(raw)))
            return Decision(changes)

        await engine.atomic(keys, decide)
        after = rows[-1].key


async def _finish(catalog: Catalog, ident: tuple[str, str, str], done: dict[str, str]) -> None:
    """Record the end of a backfill or index deletion, on the description as it is now."""

    def mutate(description: dict[str, Any]) -> None:
        gsis = []
        for raw in description.get("GlobalSecondaryIndexes", []):
            state = done.get(raw["IndexName"])
            if state == "DELETING":
                description.get("_index_spaces", {}).pop(raw["IndexName"], None)
                continue
            if state == "CREATING":
                raw["IndexStatus"] = "ACTIVE"
                raw.pop("Backfilling", None)
            gsis.append(raw)
        if gsis:
            description["GlobalSecondaryIndexes"] = gsis
        else:
            description.pop("GlobalSecondaryIndexes", None)

    with contextlib.suppress(errors.ApiError):  # the table was deleted meanwhile
        await catalog.update(*ident, mutate)
