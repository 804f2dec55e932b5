"""Items through boto3 against the real server: writes, reads, conditions, updates, return values."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_put_get_roundtrip_all_types(ddb: Any, hash_table: str) -> None:
    item = {
        "pk": {"S": "a"},
        "s": {"S": "text"},
        "n": {"N": "12.50"},
        "b": {"B": b"\x00\x01"},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"a", b"b"]},
        "m": {"M": {"inner": {"L": [{"N": "1"}, {"BOOL": True}, {"NULL": True}]}}},
    }
    ddb.put_item(TableName=hash_table, Item=item)
    got = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
    assert got["n"] == {"N": "12.5"}  # normalized on the way back
    assert got["b"] == {"B": b"\x00\x01"}
    assert sorted(got["ss"]["SS"]) == ["x", "y"]
    assert got["m"] == item["m"]


def test_38_digit_numbers_keep_their_precision(ddb: Any, hash_table: str) -> None:
    big = "1234567890123456789012345678901234567.8"
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "n"}, "v": {"N": big}})
    ddb.update_item(
        TableName=hash_table,
        Key={"pk": {"S": "n"}},
        UpdateExpression="SET v = v + :one",
        ExpressionAttributeValues={":one": {"N": "0.1"}},
    )
    got = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "n"}})["Item"]
    assert got["v"]["N"] == "1234567890123456789012345678901234567.9"


def test_missing_item_returns_no_item(ddb: Any, hash_table: str) -> None:
    assert "Item" not in ddb.get_item(TableName=hash_table, Key={"pk": {"S": "nope"}})


def test_projection(ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "p"}, "a": {"S": "1"}, "b": {"S": "2"}})
    got = ddb.get_item(
        TableName=hash_table,
        Key={"pk": {"S": "p"}},
        ProjectionExpression="#a",
        ExpressionAttributeNames={"#a": "a"},
    )["Item"]
    assert got == {"a": {"S": "1"}}


def test_condition_failure_and_return_item(ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "c"}, "v": {"N": "1"}})
    with pytest.raises(ClientError) as exc:
        ddb.put_item(
            TableName=hash_table,
            Item={"pk": {"S": "c"}, "v": {"N": "2"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert _error(exc) == ("ConditionalCheckFailedException", "The conditional request failed")
    assert exc.value.response["Item"] == {"pk": {"S": "c"}, "v": {"N": "1"}}
    got = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "c"}})["Item"]
    assert got["v"] == {"N": "1"}  # the failed write changed nothing


def test_update_expression_and_return_values(ddb: Any, hash_table: str) -> None:
    key = {"pk": {"S": "u"}}
    out = ddb.update_item(
        TableName=hash_table,
        Key=key,
        UpdateExpression="SET a = :a, n = if_not_exists(n, :zero) + :one ADD tags :t",
        ExpressionAttributeValues={
            ":a": {"S": "x"},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":t": {"SS": ["q"]},
        },
        ReturnValues="ALL_NEW",
    )
    assert out["Attributes"]["n"] == {"N": "1"}
    out = ddb.update_item(
        TableName=hash_table,
        Key=key,
        UpdateExpression="SET n = n + :one REMOVE a",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_OLD",
    )
    assert out["Attributes"] == {"n": {"N": "1"}, "a": {"S": "x"}}
    out = ddb.update_item(
        TableName=hash_table,
        Key=key,
        UpdateExpression="SET l = list_append(if_not_exists(l, :empty), :more)",
        ExpressionAttributeValues={":empty": {"L": []}, ":more": {"L": [{"S": "z"}]}},
        ReturnValues="UPDATED_NEW",
    )
    assert out["Attributes"] == {"l": {"L": [{"S": "z"}]}}


def test_update_key_attribute_is_refused(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.update_item(
            TableName=hash_table,
            Key={"pk": {"S": "k"}},
            UpdateExpression="SET pk = :v",
            ExpressionAttributeValues={":v": {"S": "other"}},
        )
    code, message = _error(exc)
    assert code == "ValidationException"
    assert "This attribute is part of the key" in message


def test_delete_with_return_values(ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "d"}, "v": {"S": "1"}})
    out = ddb.delete_item(TableName=hash_table, Key={"pk": {"S": "d"}}, ReturnValues="ALL_OLD")
    assert out["Attributes"] == {"pk": {"S": "d"}, "v": {"S": "1"}}
    assert "Item" not in ddb.get_item(TableName=hash_table, Key={"pk": {"S": "d"}})


def test_consumed_capacity_units(ddb: Any, hash_table: str) -> None:
    payload = "x" * 5000
    out = ddb.put_item(
        TableName=hash_table, Item={"pk": {"S": "big"}, "v": {"S": payload}}, ReturnConsumedCapacity="TOTAL"
    )
    assert out["ConsumedCapacity"]["CapacityUnits"] == 5.0  # ~5 KB in 1 KB write units
    out = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "big"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 1.0  # 2 read units, halved: eventually consistent
    out = ddb.get_item(
        TableName=hash_table, Key={"pk": {"S": "big"}}, ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
    )
    assert out["ConsumedCapacity"]["CapacityUnits"] == 2.0


def test_key_schema_mismatch(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.get_item(TableName=hash_table, Key={"other": {"S": "x"}})
    assert _error(exc) == ("ValidationException", "The provided key element does not match the schema")
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=hash_table, Item={"pk": {"N": "1"}})
    assert _error(exc) == (
        "ValidationException",
        "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
    )


def test_item_too_large(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=hash_table, Item={"pk": {"S": "huge"}, "v": {"S": "x" * 410_000}})
    assert _error(exc)[0] == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in _error(exc)[1]


def test_unknown_table(ddb: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.get_item(TableName="no-such-table", Key={"pk": {"S": "x"}})
    assert _error(exc)[0] == "ResourceNotFoundException"


def test_reserved_word_and_unused_placeholders(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.update_item(
            TableName=hash_table,
            Key={"pk": {"S": "r"}},
            UpdateExpression="SET name = :v",
            ExpressionAttributeValues={":v": {"S": "x"}},
        )
    assert _error(exc) == (
        "ValidationException",
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name",
    )
    with pytest.raises(ClientError) as exc:
        ddb.update_item(
            TableName=hash_table,
            Key={"pk": {"S": "r"}},
            UpdateExpression="SET a = :v",
            ExpressionAttributeValues={":v": {"S": "x"}, ":w": {"S": "y"}},
        )
    assert _error(exc) == (
        "ValidationException",
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}",
    )


def test_legacy_and_expression_parameters_cannot_mix(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.put_item(
            TableName=hash_table,
            Item={"pk": {"S": "m"}},
            Expected={"pk": {"Exists": False}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert _error(exc)[1].startswith("Can not use both expression and non-expression parameters")


def test_legacy_expected_and_attribute_updates(ddb: Any, hash_table: str) -> None:
    ddb.put_item(
        TableName=hash_table, Item={"pk": {"S": "lg"}, "v": {"N": "1"}}, Expected={"pk": {"Exists": False}}
    )
    ddb.update_item(
        TableName=hash_table,
        Key={"pk": {"S": "lg"}},
        AttributeUpdates={"v": {"Action": "ADD", "Value": {"N": "2"}}},
        Expected={"v": {"Value": {"N": "1"}}},
    )
    got = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "lg"}}, AttributesToGet=["v"])["Item"]
    assert got == {"v": {"N": "3"}}


def test_concurrent_conditional_increments_lose_nothing(server: Any, hash_table: str) -> None:
    threads = 4
    per_thread = 25
    key = {"pk": {"S": "counter"}}
    server.client("dynamodb").put_item(TableName=hash_table, Item={**key, "n": {"N": "0"}})

    def worker() -> None:
        client = server.client("dynamodb")
        done = 0
        attempts = 0
        while done < per_thread and attempts < per_thread * 50:
            attempts += 1
            current = client.get_item(TableName=hash_table, Key=key, ConsistentRead=True)["Item"]["n"]["N"]
            try:
                client.update_item(
                    TableName=hash_table,
                    Key=key,
                    UpdateExpression="SET n = n + :one",
                    ConditionExpression="n = :seen",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":seen": {"N": current}},
                )
                done += 1
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    final = server.client("dynamodb").get_item(TableName=hash_table, Key=key, ConsistentRead=True)["Item"]
    assert final["n"]["N"] == str(threads * per_thread)


def test_missing_table_message_on_the_data_plane(ddb: Any) -> None:
    """DynamoDB's data plane does not name the missing table (DescribeTable does)."""
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName="no-such-table", Item={"pk": {"S": "x"}})
    assert _error(exc) == ("ResourceNotFoundException", "Requested resource not found")
