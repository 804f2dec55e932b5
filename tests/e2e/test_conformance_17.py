"""Issue 17's "exact conformance" list, item by item, against the real server with boto3: DynamoDB's
messages and behaviour as the suites written against real DynamoDB (dynalite, Alternator, moto's
aws_verified tests, the conformance suite) pin them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def raw(server: ServerProcess) -> Any:
    """A client that sends what it is given (no client-side validation), as the conformance suites do."""
    return server.client("dynamodb", config=Config(parameter_validation=False, retries={"max_attempts": 1}))


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def _fails(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return _error(exc)


@pytest.fixture(scope="module")
def gsi_table(raw: Any) -> Iterator[str]:
    name = "c17-" + uuid.uuid4().hex[:10]
    raw.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
            {"AttributeName": "r", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "r", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    yield name
    raw.delete_table(TableName=name)


# --- Messages ---------------------------------------------------------------------------------------------

INVALID = "1 validation error detected: "


@pytest.mark.parametrize(
    ("name", "constraint"),
    [
        ("", "Member must have length greater than or equal to 1"),
        ("ab", "Member must have length greater than or equal to 3"),
        ("a" * 256, "Member must have length less than or equal to 255"),
    ],
)
def test_table_name_length_is_a_validation_error(raw: Any, name: str, constraint: str) -> None:
    for call, kwargs in (
        (raw.describe_table, {}),
        (raw.put_item, {"Item": {"pk": {"S": "x"}}}),
        (raw.get_item, {"Key": {"pk": {"S": "x"}}}),
    ):
        assert _fails(call, TableName=name, **kwargs) == (
            "ValidationException",
            f"{INVALID}Value '{name}' at 'tableName' failed to satisfy constraint: {constraint}",
        )


def test_missing_table_name(raw: Any) -> None:
    assert _fails(raw.describe_table) == (
        "ValidationException",
        "The parameter 'TableName' is required but was not present in the request",
    )
    assert _fails(raw.put_item, Item={"pk": {"S": "x"}}) == (
        "ValidationException",
        f"{INVALID}Value null at 'tableName' failed to satisfy constraint: Member must not be null",
    )


def test_batch_get_item_empty_request_items(raw: Any) -> None:
    assert _fails(raw.batch_get_item, RequestItems={}) == (
        "ValidationException",
        "The requestItems parameter is required for BatchGetItem",
    )
    assert _fails(raw.batch_write_item, RequestItems={}) == (
        "ValidationException",
        "The requestItems parameter is required for BatchWriteItem",
    )


def test_batch_get_item_over_100_keys(raw: Any, gsi_table: str) -> None:
    keys = [{"pk": {"S": str(i)}} for i in range(101)]
    assert _fails(raw.batch_get_item, RequestItems={gsi_table: {"Keys": keys}}) == (
        "ValidationException",
        f"{INVALID}Value at 'RequestItems.{gsi_table}.member.Keys' failed to satisfy constraint: "
        "Member must have length less than or equal to 100",
    )


def test_query_limit_zero(raw: Any, gsi_table: str) -> None:
    assert _fails(
        raw.query,
        TableName=gsi_table,
        KeyConditionExpression="pk = :v",
        ExpressionAttributeValues={":v": {"S": "x"}},
        Limit=0,
    ) == (
        "ValidationException",
        f"{INVALID}Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    )
    # Scan keeps the older form, with the value.
    assert _fails(raw.scan, TableName=gsi_table, Limit=0) == (
        "ValidationException",
        f"{INVALID}Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    )


def test_enums_are_listed_in_dynamodb_order(raw: Any, gsi_table: str) -> None:
    assert _fails(
        raw.create_table,
        TableName="c17-enum",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "X"}],
        BillingMode="PAY_PER_REQUEST",
    ) == (
        "ValidationException",
        f"{INVALID}Value 'X' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [B, N, S]",
    )
    assert _fails(raw.scan, TableName=gsi_table, Select="X") == (
        "ValidationException",
        f"{INVALID}Value 'X' at 'select' failed to satisfy constraint: "
        "Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]",
    )
    assert _fails(raw.scan, TableName=gsi_table, ConditionalOperator="XOR") == (
        "ValidationException",
        f"{INVALID}Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: "
        "Member must satisfy enum value set: [OR, AND]",
    )
    assert _fails(raw.scan, TableName=gsi_table, ReturnConsumedCapacity="X") == (
        "ValidationException",
        f"{INVALID}Value 'X' at 'returnConsumedCapacity' failed to satisfy constraint: "
        "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]",
    )


def test_segment_without_total_segments(raw: Any, gsi_table: str) -> None:
    assert _fails(raw.scan, TableName=gsi_table, Segment=1) == (
        "ValidationException",
        "The TotalSegments parameter is required but was not present in the request when Segment parameter is "
        "present",
    )


def test_key_schema_over_two_elements_names_its_elements(raw: Any) -> None:
    assert _fails(
        raw.create_table,
        TableName="c17-" + uuid.uuid4().hex[:10],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
            {"AttributeName": "extra", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "extra")],
        BillingMode="PAY_PER_REQUEST",
    ) == (
        "ValidationException",
        f"{INVALID}Value '[KeySchemaElement(attributeName=pk, keyType=HASH), "
        "KeySchemaElement(attributeName=sk, keyType=RANGE), KeySchemaElement(attributeName=extra, keyType=RANGE)]' "
        "at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2",
    )


# --- Validation that was missing -------------------------------------------------------------------------


def test_null_false_is_refused(raw: Any, gsi_table: str) -> None:
    message = (
        "One or more parameter values were invalid: Null attribute value types must have the value of true"
    )
    assert _fails(raw.put_item, TableName=gsi_table, Item={"pk": {"S": "n"}, "a": {"NULL": False}}) == (
        "ValidationException",
        message,
    )
    assert "Item" not in raw.get_item(TableName=gsi_table, Key={"pk": {"S": "n"}}, ConsistentRead=True)
    raw.put_item(TableName=gsi_table, Item={"pk": {"S": "n"}, "a": {"NULL": True}})


def test_attribute_updates_action_is_checked(raw: Any, gsi_table: str) -> None:
    assert _fails(
        raw.update_item,
        TableName=gsi_table,
        Key={"pk": {"S": "u"}},
        AttributeUpdates={"x": {"Action": "FOO", "Value": {"S": "1"}}},
    ) == (
        "ValidationException",
        f"{INVALID}Value 'FOO' at 'attributeUpdates.x.member.action' failed to satisfy constraint: "
        "Member must satisfy enum value set: [ADD, PUT, DELETE]",
    )
    assert "Item" not in raw.get_item(TableName=gsi_table, Key={"pk": {"S": "u"}}, ConsistentRead=True)


def test_expected_comparison_operator_is_checked(raw: Any, gsi_table: str) -> None:
    assert _fails(
        raw.put_item,
        TableName=gsi_table,
        Item={"pk": {"S": "e"}},
        Expected={"x": {"ComparisonOperator": "FOO", "AttributeValueList": [{"S": "a"}]}},
    ) == (
        "ValidationException",
        f"{INVALID}Value 'FOO' at 'expected.x.member.comparisonOperator' failed to satisfy constraint: "
        "Member must satisfy enum value set: "
        "[IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]",
    )


def test_index_key_values_are_held_to_key_limits(raw: Any, gsi_table: str) -> None:
    hash_message = "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
    range_message = (
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit "
        "of 1024 bytes"
    )
    item = {"pk": {"S": "big"}, "r": {"S": "r"}}
    assert _fails(raw.put_item, TableName=gsi_table, Item={**item, "g": {"S": "é" * 1025}}) == (
        "ValidationException",
        hash_message,
    )
    assert _fails(
        raw.put_item, TableName=gsi_table, Item={**item, "g": {"S": "g"}, "r": {"S": "x" * 1025}}
    ) == (
        "ValidationException",
        range_message,
    )
    assert _fails(
        raw.update_item,
        TableName=gsi_table,
        Key={"pk": {"S": "big"}},
        UpdateExpression="SET g = :g",
        ExpressionAttributeValues={":g": {"S": "x" * 2049}},
    ) == ("ValidationException", hash_message)
    assert "Item" not in raw.get_item(TableName=gsi_table, Key={"pk": {"S": "big"}}, ConsistentRead=True)
    # At the limits, the item is written and indexed.
    raw.put_item(
        TableName=gsi_table, Item={"pk": {"S": "big"}, "g": {"S": "x" * 2048}, "r": {"S": "y" * 1024}}
    )
    found = raw.query(
        TableName=gsi_table,
        IndexName="by-g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "x" * 2048}},
    )
    assert [i["pk"]["S"] for i in found["Items"]] == ["big"]


def test_backfill_skips_items_whose_index_key_is_empty_or_too_large(raw: Any) -> None:
    name = "c17-" + uuid.uuid4().hex[:10]
    raw.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        raw.put_item(TableName=name, Item={"pk": {"S": "good"}, "g": {"S": "v"}})
        raw.put_item(TableName=name, Item={"pk": {"S": "empty"}, "g": {"S": ""}})
        raw.put_item(TableName=name, Item={"pk": {"S": "large"}, "g": {"S": "v" * 2049}})
        raw.update_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "g", "AttributeType": "S"}],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": "by-g",
                        "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                }
            ],
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            index = raw.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
            if index["IndexStatus"] == "ACTIVE":
                break
            time.sleep(0.1)
        scanned = raw.scan(TableName=name, IndexName="by-g")
        assert [i["pk"]["S"] for i in scanned["Items"]] == ["good"]
    finally:
        raw.delete_table(TableName=name)


def test_update_table_provisioned_to_provisioned_with_the_same_throughput(raw: Any) -> None:
    name = "c17-" + uuid.uuid4().hex[:10]
    raw.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )
    try:
        assert _fails(
            raw.update_table,
            TableName=name,
            BillingMode="PROVISIONED",
            ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        ) == (
            "ValidationException",
            "The provisioned throughput for the table will not change. The requested value equals the current "
            "value. Current ReadCapacityUnits provisioned for the table: 5. Requested ReadCapacityUnits: 5. "
            "Current WriteCapacityUnits provisioned for the table: 5. Requested WriteCapacityUnits: 5. Refer to the "
            "Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
        )
        changed = raw.update_table(
            TableName=name,
            BillingMode="PROVISIONED",
            ProvisionedThroughput={"ReadCapacityUnits": 6, "WriteCapacityUnits": 5},
        )
        assert changed["TableDescription"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 6
    finally:
        raw.delete_table(TableName=name)


# --- Wrong behaviour --------------------------------------------------------------------------------------

_CORS = (
    "access-control-allow-origin",
    "access-control-expose-headers",
    "access-control-max-age",
    "access-control-allow-methods",
    "access-control-allow-headers",
)


def test_cors_preflight_is_answered_like_dynamodb(server: ServerProcess) -> None:
    http = urllib3.PoolManager()
    asked = {
        "Origin": "http://example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-amz-target, authorization, x-amz-date",
    }
    response = http.request("OPTIONS", server.endpoint + "/", headers=asked)
    assert response.status == 200
    assert response.data == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == asked["Access-Control-Request-Headers"]
    assert response.headers["access-control-max-age"] == "172800"
    assert "x-amzn-RequestId" in response.headers["access-control-expose-headers"]
    # Any other request with an Origin gets the origin and exposed headers, not the preflight's.
    for method in ("GET", "POST"):
        response = http.request(method, server.endpoint + "/", headers=asked)
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-expose-headers" in response.headers
        assert "access-control-max-age" not in response.headers
        assert "access-control-allow-methods" not in response.headers
    # Without an Origin there is no CORS at all.
    for method in ("OPTIONS", "GET", "POST"):
        response = http.request(method, server.endpoint + "/")
        assert not any(h in response.headers for h in _CORS)
    assert http.request("OPTIONS", server.endpoint + "/").status == 404


def test_cors_headers_on_a_signed_call(server: ServerProcess, raw: Any) -> None:
    def origin(request: Any, **_: Any) -> None:
        request.headers["Origin"] = "http://example.com"

    client = server.client("dynamodb")
    client.meta.events.register("before-sign.dynamodb.ListTables", origin)
    headers = client.list_tables()["ResponseMetadata"]["HTTPHeaders"]
    assert headers["access-control-allow-origin"] == "*"
    assert "access-control-max-age" not in headers
    assert "access-control-allow-origin" not in raw.list_tables()["ResponseMetadata"]["HTTPHeaders"]


def test_cors_preflight_echoes_nothing_that_is_not_a_plain_header_value(server: ServerProcess) -> None:
    response = urllib3.PoolManager().request(
        "OPTIONS",
        server.endpoint + "/",
        headers={
            "Origin": "x",
            "Access-Control-Request-Method": "é" * 3,
            "Access-Control-Request-Headers": "a" * 5000,
        },
    )
    assert response.status == 200
    assert "access-control-allow-methods" not in response.headers
    assert "access-control-allow-headers" not in response.headers


def test_get_root_and_describe_endpoints_name_the_host_called(server: ServerProcess, raw: Any) -> None:
    host = f"127.0.0.1:{server.port}"
    http = urllib3.PoolManager()
    assert http.request("GET", server.endpoint + "/").data == f"healthy: {host}".encode()
    assert http.request("GET", server.endpoint + "/", headers={"Host": "db.example.test"}).data == (
        b"healthy: db.example.test"
    )
    # A Host that is not a plain host name is not repeated.
    assert http.request("GET", server.endpoint + "/", headers={"Host": "a b<script>"}).data == (
        b"healthy: dynamodb.us-east-1.amazonaws.com"
    )
    assert raw.describe_endpoints()["Endpoints"] == [{"Address": host, "CachePeriodInMinutes": 1440}]


def test_tag_resource_answers_an_empty_body(raw: Any, gsi_table: str) -> None:
    arn = raw.describe_table(TableName=gsi_table)["Table"]["TableArn"]
    tagged = raw.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "a"}])
    assert tagged["ResponseMetadata"]["HTTPHeaders"]["content-length"] == "0"
    assert raw.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    untagged = raw.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert untagged["ResponseMetadata"]["HTTPHeaders"]["content-length"] == "0"
    assert raw.list_tags_of_resource(ResourceArn=arn)["Tags"] == []


def test_new_table_has_point_in_time_recovery_disabled(raw: Any, gsi_table: str) -> None:
    description = raw.describe_continuous_backups(TableName=gsi_table)["ContinuousBackupsDescription"]
    assert description == {
        "ContinuousBackupsStatus": "ENABLED",
        "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
    }
    assert _fails(raw.describe_continuous_backups, TableName="c17-missing-table") == (
        "TableNotFoundException",
        "Table not found: c17-missing-table",
    )


def test_transact_get_items_with_a_key_not_matching_the_schema_is_cancelled(raw: Any, gsi_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        raw.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": gsi_table, "Key": {"pk": {"S": "a"}}}},
                {"Get": {"TableName": gsi_table, "Key": {"other": {"S": "a"}}}},
            ]
        )
    assert _error(exc) == (
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ValidationError]",
    )
    assert exc.value.response["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "ValidationError", "Message": "The provided key element does not match the schema"},
    ]
    # A malformed value is still the request's own ValidationException.
    assert _fails(
        raw.transact_get_items,
        TransactItems=[{"Get": {"TableName": gsi_table, "Key": {"pk": {"NULL": False}}}}],
    )[0] == ("ValidationException")


def test_if_not_exists_nested_in_if_not_exists(raw: Any, gsi_table: str) -> None:
    key = {"pk": {"S": "ine"}}
    update = "SET x = if_not_exists(x, if_not_exists(y, :v))"
    first = raw.update_item(
        TableName=gsi_table,
        Key=key,
        UpdateExpression=update,
        ExpressionAttributeValues={":v": {"S": "default"}},
        ReturnValues="ALL_NEW",
    )
    assert first["Attributes"]["x"] == {"S": "default"}
    raw.update_item(
        TableName=gsi_table,
        Key=key,
        UpdateExpression="SET y = :y, z = :y",
        ExpressionAttributeValues={":y": {"S": "from-y"}},
    )
    second = raw.update_item(
        TableName=gsi_table,
        Key=key,
        UpdateExpression="SET w = if_not_exists(w, if_not_exists(y, :v))",
        ExpressionAttributeValues={":v": {"S": "default"}},
        ReturnValues="UPDATED_NEW",
    )
    assert second["Attributes"] == {"w": {"S": "from-y"}}
    # The first argument is still a path, and other functions are still not nested.
    assert _fails(
        raw.update_item,
        TableName=gsi_table,
        Key=key,
        UpdateExpression="SET w = if_not_exists(q, list_append(y, :v))",
        ExpressionAttributeValues={":v": {"L": []}},
    ) == (
        "ValidationException",
        "Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: "
        "list_append",
    )


def test_write_capacity_includes_each_index_touched(raw: Any, gsi_table: str) -> None:
    def consumed(call: Any, **kwargs: Any) -> dict[str, Any]:
        return call(TableName=gsi_table, ReturnConsumedCapacity="INDEXES", **kwargs)["ConsumedCapacity"]

    one = {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}
    indexed = consumed(raw.put_item, Item={"pk": {"S": "cc"}, "g": {"S": "a"}, "r": {"S": "1"}})
    assert indexed == {
        "TableName": gsi_table,
        "CapacityUnits": 2.0,
        "WriteCapacityUnits": 2.0,
        "Table": one,
        "GlobalSecondaryIndexes": {"by-g": one},
    }
    # Not in the index (sparse): only the table.
    sparse = consumed(raw.put_item, Item={"pk": {"S": "cc2"}})
    assert sparse == {"TableName": gsi_table, "CapacityUnits": 1.0, "WriteCapacityUnits": 1.0, "Table": one}
    # The index key changes: the old entry is deleted and the new one written.
    moved = consumed(
        raw.update_item,
        Key={"pk": {"S": "cc"}},
        UpdateExpression="SET g = :g",
        ExpressionAttributeValues={":g": {"S": "b"}},
    )
    assert moved["GlobalSecondaryIndexes"] == {"by-g": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}}
    assert moved["CapacityUnits"] == 3.0
    # TOTAL counts the index too, without listing it.
    total = raw.delete_item(TableName=gsi_table, Key={"pk": {"S": "cc"}}, ReturnConsumedCapacity="TOTAL")
    assert total["ConsumedCapacity"] == {
        "TableName": gsi_table,
        "CapacityUnits": 2.0,
        "WriteCapacityUnits": 2.0,
    }


@pytest.mark.parametrize("operator", ["CONTAINS", "NOT_CONTAINS"])
@pytest.mark.parametrize(
    ("value", "kind"), [({"SS": ["a"]}, "SS"), ({"L": []}, "L"), ({"BOOL": True}, "BOOL")]
)
def test_legacy_contains_takes_a_scalar(
    raw: Any, gsi_table: str, operator: str, value: Any, kind: str
) -> None:
    message = f"One or more parameter values were invalid: ComparisonOperator {operator} is not valid for {kind} AttributeValue type"
    expected = {"x": {"ComparisonOperator": operator, "AttributeValueList": [value]}}
    assert _fails(raw.put_item, TableName=gsi_table, Item={"pk": {"S": "lc"}}, Expected=expected) == (
        "ValidationException",
        message,
    )
    assert _fails(raw.scan, TableName=gsi_table, ScanFilter=expected) == ("ValidationException", message)


def test_legacy_contains_with_a_scalar_still_works(raw: Any, gsi_table: str) -> None:
    raw.put_item(TableName=gsi_table, Item={"pk": {"S": "lc2"}, "tags": {"SS": ["red", "blue"]}})
    found = raw.scan(
        TableName=gsi_table,
        ScanFilter={"tags": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "red"}]}},
    )
    assert [i["pk"]["S"] for i in found["Items"]] == ["lc2"]


def test_an_item_nested_too_deep_says_nested(raw: Any, gsi_table: str) -> None:
    value: dict[str, Any] = {"S": "x"}
    for _ in range(33):
        value = {"L": [value]}
    assert _fails(raw.put_item, TableName=gsi_table, Item={"pk": {"S": "deep"}, "d": value}) == (
        "ValidationException",
        "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond "
        "supported limit",
    )


def test_exclusive_start_key_of_a_table_without_sort_key(raw: Any, gsi_table: str) -> None:
    invalid = "The provided starting key is invalid: The provided key element does not match the schema"
    for start in ({"pk": {"S": "a"}, "sk": {"S": "b"}}, {"pk": {"N": "1"}}, {"other": {"S": "a"}}):
        assert _fails(raw.scan, TableName=gsi_table, ExclusiveStartKey=start) == (
            "ValidationException",
            invalid,
        )
        assert _fails(
            raw.query,
            TableName=gsi_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
            ExclusiveStartKey=start,
        ) == ("ValidationException", invalid)


def test_document_paths_are_at_most_32_levels(raw: Any, gsi_table: str) -> None:
    key = {"pk": {"S": "levels"}}
    raw.get_item(TableName=gsi_table, Key=key, ProjectionExpression="a" + ".b" * 31)
    raw.get_item(TableName=gsi_table, Key=key, ProjectionExpression="a" + "[0]" * 31)
    assert _fails(raw.get_item, TableName=gsi_table, Key=key, ProjectionExpression="a" + ".b" * 32) == (
        "ValidationException",
        "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33",
    )
    assert _fails(raw.get_item, TableName=gsi_table, Key=key, ProjectionExpression="x, a" + "[1]" * 33) == (
        "ValidationException",
        "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 34",
    )
    assert _fails(
        raw.put_item,
        TableName=gsi_table,
        Item=key,
        ConditionExpression="attribute_not_exists(a" + ".b" * 32 + ")",
    ) == (
        "ValidationException",
        "Invalid ConditionExpression: The document path has too many nesting levels; nesting levels: 33",
    )
    assert _fails(
        raw.update_item,
        TableName=gsi_table,
        Key=key,
        UpdateExpression="REMOVE a" + ".b" * 32,
    ) == (
        "ValidationException",
        "Invalid UpdateExpression: The document path has too many nesting levels; nesting levels: 33",
    )


def test_batch_write_capacity_includes_each_index_touched(raw: Any, gsi_table: str) -> None:
    out = raw.batch_write_item(
        RequestItems={
            gsi_table: [
                {"PutRequest": {"Item": {"pk": {"S": "bw1"}, "g": {"S": "a"}, "r": {"S": "1"}}}},
                {"PutRequest": {"Item": {"pk": {"S": "bw2"}, "g": {"S": "a"}, "r": {"S": "2"}}}},
                {"PutRequest": {"Item": {"pk": {"S": "bw3"}}}},
            ]
        },
        ReturnConsumedCapacity="INDEXES",
    )
    assert out["ConsumedCapacity"] == [
        {
            "TableName": gsi_table,
            "CapacityUnits": 5.0,
            "WriteCapacityUnits": 5.0,
            "Table": {"CapacityUnits": 3.0, "WriteCapacityUnits": 3.0},
            "GlobalSecondaryIndexes": {"by-g": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}},
        }
    ]
