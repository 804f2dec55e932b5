"""TransactWriteItems and TransactGetItems through boto3: all or nothing, reasons, idempotency."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess


def _key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


def _get(ddb: Any, table: str, name: str) -> dict[str, Any] | None:
    return ddb.get_item(TableName=table, Key=_key(name), ConsistentRead=True).get("Item")  # type: ignore[no-any-return]


def test_all_actions_commit_together(ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={**_key("upd"), "n": {"N": "1"}})
    ddb.put_item(TableName=hash_table, Item={**_key("del")})
    ddb.put_item(TableName=hash_table, Item={**_key("chk"), "ok": {"BOOL": True}})
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": hash_table, "Item": {**_key("new"), "v": {"S": "x"}}}},
            {
                "Update": {
                    "TableName": hash_table,
                    "Key": _key("upd"),
                    "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": hash_table, "Key": _key("del")}},
            {
                "ConditionCheck": {
                    "TableName": hash_table,
                    "Key": _key("chk"),
                    "ConditionExpression": "ok = :t",
                    "ExpressionAttributeValues": {":t": {"BOOL": True}},
                }
            },
        ]
    )
    assert _get(ddb, hash_table, "new") == {**_key("new"), "v": {"S": "x"}}
    assert _get(ddb, hash_table, "upd") == {**_key("upd"), "n": {"N": "2"}}
    assert _get(ddb, hash_table, "del") is None


def test_cancelled_transaction_changes_nothing(ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={**_key("a"), "n": {"N": "1"}})
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": hash_table, "Item": {**_key("b")}}},
                {
                    "Update": {
                        "TableName": hash_table,
                        "Key": _key("a"),
                        "UpdateExpression": "SET n = :two",
                        "ConditionExpression": "n = :zero",
                        "ExpressionAttributeValues": {":two": {"N": "2"}, ":zero": {"N": "0"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {
                    "Delete": {
                        "TableName": hash_table,
                        "Key": _key("c"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    err = exc.value.response
    assert err["Error"]["Code"] == "TransactionCanceledException"
    assert err["Error"]["Message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, ConditionalCheckFailed, ConditionalCheckFailed]"
    )
    assert err["CancellationReasons"] == [
        {"Code": "None"},
        {
            "Code": "ConditionalCheckFailed",
            "Message": "The conditional request failed",
            "Item": {**_key("a"), "n": {"N": "1"}},
        },
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
    ]
    assert _get(ddb, hash_table, "b") is None
    assert _get(ddb, hash_table, "a") == {**_key("a"), "n": {"N": "1"}}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            lambda t: [
                {"Put": {"TableName": t, "Item": _key("x")}},
                {"Delete": {"TableName": t, "Key": _key("x")}},
            ],
            "Transaction request cannot include multiple operations on one item",
        ),
        (
            lambda t: [
                {"Put": {"TableName": t, "Item": _key("x")}, "Delete": {"TableName": t, "Key": _key("y")}}
            ],
            "TransactItems can only contain one of Check, Put, Update or Delete",
        ),
        (
            lambda t: [
                {
                    "Update": {
                        "TableName": t,
                        "Key": _key("x"),
                        "UpdateExpression": "SET pk = :v",
                        "ExpressionAttributeValues": {":v": {"S": "z"}},
                    }
                }
            ],
            "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key",
        ),
    ],
)
def test_validation(ddb: Any, hash_table: str, items: Any, message: str) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(TransactItems=items(hash_table))
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["Error"]["Message"] == message
    assert ddb.scan(TableName=hash_table)["Count"] == 0


def test_client_request_token_idempotency(ddb: Any, hash_table: str) -> None:
    token = uuid.uuid4().hex
    ddb.put_item(TableName=hash_table, Item={**_key("ctr"), "n": {"N": "0"}})
    inc = [
        {
            "Update": {
                "TableName": hash_table,
                "Key": _key("ctr"),
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
    ]
    ddb.transact_write_items(TransactItems=inc, ClientRequestToken=token)
    ddb.transact_write_items(TransactItems=inc, ClientRequestToken=token)
    assert _get(ddb, hash_table, "ctr") == {**_key("ctr"), "n": {"N": "1"}}
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": hash_table, "Item": _key("other")}}],
            ClientRequestToken=token,
        )
    assert exc.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"


def test_transactions_are_isolated(ddb: Any, server: Any, hash_table: str) -> None:
    """Concurrent transfers between two accounts never lose or create money."""
    ddb.put_item(TableName=hash_table, Item={**_key("A"), "bal": {"N": "100"}})
    ddb.put_item(TableName=hash_table, Item={**_key("B"), "bal": {"N": "100"}})

    def transfer(src: str, dst: str) -> None:
        client = server.client("dynamodb")
        for _ in range(15):
            try:
                client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": hash_table,
                                "Key": _key(src),
                                "UpdateExpression": "SET bal = bal - :one",
                                "ConditionExpression": "bal >= :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                        {
                            "Update": {
                                "TableName": hash_table,
                                "Key": _key(dst),
                                "UpdateExpression": "SET bal = bal + :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                    ]
                )
            except ClientError as error:
                assert error.response["Error"]["Code"] == "TransactionCanceledException"

    threads = [threading.Thread(target=transfer, args=pair) for pair in [("A", "B"), ("B", "A"), ("A", "B")]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    got = ddb.transact_get_items(
        TransactItems=[{"Get": {"TableName": hash_table, "Key": _key(n)}} for n in ("A", "B")]
    )
    total = sum(int(r["Item"]["bal"]["N"]) for r in got["Responses"])
    assert total == 200
    assert int(got["Responses"][0]["Item"]["bal"]["N"]) == 85


def test_transact_get_items(ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={**_key("a"), "x": {"S": "1"}, "y": {"S": "2"}})
    got = ddb.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": hash_table, "Key": _key("a"), "ProjectionExpression": "x"}},
            {"Get": {"TableName": hash_table, "Key": _key("missing")}},
        ],
        ReturnConsumedCapacity="TOTAL",
    )
    assert got["Responses"] == [{"Item": {"x": {"S": "1"}}}, {}]
    assert got["ConsumedCapacity"] == [
        {"TableName": hash_table, "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0}
    ]
    with pytest.raises(ClientError) as exc:
        ddb.transact_get_items(
            TransactItems=[{"Get": {"TableName": hash_table, "Key": _key("a")}}] * 2,
        )
    assert (
        exc.value.response["Error"]["Message"]
        == "Transaction request cannot include multiple operations on one item"
    )


def test_a_client_request_token_does_not_bump_the_metadata_generation(tmp_path: Path) -> None:
    """Idempotency tokens are not metadata any process caches: storing one must not make every server
    process drop its caches (and its remembered authorization decisions). Its own server, so that no other
    test's metadata change (or index backfill) moves the generation meanwhile."""
    from perimeterdb.storage.generation import Generation

    server = ServerProcess(tmp_path / "data").start()
    generation = Generation(server.data_dir / "perimeterdb.sqlite3.generation")
    try:
        ddb = server.client()
        table = ddb.create_table(
            TableName="tokens",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )["TableDescription"]
        before = generation.read()
        for n in range(3):
            ddb.transact_write_items(
                TransactItems=[{"Put": {"TableName": "tokens", "Item": {"pk": {"S": f"gen-{n}"}}}}],
                ClientRequestToken=uuid.uuid4().hex,
            )
        assert generation.read() == before
        ddb.tag_resource(ResourceArn=table["TableArn"], Tags=[{"Key": "k", "Value": "v"}])
        assert generation.read() > before  # a metadata change does move it
    finally:
        generation.close()
        server.stop()
