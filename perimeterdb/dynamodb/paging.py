"""What Query and Scan share: Select and projection rules, filters, the 1 MB page, Limit, start keys.

A read walks rows of one storage space (the table's or an index's) in key order through a ``RowSource``
(a Query's key range in one partition, or a Scan's hash order) and builds one page the way DynamoDB does:
every row read counts towards ``ScannedCount``, ``Limit`` and the 1 MB page size (measured on the items
read, before the filter); the filter then decides ``Count`` and ``Items``; projection shapes the items.
The page ends early with ``LastEvaluatedKey`` (the key of the last row read) when Limit or 1 MB stops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from perimeterdb import errors
from perimeterdb.dynamodb import capacity, indexes, values
from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb import items as item_rows
from perimeterdb.dynamodb.catalog import Table
from perimeterdb.dynamodb.expressions import legacy
from perimeterdb.dynamodb.indexes import Index
from perimeterdb.storage.engine import Row, RowKey, StorageEngine

MAX_PAGE_BYTES = 1024 * 1024
CHUNK = 128
_INVALID = "One or more parameter values were invalid: "

Item = dict[str, dict[str, Any]]


@dataclass(slots=True)
class ReadPlan:
    """A validated Query or Scan, ready to run against one storage space."""

    table: Table
    index: Index | None
    select: str
    projection: tuple[ex.Path, ...] | None
    filter: ex.Condition | None
    limit: int | None
    consistent: bool
    fetch_base: bool = False
    key_clauses: list[ex.KeyClause] = field(default_factory=list)

    @property
    def space(self) -> str:
        if self.index is None:
            return self.table.space
        assert self.index.space is not None
        return self.index.space


class RowSource(Protocol):
    async def next(self, count: int) -> list[Row]: ...


# --- validation -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compiled:
    projection: tuple[ex.Path, ...] | None
    filter: ex.Condition | None
    key_clauses: list[ex.KeyClause] | None
    projection_param: str | None  # "ProjectionExpression" | "AttributesToGet" | None
    filter_param: str | None  # "FilterExpression" | "QueryFilter" | "ScanFilter" | None
    # Query: every attribute named by the key condition, and an error DynamoDB only reports once the
    # key schema is known (a legacy KeyConditions operator that cannot be used on a key).
    key_names: tuple[str, ...] = ()
    deferred: errors.ApiError | None = None


MAX_KEY_CONDITIONS = 2
_NOT_INDEXABLE = "Attempted conditional constraint is not an indexable operation"


async def find_table(call: Any, name: str) -> Table:
    """The table of a data-plane request (``Call.data_table``)."""
    table: Table = await call.data_table(name)
    return table


def check_start_key_values(body: Mapping[str, Any]) -> None:
    """``ExclusiveStartKey``'s attribute values, checked before the table is looked up (as DynamoDB does)."""
    raw = body.get("ExclusiveStartKey")
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise errors.validation("The provided starting key is invalid")
    for value in raw.values():
        try:
            values.validate_attribute_value(value)
        except errors.ApiError as error:
            if error.code != "ValidationException":
                raise
            raise errors.validation(f"The provided starting key is invalid: {error.message}") from None


def _legacy_key_clauses(
    key_conditions: Mapping[str, Any],
) -> tuple[list[ex.KeyClause], errors.ApiError | None]:
    """Convert KeyConditions one by one: operand and argument-count errors come first, in order; a
    non-indexable operator is only reported after the key schema checks."""
    clauses: list[ex.KeyClause] = []
    deferred: errors.ApiError | None = None
    for name, spec in key_conditions.items():
        try:
            clauses.extend(legacy.key_conditions_to_clauses({name: spec}))
        except errors.ApiError as error:
            if error.message != _NOT_INDEXABLE:
                raise
            deferred = deferred or error
    return clauses, deferred


