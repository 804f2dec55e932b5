"""Hypothesis-generated DynamoDB requests sent to a real server: every answer is a 200 or a 4xx with an
error type, never a 5xx, and the server logs no internal error.

The bodies are mostly well formed (a real table, real keys, expressions from fuzz/strategies.py) so that
requests get past validation into the operations, where the unexpected inputs do the most damage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import strategies as fs
from tests.support import raw
from tests.support.server import ServerProcess

TABLE = "fuzzed"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("fuzzserver") / "data"
    server = ServerProcess(data_dir, extra_args=["--durability", "off"]).start()
    ddb = server.client()
    ddb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "a", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_a",
                "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(3):
        ddb.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": "k"},
                "sk": {"N": str(i)},
                "a": {"S": f"x{i}"},
                "b": {"L": [{"N": "1"}, {"M": {"c": {"SS": ["a", "b"]}}}]},
                "n": {"N": "5"},
            },
        )
    yield server
    server.stop()
    log = server.log_path.read_text() if server.log_path else ""
    assert "internal error" not in log and "Traceback" not in log, log[-5000:]


_KEYS = st.one_of(
    st.just({"pk": {"S": "k"}, "sk": {"N": "1"}}),
    st.builds(lambda n: {"pk": {"S": "k"}, "sk": {"N": n}}, st.sampled_from(["0", "2", "1e125", "-0.0"])),
    st.dictionaries(st.sampled_from(["pk", "sk", "a"]), fs.attribute_values, max_size=3),
)
_ITEMS = st.builds(
    lambda key, extra: {**extra, **key},
    _KEYS,
    st.dictionaries(st.sampled_from(["a", "b", "n", "c", ""]), fs.attribute_values, max_size=3),
)


@st.composite
def requests(draw: Any) -> tuple[str, dict[str, Any]]:
    ex = draw(fs.expression_inputs())
    operation = draw(
        st.sampled_from(
            [
                "PutItem",
                "UpdateItem",
                "DeleteItem",
                "GetItem",
                "Query",
                "Scan",
                "TransactWriteItems",
                "TransactGetItems",
                "BatchWriteItem",
                "BatchGetItem",
            ]
        )
    )
    common: dict[str, Any] = {}
    if ex.get("names") is not None:
        common["ExpressionAttributeNames"] = ex["names"]
    if ex.get("values") is not None:
        common["ExpressionAttributeValues"] = ex["values"]
    returns = draw(st.sampled_from([None, "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW", "NONE", "bad"]))
    body: dict[str, Any] = {"TableName": TABLE}
    if operation == "PutItem":
        body |= {"Item": draw(_ITEMS), **common}
        if "condition" in ex:
            body["ConditionExpression"] = ex["condition"]
    elif operation in ("UpdateItem", "DeleteItem"):
        body |= {"Key": draw(_KEYS), **common}
        if "condition" in ex:
            body["ConditionExpression"] = ex["condition"]
        if operation == "UpdateItem" and "update" in ex:
            body["UpdateExpression"] = ex["update"]
    elif operation == "GetItem":
        body |= {"Key": draw(_KEYS), **common}
        if "projection" in ex:
            body["ProjectionExpression"] = ex["projection"]
    elif operation in ("Query", "Scan"):
        body |= common
        for param, member in (("projection", "ProjectionExpression"), ("filter", "FilterExpression")):
            if param in ex:
                body[member] = ex[param]
        if operation == "Query":
            body["KeyConditionExpression"] = ex.get("key_condition", "pk = :v")
        if draw(st.booleans()):
            body["IndexName"] = draw(st.sampled_from(["by_a", "nope"]))
        if draw(st.booleans()):
            body["Limit"] = draw(st.integers(-1, 3))
        if draw(st.booleans()):
            body["ExclusiveStartKey"] = draw(_KEYS)
    elif operation == "TransactWriteItems":
        kind = draw(st.sampled_from(["Put", "Update", "Delete", "ConditionCheck"]))
        entry: dict[str, Any] = {"TableName": TABLE, **common}
        if kind == "Put":
            entry["Item"] = draw(_ITEMS)
        else:
            entry["Key"] = draw(_KEYS)
        if kind == "Update":
            entry["UpdateExpression"] = ex.get("update", "SET n = n + :v")
        if "condition" in ex or kind == "ConditionCheck":
            entry["ConditionExpression"] = ex.get("condition", "attribute_exists(pk)")
        body = {
            "TransactItems": [
                {kind: entry},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": draw(_KEYS),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        }
        if draw(st.booleans()):
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    elif operation == "TransactGetItems":
        body = {
            "TransactItems": [
                {
                    "Get": {
                        "TableName": TABLE,
                        "Key": draw(_KEYS),
                        **({"ProjectionExpression": ex["projection"]} if "projection" in ex else {}),
                    }
                }
            ]
        }
    elif operation == "BatchWriteItem":
        body = {
            "RequestItems": {
                TABLE: [
                    draw(
                        st.one_of(
                            st.builds(lambda i: {"PutRequest": {"Item": i}}, _ITEMS),
                            st.builds(lambda k: {"DeleteRequest": {"Key": k}}, _KEYS),
                        )
                    )
                    for _ in range(draw(st.integers(1, 3)))
                ]
            }
        }
    else:
        body = {"RequestItems": {TABLE: {"Keys": [draw(_KEYS) for _ in range(draw(st.integers(1, 3)))]}}}
    if returns is not None and operation in ("PutItem", "UpdateItem", "DeleteItem"):
        body["ReturnValues"] = returns
    return operation, body


@settings(max_examples=int(os.environ.get("PERIMETERDB_FUZZ_EXAMPLES", "200")) // 2)
@given(requests())
def test_generated_requests_never_get_a_5xx(
    fuzz_server: ServerProcess, case: tuple[str, dict[str, Any]]
) -> None:
    operation, body = case
    key, secret = fuzz_server.admin_keys()
    try:
        payload = json.dumps(body).encode()
    except (ValueError, TypeError, RecursionError):
        return
    status, answer, _ = raw.call(fuzz_server.endpoint, operation, payload, key, secret)
    assert status < 500, (operation, body, answer)
    if status != 200:
        assert isinstance(answer, dict) and "__type" in answer, (operation, body, answer)
