"""One item write, prepared once and applied inside the storage engine's atomic read-decide-write.

PutItem, UpdateItem, DeleteItem, the writes of BatchWriteItem and the actions of TransactWriteItems are
all an ``ItemWrite``: the row it touches, an optional condition, and how the new item follows from the
old one. ``apply(old)`` is pure: it checks the condition and returns the new item (``None`` to delete,
``KEEP`` to leave the row alone), raising ``ConditionFailed`` when the condition does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from perimeterdb import errors
from perimeterdb.dynamodb import capacity, indexes, values
from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb import items as item_rows
from perimeterdb.dynamodb.catalog import Table
from perimeterdb.dynamodb.expressions import legacy
from perimeterdb.dynamodb.items import Item
from perimeterdb.storage.engine import Decision, RowKey


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()


class ConditionFailed(Exception):
    """The write's condition did not hold; ``old`` is the item as it was (for ALL_OLD on failure)."""

    def __init__(self, old: Item | None) -> None:
        super().__init__("The conditional request failed")
        self.old = old


@dataclass(frozen=True, slots=True)
class ItemWrite:
    table: Table
    key: dict[str, dict[str, Any]]
    row: RowKey
    kind: str  # Put | Update | Delete | ConditionCheck
    condition: Any = None  # a bound condition AST, or None
    item: Item | None = None  # Put: the new item
    update: Any = None  # Update: a bound UpdateExpression
    attribute_updates: dict[str, tuple[str, Any]] | None = None  # Update: validated legacy AttributeUpdates

    def apply(self, old: Item | None) -> Item | _Keep | None:
        if self.condition is not None and not ex.evaluate_condition(self.condition, old):
            raise ConditionFailed(old)
        if self.kind == "Put":
            return self.item
        if self.kind == "Delete":
            return None
        if self.kind == "ConditionCheck":
            return KEEP
        if old is None and self.only_removes():
            return KEEP  # removing attributes of a missing item does not create it
        base = dict(old) if old is not None else dict(self.key)
        if self.attribute_updates is not None:
            new = legacy.apply_attribute_updates(self.attribute_updates, base).item
            if values.item_size(new) > values.MAX_ITEM_SIZE:
                raise errors.validation("Item size to update has exceeded the maximum allowed size")
        else:
            new = ex.apply_update(self.update, old, self.key).item
        check_new_item(self.table, new)
        return new

    def only_removes(self) -> bool:
        """An update that only removes attributes (REMOVE/DELETE, or AttributeUpdates DELETE actions)."""
        if self.attribute_updates is not None:
            actions = [action for action, _ in self.attribute_updates.values()]
            return bool(actions) and all(action == "DELETE" for action in actions)
        update = self.update
        return (
            update is not None
            and not update.sets
            and not update.adds
            and bool(update.removes or update.deletes)
        )

    def can_be_blind(self) -> bool:
        """Can this write go to storage without reading the item first (when nobody asks for the old item:
        no ALL_OLD, no consumed capacity)? A Put or Delete without condition on a table without indexes:
        the old item would only decide index rows, and there are none."""
        return (
            self.kind in ("Put", "Delete")
            and self.condition is None
            and not self.table.description.get("_index_spaces")
        )

    def blind_changes(self) -> tuple[list[Any], Item | None]:
        """The row change of a write that ``can_be_blind``, and the new item."""
        new = self.item if self.kind == "Put" else None
        return item_rows.write_changes(self.table, self.row, None, new), new

    def decide_blind(self, _current: list[bytes | None]) -> Decision:
        """``decide`` without the old item (``can_be_blind``): returns (None, new) as the result."""
        changes, new = self.blind_changes()
        return Decision(changes, (None, new))

    def decide(self, current: list[bytes | None]) -> Decision:
        """The storage decision for this write alone: returns (old, new) as the result."""
        old = item_rows.decode_item(current[0])
        new = self.apply(old)
        if new is KEEP:
            return Decision((), (old, old))
        assert not isinstance(new, _Keep)
        if new is None and old is None:
            return Decision((), (None, None))
        return Decision(item_rows.write_changes(self.table, self.row, old, new), (old, new))


def key_from_body(table: Table, key: Any) -> dict[str, dict[str, Any]]:
    """Validate a request's ``Key`` against the table's schema; return it normalized."""
    if not isinstance(key, dict):
        raise errors.validation("The provided key element does not match the schema")
    normalized = values.validate_item(key)
    values.validate_key(normalized, table.key_schema, table.attribute_types)
    return normalized


