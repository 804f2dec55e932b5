"""Query: one partition of a table or index, read as a key range (never a scan of the table)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb import indexes, paging, values
from perimeterdb.dynamodb.call import Call
from perimeterdb.storage.engine import KeyRange, Row, StorageEngine
from perimeterdb.storage.keys import encode_key_value, partition_hash

ACTION = "dynamodb:Query"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, paging.index_resource(call.table_arn(body["TableName"]), body.get("IndexName")))]


@dataclass(slots=True)
class RangeSource:
    """Rows of one partition inside a sort-key range, read forwards or backwards in chunks."""

    engine: StorageEngine
    space: str
    hk: bytes
    key_range: KeyRange
    forward: bool

    async def next(self, count: int) -> list[Row]:
        if count <= 0:
            return []
        rows = await self.engine.query(
            self.space, partition_hash(self.hk), self.hk, self.key_range, forward=self.forward, limit=count
        )
        if rows:
            last = rows[-1].key.rk
            r = self.key_range
            if self.forward:
                self.key_range = KeyRange(last, False, r.hi, r.hi_inclusive)
            else:
                self.key_range = KeyRange(r.lo, r.lo_inclusive, last, False)
        return rows


def _narrow(key_range: KeyRange, position: bytes, forward: bool) -> KeyRange:
    """Continue after ``position`` (ExclusiveStartKey) in the direction of the read."""
    if forward:
        if key_range.lo is not None and position < key_range.lo:
            return key_range
        return KeyRange(position, False, key_range.hi, key_range.hi_inclusive)
    if key_range.hi is not None and position > key_range.hi:
        return key_range
    return KeyRange(key_range.lo, key_range.lo_inclusive, position, False)


def _check_key_names(compiled: paging.Compiled, key_schema: list[dict[str, str]]) -> None:
    """What DynamoDB checks first once the key schema is known: the attributes the key condition names."""
    hash_name = next(e["AttributeName"] for e in key_schema if e["KeyType"] == "HASH")
    range_name = next((e["AttributeName"] for e in key_schema if e["KeyType"] == "RANGE"), None)
    names = compiled.key_names
    if hash_name not in names:
        raise errors.validation(f"Query condition missed key schema element: {hash_name}")
    if len(names) > 1 and range_name is not None and range_name not in names:
        raise errors.validation(f"Query condition missed key schema element: {range_name}")
    if compiled.deferred is not None:
        raise compiled.deferred
    if len(names) > 1 and range_name is None:
        raise errors.validation("Query key condition not supported")


def _begins_with(value: dict[str, Any], prefix: dict[str, Any]) -> bool:
    if "S" in value and "S" in prefix:
        return str(value["S"]).startswith(prefix["S"])
    if "B" in value and "B" in prefix:
        return base64.b64decode(value["B"]).startswith(base64.b64decode(prefix["B"]))
    return False


def matches_sort(clause: ex.KeyClause, value: dict[str, Any] | None) -> bool:
    """Whether a sort-key value satisfies the key condition's sort clause."""
    if value is None:
        return False
    if clause.operator == "BEGINS_WITH":
        return _begins_with(value, clause.values[0])
    order = [values.compare_values(value, bound) for bound in clause.values]
    if any(o is None for o in order):
        return False
    if clause.operator == "BETWEEN":
        return order[0] >= 0 and order[1] <= 0  # type: ignore[operator]
    first = order[0]
    assert first is not None
    return {
        "EQ": first == 0,
        "LT": first < 0,
        "LE": first <= 0,
        "GT": first > 0,
        "GE": first >= 0,
    }[clause.operator]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    compiled = paging.compile_request(body, query=True)
    paging.check_start_key_values(body)
    select = paging.resolve_select(body, compiled)
    table = await paging.find_table(call, body["TableName"])
    plan = paging.plan_read(body, table, compiled, select, query=True)
    key_schema = plan.index.key_schema if plan.index is not None else table.key_schema
    start = row = None
    if body.get("ExclusiveStartKey") is not None:
        # The start key's shape is checked before the key condition's (DynamoDB's order).
        start, row = paging.start_key(plan, body["ExclusiveStartKey"])
    _check_key_names(compiled, key_schema)
    key = ex.check_key_schema(plan.key_clauses, key_schema, table.attribute_types)
    hash_type = table.attribute_types[key.hash_name]
    hash_value = key.hash_value
    hk = encode_key_value(hash_type, hash_value[hash_type])
    key_range = KeyRange()
    if key.sort is not None:
        sort = key.sort
        if sort.operator == "BETWEEN" and values.compare_values(sort.values[0], sort.values[1]) == 1:
            raise errors.validation(
                "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or "
                f"equal to lower bound; lower bound operand: AttributeValue: {_show(sort.values[0])}, upper bound "
                f"operand: AttributeValue: {_show(sort.values[1])}"
            )
        key_range = indexes.sort_range(
            sort.operator, sort.values, table.attribute_types[sort.name], escaped=plan.index is not None
        )
    elif plan.index is not None:
        key_range = KeyRange()
    forward = body.get("ScanIndexForward", True) is not False
    if start is not None and row is not None:
        if not values.values_equal(start.get(key.hash_name), hash_value):
            raise errors.validation(
                "The provided starting key is outside query boundaries based on provided conditions"
            )
        if key.sort is not None and not matches_sort(key.sort, start.get(key.sort.name)):
            raise errors.validation("The provided starting key does not match the range key predicate")
        key_range = _narrow(key_range, row.rk, forward)
    source = RangeSource(call.engine, plan.space, hk, key_range, forward)
    page = await paging.read_page(
        plan, source, call.engine, sizes_wanted=body.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES")
    )
    return paging.response(plan, page, body.get("ReturnConsumedCapacity"))


def _show(value: dict[str, Any]) -> str:
    kind, raw = next(iter(value.items()))
    return f"{{{kind}:{raw},}}"
