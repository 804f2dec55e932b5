"""Bounded random bad input for every operation: always a 4xx with an error type, never a 500."""

from __future__ import annotations

import random
from typing import Any

import orjson
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


# --- Type confusion at every member, generated from botocore's model (issue 13) ---------------------------------

SHAPES = MODEL["shapes"]
CONFUSERS: list[Any] = [None, 0, 1.5, True, "x", "", [], {}, [None], {"k": None}, {"S": None}, [{}], -(2**63)]
_MAX_DEPTH = 6


def _minimal(shape_name: str, member: str, table: str, depth: int = 0) -> Any:
    """A small value of the shape that the model accepts, aimed at the test table where a name is asked."""
    shape = SHAPES[shape_name]
    kind = shape["type"]
    if shape_name == "AttributeValue":
        return {"S": "a"}
    if kind == "structure":
        if depth > _MAX_DEPTH:
            return {}
        return {
            name: _minimal(m["shape"], name, table, depth + 1)
            for name, m in shape.get("members", {}).items()
            if name in shape.get("required", ())
        }
    if kind == "list":
        return [_minimal(shape["member"]["shape"], member, table, depth + 1)] if depth <= _MAX_DEPTH else []
    if kind == "map":
        if shape["value"]["shape"] == "AttributeValue":
            return {"pk": {"S": "a"}}
        key = table if member in ("RequestItems",) else "k"
        return (
            {key: _minimal(shape["value"]["shape"], member, table, depth + 1)} if depth <= _MAX_DEPTH else {}
        )
    if kind == "string":
        if "enum" in shape:
            return shape["enum"][0]
        if member in ("TableName", "TableArn", "ResourceArn"):
            return table
        return "pk" if member == "AttributeName" else "x"
    if kind in ("integer", "long"):
        return max(1, shape.get("min", 1))
    if kind in ("double", "float"):
        return 1.0
    if kind == "boolean":
        return False
    if kind == "blob":
        return "AA=="
    if kind == "timestamp":
        return 0
    return None


def _member_paths(shape_name: str, depth: int = 0) -> list[tuple[tuple[Any, ...], str]]:
    """Every (path, shape) below a shape: a structure's members by name, a list's first element, a map's
    one value; attribute values are leaves (dynamodb/values.py checks inside them)."""
    shape = SHAPES[shape_name]
    if depth > _MAX_DEPTH or shape_name == "AttributeValue":
        return []
    out: list[tuple[tuple[Any, ...], str]] = []
    children: list[tuple[Any, str]] = []
    if shape["type"] == "structure":
        children = [(name, m["shape"]) for name, m in shape.get("members", {}).items()]
    elif shape["type"] == "list":
        children = [(0, shape["member"]["shape"])]
    elif shape["type"] == "map":
        children = [(None, shape["value"]["shape"])]  # None: the map's one key, chosen when building
    for step, child in children:
        out.append(((step,), child))
        out.extend(((step, *rest), leaf) for rest, leaf in _member_paths(child, depth + 1))
    return out


def _with_value(shape_name: str, member: str, path: tuple[Any, ...], leaf: Any, table: str) -> Any:
    """A minimal value of the shape whose element at ``path`` is ``leaf``."""
    if not path:
        return leaf
    shape = SHAPES[shape_name]
    step, rest = path[0], path[1:]
    if shape["type"] == "structure":
        value = _minimal(shape_name, member, table)
        child = shape["members"][step]["shape"]
        value[step] = _with_value(child, step, rest, leaf, table)
        return value
    if shape["type"] == "list":
        return [_with_value(shape["member"]["shape"], member, rest, leaf, table)]
    key = (
        table if member == "RequestItems" else ("pk" if shape["value"]["shape"] == "AttributeValue" else "k")
    )
    return {key: _with_value(shape["value"]["shape"], member, rest, leaf, table)}


def type_confused_bodies(operation: str, table: str) -> list[dict[str, Any]]:
    """Every member path of the operation's input, each with every confusing value, in a fixed order."""
    input_shape = MODEL["operations"][operation]["input"]["shape"]
    bodies = []
    for path, _ in _member_paths(input_shape):
        for leaf in CONFUSERS:
            bodies.append(_with_value(input_shape, "", path, leaf, table))
    return bodies


