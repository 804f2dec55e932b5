"""The expression language checked against what real DynamoDB answers (Alternator's condition tests)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


@pytest.fixture
def item(ddb: Any, hash_table: str) -> str:
    ddb.put_item(
        TableName=hash_table,
        Item={"pk": {"S": "i"}, "a": {"N": "1"}, "x": {"L": [{"N": "1"}]}, "y": {"L": [{"N": "2"}]}},
    )
    return hash_table


def _update(ddb: Any, table: str, condition: str, values: dict[str, Any]) -> None:
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "i"}},
        UpdateExpression="SET z = :newval",
        ConditionExpression=condition,
        ExpressionAttributeValues={":newval": {"N": "2"}, **values},
    )


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize(
    ("constant", "kind"),
    [
        ({"L": [{"N": "1"}]}, "L"),
        ({"M": {"a": {"N": "1"}}}, "M"),
        ({"BOOL": True}, "BOOL"),
        ({"NULL": True}, "NULL"),
    ],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_ordering_a_constant_of_an_unordered_type_is_invalid(
    ddb: Any, item: str, op: str, constant: dict[str, Any], kind: str, reverse: bool
) -> None:
    condition = f":o {op} a" if reverse else f"a {op} :o"
    with pytest.raises(ClientError) as exc:
        _update(ddb, item, condition, {":o": constant})
    assert _error(exc) == (
        "ValidationException",
        "Invalid ConditionExpression: Incorrect operand type for operator or function; "
        f"operator or function: {op}, operand type: {kind}",
    )


@pytest.mark.parametrize("condition", ["x > :o", ":o >= x", "a BETWEEN x AND y"])
def test_ordering_an_attribute_of_an_unordered_type_is_just_false(
    ddb: Any, item: str, condition: str
) -> None:
    values = {":o": {"N": "1"}} if ":o" in condition else {}
    with pytest.raises(ClientError) as exc:
        _update(ddb, item, condition, values)
    assert _error(exc)[0] == "ConditionalCheckFailedException"


def test_between_bounds_of_an_unordered_type_are_invalid(ddb: Any, item: str) -> None:
    with pytest.raises(ClientError) as exc:
        _update(ddb, item, "a BETWEEN :lo AND :hi", {":lo": {"L": []}, ":hi": {"L": []}})
    assert _error(exc) == (
        "ValidationException",
        "Invalid ConditionExpression: Incorrect operand type for operator or function; "
        "operator or function: BETWEEN, operand type: L",
    )


def test_ordering_constants_of_ordered_types_still_works(ddb: Any, item: str) -> None:
    _update(
        ddb,
        item,
        "a < :o AND a BETWEEN :lo AND :hi",
        {":o": {"N": "2"}, ":lo": {"N": "0"}, ":hi": {"N": "1"}},
    )
    got = ddb.get_item(TableName=item, Key={"pk": {"S": "i"}}, ConsistentRead=True)["Item"]
    assert got["z"] == {"N": "2"}
