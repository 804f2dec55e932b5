"""Query and Scan answers that DynamoDB's conformance suites (dynalite, Alternator) check.

Each test pins one behaviour where perimeterdb used to disagree with DynamoDB: which error comes first,
and the exact message.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def raw(server: ServerProcess) -> Any:
    """A client that sends what it is given (no client-side parameter validation)."""
    key, secret = server.admin_keys()
    return boto3.client(
        "dynamodb",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


def _error(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def _eq(value: str) -> dict[str, Any]:
    return {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": value}]}


def test_missing_table_is_named_nowhere(ddb: Any) -> None:
    assert _error(ddb.query, TableName="no-such-table", KeyConditions={"pk": _eq("a")}) == (
        "ResourceNotFoundException",
        "Requested resource not found",
    )
    assert _error(ddb.scan, TableName="no-such-table") == (
        "ResourceNotFoundException",
        "Requested resource not found",
    )


def test_start_key_values_are_checked_before_the_table(raw: Any) -> None:
    code, message = _error(
        raw.scan, TableName="no-such-table", ExclusiveStartKey={"pk": {"N": "not-a-number"}}
    )
    assert (code, message) == (
        "ValidationException",
        "The provided starting key is invalid: The parameter cannot be converted to a numeric value: not-a-number",
    )
    code, message = _error(
        raw.query,
        TableName="no-such-table",
        KeyConditions={"pk": _eq("a")},
        ExclusiveStartKey={"pk": {"S": "a", "N": "1"}},
    )
    assert code == "ValidationException"
    assert message.startswith(
        "The provided starting key is invalid: Supplied AttributeValue has more than one"
    )


def test_three_key_conditions_are_too_many_before_anything_else(raw: Any, range_table: str) -> None:
    null = {"ComparisonOperator": "NULL"}
    assert _error(raw.query, TableName=range_table, KeyConditions={"a": null, "b": null, "c": null}) == (
        "ValidationException",
        "Conditions can be of length 1 or 2 only",
    )
    code, message = _error(
        raw.query,
        TableName=range_table,
        KeyConditionExpression="pk = :p AND sk < :s AND extra < :s",
        ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"N": "1"}},
    )
    assert (code, message) == ("ValidationException", "Conditions can be of length 1 or 2 only")


def test_missing_key_element_is_reported_before_a_non_indexable_operator(raw: Any, range_table: str) -> None:
    # DynamoDB looks for the partition key first; the NULL operator is only an error after that.
    assert _error(
        raw.query, TableName=range_table, KeyConditions={"other": {"ComparisonOperator": "NULL"}}
    ) == (
        "ValidationException",
        "Query condition missed key schema element: pk",
    )
    assert _error(
        raw.query,
        TableName=range_table,
        KeyConditions={"pk": _eq("a"), "other": {"ComparisonOperator": "NULL"}},
    ) == ("ValidationException", "Query condition missed key schema element: sk")
    assert _error(
        raw.query,
        TableName=range_table,
        KeyConditions={"pk": _eq("a"), "sk": {"ComparisonOperator": "NULL"}},
    ) == ("ValidationException", "Attempted conditional constraint is not an indexable operation")


def test_two_conditions_on_a_hash_only_table_are_not_supported(ddb: Any, hash_table: str) -> None:
    expected = ("ValidationException", "Query key condition not supported")
    assert (
        _error(ddb.query, TableName=hash_table, KeyConditions={"pk": _eq("a"), "other": _eq("b")}) == expected
    )
    assert (
        _error(
            ddb.query,
            TableName=hash_table,
            KeyConditionExpression="pk = :a AND extra = :a",
            ExpressionAttributeValues={":a": {"S": "a"}},
        )
        == expected
    )


def _fill(ddb: Any, table: str) -> None:
    for i in range(5):
        ddb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"N": str(i)}})


@pytest.mark.parametrize(
    ("condition", "values", "start"),
    [
        ("sk > :a", {":a": {"N": "2"}}, "1"),
        ("sk < :a", {":a": {"N": "2"}}, "3"),
        ("sk = :a", {":a": {"N": "2"}}, "3"),
        ("sk BETWEEN :a AND :b", {":a": {"N": "1"}, ":b": {"N": "2"}}, "4"),
    ],
)
def test_start_key_outside_the_sort_key_condition(
    ddb: Any, range_table: str, condition: str, values: dict[str, Any], start: str
) -> None:
    _fill(ddb, range_table)
    assert _error(
        ddb.query,
        TableName=range_table,
        KeyConditionExpression=f"pk = :p AND {condition}",
        ExpressionAttributeValues={":p": {"S": "p"}, **values},
        ExclusiveStartKey={"pk": {"S": "p"}, "sk": {"N": start}},
    ) == ("ValidationException", "The provided starting key does not match the range key predicate")


def test_start_key_inside_the_sort_key_condition_pages_on(ddb: Any, range_table: str) -> None:
    _fill(ddb, range_table)
    page = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p AND sk >= :a",
        ExpressionAttributeValues={":p": {"S": "p"}, ":a": {"N": "1"}},
        ExclusiveStartKey={"pk": {"S": "p"}, "sk": {"N": "2"}},
    )
    assert [item["sk"]["N"] for item in page["Items"]] == ["3", "4"]
    reverse = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p AND sk <= :a",
        ExpressionAttributeValues={":p": {"S": "p"}, ":a": {"N": "3"}},
        ExclusiveStartKey={"pk": {"S": "p"}, "sk": {"N": "2"}},
        ScanIndexForward=False,
    )
    assert [item["sk"]["N"] for item in reverse["Items"]] == ["1", "0"]


def test_start_key_shape_is_checked_before_the_key_condition(raw: Any, range_table: str) -> None:
    assert _error(
        raw.query,
        TableName=range_table,
        ExclusiveStartKey={"pk": {"S": "a"}},
        KeyConditions={"pk": {"ComparisonOperator": "NULL"}},
    ) == (
        "ValidationException",
        "The provided starting key is invalid: The provided key element does not match the schema",
    )
