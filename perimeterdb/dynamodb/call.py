"""What a DynamoDB operation receives: the validated body and the caller's place in the world.

Every operation module has the same three names (see shared/STYLE.md):
``ACTION`` (its IAM action), ``authorizations(body, call)`` (the (action, resource ARN) pairs the pipeline
must authorize before running it) and ``async run(body, call)`` (the response body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from perimeterdb import errors
from perimeterdb.auth.principal import Principal
from perimeterdb.dynamodb.catalog import Catalog, Table, table_arn
from perimeterdb.storage.engine import StorageEngine


@dataclass(slots=True)
class Call:
    account: str  # the caller's account: where unqualified table names live
    region: str  # from the signature's credential scope
    principal: Principal
    catalog: Catalog
    engine: StorageEngine
    settings: Any = None
    # Set by the pipeline: re-authorize a further (action, resource) pair discovered while running,
    # e.g. the index named by a Query. Raises AccessDeniedException when denied.
    authorize: Callable[..., Awaitable[None]] | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    host: str | None = None  # the host (and port) the client called, when its Host header named one plainly

    def resolve_table_name(self, name: str) -> tuple[str, str, str]:
        """(account, region, table name) for a table name or a table ARN given in the request."""
        if name.startswith("arn:"):
            parts = name.split(":", 5)
            if len(parts) == 6 and parts[2] == "dynamodb" and parts[5].startswith("table/"):
                table = parts[5][len("table/") :].split("/", 1)[0]
                return parts[4], parts[3], table
            raise errors.validation(f"Invalid TableName: {name}")
        return self.account, self.region, name

    def table_arn(self, name: str) -> str:
        account, region, table = self.resolve_table_name(name)
        return table_arn(region, account, table)

    async def table(self, name: str) -> Table:
        """The table named in a control-plane request (missing: "…: Table: NAME not found")."""
        account, region, table = self.resolve_table_name(name)
        return await self.catalog.get(account, region, table)

    async def data_table(self, name: str) -> Table:
        """The table named in a data-plane request; DynamoDB's data plane does not name a missing table."""
        account, region, table = self.resolve_table_name(name)
        found = await self.catalog.find(account, region, table)
        if found is None:
            raise errors.resource_not_found()
        return found


class Operation(Protocol):
    ACTION: str

    def authorizations(self, body: dict[str, Any], call: Call) -> list[tuple[str, str]]: ...

    async def run(self, body: dict[str, Any], call: Call) -> dict[str, Any] | None: ...  # None: no output
