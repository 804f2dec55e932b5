"""Index row keys and changes: unique per item, ordered by the index sort key, sparse when keys are absent."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb import indexes
from perimeterdb.dynamodb.catalog import Table
from perimeterdb.storage.engine import Delete, Put


def _table(projection: dict[str, Any] | None = None) -> Table:
    description = {
        "TableName": "t",
        "TableArn": "arn:aws:dynamodb:us-east-1:000000000000:table/t",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "gi",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "n", "KeyType": "RANGE"},
                ],
                "Projection": projection or {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]},
            }
        ],
        "_space": "t:1",
    }
    indexes.allocate_spaces(description)
    return Table("a", "r", "t", description)


def _item(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": sk}}
    for k, v in extra.items():
        item[k] = {"N": str(v)} if isinstance(v, int) else {"S": v}
    return item


def test_escape_keeps_order_and_uniqueness() -> None:
    values = [b"", b"\x00", b"\x00\x00", b"\x00\x01", b"a", b"a\x00", b"ab", b"b"]
    encoded = [indexes.escape(v) + indexes.TERM + b"suffix" for v in values]
    assert encoded == sorted(encoded)
    assert len(set(encoded)) == len(values)


def test_row_keys_order_by_index_sort_key_then_table_key() -> None:
    table = _table()
    index = indexes.find(table, "gi")
    assert index is not None
    items = [
        _item("b", "1", g="G", n=-5),
        _item("a", "2", g="G", n=3),
        _item("a", "1", g="G", n=3),
        _item("c", "x", g="G", n=10),
    ]
    keys = [indexes.row_key(table, index, i) for i in items]
    assert len({k.hk for k in keys}) == 1
    assert sorted(k.rk for k in keys) == [keys[0].rk, keys[2].rk, keys[1].rk, keys[3].rk]


def test_sort_ranges_select_the_right_rows() -> None:
    table = _table()
    index = indexes.find(table, "gi")
    assert index is not None
    rows = {n: indexes.row_key(table, index, _item(f"p{n}", "s", g="G", n=n)).rk for n in range(-3, 4)}

    def matching(op: str, *vals: int) -> list[int]:
        r = indexes.sort_range(op, [{"N": str(v)} for v in vals], "N", escaped=True)
        out = []
        for n, rk in rows.items():
            if r.lo is not None and (rk < r.lo or (rk == r.lo and not r.lo_inclusive)):
                continue
            if r.hi is not None and (rk > r.hi or (rk == r.hi and not r.hi_inclusive)):
                continue
            out.append(n)
        return out

    assert matching("EQ", 1) == [1]
    assert matching("LT", 0) == [-3, -2, -1]
    assert matching("LE", 0) == [-3, -2, -1, 0]
    assert matching("GT", 1) == [2, 3]
    assert matching("GE", 1) == [1, 2, 3]
    assert matching("BETWEEN", -1, 1) == [-1, 0, 1]


def test_changes_for_projection_and_sparseness() -> None:
    table = _table()
    old = _item("a", "1", g="G", n=1, x="keep", y="drop")
    (put,) = indexes.changes_for(table, None, old)
    assert isinstance(put, Put)
    import orjson

    assert orjson.loads(put.value) == {
        "pk": {"S": "a"},
        "sk": {"S": "1"},
        "g": {"S": "G"},
        "n": {"N": "1"},
        "x": {"S": "keep"},
    }
    assert indexes.changes_for(table, old, {**old, "y": {"S": "other"}}) == []
    moved = indexes.changes_for(table, old, {**old, "n": {"N": "2"}})
    assert [type(c) for c in moved] == [Delete, Put]
    gone = indexes.changes_for(table, old, _item("a", "1", n=1))
    assert [type(c) for c in gone] == [Delete]
    assert indexes.changes_for(table, None, _item("a", "1", g="G")) == []
