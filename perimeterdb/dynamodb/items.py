"""Items in storage: row keys from key attributes, the stored encoding, and the rows a write changes.

An item is stored as its wire JSON (``orjson``) under ``RowKey(table space, hash(hk), hk, rk)`` where
``hk``/``rk`` are the order-preserving encodings of its partition and sort key. A write of an item also
rewrites its secondary-index rows (``indexes.changes_for``) in the same atomic write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from perimeterdb.dynamodb.catalog import Table
from perimeterdb.storage.engine import Delete, Put, RowChange, RowKey
from perimeterdb.storage.keys import encode_key_value, partition_hash

Item = dict[str, dict[str, Any]]


def encode_key_part(type_name: str, value: Mapping[str, Any]) -> bytes:
    return encode_key_value(type_name, value[type_name])


def row_key(table: Table, key: Mapping[str, Mapping[str, Any]]) -> RowKey:
    """The storage key of the item with primary key ``key`` (already validated against the schema)."""
    hash_attr = table.hash_key
    hk = encode_key_part(hash_attr.type, key[hash_attr.name])
    range_attr = table.range_key
    rk = encode_key_part(range_attr.type, key[range_attr.name]) if range_attr else b""
    return RowKey(table.space, partition_hash(hk), hk, rk)


def encode_item(item: Item) -> bytes:
    return orjson.dumps(item)


def decode_item(raw: bytes | None) -> Item | None:
    return orjson.loads(raw) if raw is not None else None


def wire_item(raw: bytes) -> orjson.Fragment:
    """A stored item, to be embedded as it is in a response encoded with ``orjson.dumps``."""
    return orjson.Fragment(raw)


def write_changes(table: Table, key: RowKey, old: Item | None, new: Item | None) -> list[RowChange]:
    """The row changes that replace ``old`` by ``new`` (``None`` deletes) for one item and its indexes."""
    changes: list[RowChange] = [Put(key, encode_item(new)) if new is not None else Delete(key)]
    if table.description.get("_index_spaces"):
        from perimeterdb.dynamodb import indexes

        changes.extend(indexes.changes_for(table, old, new))
    return changes
