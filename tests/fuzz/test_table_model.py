"""A Hypothesis state machine against a real server: a model of one table (a dict) and the server receive
the same puts, conditional updates, conditional deletes, gets, queries and queries of a global secondary
index, and must agree on every answer (which writes pass their condition, what each read returns, the
order of a query, which items the index holds after updates move them between its partitions).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.support.server import ServerProcess

PKS = st.sampled_from(["a", "b"])
SKS = st.integers(min_value=-3, max_value=3)
VERSIONS = st.integers(min_value=0, max_value=4)
DATA = st.one_of(st.text(max_size=5), st.lists(st.integers(-5, 5), max_size=3))
GS = st.none() | st.sampled_from(["x", "y"])  # the index key: absent, or one of two partitions


def _wire(data: Any) -> dict[str, Any]:
    if isinstance(data, str):
        return {"S": data}
    return {"L": [{"N": str(n)} for n in data]}


def _item(pk: str, sk: int, version: int, data: Any, g: str | None = None) -> dict[str, Any]:
    item = {"pk": {"S": pk}, "sk": {"N": str(sk)}, "v": {"N": str(version)}, "d": _wire(data)}
    if g is not None:
        item["g"] = {"S": g}
    return item


def _failed_condition(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("modelserver") / "data"
    server = ServerProcess(data_dir, extra_args=["--durability", "off"]).start()
    yield server
    server.stop()


def test_table_agrees_with_its_model(model_server: ServerProcess) -> None:
    ddb = model_server.client()
    counter = iter(range(10**6))

    class TableModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.table = f"model{next(counter)}"
            ddb.create_table(
                TableName=self.table,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"},
                    {"AttributeName": "g", "AttributeType": "S"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "by_g",
                        "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            self.model: dict[tuple[str, int], dict[str, Any]] = {}

        def teardown(self) -> None:
            ddb.delete_table(TableName=self.table)

        def _key(self, pk: str, sk: int) -> dict[str, Any]:
            return {"pk": {"S": pk}, "sk": {"N": str(sk)}}

        @rule(pk=PKS, sk=SKS, version=VERSIONS, data=DATA, guarded=st.booleans(), g=GS)
        def put(self, pk: str, sk: int, version: int, data: Any, guarded: bool, g: str | None) -> None:
            item = _item(pk, sk, version, data, g)
            kwargs: dict[str, Any] = {"TableName": self.table, "Item": item, "ReturnValues": "ALL_OLD"}
            if guarded:
                kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
            expected_ok = not guarded or (pk, sk) not in self.model
            try:
                answer = ddb.put_item(**kwargs)
            except ClientError as error:
                assert _failed_condition(error) and not expected_ok, error.response
                return
            assert expected_ok, "the server accepted a put whose condition the model says fails"
            assert answer.get("Attributes") == self.model.get((pk, sk)), answer
            self.model[(pk, sk)] = item

        @rule(pk=PKS, sk=SKS, expected=VERSIONS, data=DATA, g=GS)
        def bump(self, pk: str, sk: int, expected: int, data: Any, g: str | None) -> None:
            """A compare-and-set on the version attribute, which also moves the item in the index."""
            old = self.model.get((pk, sk))
            expected_ok = old is not None and int(old["v"]["N"]) == expected
            values = {":one": {"N": "1"}, ":d": _wire(data), ":expected": {"N": str(expected)}}
            if g is not None:
                values[":g"] = {"S": g}
            try:
                answer = ddb.update_item(
                    TableName=self.table,
                    Key=self._key(pk, sk),
                    UpdateExpression="SET v = v + :one, d = :d"
                    + (", g = :g" if g is not None else " REMOVE g"),
                    ConditionExpression="v = :expected",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            except ClientError as error:
                assert _failed_condition(error) and not expected_ok, error.response
                return
            assert expected_ok and old is not None
            new = _item(pk, sk, expected + 1, data, g)
            assert answer["Attributes"] == new, (answer, new)
            self.model[(pk, sk)] = new

        @rule(pk=PKS, sk=SKS, data=DATA)
        def upsert(self, pk: str, sk: int, data: Any) -> None:
            ddb.update_item(
                TableName=self.table,
                Key=self._key(pk, sk),
                UpdateExpression="SET v = if_not_exists(v, :zero) + :one, d = :d",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":d": _wire(data)},
            )
            old = self.model.get((pk, sk))
            version = int(old["v"]["N"]) + 1 if old else 1
            self.model[(pk, sk)] = _item(pk, sk, version, data, old["g"]["S"] if old and "g" in old else None)

        @rule(pk=PKS, sk=SKS, expected=st.none() | VERSIONS)
        def delete(self, pk: str, sk: int, expected: int | None) -> None:
            old = self.model.get((pk, sk))
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "Key": self._key(pk, sk),
                "ReturnValues": "ALL_OLD",
            }
            if expected is not None:
                kwargs["ConditionExpression"] = "v = :expected"
                kwargs["ExpressionAttributeValues"] = {":expected": {"N": str(expected)}}
            expected_ok = expected is None or (old is not None and int(old["v"]["N"]) == expected)
            try:
                answer = ddb.delete_item(**kwargs)
            except ClientError as error:
                assert _failed_condition(error) and not expected_ok, error.response
                return
            assert expected_ok
            assert answer.get("Attributes") == old, (answer, old)
            self.model.pop((pk, sk), None)

        @rule(pk=PKS, sk=SKS)
        def get(self, pk: str, sk: int) -> None:
            answer = ddb.get_item(TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True)
            assert answer.get("Item") == self.model.get((pk, sk)), (answer, self.model.get((pk, sk)))

        @rule(pk=PKS, low=SKS, forward=st.booleans(), limit=st.none() | st.integers(1, 3))
        def query(self, pk: str, low: int, forward: bool, limit: int | None) -> None:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk AND sk >= :low",
                "ExpressionAttributeValues": {":pk": {"S": pk}, ":low": {"N": str(low)}},
                "ScanIndexForward": forward,
                "ConsistentRead": True,
            }
            if limit is not None:
                kwargs["Limit"] = limit
            got: list[dict[str, Any]] = []
            for _ in range(20):
                page = ddb.query(**kwargs)
                got += page["Items"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            want = [
                self.model[k]
                for k in sorted(self.model, key=lambda k: k[1], reverse=not forward)
                if k[0] == pk and k[1] >= low
            ]
            assert got == want, (got, want)

        @rule(g=st.sampled_from(["x", "y"]), limit=st.none() | st.integers(1, 3))
        def query_index(self, g: str, limit: int | None) -> None:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": "by_g",
                "KeyConditionExpression": "g = :g",
                "ExpressionAttributeValues": {":g": {"S": g}},
            }
            if limit is not None:
                kwargs["Limit"] = limit
            got: list[dict[str, Any]] = []
            for _ in range(30):
                page = ddb.query(**kwargs)
                got += page["Items"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

            def order(item: dict[str, Any]) -> tuple[str, int]:
                return item["pk"]["S"], int(item["sk"]["N"])

            want = [item for item in self.model.values() if item.get("g") == {"S": g}]
            assert sorted(got, key=order) == sorted(want, key=order), (got, want)
            assert len(got) == len({order(item) for item in got}), "the index returned an item twice"

        @invariant()
        def versions_are_numbers(self) -> None:
            for item in self.model.values():
                assert Decimal(item["v"]["N"]) >= 0

    run_state_machine_as_test(
        TableModel,
        settings=settings(
            max_examples=15, stateful_step_count=25, deadline=None, derandomize=True, database=None
        ),
    )
