"""Shared fixtures: one real server process for the suite, and boto3 clients signed with its admin key.

Hypothesis runs reproducibly everywhere in the suite (derandomized, no example database), so that CI never
fails on an example a previous run happened to find; ``PERIMETERDB_FUZZ_EXAMPLES`` raises the count of the
fuzz tests for a longer local run (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.support.server import ServerProcess

# Loaded here, before any test module is imported: a test's own @settings(...) takes the rest from it.
settings.register_profile(
    "perimeterdb-reproducible",
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.load_profile("perimeterdb-reproducible")


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