def validate_new_item(table: Table, raw_item: Any) -> Item:
    """Validate a full item (PutItem): values, key attributes, index key types and the size limit."""
    return check_new_item_values(table, values.validate_item(raw_item))


def check_new_item_values(table: Table, item: Item) -> Item:
    """``validate_new_item`` for an item whose values were already validated and normalized."""
    values.validate_item_key(item, table.key_schema, table.attribute_types)
    index_keys = index_key_types(table)
    if index_keys:
        values.validate_index_keys(item, index_keys)
    values.check_item_size(item)
    return item


def index_key_types(table: Table) -> list[tuple[str, list[tuple[str, str]]]]:
    types = table.attribute_types
    out = []
    for index in table.description.get("GlobalSecondaryIndexes", []) + table.description.get(
        "LocalSecondaryIndexes", []
    ):
        out.append(
            (
                index["IndexName"],
                [(k["AttributeName"], types[k["AttributeName"]]) for k in index["KeySchema"]],
            )
        )
    return out


def check_new_item(table: Table, new: Item | None) -> None:
    """Checks on an item produced by an update: index key types, size and nesting depth."""
    if new is None:
        return
    values.check_nesting_depth(new)
    index_keys = index_key_types(table)
    if index_keys:
        values.validate_index_keys(new, index_keys)


def conditional_failure(exc: ConditionFailed, return_on_failure: str | None) -> errors.ApiError:
    item = exc.old if return_on_failure == "ALL_OLD" else None
    return errors.conditional_check_failed(item)


def bind_condition(body: dict[str, Any], operation: str) -> Any:
    """The write's condition: ConditionExpression (with its names and values) or legacy Expected."""
    ex.check_parameter_mix(body, operation)
    if body.get("Expected") is not None or body.get("ConditionalOperator") is not None:
        if body.get("ConditionalOperator") is not None and not body.get("Expected"):
            raise errors.validation(
                "ConditionalOperator can only be used when Filter or Expected has two or more elements"
            )
        return legacy.expected_to_condition(body.get("Expected"), body.get("ConditionalOperator"))
    bound = ex.compile_request_expressions(
        condition=body.get("ConditionExpression"),
        names=body.get("ExpressionAttributeNames"),
        values=body.get("ExpressionAttributeValues"),
        operation=operation,
    )
    return bound.condition


async def execute(
    write: ItemWrite, engine: Any, return_on_failure: str | None, *, old_wanted: bool = True
) -> tuple[Item | None, Item | None]:
    """Run one write atomically; return (old, new) or raise ConditionalCheckFailedException. With
    ``old_wanted=False`` a write that ``can_be_blind`` skips reading the item (old is then None)."""
    if not old_wanted and write.can_be_blind():
        blind: tuple[Item | None, Item | None] = await engine.atomic([], write.decide_blind)
        return blind
    try:
        result: tuple[Item | None, Item | None] = await engine.atomic([write.row], write.decide)
    except ConditionFailed as exc:
        raise conditional_failure(exc, return_on_failure) from None
    return result


def check_return_values(body: dict[str, Any], allowed: tuple[str, ...]) -> str:
    mode = body.get("ReturnValues", "NONE")
    if mode not in allowed:
        raise errors.validation("ReturnValues can only be ALL_OLD or NONE")
    return str(mode)


async def write_response(
    body: dict[str, Any],
    table: Table,
    engine: Any,
    key: dict[str, Any],
    size: int,
    out: dict[str, Any],
    *,
    old: Item | None = None,
    new: Item | None = None,
) -> dict[str, Any]:
    """Add ConsumedCapacity and ItemCollectionMetrics to a single-item write's response, when asked
    (``old`` and ``new``, the item before and after, give the indexes' share of the units)."""
    mode = body.get("ReturnConsumedCapacity")
    gsi_units, lsi_units = indexes.write_units(table, old, new) if mode in ("TOTAL", "INDEXES") else ({}, {})
    consumed = capacity.consumed(
        mode, table.name, capacity.write_units(size), kind="Write", gsi_units=gsi_units, lsi_units=lsi_units
    )
    if consumed:
        out["ConsumedCapacity"] = consumed
    if body.get("ReturnItemCollectionMetrics") == "SIZE" and indexes.has_lsi(table):
        out["ItemCollectionMetrics"] = await indexes.item_collection_metrics(table, engine, key)
    return out
