"""DynamoDB's expression language: parse (pure, cached), bind (names and values), evaluate and apply.

Typical use by an operation::

    from perimeterdb.dynamodb import expressions as ex

    ex.check_parameter_mix(request)                      # expression vs legacy parameters
    bound = ex.compile_request_expressions(
        condition=request.get("ConditionExpression"),
        update=request.get("UpdateExpression"),
        projection=request.get("ProjectionExpression"),
        filter=request.get("FilterExpression"),
        key_condition=request.get("KeyConditionExpression"),
        names=request.get("ExpressionAttributeNames"),
        values=request.get("ExpressionAttributeValues"),
    )
    if bound.update is not None:
        ex.check_no_key_updates(bound.update, key_names)
    if bound.condition is not None and not ex.evaluate_condition(bound.condition, old_item):
        raise conditional_check_failed(...)
    result = ex.apply_update(bound.update, old_item)     # UpdateResult(item, paths)
    visible = ex.project(bound.projection, item)

Legacy parameters convert to the same bound ASTs (``legacy.expected_to_condition`` and friends), so the
rest of an operation does not care which style the client used.
"""

from perimeterdb.dynamodb.expressions.api import (
    BoundExpressions,
    check_no_key_updates,
    check_parameter_mix,
    compile_request_expressions,
)
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
    SetAction,
    UpdateAction,
    UpdateExpression,
)
from perimeterdb.dynamodb.expressions.evaluate import evaluate_condition, get_path
from perimeterdb.dynamodb.expressions.keycond import KeyClause, KeyRange, check_key_schema, key_conditions
from perimeterdb.dynamodb.expressions.parser import (
    parse_condition,
    parse_key_condition,
    parse_projection,
    parse_update,
)
from perimeterdb.dynamodb.expressions.projection import project
from perimeterdb.dynamodb.expressions.resolve import (
    Bindings,
    resolve_condition,
    resolve_projection,
    resolve_update,
)
from perimeterdb.dynamodb.expressions.update import UpdateResult, apply_update

__all__ = [
    "And",
    "Arith",
    "Between",
    "Bindings",
    "BoundExpressions",
    "Call",
    "Comparison",
    "Condition",
    "In",
    "KeyClause",
    "KeyRange",
    "Literal",
    "Not",
    "Operand",
    "Or",
    "Path",
    "SetAction",
    "UpdateAction",
    "UpdateExpression",
    "UpdateResult",
    "apply_update",
    "check_key_schema",
    "check_no_key_updates",
    "check_parameter_mix",
    "compile_request_expressions",
    "evaluate_condition",
    "get_path",
    "key_conditions",
    "parse_condition",
    "parse_key_condition",
    "parse_projection",
    "parse_update",
    "project",
    "resolve_condition",
    "resolve_projection",
    "resolve_update",
]
