"""Bounded random bad input for every operation: always a 4xx with an error type, never a 500."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.loaders import Loader

from perimeterdb.server.targets import DYNAMODB_OPERATIONS, dynamodb_operation
from tests.support import raw

MODEL = Loader().load_service_model("dynamodb", "service-2")
SCALARS: list[Any] = [None, True, 0, -1, 1.5, 2**40, "", "x", "#", ":v", "a" * 300, [], {}, [1], {"S": "x"}]


def _junk(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(SCALARS)
    if roll < 0.75:
        return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        rng.choice(["S", "N", "B", "M", "L", "SS", "pk", "Key", "Item"]): _junk(rng, depth + 1)
        for _ in range(rng.randint(0, 3))
    }


def _body(rng: random.Random, operation: str, table: str) -> dict[str, Any]:
    shape = MODEL["shapes"][MODEL["operations"][operation]["input"]["shape"]]
    body: dict[str, Any] = {}
    for name in shape.get("members", {}):
        if rng.random() < 0.6:
            body[name] = _junk(rng)
    if rng.random() < 0.7 and "TableName" in shape.get("members", {}):
        body["TableName"] = table
    return body


@pytest.mark.parametrize(
    "operation", [op for op in DYNAMODB_OPERATIONS if dynamodb_operation(op) is not None]
)
def test_random_bodies_never_crash(server: Any, hash_table: str, operation: str) -> None:
    key, secret = server.admin_keys()
    rng = random.Random(f"{operation}-1")
    target = "no-such-table" if operation == "DeleteTable" else hash_table
    for _ in range(25):
        body = _body(rng, operation, target)
        status, payload, _ = raw.call(server.endpoint, operation, body, key, secret)
        assert status != 500, (operation, body, payload)
        if status != 200:
            assert 400 <= status < 500
            assert isinstance(payload, dict) and "__type" in payload, (operation, body, payload)
    # The table is still there and usable afterwards.
    status, payload, _ = raw.call(server.endpoint, "DescribeTable", {"TableName": hash_table}, key, secret)
    assert status == 200, payload
