"""Bound expressions reused across requests (expressions/rebind.py): each request still gets its own
constants, and a content check that the new constants fail still raises DynamoDB's error."""

from __future__ import annotations

import pytest

from perimeterdb.dynamodb.expressions import api
from perimeterdb.dynamodb.expressions.evaluate import evaluate_condition
from perimeterdb.errors import ApiError


@pytest.fixture(autouse=True)
def _no_templates() -> None:
    api._TEMPLATES.clear()


def _compile(**kwargs: object) -> api.BoundExpressions:
    return api.compile_request_expressions(**kwargs)  # type: ignore[arg-type]


def test_a_reused_condition_uses_each_requests_values() -> None:
    item = {"pk": {"S": "a"}, "n": {"N": "5"}}
    text = "n BETWEEN :lo AND :hi"
    first = _compile(condition=text, values={":lo": {"N": "1"}, ":hi": {"N": "9"}})
    assert len(api._TEMPLATES) == 1
    second = _compile(condition=text, values={":lo": {"N": "6"}, ":hi": {"N": "9"}})
    assert len(api._TEMPLATES) == 1  # the same template served both
    assert evaluate_condition(first.condition, item)  # type: ignore[arg-type]
    assert not evaluate_condition(second.condition, item)  # type: ignore[arg-type]
    assert evaluate_condition(first.condition, item)  # type: ignore[arg-type]  # not changed by the second


def test_between_bounds_are_checked_again_with_the_new_values() -> None:
    text = "n BETWEEN :lo AND :hi"
    _compile(condition=text, values={":lo": {"N": "1"}, ":hi": {"N": "9"}})
    with pytest.raises(ApiError) as exc:
        _compile(condition=text, values={":lo": {"N": "10"}, ":hi": {"N": "9"}})
    assert "requires upper bound to be greater than or equal to lower bound" in exc.value.message


def test_a_different_value_type_is_bound_afresh() -> None:
    text = "begins_with(s, :p)"
    _compile(condition=text, values={":p": {"S": "x"}})
    with pytest.raises(ApiError) as exc:
        _compile(condition=text, values={":p": {"N": "1"}})
    assert "operand type: N" in exc.value.message


def test_attribute_type_is_never_kept() -> None:
    text = "attribute_type(a, :t)"
    _compile(condition=text, values={":t": {"S": "S"}})
    assert not api._TEMPLATES
    with pytest.raises(ApiError) as exc:
        _compile(condition=text, values={":t": {"S": "XX"}})
    assert "Invalid attribute type name found; type: XX" in exc.value.message


def test_key_conditions_and_updates_carry_the_new_constants() -> None:
    kc = "pk = :p AND sk BETWEEN :a AND :b"
    _compile(key_condition=kc, values={":p": {"S": "p1"}, ":a": {"N": "1"}, ":b": {"N": "2"}})
    bound = _compile(key_condition=kc, values={":p": {"S": "p7"}, ":a": {"N": "3"}, ":b": {"N": "4"}})
    assert [(c.name, c.operator, c.values) for c in bound.key_clauses or ()] == [
        ("pk", "EQ", ({"S": "p7"},)),
        ("sk", "BETWEEN", ({"N": "3"}, {"N": "4"})),
    ]
    update = "SET v = :v ADD #n :one"
    _compile(update=update, names={"#n": "n"}, values={":v": {"S": "x"}, ":one": {"N": "1"}})
    again = _compile(update=update, names={"#n": "n"}, values={":v": {"S": "y"}, ":one": {"N": "2"}})
    assert again.update is not None
    assert again.update.sets[0].value.value == {"S": "y"}  # type: ignore[union-attr]
    assert again.update.adds[0].value.value == {"N": "2"}  # type: ignore[union-attr]
