"""Single-item operations checked against what real DynamoDB answers (Alternator's and dynalite's suites)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

LONG_NAME_ERROR = "1 validation error detected: Attribute name is too large, must be less than 65536 bytes"


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def _get(ddb: Any, table: str, p: str) -> Any:
    return ddb.get_item(TableName=table, Key={"pk": {"S": p}}, ConsistentRead=True).get("Item")


@pytest.mark.parametrize(
    "update",
    [
        {"AttributeUpdates": {"a": {"Action": "DELETE"}}},
        {"AttributeUpdates": {"a": {"Action": "DELETE", "Value": {"SS": ["x"]}}}},
        {"UpdateExpression": "REMOVE a"},
        {"UpdateExpression": "REMOVE a.b, c[1]"},
        {"UpdateExpression": "DELETE s :v", "ExpressionAttributeValues": {":v": {"SS": ["x"]}}},
    ],
)
def test_removing_from_a_missing_item_does_not_create_it(
    ddb: Any, hash_table: str, update: dict[str, Any]
) -> None:
    out = ddb.update_item(TableName=hash_table, Key={"pk": {"S": "gone"}}, ReturnValues="ALL_NEW", **update)
    assert "Attributes" not in out
    assert _get(ddb, hash_table, "gone") is None


@pytest.mark.parametrize("update", [{}, {"AttributeUpdates": {}}])
def test_an_empty_update_creates_the_item(ddb: Any, hash_table: str, update: dict[str, Any]) -> None:
    ddb.update_item(TableName=hash_table, Key={"pk": {"S": "made"}}, **update)
    assert _get(ddb, hash_table, "made") == {"pk": {"S": "made"}}


def test_remove_nested_path_of_existing_item_without_parent_is_an_error(ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "x"}, "a": {"S": "hello"}})
    with pytest.raises(ClientError) as exc:
        ddb.update_item(TableName=hash_table, Key={"pk": {"S": "x"}}, UpdateExpression="REMOVE c.c")
    assert _error(exc) == (
        "ValidationException",
        "The document path provided in the update expression is invalid for update",
    )


def test_numbers_have_at_most_38_significant_digits(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.put_item(
            TableName=hash_table,
            Item={"pk": {"S": "n"}, "n": {"N": "123456789012345678901234567890123456789"}},
        )
    assert _error(exc) == (
        "ValidationException",
        "Attempting to store more than 38 significant digits in a Number",
    )
    ddb.put_item(
        TableName=hash_table, Item={"pk": {"S": "n"}, "n": {"N": "-12345678901234567890123456789012345678"}}
    )
    assert _get(ddb, hash_table, "n")["n"] == {"N": "-12345678901234567890123456789012345678"}


def test_attribute_names_up_to_65535_bytes(ddb: Any, hash_table: str) -> None:
    name = "x" * 65535
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "long"}, name: {"N": "1"}})
    got = ddb.get_item(
        TableName=hash_table,
        Key={"pk": {"S": "long"}},
        ProjectionExpression="#n",
        ExpressionAttributeNames={"#n": name},
    )
    assert got["Item"] == {name: {"N": "1"}}


@pytest.mark.parametrize(
    "call",
    [
        lambda ddb, t, n: ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, n: {"N": "1"}}),
        lambda ddb, t, n: ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "m": {"M": {n: {"N": "1"}}}}),
        lambda ddb, t, n: ddb.get_item(TableName=t, Key={"pk": {"S": "a"}}, AttributesToGet=[n]),
        lambda ddb, t, n: ddb.get_item(
            TableName=t, Key={"pk": {"S": "a"}}, ProjectionExpression="#n", ExpressionAttributeNames={"#n": n}
        ),
        lambda ddb, t, n: ddb.update_item(
            TableName=t,
            Key={"pk": {"S": "a"}},
            AttributeUpdates={n: {"Action": "PUT", "Value": {"N": "2"}}},
        ),
        lambda ddb, t, n: ddb.update_item(
            TableName=t,
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET #n = :v",
            ExpressionAttributeNames={"#n": n},
            ExpressionAttributeValues={":v": {"N": "3"}},
        ),
    ],
)
def test_attribute_names_of_65536_bytes_are_refused(ddb: Any, hash_table: str, call: Any) -> None:
    with pytest.raises(ClientError) as exc:
        call(ddb, hash_table, "y" * 65536)
    code, message = _error(exc)
    assert code == "ValidationException"
    # AttributesToGet is caught earlier by the model's length constraint on its members.
    assert message == LONG_NAME_ERROR or message.endswith(
        "Member must have length less than or equal to 65535"
    )
