"""Shared fixtures: one real server process for the suite, and boto3 clients signed with its admin key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("server") / "data"
    proc = ServerProcess(data_dir, extra_args=["--durability", "normal", "--ttl-interval", "0.5"]).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def ddb(server: ServerProcess) -> Any:
    return server.client("dynamodb")


@pytest.fixture
def table_name() -> str:
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture
def hash_table(ddb: Any, table_name: str) -> Iterator[str]:
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield table_name
    ddb.delete_table(TableName=table_name)


@pytest.fixture
def range_table(ddb: Any, table_name: str) -> Iterator[str]:
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield table_name
    ddb.delete_table(TableName=table_name)
