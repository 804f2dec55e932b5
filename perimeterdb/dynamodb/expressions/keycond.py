"""KeyConditionExpression (and legacy KeyConditions): structure rules, schema rules, and the key range.

``key_conditions(bound)`` checks the shape DynamoDB allows (AND of at most one condition per key attribute;
``=`` for any key, ``< <= > >= BETWEEN begins_with`` for the sort key) and returns one ``KeyClause`` per
attribute. ``check_key_schema(clauses, ...)`` then checks them against the table or index key schema and
returns a ``KeyRange`` the storage layer can scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from perimeterdb.errors import validation

__all__ = ["KeyClause", "KeyRange", "check_key_schema", "key_conditions"]

_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_OPERATORS = {"=": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}


@dataclass(frozen=True, slots=True)
class KeyClause:
    """One key attribute's condition: ``operator`` is EQ, LT, LE, GT, GE, BETWEEN or BEGINS_WITH."""

    name: str
    operator: str
    values: tuple[dict[str, Any], ...]
    # The ``:value`` each constant came from (see rebind.py); empty for the legacy KeyConditions.
    value_names: tuple[str | None, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class KeyRange:
    """What a Query reads: one partition, optionally narrowed by a sort-key clause."""

    hash_name: str
    hash_value: dict[str, Any]
    sort: KeyClause | None


def _invalid(message: str) -> Exception:
    return validation(f"Invalid KeyConditionExpression: {message}")


def key_conditions(condition: Condition) -> list[KeyClause]:
    """Check a bound KeyConditionExpression's structure and flatten it into clauses."""
    clauses: list[KeyClause] = []
    _collect(condition, clauses)
    return clauses


def _collect(node: Condition, clauses: list[KeyClause]) -> None:
    if isinstance(node, And):
        _collect(node.left, clauses)
        _collect(node.right, clauses)
        return
    if isinstance(node, Or):
        raise _invalid("Invalid operator used in KeyConditionExpression: OR")
    if isinstance(node, Not):
        raise _invalid("Invalid operator used in KeyConditionExpression: NOT")
    if isinstance(node, In):
        raise _invalid("Invalid operator used in KeyConditionExpression: IN")
    if isinstance(node, Comparison):
        if node.op == "<>":
            raise _invalid("Invalid operator used in KeyConditionExpression: <>")
        operands = (node.left, node.right)
    elif isinstance(node, Between):
        operands = (node.operand, node.low, node.high)
    else:
        assert isinstance(node, Call)
        if node.name in ("attribute_exists", "attribute_not_exists", "attribute_type", "contains"):
            raise _invalid(f"Invalid operator used in KeyConditionExpression: {node.name}")
        operands = node.args
    for operand in operands:
        if isinstance(operand, Call):
            raise _invalid("KeyConditionExpressions cannot contain nested operations")
    if isinstance(node, Between) and not isinstance(node.operand, Path):
        raise _invalid(
            "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand"
        )
    if isinstance(node, Call) and not isinstance(node.args[0], Path):
        raise _invalid(
            "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its "
            "first operand"
        )
    name: str | None = None
    position = 0
    for index, operand in enumerate(operands):
        if isinstance(operand, Path):
            if name is not None:
                raise _invalid(
                    "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
                )
            if len(operand.elements) > 1:
                raise _invalid("KeyConditionExpressions cannot have conditions on nested attributes")
            element = operand.elements[0]
            assert isinstance(element, str)
            name, position = element, index
    if name is None:
        raise _invalid("Invalid condition in KeyConditionExpression: No key attribute specified")
    if any(clause.name == name for clause in clauses):
        raise _invalid("KeyConditionExpressions must only contain one condition per key")
    literals = [o for o in operands if isinstance(o, Literal)]
    values = tuple(o.value for o in literals)
    names = tuple(o.name for o in literals)
    if isinstance(node, Comparison):
        op = node.op if position == 0 else _FLIP[node.op]
        clauses.append(KeyClause(name, _OPERATORS[op], values, names))
    elif isinstance(node, Between):
        clauses.append(KeyClause(name, "BETWEEN", values, names))
    else:
        clauses.append(KeyClause(name, "BEGINS_WITH", values, names))


def check_key_schema(
    clauses: Sequence[KeyClause],
    key_schema: Sequence[Mapping[str, str]],
    attribute_types: Mapping[str, str],
) -> KeyRange:
    """Check clauses against a key schema (table or index) and return the range to read."""
    hash_name = next(e["AttributeName"] for e in key_schema if e["KeyType"] == "HASH")
    range_name = next((e["AttributeName"] for e in key_schema if e["KeyType"] == "RANGE"), None)
    by_name = {clause.name: clause for clause in clauses}
    hash_clause = by_name.get(hash_name)
    if hash_clause is None:
        raise validation(f"Query condition missed key schema element: {hash_name}")
    for clause in clauses:
        if clause.name not in (hash_name, range_name):
            raise validation(
                f"Query condition missed key schema element: {range_name if range_name else hash_name}"
            )
    if hash_clause.operator != "EQ":
        raise validation("Query key condition not supported")
    sort_clause = by_name.get(range_name) if range_name else None
    for clause in (hash_clause, sort_clause):
        if clause is None:
            continue
        expected = attribute_types[clause.name]
        for value in clause.values:
            if expected not in value:
                raise validation(
                    "One or more parameter values were invalid: Condition parameter type does not match schema type"
                )
        if clause.operator == "BEGINS_WITH" and expected == "N":
            raise validation(
                "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N "
                "AttributeValue type"
            )
    return KeyRange(hash_name, hash_clause.values[0], sort_clause)
