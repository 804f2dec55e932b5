"""The request-level API: parameter mixing, names/values bookkeeping across expressions, key rules, caching."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb.expressions import parser
from perimeterdb.errors import ApiError


def _message(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ApiError) as raised:
        fn(*args, **kwargs)
    assert raised.value.code == "ValidationException"
    return raised.value.message


def test_mixing_expression_and_legacy_parameters() -> None:
    request = {"Expected": {"pk": {"Exists": False}}, "ConditionExpression": "attribute_not_exists(pk)"}
    assert _message(ex.check_parameter_mix, request, "PutItem") == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"
    )
    request = {
        "UpdateExpression": "SET a = :v",
        "AttributeUpdates": {"a": {"Action": "PUT", "Value": {"S": "v"}}},
    }
    assert _message(ex.check_parameter_mix, request, "UpdateItem") == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributeUpdates} Expression parameters: {UpdateExpression}"
    )


def test_query_may_combine_key_conditions_with_a_filter_expression() -> None:
    ex.check_parameter_mix({"KeyConditions": {}, "FilterExpression": "a = :v"}, "Query")
    request = {"KeyConditions": {}, "KeyConditionExpression": "pk = :v", "QueryFilter": {}}
    assert _message(ex.check_parameter_mix, request, "Query") == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {QueryFilter, KeyConditions} Expression parameters: {KeyConditionExpression}"
    )


def test_no_expressions_means_no_mix_problem() -> None:
    ex.check_parameter_mix({"Expected": {"a": {"Exists": False}}}, "PutItem")


def test_names_and_values_without_expressions() -> None:
    assert (
        _message(ex.compile_request_expressions, names={"#a": "a"}, operation="UpdateItem")
        == "ExpressionAttributeNames can only be specified when using expressions"
    )
    assert _message(ex.compile_request_expressions, values={":v": {"S": "x"}}, operation="PutItem") == (
        "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null"
    )
    assert _message(ex.compile_request_expressions, values={":v": {"S": "x"}}, operation="UpdateItem") == (
        "ExpressionAttributeValues can only be specified when using expressions: "
        "UpdateExpression and ConditionExpression are null"
    )
    # A projection cannot use values, so they are only "unused" there.
    assert (
        _message(
            ex.compile_request_expressions, projection="a", values={":v": {"S": "x"}}, operation="GetItem"
        )
        == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}"
    )


def test_unused_is_checked_across_all_expressions() -> None:
    bound = ex.compile_request_expressions(
        condition="attribute_exists(#a)",
        update="SET #b = :v",
        names={"#a": "a", "#b": "b"},
        values={":v": {"N": "1"}},
    )
    assert bound.condition is not None and bound.update is not None
    # #p is used only by the projection; :w by nothing.
    assert (
        _message(
            ex.compile_request_expressions,
            filter="a = :v",
            projection="#p",
            names={"#p": "p"},
            values={":v": {"N": "1"}, ":w": {"N": "2"}, ":x": {"N": "3"}},
        )
        == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w, :x}"
    )


def test_names_are_reported_unused_before_values() -> None:
    assert (
        _message(
            ex.compile_request_expressions,
            update="SET #a = :val1",
            names={"#a": "hello", "#b": "hi"},
            values={":val1": {"N": "3"}, ":val2": {"N": "4"}},
        )
        == "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
    )


def test_invalid_value_is_reported_with_its_key() -> None:
    assert _message(
        ex.compile_request_expressions, update="SET a = :v", values={":v": {"NS": ["1", "01"]}}
    ) == ("ExpressionAttributeValues contains invalid value: Input collection contains duplicates for key :v")


def test_values_are_normalized_when_bound() -> None:
    bound = ex.compile_request_expressions(update="SET a = :v", values={":v": {"N": "001.50"}})
    assert bound.update is not None
    assert ex.apply_update(bound.update, {}).item == {"a": {"N": "1.5"}}


def test_key_attributes_cannot_be_updated() -> None:
    bound = ex.compile_request_expressions(update="SET a = :v REMOVE c", values={":v": {"N": "1"}})
    assert bound.update is not None
    ex.check_no_key_updates(bound.update, ["pk"])
    assert (
        _message(ex.check_no_key_updates, bound.update, ["pk", "c"])
        == "One or more parameter values were invalid: Cannot update attribute c. This attribute is part of the key"
    )


def test_parse_is_cached_and_pure() -> None:
    first = ex.parse_condition("a = :v AND b < :w")
    assert ex.parse_condition("a = :v AND b < :w") is first
    # Binding twice with different values gives different bound trees; the parsed tree is untouched.
    one = ex.resolve_condition(
        first, ex.Bindings(values={":v": {"N": "1"}, ":w": {"N": "2"}}), "ConditionExpression"
    )
    two = ex.resolve_condition(
        first, ex.Bindings(values={":v": {"S": "x"}, ":w": {"S": "y"}}), "ConditionExpression"
    )
    assert one != two
    assert ex.parse_condition("a = :v AND b < :w") == first
    assert parser.parse_condition.cache_info().hits >= 2


def test_filter_and_condition_errors_name_their_parameter() -> None:
    assert _message(ex.compile_request_expressions, filter="a =") == (
        'Invalid FilterExpression: Syntax error; token: "<EOF>", near: "="'
    )
    assert _message(ex.compile_request_expressions, condition="a =") == (
        'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "="'
    )


def test_update_does_not_modify_its_input() -> None:
    item = {"a": {"M": {"b": {"L": [{"N": "1"}, {"N": "2"}]}}}, "s": {"SS": ["x"]}}
    original = copy.deepcopy(item)
    bound = ex.compile_request_expressions(
        update="SET a.b[0] = :v, a.c = :v REMOVE a.b[1] ADD s :s",
        values={":v": {"N": "9"}, ":s": {"SS": ["y"]}},
    )
    assert bound.update is not None
    result = ex.apply_update(bound.update, item)
    assert item == original
    assert result.item == {"a": {"M": {"b": {"L": [{"N": "9"}]}, "c": {"N": "9"}}}, "s": {"SS": ["x", "y"]}}


def test_updated_paths_give_updated_old_and_new() -> None:
    bound = ex.compile_request_expressions(
        update="SET m.x = :v, n = :v REMOVE gone", values={":v": {"N": "2"}}
    )
    assert bound.update is not None
    old = {"m": {"M": {"x": {"N": "1"}, "y": {"N": "1"}}}, "gone": {"S": "g"}, "keep": {"S": "k"}}
    result = ex.apply_update(bound.update, old)
    assert ex.project(result.paths, old) == {"m": {"M": {"x": {"N": "1"}}}, "gone": {"S": "g"}}
    assert ex.project(result.paths, result.item) == {"m": {"M": {"x": {"N": "2"}}}, "n": {"N": "2"}}


def test_update_size_limit() -> None:
    bound = ex.compile_request_expressions(update="SET p = :v", values={":v": {"S": "x" * (400 * 1024)}})
    assert bound.update is not None
    assert (
        _message(ex.apply_update, bound.update, {"pk": {"S": "k"}})
        == "Item size to update has exceeded the maximum allowed size"
    )


# --- key conditions against a schema ----------------------------------------------------------------------

SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
TYPES = {"pk": "S", "sk": "N"}


def _clauses(text: str, values: dict[str, Any]) -> tuple[ex.KeyClause, ...]:
    bound = ex.compile_request_expressions(key_condition=text, values=values)
    assert bound.key_clauses is not None
    return bound.key_clauses


def test_key_range() -> None:
    clauses = _clauses(
        "pk = :p AND sk BETWEEN :a AND :b", {":p": {"S": "x"}, ":a": {"N": "1"}, ":b": {"N": "5"}}
    )
    key_range = ex.check_key_schema(clauses, SCHEMA, TYPES)
    assert key_range.hash_value == {"S": "x"}
    assert key_range.sort == ex.KeyClause("sk", "BETWEEN", ({"N": "1"}, {"N": "5"}))


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("sk = :v", {":v": {"N": "1"}}, "Query condition missed key schema element: pk"),
        ("attr1 = :v", {":v": {"S": "val"}}, "Query condition missed key schema element: pk"),
        ("pk = :v AND attr2 = :v", {":v": {"S": "x"}}, "Query condition missed key schema element: sk"),
        ("pk < :v", {":v": {"S": "x"}}, "Query key condition not supported"),
        (
            "pk = :v AND sk = :s",
            {":v": {"S": "x"}, ":s": {"S": "1"}},
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
    ],
)
def test_key_schema_errors(text: str, values: dict[str, Any], message: str) -> None:
    clauses = _clauses(text, values)
    assert _message(ex.check_key_schema, clauses, SCHEMA, TYPES) == message


# --- legacy parameters ------------------------------------------------------------------------------------

from perimeterdb.dynamodb.expressions import legacy  # noqa: E402


def test_expected_conversion() -> None:
    condition = legacy.expected_to_condition(
        {
            "a": {"Exists": False},
            "b": {"Value": {"N": "1"}},
            "c": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]},
        },
        "AND",
    )
    assert condition is not None
    assert ex.evaluate_condition(condition, {"b": {"N": "1.0"}, "c": {"N": "6"}})
    assert not ex.evaluate_condition(condition, {"a": {"S": "x"}, "b": {"N": "1"}, "c": {"N": "6"}})
    either = legacy.expected_to_condition({"a": {"Exists": False}, "b": {"Value": {"N": "1"}}}, "OR")
    assert either is not None
    assert ex.evaluate_condition(either, {"a": {"S": "x"}, "b": {"N": "1"}})


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (
            {"a": {"Exists": True}},
            "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a",
        ),
        (
            {"a": {}},
            "One or more parameter values were invalid: Value must be provided when Exists is null for Attribute: a",
        ),
        (
            {"a": {"Exists": False, "Value": {"S": "x"}}},
            "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a",
        ),
        (
            {"a": {"ComparisonOperator": "EQ", "Exists": True, "Value": {"S": "x"}}},
            "One or more parameter values were invalid: Exists and ComparisonOperator cannot be used together for "
            "Attribute: a",
        ),
        (
            {"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}]}},
            "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN ComparisonOperator",
        ),
        (
            {"a": {"ComparisonOperator": "LT", "AttributeValueList": [{"SS": ["x"]}]}},
            "One or more parameter values were invalid: ComparisonOperator LT is not valid for SS AttributeValue type",
        ),
        (
            {"a": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "1"}, {"S": "x"}]}},
            "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type",
        ),
        (
            {"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "5"}, {"N": "1"}]}},
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ),
        (
            {"a": {"AttributeValueList": [{"N": "5"}]}},
            "One or more parameter values were invalid: AttributeValueList can only be used with a "
            "ComparisonOperator for Attribute: a",
        ),
    ],
)
def test_expected_errors(expected: dict[str, Any], message: str) -> None:
    assert _message(legacy.expected_to_condition, expected) == message


def test_legacy_filter_operators() -> None:
    item = {"s": {"S": "hello"}, "ss": {"SS": ["a", "b"]}, "n": {"N": "5"}}
    cases = [
        ({"s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "he"}]}}, True),
        ({"ss": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "b"}]}}, True),
        ({"ss": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "b"}]}}, False),
        ({"missing": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "b"}]}}, True),
        ({"missing": {"ComparisonOperator": "NULL"}}, True),
        ({"n": {"ComparisonOperator": "NOT_NULL"}}, True),
        ({"n": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "4"}, {"N": "5.0"}]}}, True),
        ({"n": {"ComparisonOperator": "NE", "AttributeValueList": [{"N": "5"}]}}, False),
        ({"missing": {"ComparisonOperator": "NE", "AttributeValueList": [{"N": "5"}]}}, True),
    ]
    for spec, expected in cases:
        condition = legacy.filter_to_condition(spec)
        assert condition is not None
        assert ex.evaluate_condition(condition, item) is expected, spec


def test_attribute_updates() -> None:
    updates = legacy.validate_attribute_updates(
        {
            "name": {"Action": "PUT", "Value": {"S": "new"}},
            "count": {"Action": "ADD", "Value": {"N": "9"}},
            "extra": {"Action": "DELETE"},
            "tags": {"Action": "DELETE", "Value": {"SS": ["b"]}},
            "list": {"Action": "ADD", "Value": {"L": [{"N": "2"}]}},
            "col": {"Value": {"S": "written"}},
        }
    )
    old = {
        "name": {"S": "old"},
        "count": {"N": "1"},
        "extra": {"S": "x"},
        "tags": {"SS": ["a", "b"]},
        "list": {"L": [{"N": "1"}]},
    }
    result = legacy.apply_attribute_updates(updates, old)
    assert result.item == {
        "name": {"S": "new"},
        "count": {"N": "10"},
        "tags": {"SS": ["a"]},
        "list": {"L": [{"N": "1"}, {"N": "2"}]},
        "col": {"S": "written"},
    }


def test_attribute_updates_errors() -> None:
    assert (
        _message(legacy.validate_attribute_updates, {"pk": {"Action": "PUT", "Value": {"S": "k"}}}, ["pk"])
        == "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
    )
    assert (
        _message(legacy.validate_attribute_updates, {"a": {"Action": "PUT"}})
        == "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"
    )


def test_attributes_to_get() -> None:
    paths = legacy.attributes_to_get_paths(["a", "b.c"])
    assert ex.project(paths, {"a": {"N": "1"}, "b.c": {"N": "2"}, "b": {"M": {"c": {"N": "3"}}}}) == {
        "a": {"N": "1"},
        "b.c": {"N": "2"},
    }
    assert (
        _message(legacy.attributes_to_get_paths, ["a", "a"])
        == "One or more parameter values were invalid: Duplicate value in attribute name: a"
    )


def test_legacy_key_conditions() -> None:
    clauses = legacy.key_conditions_to_clauses(
        {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]},
            "sk": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "3"}]},
        }
    )
    key_range = ex.check_key_schema(clauses, SCHEMA, TYPES)
    assert key_range.sort == ex.KeyClause("sk", "GE", ({"N": "3"},))
