"""Table operations checked against what real DynamoDB answers (as the Alternator and dynalite suites assert)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

KEY = [{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "c", "KeyType": "RANGE"}]
DEFS = [{"AttributeName": "p", "AttributeType": "S"}, {"AttributeName": "c", "AttributeType": "S"}]


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_create_table_requires_attribute_definitions(ddb: Any, table_name: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(TableName=table_name, KeySchema=KEY[:1], BillingMode="PAY_PER_REQUEST")
    assert _error(exc) == (
        "ValidationException",
        "1 validation error detected: Value null at 'attributeDefinitions' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_create_table_key_schema_has_at_most_two_elements(ddb: Any, table_name: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=table_name,
            KeySchema=[*KEY, {"AttributeName": "z", "KeyType": "RANGE"}],
            AttributeDefinitions=[*DEFS, {"AttributeName": "z", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    code, message = _error(exc)
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value '[")
    assert message.endswith(
        "at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2"
    )
    with pytest.raises(ClientError):
        ddb.describe_table(TableName=table_name)


def test_create_table_errors_follow_member_order(ddb: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(TableName="abc;", BillingMode="PAY_PER_REQUEST")
    assert _error(exc) == (
        "ValidationException",
        "3 validation errors detected: "
        "Value null at 'attributeDefinitions' failed to satisfy constraint: Member must not be null; "
        "Value 'abc;' at 'tableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value null at 'keySchema' failed to satisfy constraint: Member must not be null",
    )


def test_create_table_duplicate_attribute_name(ddb: Any, table_name: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": "xyz", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "xyz", "AttributeType": "S"},
                {"AttributeName": "xyz", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    assert _error(exc) == ("ValidationException", "Attribute Name is duplicated: xyz")


def test_delete_table_returns_a_summary(ddb: Any, table_name: str) -> None:
    ddb.create_table(
        TableName=table_name,
        KeySchema=KEY,
        AttributeDefinitions=[*DEFS, {"AttributeName": "x", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "hello",
                "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "hithere",
                "KeySchema": [
                    {"AttributeName": "p", "KeyType": "HASH"},
                    {"AttributeName": "x", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    described = ddb.describe_table(TableName=table_name)["Table"]
    got = ddb.delete_table(TableName=table_name)["TableDescription"]
    for field in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        assert field in described
        assert field not in got
    assert "CreationDateTime" not in got
    assert got["TableName"] == table_name
    assert got["TableStatus"] == "DELETING"
    assert got["TableId"] == described["TableId"]
    assert got["TableArn"] == described["TableArn"]
    assert got["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert got["ProvisionedThroughput"] == {
        "NumberOfDecreasesToday": 0,
        "ReadCapacityUnits": 0,
        "WriteCapacityUnits": 0,
    }
    assert got["ItemCount"] == 0 and got["TableSizeBytes"] == 0
