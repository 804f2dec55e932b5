"""Scan through boto3: filters, projections, pagination and parallel segments."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def _fill(ddb: Any, table: str, count: int) -> None:
    requests = [
        {"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "n": {"N": str(i)}, "odd": {"BOOL": i % 2 == 1}}}}
        for i in range(count)
    ]
    for start in range(0, count, 25):
        ddb.batch_write_item(RequestItems={table: requests[start : start + 25]})


def _scan_all(ddb: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for _ in range(200):
        out = ddb.scan(**kwargs)
        items += out["Items"]
        if "LastEvaluatedKey" not in out:
            return items
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
    raise AssertionError("scan did not finish")


def test_scan_all_filter_and_projection(ddb: Any, hash_table: str) -> None:
    _fill(ddb, hash_table, 30)
    out = ddb.scan(TableName=hash_table)
    assert out["Count"] == 30 and out["ScannedCount"] == 30
    out = ddb.scan(
        TableName=hash_table,
        FilterExpression="odd = :t AND n < :ten",
        ExpressionAttributeValues={":t": {"BOOL": True}, ":ten": {"N": "10"}},
        ProjectionExpression="n",
    )
    assert sorted(int(i["n"]["N"]) for i in out["Items"]) == [1, 3, 5, 7, 9]
    assert all(set(i) == {"n"} for i in out["Items"])
    out = ddb.scan(
        TableName=hash_table,
        ScanFilter={"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "3"}, {"N": "5"}]}},
        Select="COUNT",
    )
    assert out["Count"] == 3 and "Items" not in out


def test_scan_pagination_with_limit(ddb: Any, hash_table: str) -> None:
    _fill(ddb, hash_table, 23)
    items = _scan_all(ddb, TableName=hash_table, Limit=4)
    assert sorted(int(i["n"]["N"]) for i in items) == list(range(23))


def test_parallel_scan_covers_every_item_exactly_once(ddb: Any, hash_table: str) -> None:
    _fill(ddb, hash_table, 40)
    seen: list[int] = []
    for segment in range(4):
        seen += [
            int(i["n"]["N"])
            for i in _scan_all(ddb, TableName=hash_table, Segment=segment, TotalSegments=4, Limit=3)
        ]
    assert sorted(seen) == list(range(40))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"Segment": 1},
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is "
            "present",
        ),
        (
            {"TotalSegments": 2},
            "The Segment parameter is required but was not present in the request when parameter TotalSegments "
            "is present",
        ),
        (
            {"Segment": 2, "TotalSegments": 2},
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 2 is not "
            "less than TotalSegments: 2",
        ),
        (
            {"Select": "ALL_PROJECTED_ATTRIBUTES"},
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        ),
        (
            {"ProjectionExpression": "n", "ScanFilter": {"n": {"ComparisonOperator": "NULL"}}},
            "Can not use both expression and non-expression parameters in the same request: Non-expression "
            "parameters: {ScanFilter} Expression parameters: {ProjectionExpression}",
        ),
    ],
)
def test_scan_validation(ddb: Any, hash_table: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.scan(TableName=hash_table, **kwargs)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["Error"]["Message"] == message


def test_scan_consumed_capacity(ddb: Any, hash_table: str) -> None:
    _fill(ddb, hash_table, 3)
    out = ddb.scan(TableName=hash_table, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {
        "TableName": hash_table,
        "CapacityUnits": 0.5,
        "ReadCapacityUnits": 0.5,
    }


def test_scan_missing_table(ddb: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.scan(TableName="no-such-table-y")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