def compile_request(body: Mapping[str, Any], *, query: bool) -> Compiled:
    """Expression and legacy parameters of a Query or Scan: parsed, bound and checked."""
    ex.check_parameter_mix(body)
    bound = ex.compile_request_expressions(
        projection=body.get("ProjectionExpression"),
        filter=body.get("FilterExpression"),
        key_condition=body.get("KeyConditionExpression") if query else None,
        names=body.get("ExpressionAttributeNames"),
        values=body.get("ExpressionAttributeValues"),
    )
    projection = bound.projection
    projection_param = "ProjectionExpression" if projection is not None else None
    if body.get("AttributesToGet") is not None:
        projection = legacy.attributes_to_get_paths(body["AttributesToGet"])
        projection_param = "AttributesToGet"
    legacy_filter_name = "QueryFilter" if query else "ScanFilter"
    condition = bound.filter
    filter_param = "FilterExpression" if condition is not None else None
    if body.get(legacy_filter_name) is not None:
        condition = legacy.filter_to_condition(body[legacy_filter_name], body.get("ConditionalOperator"))
        filter_param = legacy_filter_name if condition is not None else None
    clauses: list[ex.KeyClause] | None = None
    key_names: tuple[str, ...] = ()
    deferred: errors.ApiError | None = None
    if query:
        if bound.key_clauses is not None:
            clauses = list(bound.key_clauses)
            key_names = tuple(clause.name for clause in clauses)
        elif body.get("KeyConditions") is not None:
            clauses, deferred = _legacy_key_clauses(body["KeyConditions"])
            key_names = tuple(body["KeyConditions"])
        else:
            raise errors.validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
            )
        if not 1 <= len(key_names) <= MAX_KEY_CONDITIONS:
            raise errors.validation("Conditions can be of length 1 or 2 only")
    return Compiled(projection, condition, clauses, projection_param, filter_param, key_names, deferred)