@pytest.mark.parametrize(
    "operation", [op for op in DYNAMODB_OPERATIONS if dynamodb_operation(op) is not None]
)
def test_type_confused_members_never_crash(server: Any, hash_table: str, operation: str) -> None:
    """A bounded sample (60 per operation, seeded) of the full sweep; the full sweep of every path and
    value was run while fixing (see ``type_confused_bodies``) and found no 5xx left."""
    key, secret = server.admin_keys()
    bodies = type_confused_bodies(operation, "no-such-table" if operation == "DeleteTable" else hash_table)
    rng = random.Random(f"{operation}-confused")
    sample = bodies if len(bodies) <= 60 else rng.sample(bodies, 60)
    for body in sample:
        status, payload, _ = raw.call(server.endpoint, operation, body, key, secret)
        assert status < 500, (operation, body, payload)
        if status != 200:
            assert isinstance(payload, dict) and "__type" in payload, (operation, body, payload)


# --- The 5xx findings of issue 13, each kept as a regression -------------------------------------------------

_NOT_NULL = "failed to satisfy constraint: Member must not be null"


@pytest.mark.parametrize(
    ("operation", "body", "where"),
    [
        ("BatchWriteItem", {"RequestItems": {"TABLE": None}}, "requestItems.TABLE.member"),
        ("BatchGetItem", {"RequestItems": {"TABLE": None}}, "requestItems.TABLE.member"),
        ("TransactGetItems", {"TransactItems": [None]}, "transactItems.1.member"),
        ("TransactWriteItems", {"TransactItems": [None]}, "transactItems.1.member"),
        (
            "GetItem",
            {"TableName": "TABLE", "Key": {"pk": {"S": "a"}}, "AttributesToGet": [None]},
            "attributesToGet.1.member",
        ),
        (
            "GetItem",
            {
                "TableName": "TABLE",
                "Key": {"pk": {"S": "a"}},
                "ProjectionExpression": "#a",
                "ExpressionAttributeNames": {"#a": None},
            },
            "expressionAttributeNames.#a.member",
        ),
        (
            "PutItem",
            {"TableName": "TABLE", "Item": {"pk": {"S": "a"}}, "Expected": {"a": None}},
            "expected.a.member",
        ),
        ("Scan", {"TableName": "TABLE", "ScanFilter": {"a": None}}, "scanFilter.a.member"),
    ],
)
def test_null_inside_a_list_or_map_is_a_validation_error(
    server: Any, hash_table: str, operation: str, body: dict[str, Any], where: str
) -> None:
    key, secret = server.admin_keys()
    body = orjson.loads(orjson.dumps(body).replace(b"TABLE", hash_table.encode()))
    status, payload, _ = raw.call(server.endpoint, operation, body, key, secret)
    assert status == 400, payload
    assert payload["__type"].endswith("#ValidationException"), payload
    assert f"Value null at '{where.replace('TABLE', hash_table)}' {_NOT_NULL}" in payload["message"], payload


def test_null_and_float_top_level_members(server: Any, hash_table: str) -> None:
    """A null member is one not set; a number where the model says integer is taken as a whole number."""
    key, secret = server.admin_keys()
    for body in ({"Limit": None}, {"Limit": 1.5}, {"Limit": 2.0}):
        status, payload, _ = raw.call(server.endpoint, "ListTables", body, key, secret)
        assert status == 200, (body, payload)
    status, payload, _ = raw.call(
        server.endpoint,
        "Scan",
        {"TableName": hash_table, "Limit": 1.0, "Segment": 0.0, "TotalSegments": 1.0},
        key,
        secret,
    )
    assert status == 200, payload


def _nested(levels: int, joiner: str = "AND") -> str:
    return "".join(f"a = :v {joiner} (" for _ in range(levels)) + "a = :v" + ")" * levels


def test_a_condition_nested_149_levels_deep_is_evaluated(server: Any, hash_table: str) -> None:
    """149 levels of ``a = :v AND (...)`` is 299 operators, within DynamoDB's 300: accepted and evaluated
    (it once raised RecursionError, then was refused as a syntax error)."""
    key, secret = server.admin_keys()
    values = {":v": {"S": "x"}}
    item = {"pk": {"S": "deep"}, "a": {"S": "x"}}
    put = {"TableName": hash_table, "Item": item}
    assert raw.call(server.endpoint, "PutItem", put, key, secret)[0] == 200
    for expression in (
        _nested(149),
        _nested(149, "OR"),
        "NOT (" * 149 + "a <> :v" + ")" * 149,
        "NOT " * 298 + "a = :v",
    ):
        status, payload, _ = raw.call(
            server.endpoint,
            "PutItem",
            {**put, "ConditionExpression": expression, "ExpressionAttributeValues": values},
            key,
            secret,
        )
        assert status == 200, (expression[:40], payload)
        status, payload, _ = raw.call(
            server.endpoint,
            "Scan",
            {"TableName": hash_table, "FilterExpression": expression, "ExpressionAttributeValues": values},
            key,
            secret,
        )
        assert status == 200 and payload["Count"] == 1, (expression[:40], payload)


