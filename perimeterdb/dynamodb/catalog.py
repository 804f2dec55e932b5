"""The table catalog: each table's description, namespaced by account and region.

A table's description is kept as the JSON document DescribeTable returns (plus a few internal fields
prefixed ``_``), so describing a table is a copy, not a translation. Descriptions are cached per process.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import orjson

from perimeterdb import errors
from perimeterdb.storage.engine import Decision, Delete, Put, RowKey, StorageEngine

TABLES = "meta:tables"
R = TypeVar("R")


def table_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def _catalog_key(account: str, region: str, name: str) -> RowKey:
    return RowKey(TABLES, b"", f"{account}/{region}/{name}".encode(), b"")


@dataclass(frozen=True, slots=True)
class KeyAttr:
    name: str
    type: str  # S | N | B


@dataclass(frozen=True)
class Table:
    """A live table: its description and the parts of it the data plane reads on every request.

    A Table is built from one stored description and never changes, so the parts the data plane reads on
    every request (key attributes, types, schema) are computed once, on first use.
    """

    account: str
    region: str
    name: str
    description: dict[str, Any]

    @cached_property
    def space(self) -> str:
        return str(self.description["_space"])

    @cached_property
    def arn(self) -> str:
        return str(self.description["TableArn"])

    @cached_property
    def hash_key(self) -> KeyAttr:
        return self._key_attr("HASH")  # type: ignore[return-value]

    @cached_property
    def range_key(self) -> KeyAttr | None:
        return self._key_attr("RANGE")

    def _key_attr(self, key_type: str) -> KeyAttr | None:
        types = self.attribute_types
        for element in self.description["KeySchema"]:
            if element["KeyType"] == key_type:
                return KeyAttr(element["AttributeName"], types[element["AttributeName"]])
        return None

    @cached_property
    def key_schema(self) -> list[dict[str, str]]:
        return list(self.description["KeySchema"])

    @cached_property
    def attribute_types(self) -> dict[str, str]:
        return {d["AttributeName"]: d["AttributeType"] for d in self.description["AttributeDefinitions"]}

    def public_description(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self.description.items() if not k.startswith("_")}


def not_found(name: str) -> errors.ApiError:
    return errors.resource_not_found(f"Requested resource not found: Table: {name} not found")


class Catalog:
    def __init__(self, engine: StorageEngine) -> None:
        self.engine = engine
        self._cache: dict[tuple[str, str, str], Table | None] = {}

    async def find(self, account: str, region: str, name: str) -> Table | None:
        cache_key = (account, region, name)
        if cache_key in self._cache:
            return self._cache[cache_key]
        raw = await self.engine.get(_catalog_key(account, region, name))
        table = Table(account, region, name, orjson.loads(raw)) if raw is not None else None
        self._cache[cache_key] = table
        return table

    async def get(self, account: str, region: str, name: str) -> Table:
        table = await self.find(account, region, name)
        if table is None:
            raise not_found(name)
        return table

    async def list_names(self, account: str, region: str) -> list[str]:
        prefix = f"{account}/{region}/".encode()
        rows = await self.engine.scan(TABLES)
        return sorted(r.key.hk[len(prefix) :].decode() for r in rows if r.key.hk.startswith(prefix))

    async def all_tables(self) -> list[Table]:
        rows = await self.engine.scan(TABLES)
        tables = []
        for r in rows:
            account, region, name = r.key.hk.decode().split("/", 2)
            tables.append(Table(account, region, name, orjson.loads(r.value)))
        return tables

    async def create(self, account: str, region: str, name: str, description: dict[str, Any]) -> Table:
        description = dict(description)
        description["_space"] = "t:" + secrets.token_hex(8)
        key = _catalog_key(account, region, name)

        def decide(current: list[bytes | None]) -> Decision:
            if current[0] is not None:
                raise errors.resource_in_use(f"Table already exists: {name}")
            return Decision([Put(key, orjson.dumps(description))])

        await self.engine.atomic([key], decide)
        self._cache.pop((account, region, name), None)
        return Table(account, region, name, description)

    async def replace(self, table: Table, description: dict[str, Any]) -> Table:
        """Replace the description ``table`` was read with; refuse if it changed meanwhile.

        The check runs inside the atomic write, so two processes (or two requests) that both read the
        same description cannot both apply a change computed from it: the second one gets DynamoDB's
        ResourceInUseException and nothing is lost.
        """
        key = _catalog_key(table.account, table.region, table.name)

        def decide(current: list[bytes | None]) -> Decision:
            if current[0] is None:
                raise not_found(table.name)
            if orjson.loads(current[0]) != table.description:
                raise errors.resource_in_use(
                    f"Attempt to change a resource which is still in use: Table is being updated: {table.name}"
                )
            return Decision([Put(key, orjson.dumps(description))])

        await self.engine.atomic([key], decide)
        self._cache.pop((table.account, table.region, table.name), None)
        return Table(table.account, table.region, table.name, description)

    async def update(
        self, account: str, region: str, name: str, mutate: Callable[[dict[str, Any]], R]
    ) -> tuple[Table, R]:
        """Change a table's stored description in place: ``mutate`` (pure; it may raise ApiError) edits the
        current description, read inside the atomic write, and returns a result for the caller."""
        key = _catalog_key(account, region, name)

        def decide(current: list[bytes | None]) -> Decision:
            if current[0] is None:
                raise not_found(name)
            description = orjson.loads(current[0])
            result = mutate(description)
            return Decision([Put(key, orjson.dumps(description))], (description, result))

        description, result = await self.engine.atomic([key], decide)
        self._cache.pop((account, region, name), None)
        return Table(account, region, name, description), result

    async def delete(self, table: Table) -> None:
        key = _catalog_key(table.account, table.region, table.name)
        await self.engine.atomic([key], lambda _: Decision([Delete(key)]))
        self._cache.pop((table.account, table.region, table.name), None)
        await self.engine.drop_space(table.space)
        for index_space in table.description.get("_index_spaces", {}).values():
            await self.engine.drop_space(index_space)

    def invalidate(self) -> None:
        self._cache.clear()
