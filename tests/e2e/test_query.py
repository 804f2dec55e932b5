"""Query through boto3: key conditions, filters, Select, paging, 1 MB pages and capacity."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def _fill(ddb: Any, table: str, pk: str, count: int, **extra: Any) -> None:
    for i in range(count):
        item = {"pk": {"S": pk}, "sk": {"N": str(i)}, "v": {"N": str(i % 3)}}
        item.update(extra)
        ddb.put_item(TableName=table, Item=item)


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_key_condition_ranges(ddb: Any, range_table: str) -> None:
    _fill(ddb, range_table, "a", 10)
    _fill(ddb, range_table, "b", 3)

    def sks(condition: str, values: dict[str, Any], **kw: Any) -> list[int]:
        out = ddb.query(
            TableName=range_table, KeyConditionExpression=condition, ExpressionAttributeValues=values, **kw
        )
        return [int(i["sk"]["N"]) for i in out["Items"]]

    a = {":p": {"S": "a"}}
    assert sks("pk = :p", a) == list(range(10))
    assert sks("pk = :p", a, ScanIndexForward=False) == list(range(9, -1, -1))
    assert sks("pk = :p AND sk < :x", {**a, ":x": {"N": "3"}}) == [0, 1, 2]
    assert sks("pk = :p AND sk <= :x", {**a, ":x": {"N": "3"}}) == [0, 1, 2, 3]
    assert sks("pk = :p AND sk > :x", {**a, ":x": {"N": "7"}}) == [8, 9]
    assert sks("pk = :p AND sk >= :x", {**a, ":x": {"N": "7"}}) == [7, 8, 9]
    assert sks("pk = :p AND sk = :x", {**a, ":x": {"N": "4"}}) == [4]
    assert sks("pk = :p AND sk BETWEEN :x AND :y", {**a, ":x": {"N": "2"}, ":y": {"N": "5"}}) == [2, 3, 4, 5]
    assert sks(":x < sk AND pk = :p", {**a, ":x": {"N": "7"}}) == [8, 9]
    assert sks("pk = :p", {":p": {"S": "zzz"}}) == []


def test_begins_with_on_string_sort_key(ddb: Any, table_name: str) -> None:
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        for sk in ["a", "ab", "abc", "abd", "b", "ba"]:
            ddb.put_item(TableName=table_name, Item={"pk": {"S": "p"}, "sk": {"S": sk}})
        out = ddb.query(
            TableName=table_name,
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": {"S": "p"}, ":s": {"S": "ab"}},
        )
        assert [i["sk"]["S"] for i in out["Items"]] == ["ab", "abc", "abd"]
    finally:
        ddb.delete_table(TableName=table_name)


def test_legacy_key_conditions_and_query_filter(ddb: Any, range_table: str) -> None:
    _fill(ddb, range_table, "a", 9)
    out = ddb.query(
        TableName=range_table,
        KeyConditions={
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
            "sk": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "3"}]},
        },
        QueryFilter={"v": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "0"}]}},
    )
    assert [int(i["sk"]["N"]) for i in out["Items"]] == [3, 6]
    assert out["Count"] == 2
    assert out["ScannedCount"] == 6


def test_filter_counts_and_limit(ddb: Any, range_table: str) -> None:
    _fill(ddb, range_table, "a", 10)
    out = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p",
        FilterExpression="v = :z",
        ExpressionAttributeValues={":p": {"S": "a"}, ":z": {"N": "0"}},
        Limit=5,
    )
    assert [int(i["sk"]["N"]) for i in out["Items"]] == [0, 3]
    assert out["Count"] == 2
    assert out["ScannedCount"] == 5
    assert out["LastEvaluatedKey"] == {"pk": {"S": "a"}, "sk": {"N": "4"}}


def test_pagination_visits_every_item_once(ddb: Any, range_table: str) -> None:
    _fill(ddb, range_table, "a", 11)
    for forward in (True, False):
        seen: list[int] = []
        kwargs: dict[str, Any] = {}
        for _ in range(20):
            out = ddb.query(
                TableName=range_table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "a"}},
                Limit=3,
                ScanIndexForward=forward,
                **kwargs,
            )
            seen += [int(i["sk"]["N"]) for i in out["Items"]]
            if "LastEvaluatedKey" not in out:
                break
            kwargs = {"ExclusiveStartKey": out["LastEvaluatedKey"]}
        expected = list(range(11)) if forward else list(range(10, -1, -1))
        assert seen == expected


def test_paginator(ddb: Any, range_table: str) -> None:
    _fill(ddb, range_table, "a", 7)
    pages = ddb.get_paginator("query").paginate(
        TableName=range_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "a"}},
        PaginationConfig={"PageSize": 2},
    )
    assert sum(len(p["Items"]) for p in pages) == 7


def test_select_count_and_projection(ddb: Any, range_table: str) -> None:
    _fill(ddb, range_table, "a", 4, extra={"M": {"x": {"S": "y"}, "z": {"N": "1"}}})
    out = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "a"}},
        Select="COUNT",
    )
    assert out["Count"] == 4 and "Items" not in out
    out = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "a"}},
        ProjectionExpression="sk, #e.x",
        ExpressionAttributeNames={"#e": "extra"},
    )
    assert out["Items"][0] == {"sk": {"N": "0"}, "extra": {"M": {"x": {"S": "y"}}}}
    out = ddb.query(
        TableName=range_table,
        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
        AttributesToGet=["v"],
        Select="SPECIFIC_ATTRIBUTES",
    )
    assert out["Items"][1] == {"v": {"N": "1"}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"Select": "COUNT", "ProjectionExpression": "sk"},
            "Cannot specify the ProjectionExpression when choosing to get only the Count",
        ),
        (
            {"Select": "ALL_ATTRIBUTES", "ProjectionExpression": "sk"},
            "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES",
        ),
        (
            {"Select": "ALL_PROJECTED_ATTRIBUTES"},
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        ),
        (
            {"Select": "SPECIFIC_ATTRIBUTES"},
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
        ),
        ({"IndexName": "nope"}, "The table does not have the specified index: nope"),
        (
            {"FilterExpression": "sk > :p"},
            "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk",
        ),
    ],
)
def test_select_and_index_validation(
    ddb: Any, range_table: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.query(
            TableName=range_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
            **kwargs,
        )
    assert _error(exc) == ("ValidationException", message)


@pytest.mark.parametrize(
    ("condition", "values", "message"),
    [
        ("sk = :n", {":n": {"N": "1"}}, "Query condition missed key schema element: pk"),
        (
            "pk = :p AND v = :n",
            {":p": {"S": "a"}, ":n": {"N": "1"}},
            "Query condition missed key schema element: sk",
        ),
        ("pk < :p", {":p": {"S": "a"}}, "Query key condition not supported"),
        (
            "pk = :n",
            {":n": {"N": "1"}},
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
    ],
)
def test_key_condition_errors(
    ddb: Any, range_table: str, condition: str, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=range_table, KeyConditionExpression=condition, ExpressionAttributeValues=values)
    assert _error(exc) == ("ValidationException", message)


def test_missing_key_condition(ddb: Any, range_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=range_table)
    assert _error(exc) == (
        "ValidationException",
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
    )


def test_start_key_errors(ddb: Any, range_table: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.query(
            TableName=range_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
            ExclusiveStartKey={"pk": {"S": "a"}},
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["Error"]["Message"].startswith("The provided starting key is invalid")
    with pytest.raises(ClientError) as exc:
        ddb.query(
            TableName=range_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
            ExclusiveStartKey={"pk": {"S": "b"}, "sk": {"N": "1"}},
        )
    assert _error(exc) == (
        "ValidationException",
        "The provided starting key is outside query boundaries based on provided conditions",
    )


def test_missing_table(ddb: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.query(
            TableName="no-such-table-x",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
        )
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_one_megabyte_page(ddb: Any, range_table: str) -> None:
    big = "x" * 300_000
    for i in range(5):
        ddb.put_item(TableName=range_table, Item={"pk": {"S": "big"}, "sk": {"N": str(i)}, "d": {"S": big}})
    out = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "big"}},
        Select="COUNT",
    )
    assert out["ScannedCount"] == 4
    assert out["LastEvaluatedKey"] == {"pk": {"S": "big"}, "sk": {"N": "3"}}
    rest = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "big"}},
        Select="COUNT",
        ExclusiveStartKey=out["LastEvaluatedKey"],
    )
    assert rest["Count"] == 1 and "LastEvaluatedKey" not in rest


def test_one_megabyte_page_of_whole_items(ddb: Any, range_table: str) -> None:
    """Whole items go out as stored, sized only when the stored bytes reach the limit: the page must end
    where DynamoDB's sizes end it, with or without ConsumedCapacity (which sizes every item)."""
    big = "y" * 300_000
    for i in range(5):
        ddb.put_item(TableName=range_table, Item={"pk": {"S": "whole"}, "sk": {"N": str(i)}, "d": {"S": big}})
    for extra in ({}, {"ReturnConsumedCapacity": "TOTAL"}):
        out = ddb.query(
            TableName=range_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "whole"}},
            **extra,
        )
        assert out["ScannedCount"] == out["Count"] == 4
        assert [item["sk"]["N"] for item in out["Items"]] == ["0", "1", "2", "3"]
        assert all(item["d"]["S"] == big for item in out["Items"])
        assert out["LastEvaluatedKey"] == {"pk": {"S": "whole"}, "sk": {"N": "3"}}


def test_consumed_capacity(ddb: Any, range_table: str) -> None:
    _fill(ddb, range_table, "a", 2)
    out = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "a"}},
        ReturnConsumedCapacity="TOTAL",
    )
    assert out["ConsumedCapacity"]["TableName"] == range_table
    assert out["ConsumedCapacity"]["CapacityUnits"] == 0.5
    out = ddb.query(
        TableName=range_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "a"}},
        ReturnConsumedCapacity="INDEXES",
        ConsistentRead=True,
    )
    assert out["ConsumedCapacity"]["CapacityUnits"] == 1.0
    assert out["ConsumedCapacity"]["Table"]["CapacityUnits"] == 1.0
