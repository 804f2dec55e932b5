"""Legacy (pre-expression) parameters, validated with DynamoDB's messages and converted to bound ASTs.

``Expected``, ``QueryFilter`` and ``ScanFilter`` become a ``Condition``; ``KeyConditions`` become
``KeyClause`` s; ``AttributesToGet`` becomes projection paths. ``AttributeUpdates`` is applied directly
(``apply_attribute_updates``) because its ADD also appends to lists, which no UpdateExpression can say.
Attribute names in legacy parameters are literal top-level names, never parsed as paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from perimeterdb.dynamodb import numbers
from perimeterdb.dynamodb.expressions.ast import (
    And,
    Between,
    Call,
    Comparison,
    Condition,
    In,
    Literal,
    Not,
    Or,
    Path,
)
from perimeterdb.dynamodb.expressions.keycond import KeyClause
from perimeterdb.dynamodb.expressions.update import UpdateResult
from perimeterdb.dynamodb.values import (
    MAX_ITEM_SIZE,
    check_attribute_name,
    compare_values,
    item_size,
    set_member_key,
    type_of,
    validate_attribute_value,
)
from perimeterdb.errors import validation

__all__ = [
    "apply_attribute_updates",
    "attributes_to_get_paths",
    "expected_to_condition",
    "filter_to_condition",
    "key_conditions_to_clauses",
    "validate_attribute_updates",
]

INVALID = "One or more parameter values were invalid: "

_ARGUMENT_COUNTS: dict[str, tuple[int, int]] = {
    "EQ": (1, 1),
    "NE": (1, 1),
    "LE": (1, 1),
    "LT": (1, 1),
    "GE": (1, 1),
    "GT": (1, 1),
    "CONTAINS": (1, 1),
    "NOT_CONTAINS": (1, 1),
    "BEGINS_WITH": (1, 1),
    "NULL": (0, 0),
    "NOT_NULL": (0, 0),
    "IN": (1, 10**9),
    "BETWEEN": (2, 2),
}
_ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "EQ": ("S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL", "L", "M"),
    "NE": ("S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL", "L", "M"),
    "LE": ("S", "N", "B"),
    "LT": ("S", "N", "B"),
    "GE": ("S", "N", "B"),
    "GT": ("S", "N", "B"),
    "CONTAINS": ("S", "N", "B"),  # a scalar, looked for in a string, binary or set (never a set itself)
    "NOT_CONTAINS": ("S", "N", "B"),
    "BEGINS_WITH": ("S", "B"),
    "IN": ("S", "N", "B"),
    "BETWEEN": ("S", "N", "B"),
}
_COMPARATORS = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}


def _combine(conditions: list[Condition], conditional_operator: str | None) -> Condition | None:
    if not conditions:
        return None
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = Or(combined, condition) if conditional_operator == "OR" else And(combined, condition)
    return combined


def _operator_condition(name: str, operator: str, values: Sequence[dict[str, Any]]) -> Condition:
    path = Path((name,))
    literals = [Literal(v) for v in values]
    if operator in _COMPARATORS:
        return Comparison(_COMPARATORS[operator], path, literals[0])
    if operator == "NULL":
        return Call("attribute_not_exists", (path,))
    if operator == "NOT_NULL":
        return Call("attribute_exists", (path,))
    if operator == "CONTAINS":
        return Call("contains", (path, literals[0]))
    if operator == "NOT_CONTAINS":
        return Not(Call("contains", (path, literals[0])))
    if operator == "BEGINS_WITH":
        return Call("begins_with", (path, literals[0]))
    if operator == "IN":
        return In(path, tuple(literals))
    return Between(path, literals[0], literals[1])


def _check_operator_values(operator: str, values: list[dict[str, Any]]) -> None:
    low, high = _ARGUMENT_COUNTS[operator]
    if not low <= len(values) <= high:
        raise validation(INVALID + f"Invalid number of argument(s) for the {operator} ComparisonOperator")
    if values:
        first = type_of(values[0])
        if any(type_of(v) != first for v in values):
            raise validation(INVALID + "AttributeValues inside AttributeValueList must be of same type")
    for value in values:
        kind = type_of(value)
        if kind not in _ALLOWED_TYPES[operator]:
            raise validation(
                INVALID + f"ComparisonOperator {operator} is not valid for {kind} AttributeValue type"
            )
    if operator == "BETWEEN" and compare_values(values[0], values[1]) == 1:
        raise validation(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
        )


def _check_operator(operator: object) -> str:
    if operator not in _ARGUMENT_COUNTS:
        raise validation(
            f"1 validation error detected: Value '{operator}' at 'comparisonOperator' failed to satisfy "
            "constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, "
            "NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
        )
    assert isinstance(operator, str)
    return operator


def expected_to_condition(
    expected: Mapping[str, Mapping[str, Any]] | None, conditional_operator: str | None = None
) -> Condition | None:
    """Validate ``Expected`` (+ ``ConditionalOperator``) and convert it to a bound condition."""
    if not expected:
        return None
    conditions: list[Condition] = []
    for name, spec in expected.items():
        check_attribute_name(name)
        has_list = spec.get("AttributeValueList") is not None
        has_value = spec.get("Value") is not None
        has_exists = spec.get("Exists") is not None
        operator = spec.get("ComparisonOperator")
        if has_list and has_value:
            raise validation(
                INVALID + f"Value and AttributeValueList cannot be used together for Attribute: {name}"
            )
        if operator is not None:
            operator = _check_operator(operator)
            if has_exists:
                raise validation(
                    INVALID + f"Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )
            if operator not in ("NULL", "NOT_NULL") and not has_list and not has_value:
                raise validation(
                    INVALID + f"Value or AttributeValueList must be used with ComparisonOperator: {operator} "
                    f"for Attribute: {name}"
                )
            raw = spec["AttributeValueList"] if has_list else ([spec["Value"]] if has_value else [])
            values = [validate_attribute_value(v) for v in raw]
            _check_operator_values(operator, values)
            conditions.append(_operator_condition(name, operator, values))
            continue
        if has_list:
            raise validation(
                INVALID
                + f"AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )
        exists = spec.get("Exists")
        if exists is None or exists:
            if not has_value:
                shown = "null" if exists is None else "true"
                raise validation(
                    INVALID + f"Value must be provided when Exists is {shown} for Attribute: {name}"
                )
            value = validate_attribute_value(spec["Value"])
            conditions.append(Comparison("=", Path((name,)), Literal(value)))
        else:
            if has_value:
                raise validation(INVALID + f"Value cannot be used when Exists is false for Attribute: {name}")
            conditions.append(Call("attribute_not_exists", (Path((name,)),)))
    return _combine(conditions, conditional_operator)


def filter_to_condition(
    conditions: Mapping[str, Mapping[str, Any]] | None, conditional_operator: str | None = None
) -> Condition | None:
    """Validate ``QueryFilter`` / ``ScanFilter`` (+ ``ConditionalOperator``) and convert them."""
    if not conditions:
        return None
    converted: list[Condition] = []
    for name, spec in conditions.items():
        operator = _check_operator(spec.get("ComparisonOperator"))
        values = [validate_attribute_value(v) for v in spec.get("AttributeValueList") or []]
        _check_operator_values(operator, values)
        converted.append(_operator_condition(name, operator, values))
    return _combine(converted, conditional_operator)


def key_conditions_to_clauses(key_conditions: Mapping[str, Mapping[str, Any]]) -> list[KeyClause]:
    """Validate legacy ``KeyConditions`` and convert them to clauses for ``check_key_schema``."""
    clauses: list[KeyClause] = []
    for name, spec in key_conditions.items():
        operator = _check_operator(spec.get("ComparisonOperator"))
        values = [validate_attribute_value(v) for v in spec.get("AttributeValueList") or []]
        _check_operator_values(operator, values)
        if operator not in ("EQ", "LE", "LT", "GE", "GT", "BEGINS_WITH", "BETWEEN"):
            raise validation("Attempted conditional constraint is not an indexable operation")
        clauses.append(KeyClause(name, operator, tuple(values)))
    return clauses


def attributes_to_get_paths(names: Sequence[str]) -> tuple[Path, ...]:
    """Validate ``AttributesToGet`` (no duplicates) and convert it to projection paths."""
    seen: set[str] = set()
    for name in names:
        check_attribute_name(name)
        if name in seen:
            raise validation(INVALID + f"Duplicate value in attribute name: {name}")
        seen.add(name)
    return tuple(Path((name,)) for name in names)


def validate_attribute_updates(
    updates: Mapping[str, Mapping[str, Any]], key_names: Sequence[str] = ()
) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Validate ``AttributeUpdates``; return ``{name: (action, normalized value or None)}``."""
    checked: dict[str, tuple[str, dict[str, Any] | None]] = {}
    for name, spec in updates.items():
        check_attribute_name(name)
        action = spec.get("Action") or "PUT"
        raw = spec.get("Value")
        value = validate_attribute_value(raw) if raw is not None else None
        if name in key_names:
            raise validation(INVALID + f"Cannot update attribute {name}. This attribute is part of the key")
        if value is None and action != "DELETE":
            raise validation(INVALID + "Only DELETE action is allowed when no attribute value is specified")
        if value is not None:
            kind = type_of(value)
            if action == "DELETE" and kind not in ("SS", "NS", "BS"):
                raise validation(INVALID + f"DELETE action with value is not supported for the type {kind}")
            if action == "ADD" and kind not in ("N", "SS", "NS", "BS", "L"):
                raise validation(INVALID + f"ADD action is not supported for the type {kind}")
        checked[name] = (action, value)
    return checked


