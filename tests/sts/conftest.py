"""An in-process identity store (SQLite in a temp dir) and QueryCall builders, for cross-account cases the
single-account test server cannot set up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perimeterdb.auth.principal import Principal
from perimeterdb.auth.secretbox import SecretBox
from perimeterdb.authz import Authorizer
from perimeterdb.iam.call import QueryCall
from perimeterdb.server.network import NetworkOrigin
from perimeterdb.storage.sqlite import SQLiteEngine
from perimeterdb.world.identities import IdentityStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IdentityStore]:
    engine = SQLiteEngine(tmp_path / "db.sqlite3", durability="normal")
    yield IdentityStore(engine, SecretBox(tmp_path / "key"))
    engine.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def root(account: str) -> Principal:
    arn = f"arn:aws:iam::{account}:root"
    return Principal(arn=arn, principal_arn=arn, account=account, kind="Account", userid=account)


def call(
    store: IdentityStore, principal: Principal, params: dict[str, Any], now: float | None = None
) -> QueryCall:
    extra: dict[str, Any] = {"now": now} if now is not None else {}
    authorizer = Authorizer(store, catalog=None)  # role ARNs never need the table catalog
    origin = NetworkOrigin(source_ip="127.0.0.1", local_ip="127.0.0.1", local_port=0)
    return QueryCall(
        operation="", params=params, principal=principal, store=store, authorizer=authorizer, origin=origin, **extra
    )
