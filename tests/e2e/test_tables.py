"""Table lifecycle through boto3 and the AWS CLI, with DynamoDB's validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

ATTRS = [{"AttributeName": "pk", "AttributeType": "S"}]
SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}]


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_create_describe_delete(ddb: Any, table_name: str) -> None:
    created = ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=ATTRS,
        KeySchema=SCHEMA,
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )["TableDescription"]
    assert created["TableStatus"] == "CREATING"
    assert created["TableArn"].endswith(f":table/{table_name}")
    ddb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    table = ddb.describe_table(TableName=table_name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "x"}})
    assert ddb.describe_table(TableName=table_name)["Table"]["ItemCount"] == 1
    deleted = ddb.delete_table(TableName=table_name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    with pytest.raises(ClientError) as exc:
        ddb.describe_table(TableName=table_name)
    assert _error(exc) == (
        "ResourceNotFoundException",
        f"Requested resource not found: Table: {table_name} not found",
    )


def test_duplicate_table(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=hash_table, AttributeDefinitions=ATTRS, KeySchema=SCHEMA, BillingMode="PAY_PER_REQUEST"
        )
    assert _error(exc) == ("ResourceInUseException", f"Table already exists: {hash_table}")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {
                "TableName": "ab",
                "AttributeDefinitions": ATTRS,
                "KeySchema": SCHEMA,
                "BillingMode": "PAY_PER_REQUEST",
            },
            "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
            "Member must have length greater than or equal to 3",
        ),
        (
            {
                "TableName": "bad name!",
                "AttributeDefinitions": ATTRS,
                "KeySchema": SCHEMA,
                "BillingMode": "PAY_PER_REQUEST",
            },
            "1 validation error detected: Value 'bad name!' at 'tableName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ),
        (
            {"TableName": "abc", "AttributeDefinitions": ATTRS, "KeySchema": SCHEMA},
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be "
            "specified when BillingMode is PROVISIONED",
        ),
        (
            {
                "TableName": "abc",
                "AttributeDefinitions": [{"AttributeName": "other", "AttributeType": "S"}],
                "KeySchema": SCHEMA,
                "BillingMode": "PAY_PER_REQUEST",
            },
            "One or more parameter values were invalid: Some index key attributes are not defined in "
            "AttributeDefinitions. Keys: [pk], AttributeDefinitions: [other]",
        ),
        (
            {
                "TableName": "abc",
                "AttributeDefinitions": [*ATTRS, {"AttributeName": "extra", "AttributeType": "S"}],
                "KeySchema": SCHEMA,
                "BillingMode": "PAY_PER_REQUEST",
            },
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly "
            "match number of attributes defined in AttributeDefinitions",
        ),
        (
            {
                "TableName": "abc",
                "AttributeDefinitions": ATTRS,
                "KeySchema": [{"AttributeName": "pk", "KeyType": "RANGE"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ),
    ],
)
def test_create_table_validation(ddb: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(**kwargs)
    assert _error(exc) == ("ValidationException", message)


def test_list_tables_pagination(ddb: Any) -> None:
    names = [f"page-{i:02d}" for i in range(5)]
    for name in names:
        ddb.create_table(
            TableName=name, AttributeDefinitions=ATTRS, KeySchema=SCHEMA, BillingMode="PAY_PER_REQUEST"
        )
    try:
        seen: list[str] = []
        start: dict[str, str] = {}
        while True:
            page = ddb.list_tables(Limit=2, **start)
            seen += page["TableNames"]
            if "LastEvaluatedTableName" not in page:
                break
            start = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}
        assert [n for n in seen if n.startswith("page-")] == names
        assert seen == sorted(seen)
    finally:
        for name in names:
            ddb.delete_table(TableName=name)


def test_update_table_throughput_and_billing(ddb: Any, table_name: str) -> None:
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=ATTRS,
        KeySchema=SCHEMA,
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    try:
        out = ddb.update_table(
            TableName=table_name, ProvisionedThroughput={"ReadCapacityUnits": 2, "WriteCapacityUnits": 3}
        )["TableDescription"]
        assert out["ProvisionedThroughput"]["ReadCapacityUnits"] == 2
        assert out["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
        with pytest.raises(ClientError) as exc:
            ddb.update_table(
                TableName=table_name, ProvisionedThroughput={"ReadCapacityUnits": 2, "WriteCapacityUnits": 3}
            )
        assert _error(exc)[1].startswith("The provisioned throughput for the table will not change.")
        out = ddb.update_table(TableName=table_name, BillingMode="PAY_PER_REQUEST")["TableDescription"]
        assert out["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    finally:
        ddb.delete_table(TableName=table_name)


def test_deletion_protection(ddb: Any, table_name: str) -> None:
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=ATTRS,
        KeySchema=SCHEMA,
        BillingMode="PAY_PER_REQUEST",
        DeletionProtectionEnabled=True,
    )
    with pytest.raises(ClientError) as exc:
        ddb.delete_table(TableName=table_name)
    assert _error(exc)[0] == "ValidationException"
    assert "protected against deletion" in _error(exc)[1]
    ddb.update_table(TableName=table_name, DeletionProtectionEnabled=False)
    ddb.delete_table(TableName=table_name)


def test_table_arn_as_table_name(ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    ddb.put_item(TableName=arn, Item={"pk": {"S": "via-arn"}})
    assert ddb.get_item(TableName=hash_table, Key={"pk": {"S": "via-arn"}})["Item"]["pk"] == {"S": "via-arn"}


def _aws(server: Any, *args: str) -> Any:
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "credentials"))
    env.pop("AWS_PROFILE", None)
    aws = Path(sys.executable).parent / "aws"
    out = subprocess.run(
        [str(aws), *args, "--endpoint-url", server.endpoint, "--region", "us-east-1", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else None


def test_aws_cli(server: Any, table_name: str) -> None:
    _aws(
        server,
        "dynamodb",
        "create-table",
        "--table-name",
        table_name,
        "--attribute-definitions",
        "AttributeName=pk,AttributeType=S",
        "--key-schema",
        "AttributeName=pk,KeyType=HASH",
        "--billing-mode",
        "PAY_PER_REQUEST",
    )
    try:
        _aws(
            server,
            "dynamodb",
            "put-item",
            "--table-name",
            table_name,
            "--item",
            '{"pk": {"S": "cli"}, "n": {"N": "7"}}',
        )
        got = _aws(
            server, "dynamodb", "get-item", "--table-name", table_name, "--key", '{"pk": {"S": "cli"}}'
        )
        assert got["Item"]["n"] == {"N": "7"}
        assert table_name in _aws(server, "dynamodb", "list-tables")["TableNames"]
    finally:
        _aws(server, "dynamodb", "delete-table", "--table-name", table_name)