def apply_attribute_updates(
    updates: Mapping[str, tuple[str, dict[str, Any] | None]], item: Mapping[str, Any] | None
) -> UpdateResult:
    """Apply validated ``AttributeUpdates`` to an item (``None`` when it does not exist yet)."""
    new: dict[str, dict[str, Any]] = dict(item or {})
    for name, (action, value) in updates.items():
        current = new.get(name)
        if action == "PUT":
            assert value is not None
            new[name] = value
        elif action == "DELETE":
            if value is None:
                new.pop(name, None)
            elif current is not None:
                kind = type_of(value)
                if type_of(current) != kind:
                    raise validation("Type mismatch for attribute to update")
                doomed = {set_member_key(kind, m) for m in value[kind]}
                kept = [m for m in current[kind] if set_member_key(kind, m) not in doomed]
                if kept:
                    new[name] = {kind: kept}
                else:
                    del new[name]
        else:  # ADD
            assert value is not None
            kind = type_of(value)
            if current is None:
                new[name] = value
            elif type_of(current) != kind:
                raise validation("Type mismatch for attribute to update")
            elif kind == "N":
                from decimal import Decimal

                total = numbers.add(Decimal(current["N"]), Decimal(value["N"]))
                new[name] = {"N": numbers.format_number(total)}
            elif kind == "L":
                new[name] = {"L": [*current["L"], *value["L"]]}
            else:
                present = {set_member_key(kind, m) for m in current[kind]}
                merged = list(current[kind])
                for member in value[kind]:
                    key = set_member_key(kind, member)
                    if key not in present:
                        present.add(key)
                        merged.append(member)
                new[name] = {kind: merged}
    if item_size(new) > MAX_ITEM_SIZE:
        raise validation("Item size to update has exceeded the maximum allowed size")
    return UpdateResult(new, tuple(Path((name,)) for name in updates))
