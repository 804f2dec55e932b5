"""Binding: replace ``#name`` and ``:value`` placeholders, record which were used, and run the checks that
need the bound names and values (operand counts, distinct operands, operand types, path overlaps).

``Bindings`` is shared by every expression of one request, so unused names and values are reported across
all of them at once (``Bindings.check_unused``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from perimeterdb.dynamodb.expressions.ast import (
    And,
    Arith,
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
    Placeholder,
    SetAction,
    UpdateAction,
    UpdateExpression,
    ValueRef,
    path_text,
)
from perimeterdb.dynamodb.expressions.parser import CONDITION_FUNCTIONS, UPDATE_FUNCTIONS
from perimeterdb.errors import ApiError, validation

__all__ = [
    "MAX_IN_OPERANDS",
    "Bindings",
    "check_paths_disjoint",
    "resolve_condition",
    "resolve_projection",
    "resolve_update",
]

MAX_IN_OPERANDS = 100
ATTRIBUTE_TYPES = ("S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M")
_TYPE_WORDS = {
    "S": "STRING",
    "N": "NUMBER",
    "B": "BINARY",
    "NULL": "NULL",
    "BOOL": "BOOLEAN",
    "L": "LIST",
    "M": "MAP",
}


@dataclass
class Bindings:
    """The request's ExpressionAttributeNames and (validated) ExpressionAttributeValues, and their use."""

    names: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    used_names: set[str] = field(default_factory=set)
    used_values: set[str] = field(default_factory=set)

    def check_unused(self) -> None:
        unused_names = [n for n in self.names if n not in self.used_names]
        if unused_names:
            raise validation(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {"
                + ", ".join(unused_names)
                + "}"
            )
        unused_values = [v for v in self.values if v not in self.used_values]
        if unused_values:
            raise validation(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {"
                + ", ".join(unused_values)
                + "}"
            )


class _Errors:
    """First message of each category; ``first`` picks by DynamoDB's priority."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def add(self, category: str, message: str) -> None:
        self.found.setdefault(category, message)

    def first(self, order: tuple[str, ...]) -> str | None:
        for category in order:
            if category in self.found:
                return self.found[category]
        return None


class _Resolver:
    def __init__(self, bindings: Bindings, errors: _Errors) -> None:
        self.bindings = bindings
        self.errors = errors

    def path(self, path: Path) -> Path:
        if all(not isinstance(e, Placeholder) for e in path.elements):
            return path
        out: list[str | int] = []
        for element in path.elements:
            if isinstance(element, Placeholder):
                real = self.bindings.names.get(element.name)
                if real is None:
                    self.errors.add(
                        "name",
                        "An expression attribute name used in the document path is not defined; attribute name: "
                        + element.name,
                    )
                    out.append(element.name)
                    continue
                self.bindings.used_names.add(element.name)
                out.append(real)
            else:
                out.append(element)
        return Path(tuple(out))

    def value(self, ref: ValueRef) -> Literal:
        found = self.bindings.values.get(ref.name)
        if found is None:
            self.errors.add(
                "value",
                "An expression attribute value used in expression is not defined; attribute value: "
                + ref.name,
            )
            return Literal({"NULL": True})
        self.bindings.used_values.add(ref.name)
        return Literal(found, ref.name)

    def operand(self, operand: Operand) -> Operand:
        if isinstance(operand, Path):
            return self.path(operand)
        if isinstance(operand, ValueRef):
            return self.value(operand)
        if isinstance(operand, Call):
            return Call(operand.name, tuple(self.operand(a) for a in operand.args))
        return operand


def _literal_type(operand: Operand) -> str | None:
    if isinstance(operand, Literal):
        return next(iter(operand.value))
    return None


def _operand_type(operand: Operand) -> str | None:
    """The statically known type of an operand: a literal's type, or N for size()."""
    if isinstance(operand, Call) and operand.name == "size":
        return "N"
    return _literal_type(operand)


def _literal_text(value: dict[str, Any]) -> str:
    kind, raw = next(iter(value.items()))
    return f"{{{kind}:{raw}}}"


# --- conditions -------------------------------------------------------------------------------------------


def resolve_condition(node: Condition, bindings: Bindings, parameter: str) -> Condition:
    """Bind a parsed condition; raise DynamoDB's first semantic error, prefixed ``Invalid <parameter>: ``."""
    resolved, message = _condition(node, bindings)
    if message is not None:
        raise validation(f"Invalid {parameter}: {message}")
    return resolved


def _condition(node: Condition, bindings: Bindings) -> tuple[Condition, str | None]:
    if isinstance(node, And | Or):
        left, message = _condition(node.left, bindings)
        right, right_message = _condition(node.right, bindings)
        return type(node)(left, right), message or right_message
    if isinstance(node, Not):
        operand, message = _condition(node.operand, bindings)
        return Not(operand), message
    # A leaf: its errors are ranked by category; the first erroneous leaf wins.
    errors = _Errors()
    resolver = _Resolver(bindings, errors)
    leaf: Condition
    if isinstance(node, Comparison):
        left, right = resolver.operand(node.left), resolver.operand(node.right)
        _check_call_args(left, errors)
        _check_call_args(right, errors)
        _check_distinct(node.op, left, right, errors)
        if node.op not in ("=", "<>"):
            _check_orderable(node.op, (left, right), errors)
        leaf = Comparison(node.op, left, right)
    elif isinstance(node, Between):
        operand, low, high = (resolver.operand(o) for o in (node.operand, node.low, node.high))
        for o in (operand, low, high):
            _check_call_args(o, errors)
        if not _check_orderable("BETWEEN", (operand, low, high), errors):
            _check_between(low, high, errors)
        leaf = Between(operand, low, high)
    elif isinstance(node, In):
        operand = resolver.operand(node.operand)
        options = tuple(resolver.operand(o) for o in node.options)
        for o in (operand, *options):
            _check_call_args(o, errors)
        if len(options) > MAX_IN_OPERANDS:
            errors.add(
                "function",
                f"The IN operator is provided with too many operands; number of operands: {len(options)}",
            )
        leaf = In(operand, options)
    else:
        call = resolver.operand(node)
        assert isinstance(call, Call)
        _check_call_args(call, errors)
        leaf = call
    return leaf, errors.first(("name", "value", "count", "distinct", "function"))


def _check_distinct(operator: str, left: Operand, right: Operand, errors: _Errors) -> None:
    if isinstance(left, Path) and isinstance(right, Path) and left.elements == right.elements:
        errors.add(
            "distinct",
            "The first operand must be distinct from the remaining operands for this operator or function; "
            f"operator: {operator}, first operand: {path_text(left.elements)}",
        )


def _check_orderable(operator: str, operands: tuple[Operand, ...], errors: _Errors) -> bool:
    """Ordering operators take numbers, strings and binaries only: a constant of any other type (list, map,
    set, boolean, null) is an error, as measured on DynamoDB by Alternator's suite ("a type not supported by
    the comparison"). An attribute of another type only makes the condition false, at evaluation time.
    """
    for operand in operands:
        kind = _literal_type(operand)
        if kind in ("L", "M", "SS", "NS", "BS", "BOOL", "NULL"):
            errors.add(
                "function",
                "Incorrect operand type for operator or function; "
                f"operator or function: {operator}, operand type: {kind}",
            )
            return True
    return False


def _check_between(low: Operand, high: Operand, errors: _Errors) -> None:
    if not (isinstance(low, Literal) and isinstance(high, Literal)):
        return
    from perimeterdb.dynamodb.values import compare_values

    low_type, high_type = _literal_type(low), _literal_type(high)
    bounds = (
        f"lower bound operand: AttributeValue: {_literal_text(low.value)}, "
        f"upper bound operand: AttributeValue: {_literal_text(high.value)}"
    )
    if low_type != high_type:
        errors.add(
            "function", "The BETWEEN operator requires same data type for lower and upper bounds; " + bounds
        )
    elif compare_values(low.value, high.value) == 1:
        errors.add(
            "function",
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; " + bounds,
        )


def _check_call_args(operand: Operand, errors: _Errors) -> None:
    """Operand counts and types of condition functions (recursively, for size() inside another call)."""
    if not isinstance(operand, Call):
        return
    for arg in operand.args:
        _check_call_args(arg, errors)
    name, args = operand.name, operand.args
    expected = CONDITION_FUNCTIONS.get(name)
    if expected is None:
        return
    if len(args) != expected:
        errors.add(
            "count",
            "Incorrect number of operands for operator or function; "
            f"operator or function: {name}, number of operands: {len(args)}",
        )
        return
    if len(args) == 2:
        _check_distinct(name, args[0], args[1], errors)
    if name in ("attribute_exists", "attribute_not_exists") and not isinstance(args[0], Path):
        errors.add("function", f"Operator or function requires a document path; operator or function: {name}")
    elif name == "begins_with":
        for arg in args:
            kind = _operand_type(arg)
            if kind is not None and kind not in ("S", "B"):
                errors.add(
                    "function",
                    "Incorrect operand type for operator or function; "
                    f"operator or function: {name}, operand type: {kind}",
                )
                break
    elif name == "attribute_type":
        kind = _operand_type(args[1])
        if kind != "S":
            errors.add(
                "function",
                "Incorrect operand type for operator or function; operator or function: attribute_type, "
                f"operand type: {kind or '{NS,SS,L,BS,N,M,B,BOOL,NULL,S}'}",
            )
        else:
            assert isinstance(args[1], Literal)
            type_name = args[1].value["S"]
            if type_name not in ATTRIBUTE_TYPES:
                errors.add(
                    "function",
                    f"Invalid attribute type name found; type: {type_name}, "
                    "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
                )
    elif name == "size":
        kind = _operand_type(args[0])
        if kind in ("N", "BOOL", "NULL"):
            errors.add(
                "function",
                f"Incorrect operand type for operator or function; operator or function: size, operand type: {kind}",
            )


# --- updates ----------------------------------------------------------------------------------------------


def resolve_update(node: UpdateExpression, bindings: Bindings) -> UpdateExpression:
    """Bind a parsed UpdateExpression and raise DynamoDB's first semantic error."""
    errors = _Errors()
    resolver = _Resolver(bindings, errors)
    resolved_paths: dict[int, Path] = {}

    def bind_path(path: Path) -> Path:
        found = resolved_paths.get(id(path))
        if found is None:
            found = resolver.path(path)
            resolved_paths[id(path)] = found
        return found

    # Bind in text order so "first undefined" follows the text.
    order = tuple(bind_path(p) for p in node.order)
    sets = []
    for action in node.sets:
        value = action.value
        if isinstance(value, Arith):
            left, right = resolver.operand(value.left), resolver.operand(value.right)
            _check_update_call(left, errors)
            _check_update_call(right, errors)
            for operand in (left, right):
                kind = _update_operand_type(operand)
                if kind is not None and kind != "N":
                    errors.add(
                        "function",
                        "Incorrect operand type for operator or function; "
                        f"operator or function: {value.op}, operand type: {kind}",
                    )
                    break
            bound_value: Operand | Arith = Arith(value.op, left, right)
        else:
            bound_value = resolver.operand(value)
            _check_update_call(bound_value, errors)
        sets.append(SetAction(bind_path(action.path), bound_value))
    removes = tuple(UpdateAction("REMOVE", bind_path(a.path)) for a in node.removes)
    adds = tuple(_bind_add_delete(a, bind_path, resolver, errors) for a in node.adds)
    deletes = tuple(_bind_add_delete(a, bind_path, resolver, errors) for a in node.deletes)
    overlap = check_paths_disjoint(order)
    if overlap is not None:
        errors.add(overlap[0], overlap[1])
    message = errors.first(("name", "value", "overlap", "conflict", "operand", "function"))
    if message is not None:
        raise validation(f"Invalid UpdateExpression: {message}")
    return UpdateExpression(tuple(sets), removes, adds, deletes, order)


def _bind_add_delete(
    action: UpdateAction, bind_path: Any, resolver: _Resolver, errors: _Errors
) -> UpdateAction:
    assert isinstance(action.value, ValueRef)
    path = bind_path(action.path)
    literal = resolver.value(action.value)
    if action.value.name in resolver.bindings.values:
        kind = next(iter(literal.value))
        if kind in _TYPE_WORDS and not (action.kind == "ADD" and kind == "N"):
            errors.add(
                "operand",
                "Incorrect operand type for operator or function; "
                f"operator: {action.kind}, operand type: {_TYPE_WORDS[kind]}",
            )
    return UpdateAction(action.kind, path, literal)


def _update_operand_type(operand: Operand) -> str | None:
    if isinstance(operand, Literal):
        return next(iter(operand.value))
    return None


def _check_update_call(operand: Operand, errors: _Errors) -> None:
    if not isinstance(operand, Call):
        return
    for arg in operand.args:
        _check_update_call(arg, errors)
    name, args = operand.name, operand.args
    expected = UPDATE_FUNCTIONS.get(name)
    if expected is None:
        return
    if len(args) != expected:
        errors.add(
            "function",
            "Incorrect number of operands for operator or function; "
            f"operator or function: {name}, number of operands: {len(args)}",
        )
        return
    if name == "if_not_exists":
        if not isinstance(args[0], Path):
            errors.add(
                "function", f"Operator or function requires a document path; operator or function: {name}"
            )
    elif name == "list_append":
        for arg in args:
            kind = _update_operand_type(arg)
            if kind is not None and kind != "L":
                errors.add(
                    "function",
                    "Incorrect operand type for operator or function; "
                    f"operator or function: {name}, operand type: {kind}",
                )
                break


def check_paths_disjoint(paths: tuple[Path, ...]) -> tuple[str, str] | None:
    """DynamoDB's overlap and conflict rules for the paths one expression modifies or projects.

    Returns ``("overlap"|"conflict", message)`` for the first problem (overlap wins over conflict), else None.
    """
    conflict: str | None = None
    seen: list[Path] = []
    for path in paths:
        for earlier in seen:
            kind = _relation(earlier.elements, path.elements)
            if kind is None:
                continue
            message_start = "overlap" if kind == "overlap" else "conflict"
            message = (
                f"Two document paths {message_start} with each other; must remove or rewrite one of these paths; "
                f"path one: {path_text(earlier.elements)}, path two: {path_text(path.elements)}"
            )
            if kind == "overlap":
                return ("overlap", message)
            if conflict is None:
                conflict = message
        seen.append(path)
    return ("conflict", conflict) if conflict is not None else None


def _relation(one: tuple[Any, ...], two: tuple[Any, ...]) -> str | None:
    for a, b in zip(one, two, strict=False):
        if isinstance(a, int) != isinstance(b, int):
            return "conflict"
        if a != b:
            return None
    return "overlap"


# --- projections ------------------------------------------------------------------------------------------


def resolve_projection(paths: tuple[Path, ...], bindings: Bindings) -> tuple[Path, ...]:
    errors = _Errors()
    resolver = _Resolver(bindings, errors)
    resolved = tuple(resolver.path(p) for p in paths)
    overlap = check_paths_disjoint(resolved)
    if overlap is not None:
        errors.add(overlap[0], overlap[1])
    message = errors.first(("name", "overlap", "conflict"))
    if message is not None:
        raise validation(f"Invalid ProjectionExpression: {message}")
    return resolved


def raise_invalid(parameter: str, message: str) -> ApiError:
    return validation(f"Invalid {parameter}: {message}")
