"""Bound expressions reused from one request to the next, with the new request's values put in.

Parsing is cached by text, but binding (names, values, and the checks on operand types) cost as much again
on every request. Whether binding succeeds, and what it produces apart from the constants, depends on the
expression texts, the ``ExpressionAttributeNames`` and the *types* of the values, with two exceptions that
look at a value's content: ``BETWEEN`` with two constant bounds (the lower may not exceed the upper) and
``attribute_type`` (its constant must name a type). So a successful binding is kept as a template, keyed on
exactly those inputs; a later request with the same key gets the template with its own constants, the
BETWEEN bounds are compared again, and expressions using ``attribute_type`` are never kept.
``rebind`` returns ``None`` when the new constants would fail a check: the caller then binds from scratch,
which raises DynamoDB's exact error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perimeterdb.dynamodb.expressions.ast import (
    And,
    Arith,
    Between,
    Call,
    Comparison,
    In,
    Literal,
    Not,
    Or,
    SetAction,
    UpdateAction,
    UpdateExpression,
)

__all__ = ["RebindRefused", "rebind_condition", "rebind_update", "reusable"]

_STRIPPED: dict[str, Any] = {"NULL": True}


class RebindRefused(Exception):
    """The new constants fail a content check: bind from scratch to get the error."""


def _operand(node: Any, values: Mapping[str, Any] | None) -> Any:
    """The operand with its named constants replaced; the node itself when it holds none (nodes are
    immutable, so the template's constant-free subtrees are shared rather than copied)."""
    if isinstance(node, Literal):
        if node.name is None:
            return node
        return Literal(values[node.name] if values is not None else _STRIPPED, node.name)
    if isinstance(node, Call):
        args = tuple(_operand(a, values) for a in node.args)
        return node if all(a is b for a, b in zip(args, node.args, strict=True)) else Call(node.name, args)
    if isinstance(node, Arith):
        left, right = _operand(node.left, values), _operand(node.right, values)
        return node if left is node.left and right is node.right else Arith(node.op, left, right)
    return node  # Path: no constants


def rebind_condition(node: Any, values: Mapping[str, Any] | None) -> Any:
    """A bound condition with each named constant replaced by ``values[name]`` (``None``: stripped)."""
    if isinstance(node, And | Or):
        left, right = rebind_condition(node.left, values), rebind_condition(node.right, values)
        return node if left is node.left and right is node.right else type(node)(left, right)
    if isinstance(node, Not):
        operand = rebind_condition(node.operand, values)
        return node if operand is node.operand else Not(operand)
    if isinstance(node, Comparison):
        left, right = _operand(node.left, values), _operand(node.right, values)
        return node if left is node.left and right is node.right else Comparison(node.op, left, right)
    if isinstance(node, Between):
        low, high = _operand(node.low, values), _operand(node.high, values)
        if values is not None and isinstance(low, Literal) and isinstance(high, Literal):
            from perimeterdb.dynamodb.values import compare_values

            if compare_values(low.value, high.value) == 1:
                raise RebindRefused
        operand = _operand(node.operand, values)
        if operand is node.operand and low is node.low and high is node.high:
            return node
        return Between(operand, low, high)
    if isinstance(node, In):
        operand = _operand(node.operand, values)
        options = tuple(_operand(o, values) for o in node.options)
        if operand is node.operand and all(a is b for a, b in zip(options, node.options, strict=True)):
            return node
        return In(operand, options)
    return _operand(node, values)  # a function call used as a condition


def rebind_update(update: UpdateExpression, values: Mapping[str, Any] | None) -> UpdateExpression:
    def action(a: UpdateAction) -> UpdateAction:
        if a.value is None:
            return a
        value = _operand(a.value, values)
        return a if value is a.value else UpdateAction(a.kind, a.path, value)

    def set_action(s: SetAction) -> SetAction:
        value = _operand(s.value, values)
        return s if value is s.value else SetAction(s.path, value)

    return UpdateExpression(
        sets=tuple(set_action(s) for s in update.sets),
        removes=update.removes,
        adds=tuple(action(a) for a in update.adds),
        deletes=tuple(action(a) for a in update.deletes),
        order=update.order,
    )


def _calls(node: Any) -> bool:
    """Does the tree use ``attribute_type``?"""
    if isinstance(node, Call):
        return node.name == "attribute_type" or any(_calls(a) for a in node.args)
    if isinstance(node, And | Or):
        return _calls(node.left) or _calls(node.right)
    if isinstance(node, Not):
        return _calls(node.operand)
    if isinstance(node, Comparison | Arith):
        return _calls(node.left) or _calls(node.right)
    if isinstance(node, Between):
        return _calls(node.operand) or _calls(node.low) or _calls(node.high)
    if isinstance(node, In):
        return _calls(node.operand) or any(_calls(o) for o in node.options)
    if isinstance(node, UpdateExpression):
        return any(_calls(s.value) for s in node.sets)
    return False


def reusable(*trees: Any) -> bool:
    """May these bound trees serve as templates (no check in them looks at a constant's content)?"""
    return not any(tree is not None and _calls(tree) for tree in trees)