def resolve_select(body: Mapping[str, Any], compiled: Compiled) -> str:
    """DynamoDB's rules for Select and a projection, before the table is known."""
    param = compiled.projection_param
    select = body.get("Select")
    if select is None:
        return (
            "SPECIFIC_ATTRIBUTES"
            if param
            else ("ALL_PROJECTED_ATTRIBUTES" if body.get("IndexName") else "ALL_ATTRIBUTES")
        )
    if select == "COUNT" and param:
        raise errors.validation(f"Cannot specify the {param} when choosing to get only the Count")
    if select in ("ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES") and param:
        raise errors.validation(f"Cannot specify the {param} when choosing to get {select}")
    if select == "ALL_PROJECTED_ATTRIBUTES" and not body.get("IndexName"):
        raise errors.validation("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
    if select == "SPECIFIC_ATTRIBUTES" and not param:
        raise errors.validation(
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"
        )
    return str(select)


def find_index(table: Table, name: str | None, consistent: bool) -> Index | None:
    if name is None:
        return None
    index = indexes.find(table, name)
    if index is None or index.space is None:
        raise errors.validation(f"The table does not have the specified index: {name}")
    if index.is_global and consistent:
        raise errors.validation("Consistent reads are not supported on global secondary indexes")
    return index


def _path_heads(node: Any, out: set[str]) -> None:
    if isinstance(node, ex.Path):
        head = node.elements[0]
        if isinstance(head, str):
            out.add(head)
        return
    if isinstance(node, ex.Literal) or node is None:
        return
    for name in getattr(node, "__slots__", ()):
        child = getattr(node, name)
        if isinstance(child, tuple):
            for element in child:
                _path_heads(element, out)
        elif not isinstance(child, str | int | dict):
            _path_heads(child, out)


def condition_heads(condition: ex.Condition | None) -> set[str]:
    heads: set[str] = set()
    if condition is not None:
        _path_heads(condition, heads)
    return heads


def plan_read(
    body: Mapping[str, Any], table: Table, compiled: Compiled, select: str, *, query: bool
) -> ReadPlan:
    consistent = bool(body.get("ConsistentRead", False))
    index = find_index(table, body.get("IndexName"), consistent)
    if query and compiled.filter is not None:
        key_schema = index.key_schema if index is not None else table.key_schema
        heads = condition_heads(compiled.filter)
        for element in key_schema:
            if element["AttributeName"] in heads:
                label = "Filter Expression" if compiled.filter_param == "FilterExpression" else "QueryFilter"
                raise errors.validation(
                    f"{label} can only contain non-primary key attributes: Primary key attribute: "
                    f"{element['AttributeName']}"
                )
    fetch_base = False
    if index is not None:
        projected = indexes.projected_names(table, index)
        if projected is not None:
            wanted: set[str] = set()
            if compiled.projection is not None:
                wanted = {p.elements[0] for p in compiled.projection if isinstance(p.elements[0], str)}
            if index.is_global:
                if select == "ALL_ATTRIBUTES":
                    raise errors.validation(
                        _INVALID + f"Select type ALL_ATTRIBUTES is not supported for global secondary index "
                        f"{index.name} because its projection type is not ALL"
                    )
                missing = [
                    name
                    for name in dict.fromkeys(
                        p.elements[0] for p in compiled.projection or () if isinstance(p.elements[0], str)
                    )
                    if name not in projected
                ]
                if missing:
                    raise errors.validation(
                        _INVALID
                        + f"Global secondary index {index.name} does not project [{', '.join(missing)}]"
                    )
            else:
                needed = wanted | condition_heads(compiled.filter)
                fetch_base = select == "ALL_ATTRIBUTES" or bool(needed - projected)
    limit = body.get("Limit")
    return ReadPlan(
        table=table,
        index=index,
        select=select,
        projection=compiled.projection,
        filter=compiled.filter,
        limit=int(limit) if limit is not None else None,
        consistent=consistent,
        fetch_base=fetch_base,
        key_clauses=compiled.key_clauses or [],
    )


# --- start keys -------------------------------------------------------------------------------------------


def start_key(plan: ReadPlan, raw: Any) -> tuple[Item, RowKey]:
    """Validate ``ExclusiveStartKey`` against the key schema; return it and the storage row it names."""
    check_start_key_values({"ExclusiveStartKey": raw})
    key = values.validate_item(raw)
    table = plan.table
    if plan.index is None:
        try:
            values.validate_key(key, table.key_schema, table.attribute_types)
        except errors.ApiError as error:
            raise errors.validation(f"The provided starting key is invalid: {error.message}") from None
        return key, item_rows.row_key(table, key)
    names = indexes.key_names(table, plan.index)
    if len(key) != len(names) or any(name not in key for name in names):
        raise errors.validation("The provided starting key is invalid")
    types = table.attribute_types
    for name in names:
        if types[name] not in key[name]:
            raise errors.validation(
                "The provided starting key is invalid: The provided key element does not match the schema"
            )
    return key, indexes.row_key(table, plan.index, key)


def last_key(plan: ReadPlan, entry: Mapping[str, Any]) -> Item:
    names = (
        indexes.key_names(plan.table, plan.index)
        if plan.index is not None
        else [k["AttributeName"] for k in plan.table.key_schema]
    )
    return {name: entry[name] for name in names if name in entry}


# --- the page ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Page:
    items: list[Item]
    count: int
    scanned: int
    last_key: Item | None
    bytes_read: int
    base_bytes: int


async def read_page(
    plan: ReadPlan, source: RowSource, engine: StorageEngine, *, sizes_wanted: bool = True
) -> Page:
    """One page of a Query or Scan. ``sizes_wanted=False`` (no ConsumedCapacity asked for) lets a page
    that returns whole stored items send them out as stored (``_read_page_as_stored``)."""
    if (
        not sizes_wanted
        and plan.filter is None
        and plan.projection is None
        and not plan.fetch_base
        and plan.select != "COUNT"
    ):
        return await _read_page_as_stored(plan, source)
    items: list[Item] = []
    count = scanned = size = base_size = 0
    last: Item | None = None
    stopped = False
    while not stopped:
        want = CHUNK if plan.limit is None else min(CHUNK, plan.limit - scanned)
        rows = await source.next(want)
        for row in rows:
            entry: Item = orjson.loads(row.value)
            scanned += 1
            size += values.item_size(entry)
            last = entry
            full = entry
            if plan.fetch_base:
                raw = await engine.get(item_rows.row_key(plan.table, entry))
                if raw is not None:
                    full = orjson.loads(raw)
                    base_size += values.item_size(full)
            if plan.filter is None or ex.evaluate_condition(plan.filter, full):
                count += 1
                if plan.select != "COUNT":
                    items.append(_shape(plan, entry, full))
            if (plan.limit is not None and scanned >= plan.limit) or size >= MAX_PAGE_BYTES:
                stopped = True
                break
        if len(rows) < want:
            break
    return Page(
        items, count, scanned, last_key(plan, last) if stopped and last is not None else None, size, base_size
    )


async def _read_page_as_stored(plan: ReadPlan, source: RowSource) -> Page:
    """A page of whole stored items, none decoded but the last one (for LastEvaluatedKey).

    The 1 MB page limit counts DynamoDB's item sizes, and an item's stored JSON is never shorter than its
    size (see ``values.check_item_size``). So while the stored bytes stay under the limit the sizes are
    not computed; past it, the exact sizes of the items so far are, and the page ends where it would."""
    raws: list[bytes] = []
    bound = 0  # stored bytes so far: at least the page's size
    exact: int | None = None  # the page's exact size, once the bound alone cannot decide
    stopped = False
    while not stopped:
        want = CHUNK if plan.limit is None else min(CHUNK, plan.limit - len(raws))
        rows = await source.next(want)
        for row in rows:
            raws.append(row.value)
            if exact is None:
                bound += len(row.value)
                if bound >= MAX_PAGE_BYTES:
                    exact = sum(values.item_size(orjson.loads(raw)) for raw in raws)
            else:
                exact += values.item_size(orjson.loads(row.value))
            if (plan.limit is not None and len(raws) >= plan.limit) or (
                exact is not None and exact >= MAX_PAGE_BYTES
            ):
                stopped = True
                break
        if len(rows) < want:
            break
    last = last_key(plan, orjson.loads(raws[-1])) if stopped and raws else None
    items: list[Any] = [orjson.Fragment(raw) for raw in raws]
    return Page(items, len(raws), len(raws), last, exact if exact is not None else bound, 0)


def _shape(plan: ReadPlan, entry: Item, full: Item) -> Item:
    if plan.projection is not None:
        return ex.project(plan.projection, full)
    if plan.select == "ALL_PROJECTED_ATTRIBUTES":
        return entry
    return full


def response(plan: ReadPlan, page: Page, mode: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if plan.select != "COUNT":
        out["Items"] = page.items
    out["Count"] = page.count
    out["ScannedCount"] = page.scanned
    if page.last_key is not None:
        out["LastEvaluatedKey"] = page.last_key
    units = capacity.read_units(page.bytes_read, consistent=plan.consistent)
    table_units = units if plan.index is None else 0.0
    if plan.fetch_base and page.base_bytes:
        table_units += capacity.read_units(page.base_bytes, consistent=plan.consistent)
    gsi: dict[str, float] = {}
    lsi: dict[str, float] = {}
    if plan.index is not None:
        (gsi if plan.index.is_global else lsi)[plan.index.name] = units
    consumed = capacity.consumed(
        mode, plan.table.name, table_units, kind="Read", gsi_units=gsi, lsi_units=lsi
    )
    if consumed is not None:
        out["ConsumedCapacity"] = consumed
    return out


def index_resource(call_table_arn: str, index_name: str | None) -> str:
    return f"{call_table_arn}/index/{index_name}" if index_name else call_table_arn
