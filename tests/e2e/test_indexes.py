"""Secondary indexes through boto3: maintenance on every write, projections, Query/Scan, UpdateTable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def indexed(ddb: Any, table_name: str) -> Iterator[str]:
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
            {"AttributeName": "gs", "AttributeType": "N"},
            {"AttributeName": "ls", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "all",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "gs", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "keys",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "incl",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "gs", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["extra"]},
            },
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "local",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "ls", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield table_name
    ddb.delete_table(TableName=table_name)


def _put(ddb: Any, table: str, pk: str, sk: str, **attrs: Any) -> None:
    item = {"pk": {"S": pk}, "sk": {"S": sk}}
    for name, value in attrs.items():
        item[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    ddb.put_item(TableName=table, Item=item)


def _q(ddb: Any, table: str, index: str, condition: str, values: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return ddb.query(  # type: ignore[no-any-return]
        TableName=table,
        IndexName=index,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=values,
        **kw,
    )


def test_gsi_query_orders_by_index_key_and_projects(ddb: Any, indexed: str) -> None:
    _put(ddb, indexed, "p1", "a", g="G", gs=3, extra="e1", oth="o1")
    _put(ddb, indexed, "p2", "b", g="G", gs=1, extra="e2", oth="o2")
    _put(ddb, indexed, "p3", "c", g="G", gs=2, oth="o3")
    _put(ddb, indexed, "p4", "d", g="H", gs=1)
    _put(ddb, indexed, "p5", "e", oth="not indexed")  # sparse: no g
    out = _q(ddb, indexed, "all", "g = :g", {":g": {"S": "G"}})
    assert [i["pk"]["S"] for i in out["Items"]] == ["p2", "p3", "p1"]
    assert out["Items"][0]["oth"] == {"S": "o2"}
    out = _q(ddb, indexed, "incl", "g = :g AND gs >= :n", {":g": {"S": "G"}, ":n": {"N": "2"}})
    assert out["Items"] == [
        {"pk": {"S": "p3"}, "sk": {"S": "c"}, "g": {"S": "G"}, "gs": {"N": "2"}},
        {"pk": {"S": "p1"}, "sk": {"S": "a"}, "g": {"S": "G"}, "gs": {"N": "3"}, "extra": {"S": "e1"}},
    ]
    out = _q(ddb, indexed, "keys", "g = :g", {":g": {"S": "G"}})
    assert sorted(i["pk"]["S"] for i in out["Items"]) == ["p1", "p2", "p3"]
    assert all(set(i) == {"pk", "sk", "g"} for i in out["Items"])
    out = _q(ddb, indexed, "all", "g = :g", {":g": {"S": "G"}}, ScanIndexForward=False, Limit=2)
    assert [i["pk"]["S"] for i in out["Items"]] == ["p1", "p3"]
    assert out["LastEvaluatedKey"] == {"pk": {"S": "p3"}, "sk": {"S": "c"}, "g": {"S": "G"}, "gs": {"N": "2"}}
    rest = _q(
        ddb,
        indexed,
        "all",
        "g = :g",
        {":g": {"S": "G"}},
        ScanIndexForward=False,
        ExclusiveStartKey=out["LastEvaluatedKey"],
    )
    assert [i["pk"]["S"] for i in rest["Items"]] == ["p2"]


def test_index_follows_updates_and_deletes(ddb: Any, indexed: str) -> None:
    _put(ddb, indexed, "p1", "a", g="G", gs=1)
    ddb.update_item(
        TableName=indexed,
        Key={"pk": {"S": "p1"}, "sk": {"S": "a"}},
        UpdateExpression="SET g = :h",
        ExpressionAttributeValues={":h": {"S": "H"}},
    )
    assert _q(ddb, indexed, "all", "g = :g", {":g": {"S": "G"}})["Count"] == 0
    assert _q(ddb, indexed, "all", "g = :g", {":g": {"S": "H"}})["Count"] == 1
    ddb.update_item(
        TableName=indexed, Key={"pk": {"S": "p1"}, "sk": {"S": "a"}}, UpdateExpression="REMOVE gs"
    )
    assert _q(ddb, indexed, "all", "g = :g", {":g": {"S": "H"}})["Count"] == 0
    assert _q(ddb, indexed, "keys", "g = :g", {":g": {"S": "H"}})["Count"] == 1
    ddb.delete_item(TableName=indexed, Key={"pk": {"S": "p1"}, "sk": {"S": "a"}})
    assert _q(ddb, indexed, "keys", "g = :g", {":g": {"S": "H"}})["Count"] == 0


def test_many_items_with_one_index_key_page_correctly(ddb: Any, indexed: str) -> None:
    for i in range(9):
        _put(ddb, indexed, f"p{i}", "s", g="same")
    seen: list[str] = []
    kwargs: dict[str, Any] = {}
    for _ in range(20):
        out = _q(ddb, indexed, "keys", "g = :g", {":g": {"S": "same"}}, Limit=2, **kwargs)
        seen += [i["pk"]["S"] for i in out["Items"]]
        if "LastEvaluatedKey" not in out:
            break
        kwargs = {"ExclusiveStartKey": out["LastEvaluatedKey"]}
    assert sorted(seen) == [f"p{i}" for i in range(9)] and len(seen) == 9


def test_lsi_query_fetches_unprojected_attributes(ddb: Any, indexed: str) -> None:
    _put(ddb, indexed, "p", "a", ls=2, oth="x")
    _put(ddb, indexed, "p", "b", ls=1, oth="y")
    _put(ddb, indexed, "p", "c")
    out = _q(ddb, indexed, "local", "pk = :p", {":p": {"S": "p"}})
    assert [i["sk"]["S"] for i in out["Items"]] == ["b", "a"]
    assert set(out["Items"][0]) == {"pk", "sk", "ls"}
    out = _q(
        ddb, indexed, "local", "pk = :p", {":p": {"S": "p"}}, Select="ALL_ATTRIBUTES", ConsistentRead=True
    )
    assert out["Items"][0]["oth"] == {"S": "y"}
    out = _q(
        ddb,
        indexed,
        "local",
        "pk = :p AND ls > :n",
        {":p": {"S": "p"}, ":n": {"N": "1"}},
        ProjectionExpression="oth",
    )
    assert out["Items"] == [{"oth": {"S": "x"}}]


def test_gsi_read_rules(ddb: Any, indexed: str) -> None:
    cases = [
        ({"ConsistentRead": True}, "Consistent reads are not supported on global secondary indexes"),
        (
            {"Select": "ALL_ATTRIBUTES"},
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global "
            "secondary index keys because its projection type is not ALL",
        ),
        (
            {"ProjectionExpression": "oth"},
            "One or more parameter values were invalid: Global secondary index keys does not project [oth]",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ClientError) as exc:
            _q(ddb, indexed, "keys", "g = :g", {":g": {"S": "G"}}, **kwargs)
        assert exc.value.response["Error"]["Message"] == message
    with pytest.raises(ClientError) as exc:
        _q(ddb, indexed, "all", "pk = :g", {":g": {"S": "G"}})
    assert exc.value.response["Error"]["Message"] == "Query condition missed key schema element: g"


def test_index_key_type_is_checked_on_write(ddb: Any, indexed: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=indexed, Item={"pk": {"S": "p"}, "sk": {"S": "s"}, "gs": {"S": "text"}})
    assert "Type mismatch for Index Key gs Expected: N Actual: S" in exc.value.response["Error"]["Message"]


def test_scan_index_and_describe_counts(ddb: Any, indexed: str) -> None:
    _put(ddb, indexed, "p1", "a", g="G", gs=1)
    _put(ddb, indexed, "p2", "a", g="G")
    _put(ddb, indexed, "p3", "a")
    out = ddb.scan(TableName=indexed, IndexName="all")
    assert [i["pk"]["S"] for i in out["Items"]] == ["p1"]
    assert ddb.scan(TableName=indexed, IndexName="keys", Select="COUNT")["Count"] == 2
    table = ddb.describe_table(TableName=indexed)["Table"]
    assert table["ItemCount"] == 3
    counts = {i["IndexName"]: i["ItemCount"] for i in table["GlobalSecondaryIndexes"]}
    assert counts == {"all": 1, "keys": 2, "incl": 1}
    assert table["LocalSecondaryIndexes"][0]["ItemCount"] == 0


def test_update_table_adds_gsi_with_backfill_and_removes_it(ddb: Any, hash_table: str) -> None:
    for i in range(30):
        item = {"pk": {"S": f"p{i}"}, "color": {"S": "red" if i % 2 else "blue"}}
        ddb.put_item(TableName=hash_table, Item=item)
    out = ddb.update_table(
        TableName=hash_table,
        AttributeDefinitions=[{"AttributeName": "color", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "bycolor",
                    "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )
    gsi = out["TableDescription"]["GlobalSecondaryIndexes"][0]
    assert gsi["IndexName"] == "bycolor" and gsi["IndexStatus"] in ("CREATING", "ACTIVE")
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "late"}, "color": {"S": "red"}})
    status = ""
    for _ in range(100):
        status = ddb.describe_table(TableName=hash_table)["Table"]["GlobalSecondaryIndexes"][0]["IndexStatus"]
        if status == "ACTIVE":
            break
        time.sleep(0.05)
    assert status == "ACTIVE"
    red = _q(ddb, hash_table, "bycolor", "color = :c", {":c": {"S": "red"}})
    assert red["Count"] == 16
    ddb.update_table(TableName=hash_table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "bycolor"}}])
    for _ in range(100):
        if "GlobalSecondaryIndexes" not in ddb.describe_table(TableName=hash_table)["Table"]:
            break
        time.sleep(0.05)
    assert "GlobalSecondaryIndexes" not in ddb.describe_table(TableName=hash_table)["Table"]
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "after"}, "color": {"S": "red"}})
