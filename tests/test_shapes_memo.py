"""Validation remembers which bodies passed by what the checks read of them (shapes._validity_key): a body
that differs in anything checked is validated again, and fails as it would have."""

from __future__ import annotations

from typing import Any

import pytest

from perimeterdb import shapes
from perimeterdb.errors import ApiError


@pytest.fixture(autouse=True)
def _forget() -> None:
    shapes._VALID_BODIES.clear()


def _fails(operation: str, body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as raised:
        shapes.validate_request("dynamodb", operation, body)
    return raised.value


def test_a_remembered_body_passes_and_its_variants_are_checked() -> None:
    good = {"TableName": "bench-kv", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True}
    shapes.validate_request("dynamodb", "GetItem", good)
    assert len(shapes._VALID_BODIES) == 1
    shapes.validate_request("dynamodb", "GetItem", {**good, "Key": {"pk": {"S": "other"}}})
    assert len(shapes._VALID_BODIES) == 1  # attribute values are not part of the key
    assert _fails("GetItem", {**good, "ConsistentRead": "yes"}).code == "SerializationException"
    assert _fails("GetItem", {**good, "Key": {"pk": "a"}}).code == "SerializationException"
    assert _fails("GetItem", {**good, "TableName": "x"}).code == "ValidationException"
    assert _fails("GetItem", {**good, "ReturnConsumedCapacity": "ALL"}).code == "ValidationException"


def test_members_that_are_not_remembered_are_always_checked() -> None:
    body = {"TableName": "t-1", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}
    assert shapes._validity_key("dynamodb", "CreateTableInput", body) is None
    long_text = {"TableName": "t-1", "Key": {}, "ProjectionExpression": "a" * 600}
    assert shapes._validity_key("dynamodb", "GetItemInput", long_text) is None


def test_a_limit_is_part_of_the_key() -> None:
    body = {"TableName": "t-1", "Limit": 5}
    shapes.validate_request("dynamodb", "Scan", body)
    assert _fails("Scan", {**body, "Limit": 0}).code == "ValidationException"
    assert _fails("Scan", {**body, "Limit": "5"}).code == "SerializationException"
