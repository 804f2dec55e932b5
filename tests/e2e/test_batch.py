"""BatchGetItem and BatchWriteItem through boto3: limits, duplicates, projections, capacity."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def range_table(ddb: Any) -> Iterator[str]:
    """A second table (the shared range_table fixture reuses hash_table's name)."""
    name = "r-" + uuid.uuid4().hex[:12]
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    ddb.delete_table(TableName=name)


def _key(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"k{i}"}}


def test_write_then_get_across_tables(ddb: Any, hash_table: str, range_table: str) -> None:
    out = ddb.batch_write_item(
        RequestItems={
            hash_table: [{"PutRequest": {"Item": {**_key(i), "n": {"N": str(i)}}}} for i in range(5)],
            range_table: [{"PutRequest": {"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}}}}],
        },
        ReturnConsumedCapacity="TOTAL",
    )
    assert out["UnprocessedItems"] == {}
    assert {c["TableName"]: c["CapacityUnits"] for c in out["ConsumedCapacity"]} == {
        hash_table: 5.0,
        range_table: 1.0,
    }
    got = ddb.batch_get_item(
        RequestItems={
            hash_table: {"Keys": [_key(i) for i in range(6)], "ProjectionExpression": "n"},
            range_table: {"Keys": [{"pk": {"S": "a"}, "sk": {"N": "1"}}], "ConsistentRead": True},
        }
    )
    assert sorted(int(i["n"]["N"]) for i in got["Responses"][hash_table]) == [0, 1, 2, 3, 4]
    assert got["Responses"][range_table] == [{"pk": {"S": "a"}, "sk": {"N": "1"}}]
    assert got["UnprocessedKeys"] == {}
    ddb.batch_write_item(RequestItems={hash_table: [{"DeleteRequest": {"Key": _key(i)}} for i in range(3)]})
    got = ddb.batch_get_item(RequestItems={hash_table: {"Keys": [_key(i) for i in range(5)]}})
    assert len(got["Responses"][hash_table]) == 2


def _code_message(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_limits_and_duplicates(ddb: Any, hash_table: str, range_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.batch_get_item(RequestItems={hash_table: {"Keys": [_key(1), _key(1)]}})
    assert _code_message(exc) == ("ValidationException", "Provided list of item keys contains duplicates")
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(
            RequestItems={
                hash_table: [{"PutRequest": {"Item": _key(1)}}, {"DeleteRequest": {"Key": _key(1)}}]
            }
        )
    assert _code_message(exc) == ("ValidationException", "Provided list of item keys contains duplicates")
    with pytest.raises(ClientError) as exc:
        ddb.batch_get_item(
            RequestItems={
                hash_table: {"Keys": [_key(i) for i in range(60)]},
                range_table: {"Keys": [{"pk": {"S": "a"}, "sk": {"N": str(i)}} for i in range(41)]},
            }
        )
    assert _code_message(exc) == ("ValidationException", "Too many items requested for the BatchGetItem call")
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(
            RequestItems={
                hash_table: [{"PutRequest": {"Item": _key(i)}} for i in range(20)],
                range_table: [
                    {"PutRequest": {"Item": {"pk": {"S": "a"}, "sk": {"N": str(i)}}}} for i in range(6)
                ],
            }
        )
    assert _code_message(exc) == (
        "ValidationException",
        "Too many items requested for the BatchWriteItem call",
    )
    assert ddb.scan(TableName=hash_table)["Count"] == 0


def test_invalid_item_fails_whole_batch(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(
            RequestItems={
                hash_table: [{"PutRequest": {"Item": _key(1)}}, {"PutRequest": {"Item": {"x": {"S": "1"}}}}]
            }
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert ddb.scan(TableName=hash_table)["Count"] == 0


def test_missing_table(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.batch_get_item(RequestItems={"no-such-table-z": {"Keys": [_key(1)]}})
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(RequestItems={"no-such-table-z": [{"PutRequest": {"Item": _key(1)}}]})
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_sixteen_megabytes_leave_unprocessed_keys(ddb: Any, hash_table: str) -> None:
    big = "x" * 390_000
    for start in range(0, 50, 10):
        ddb.batch_write_item(
            RequestItems={
                hash_table: [
                    {"PutRequest": {"Item": {**_key(i), "d": {"S": big}}}} for i in range(start, start + 10)
                ]
            }
        )
    got = ddb.batch_get_item(
        RequestItems={hash_table: {"Keys": [_key(i) for i in range(50)], "ProjectionExpression": "pk"}}
    )
    returned = len(got["Responses"][hash_table])
    left = len(got["UnprocessedKeys"].get(hash_table, {}).get("Keys", []))
    assert returned + left == 50
    assert left > 0
    assert got["UnprocessedKeys"][hash_table]["ProjectionExpression"] == "pk"


def test_unread_writes_replace_and_delete(ddb: Any, hash_table: str) -> None:
    """Writes that nobody needs the old item of are not read first (writes.ItemWrite.can_be_blind): an
    overwrite still replaces the whole item, a delete still deletes, and ALL_OLD still sees the old item."""
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "blind-1"}, "a": {"S": "old"}, "b": {"N": "1"}})
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "blind-2"}, "a": {"S": "gone"}})
    ddb.batch_write_item(
        RequestItems={
            hash_table: [
                {"PutRequest": {"Item": {"pk": {"S": "blind-1"}, "a": {"S": "new"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "blind-2"}}}},
            ]
        }
    )
    assert ddb.get_item(TableName=hash_table, Key={"pk": {"S": "blind-1"}})["Item"] == {
        "pk": {"S": "blind-1"},
        "a": {"S": "new"},
    }
    assert "Item" not in ddb.get_item(TableName=hash_table, Key={"pk": {"S": "blind-2"}})
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "blind-1"}, "c": {"S": "third"}})
    old = ddb.put_item(TableName=hash_table, Item={"pk": {"S": "blind-1"}}, ReturnValues="ALL_OLD")
    assert old["Attributes"] == {"pk": {"S": "blind-1"}, "c": {"S": "third"}}
    ddb.delete_item(TableName=hash_table, Key={"pk": {"S": "blind-1"}})
    assert "Item" not in ddb.get_item(TableName=hash_table, Key={"pk": {"S": "blind-1"}})
