"""One entry point for operations: parse, bind and validate every expression parameter of a request.

``compile_request_expressions`` performs DynamoDB's request-level checks in its order: parameter mixing,
names/values given without expressions, empty maps, key syntax of the maps, validity of each value, then
each expression (Update, Condition, KeyCondition, Filter, Projection), then unused names and values across
all of them, then the KeyConditionExpression structure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perimeterdb.dynamodb.expressions.ast import Condition, Path, UpdateExpression
from perimeterdb.dynamodb.expressions.keycond import KeyClause, key_conditions
from perimeterdb.dynamodb.expressions.parser import (
    parse_condition,
    parse_key_condition,
    parse_projection,
    parse_update,
)
from perimeterdb.dynamodb.expressions.rebind import (
    RebindRefused,
    rebind_condition,
    rebind_update,
    reusable,
)
from perimeterdb.dynamodb.expressions.resolve import (
    Bindings,
    resolve_condition,
    resolve_projection,
    resolve_update,
)
from perimeterdb.dynamodb.values import check_attribute_name, validate_attribute_value
from perimeterdb.errors import ApiError, validation

__all__ = [
    "OPERATION_PARAMETERS",
    "BoundExpressions",
    "check_no_key_updates",
    "check_parameter_mix",
    "compile_request_expressions",
]

_NAME_KEY_RE = re.compile(r"#[A-Za-z0-9_]+")
_VALUE_KEY_RE = re.compile(r":[A-Za-z0-9_]+")

# Per operation: its expression parameters and its legacy parameters, in the order DynamoDB lists them in
# "Can not use both expression and non-expression parameters" and "... can only be specified when using
# expressions: X and Y are null".
OPERATION_PARAMETERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PutItem": (("ConditionExpression",), ("Expected",)),
    "DeleteItem": (("ConditionExpression",), ("Expected",)),
    "UpdateItem": (("UpdateExpression", "ConditionExpression"), ("AttributeUpdates", "Expected")),
    "GetItem": (("ProjectionExpression",), ("AttributesToGet",)),
    "BatchGetItem": (("ProjectionExpression",), ("AttributesToGet",)),
    "Query": (
        ("ProjectionExpression", "FilterExpression", "KeyConditionExpression"),
        ("AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"),
    ),
    "Scan": (
        ("ProjectionExpression", "FilterExpression"),
        ("AttributesToGet", "ScanFilter", "ConditionalOperator"),
    ),
    "ConditionCheck": (("ConditionExpression",), ()),
}
_ALL_EXPRESSIONS = (
    "UpdateExpression",
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
)
_ALL_LEGACY = (
    "AttributesToGet",
    "AttributeUpdates",
    "Expected",
    "KeyConditions",
    "QueryFilter",
    "ScanFilter",
    "ConditionalOperator",
)


@dataclass(frozen=True, slots=True)
class BoundExpressions:
    """The bound (placeholder-free) expressions of one request; ``None`` where the parameter was absent."""

    condition: Condition | None = None
    update: UpdateExpression | None = None
    projection: tuple[Path, ...] | None = None
    filter: Condition | None = None
    key_condition: Condition | None = None
    key_clauses: tuple[KeyClause, ...] | None = None


def check_parameter_mix(request: Mapping[str, Any], operation: str | None = None) -> None:
    """Raise when expression and legacy parameters are mixed in one request.

    ``operation`` (``"PutItem"``, ``"Query"``...; see ``OPERATION_PARAMETERS``) fixes which parameters count
    and their order in the message. A Query may combine legacy ``KeyConditions`` with expressions other
    than ``KeyConditionExpression``.
    """
    expression_params, legacy_params = OPERATION_PARAMETERS.get(
        operation or "", (_ALL_EXPRESSIONS, _ALL_LEGACY)
    )
    expressions = [p for p in expression_params if request.get(p) is not None]
    if not expressions:
        return
    legacy = [p for p in legacy_params if request.get(p) is not None]
    if "KeyConditions" in legacy and request.get("KeyConditionExpression") is None:
        legacy.remove("KeyConditions")
    if legacy:
        raise validation(
            "Can not use both expression and non-expression parameters in the same request: "
            f"Non-expression parameters: {{{', '.join(legacy)}}} "
            f"Expression parameters: {{{', '.join(expressions)}}}"
        )


def compile_request_expressions(
    *,
    condition: str | None = None,
    update: str | None = None,
    projection: str | None = None,
    filter: str | None = None,
    key_condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    operation: str | None = None,
) -> BoundExpressions:
    """Parse, bind and validate all expressions of one request; raise DynamoDB's ValidationException.

    ``condition`` is the ConditionExpression, ``filter`` the FilterExpression, and so on; ``names`` and
    ``values`` are ExpressionAttributeNames and ExpressionAttributeValues exactly as received.
    ``operation`` (e.g. ``"UpdateItem"``) completes the message for values sent without expressions
    ("...: UpdateExpression and ConditionExpression are null"). Call ``check_parameter_mix`` first when the
    request may also carry legacy parameters.
    """
    present = {
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "KeyConditionExpression": key_condition,
        "FilterExpression": filter,
        "ProjectionExpression": projection,
    }
    used = [p for p, text in present.items() if text is not None]
    if names is not None and not used:
        raise validation("ExpressionAttributeNames can only be specified when using expressions")
    if values is not None and not [p for p in used if p != "ProjectionExpression"]:
        _values_without_expressions(operation)
    checked_names = _check_names(names)
    checked_values = _check_values(values)
    template_key = (
        update,
        condition,
        key_condition,
        filter,
        projection,
        tuple(checked_names.items()),
        tuple((name, next(iter(value))) for name, value in checked_values.items()),
    )
    template = _TEMPLATES.get(template_key)
    if template is not None:
        try:
            return _with_values(template, checked_values)
        except RebindRefused:
            pass  # a content check fails: bind from scratch below, which raises DynamoDB's error
    bindings = Bindings(names=checked_names, values=checked_values)

    bound_update = resolve_update(parse_update(update), bindings) if update is not None else None
    bound_condition = (
        resolve_condition(parse_condition(condition, "ConditionExpression"), bindings, "ConditionExpression")
        if condition is not None
        else None
    )
    bound_key = (
        resolve_condition(parse_key_condition(key_condition), bindings, "KeyConditionExpression")
        if key_condition is not None
        else None
    )
    bound_filter = (
        resolve_condition(parse_condition(filter, "FilterExpression"), bindings, "FilterExpression")
        if filter is not None
        else None
    )
    bound_projection = (
        resolve_projection(parse_projection(projection), bindings) if projection is not None else None
    )
    bindings.check_unused()
    clauses = tuple(key_conditions(bound_key)) if bound_key is not None else None
    bound = BoundExpressions(
        condition=bound_condition,
        update=bound_update,
        projection=bound_projection,
        filter=bound_filter,
        key_condition=bound_key,
        key_clauses=clauses,
    )
    if reusable(bound_update, bound_condition, bound_key, bound_filter):
        if len(_TEMPLATES) >= _MAX_TEMPLATES:
            _TEMPLATES.clear()
        _TEMPLATES[template_key] = _with_values(bound, None)  # kept without this request's constants
    return bound


# Successful bindings by (texts, names, value types): see rebind.py for why that key is enough.
_TEMPLATES: dict[tuple[Any, ...], BoundExpressions] = {}
_MAX_TEMPLATES = 2048


def _with_values(template: BoundExpressions, values: Mapping[str, Any] | None) -> BoundExpressions:
    """The template with ``values`` as its constants (``None``: constants stripped, for keeping)."""
    key_condition = (
        rebind_condition(template.key_condition, values) if template.key_condition is not None else None
    )
    return BoundExpressions(
        condition=rebind_condition(template.condition, values) if template.condition is not None else None,
        update=rebind_update(template.update, values) if template.update is not None else None,
        projection=template.projection,
        filter=rebind_condition(template.filter, values) if template.filter is not None else None,
        key_condition=key_condition,
        key_clauses=_rebind_clauses(template.key_clauses, key_condition, values),
    )


def _rebind_clauses(
    clauses: tuple[KeyClause, ...] | None, key_condition: Condition | None, values: Mapping[str, Any] | None
) -> tuple[KeyClause, ...] | None:
    if clauses is None or key_condition is None:
        return None
    if values is None or any(None in c.value_names for c in clauses):
        return tuple(key_conditions(key_condition))
    return tuple(
        KeyClause(c.name, c.operator, tuple(values[n] for n in c.value_names), c.value_names)  # type: ignore[index]
        for c in clauses
    )


def _values_without_expressions(operation: str | None) -> None:
    message = "ExpressionAttributeValues can only be specified when using expressions"
    if operation is None or operation not in OPERATION_PARAMETERS:
        raise validation(message)
    capable = [p for p in OPERATION_PARAMETERS[operation][0] if p != "ProjectionExpression"]
    if capable:
        verb = "are" if len(capable) > 1 else "is"
        raise validation(f"{message}: {' and '.join(capable)} {verb} null")
    # Operations whose only expression is a projection report the values as unused instead.


def _check_names(names: Mapping[str, str] | None) -> Mapping[str, str]:
    if names is None:
        return {}
    if not names:
        raise validation("ExpressionAttributeNames must not be empty")
    for key in names:
        if not isinstance(key, str) or _NAME_KEY_RE.fullmatch(key) is None:
            raise validation(f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"')
    for key, value in names.items():
        if isinstance(value, str):
            check_attribute_name(value)
        if value == "":
            raise validation(
                f"ExpressionAttributeNames contains invalid value: Empty attribute name for key {key}"
            )
    return names


def _check_values(values: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    if values is None:
        return {}
    if not values:
        raise validation("ExpressionAttributeValues must not be empty")
    for key in values:
        if not isinstance(key, str) or _VALUE_KEY_RE.fullmatch(key) is None:
            raise validation(f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"')
    checked: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        try:
            checked[key] = validate_attribute_value(value)
        except ApiError as error:
            if error.code != "ValidationException":
                raise
            raise validation(
                f"ExpressionAttributeValues contains invalid value: {error.message} for key {key}"
            ) from None
    return checked


def check_no_key_updates(update: UpdateExpression, key_names: Sequence[str]) -> None:
    """Raise when a bound UpdateExpression modifies a key attribute (top level or nested)."""
    for path in update.paths():
        if path.elements[0] in key_names:
            raise validation(
                f"One or more parameter values were invalid: Cannot update attribute {path.elements[0]}. "
                "This attribute is part of the key"
            )