@pytest.mark.parametrize(
    ("expression", "needle"),
    [
        (_nested(150), "The expression contains too many operators; operator count: 301"),
        ("NOT " * 1000 + "a = :v", "The expression contains too many operators; operator count: 1001"),
        ("(" * 1300 + "a" + ")" * 1300 + " = :v", "Syntax error"),
        ("size(" * 149 + "a" + ")" * 149 + " = :v", "Incorrect operand type"),
    ],
)
def test_too_deep_or_too_many_operators_is_a_4xx(
    server: Any, hash_table: str, expression: str, needle: str
) -> None:
    key, secret = server.admin_keys()
    status, payload, _ = raw.call(
        server.endpoint,
        "Scan",
        {
            "TableName": hash_table,
            "FilterExpression": expression,
            "ExpressionAttributeValues": {":v": {"S": "x"}},
        },
        key,
        secret,
    )
    assert status == 400, payload
    assert needle in payload["message"], payload


_RAW_BODIES = [
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"Limit": 99999999999999999999999}',
    b'{"Limit": -1e400}',
    b'{"Limit": NaN}',
    b'{"TableName": "\xff\xfe"}',
    b'{"TableName": "TABLE", "TableName": 5}',
    b'{"TableName":"TABLE","Key":{"pk":{"S":"\\ud800"}}}',
    b'{"TableName":"TABLE","Key":{"pk":{"N":"1e999999"}}}',
    b"\x00" * 10,
    b'"str"',
    b"5",
    b"null",
    b"[]",
]


@pytest.mark.parametrize(
    "operation", ["ListTables", "GetItem", "PutItem", "Query", "BatchWriteItem", "CreateTable"]
)
def test_raw_bodies_never_crash(server: Any, hash_table: str, operation: str) -> None:
    """Bodies no SDK would send, signed and unsigned: deep nesting, numbers past 64 bits, bad UTF-8, lone
    surrogates, repeated members, non-objects. (A number past 64 bits once reached the audit log as an
    integer it could not write: a 500 with no JSON.)"""
    key, secret = server.admin_keys()
    rng = random.Random(operation)
    bodies = [b.replace(b"TABLE", hash_table.encode()) for b in _RAW_BODIES]
    bodies += [rng.randbytes(rng.randint(1, 200)) for _ in range(10)]
    target = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{operation}"}
    for body in bodies:
        for status, payload in (
            raw.call(server.endpoint, operation, body, key, secret)[:2],
            raw.post(server.endpoint, target, body)[:2],
        ):
            assert 200 <= status < 500, (operation, body[:80], payload)
            if status != 200:
                assert isinstance(payload, dict) and "__type" in payload, (operation, body[:80], payload)


@pytest.fixture(scope="module")
def condition_key_reader(server: Any) -> tuple[str, str]:
    """A user whose policy reads every dynamodb:* condition key, so that authorization works them out
    from the request before the operation has validated its attribute values."""
    import json
    import uuid

    iam = server.client("iam")
    name = "ck-" + uuid.uuid4().hex[:8]
    iam.create_user(UserName=name)
    condition = {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["*"], "dynamodb:Attributes": ["*"]},
        "StringLikeIfExists": {
            "dynamodb:ReturnValues": "*",
            "dynamodb:Select": "*",
            "dynamodb:ReturnConsumedCapacity": "*",
        },
    }
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*", "Condition": condition}],
    }
    iam.put_user_policy(UserName=name, PolicyName="reads-keys", PolicyDocument=json.dumps(document))
    created = iam.create_access_key(UserName=name)["AccessKey"]
    return created["AccessKeyId"], created["SecretAccessKey"]


@pytest.mark.parametrize(
    "operation",
    [
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    ],
)
def test_type_confused_members_with_condition_keys_never_crash(
    server: Any, hash_table: str, condition_key_reader: tuple[str, str], operation: str
) -> None:
    key, secret = condition_key_reader
    bodies = type_confused_bodies(operation, hash_table)
    rng = random.Random(f"{operation}-keys")
    for body in bodies if len(bodies) <= 40 else rng.sample(bodies, 40):
        status, payload, _ = raw.call(server.endpoint, operation, body, key, secret)
        assert status < 500, (operation, body, payload)
        if status != 200:
            assert isinstance(payload, dict) and "__type" in payload, (operation, body, payload)
