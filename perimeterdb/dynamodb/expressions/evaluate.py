"""Evaluate bound conditions against an item, and read document paths.

A condition that refers to a missing attribute is simply false (``<>`` is true), never an error: DynamoDB
reports type problems it can see in the text at validation time, and otherwise answers false.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
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
    Operand,
    Or,
    Path,
)
from perimeterdb.dynamodb.values import b64decode, compare_values, set_member_key, values_equal

__all__ = ["evaluate_condition", "evaluate_operand", "get_path"]

Item = Mapping[str, Mapping[str, Any]]


def get_path(item: Item, elements: tuple[Any, ...]) -> dict[str, Any] | None:
    """The value at a document path, or None when any step is missing or of the wrong type."""
    current: Any = item.get(elements[0])
    for element in elements[1:]:
        if current is None:
            return None
        if isinstance(element, int):
            inner = current.get("L")
            if inner is None or element >= len(inner):
                return None
            current = inner[element]
        else:
            inner = current.get("M")
            if inner is None:
                return None
            current = inner.get(element)
    return current


def evaluate_operand(operand: Operand, item: Item) -> dict[str, Any] | None:
    if isinstance(operand, Literal):
        return operand.value
    if isinstance(operand, Path):
        return get_path(item, operand.elements)
    if isinstance(operand, Call) and operand.name == "size":
        return _size(evaluate_operand(operand.args[0], item))  # type: ignore[arg-type]
    raise TypeError(f"cannot evaluate {operand!r} as an operand")


def _size(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    kind, raw = next(iter(value.items()))
    if kind == "S":
        return {"N": str(len(raw))}
    if kind == "B":
        return {"N": str(len(b64decode(raw)))}
    if kind in ("SS", "NS", "BS", "L", "M"):
        return {"N": str(len(raw))}
    return None


def evaluate_condition(condition: Condition, item: Item | None) -> bool:
    """Whether a bound condition holds for ``item`` (``None`` or ``{}`` for a missing item)."""
    return _evaluate(condition, item or {})


def _evaluate(node: Condition, item: Item) -> bool:
    if isinstance(node, Comparison):
        left = evaluate_operand(node.left, item)
        right = evaluate_operand(node.right, item)
        op = node.op
        if op == "=":
            return values_equal(left, right)
        if op == "<>":
            return not values_equal(left, right)
        if left is None or right is None:
            return False
        order = compare_values(left, right)
        if order is None:
            return False
        if op == "<":
            return order < 0
        if op == "<=":
            return order <= 0
        if op == ">":
            return order > 0
        return order >= 0
    if isinstance(node, And):
        return _evaluate(node.left, item) and _evaluate(node.right, item)
    if isinstance(node, Or):
        return _evaluate(node.left, item) or _evaluate(node.right, item)
    if isinstance(node, Not):
        return not _evaluate(node.operand, item)
    if isinstance(node, Between):
        value = evaluate_operand(node.operand, item)
        low = evaluate_operand(node.low, item)
        high = evaluate_operand(node.high, item)
        if value is None or low is None or high is None:
            return False
        above = compare_values(value, low)
        below = compare_values(value, high)
        return above is not None and below is not None and above >= 0 and below <= 0
    if isinstance(node, In):
        value = evaluate_operand(node.operand, item)
        if value is None:
            return False
        return any(values_equal(value, evaluate_operand(option, item)) for option in node.options)
    if isinstance(node, Call):
        return _call(node, item)
    raise TypeError(f"not a condition: {node!r}")


def _call(node: Call, item: Item) -> bool:
    name = node.name
    if name == "attribute_exists":
        return evaluate_operand(node.args[0], item) is not None
    if name == "attribute_not_exists":
        return evaluate_operand(node.args[0], item) is None
    value = evaluate_operand(node.args[0], item)
    argument = evaluate_operand(node.args[1], item)
    if value is None or argument is None:
        return False
    if name == "attribute_type":
        return argument.get("S") == next(iter(value))
    kind, raw = next(iter(value.items()))
    arg_kind, arg_raw = next(iter(argument.items()))
    if name == "begins_with":
        if kind != arg_kind:
            return False
        if kind == "S":
            return bool(raw.startswith(arg_raw))
        if kind == "B":
            return b64decode(raw).startswith(b64decode(arg_raw))
        return False
    if name == "contains":
        if kind == "S":
            return arg_kind == "S" and arg_raw in raw
        if kind == "B":
            return arg_kind == "B" and b64decode(arg_raw) in b64decode(raw)
        if kind in ("SS", "NS", "BS"):
            if arg_kind != kind[0]:
                return False
            wanted = set_member_key(kind, arg_raw)
            return any(set_member_key(kind, member) == wanted for member in raw)
        if kind == "L":
            return any(values_equal(element, argument) for element in raw)
        return False
    raise TypeError(f"unknown function {name}")


def number_of(value: Mapping[str, Any]) -> Decimal:
    return Decimal(value["N"])
