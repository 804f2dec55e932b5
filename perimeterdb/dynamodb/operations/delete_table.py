"""DeleteTable: refuse while deletion protection is on; otherwise drop the table and its indexes."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.operations.describe_table import describe

ACTION = "dynamodb:DeleteTable"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    table = await call.table(body["TableName"])
    if table.description.get("DeletionProtectionEnabled"):
        raise errors.validation(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion "
            "protection first."
        )
    out = await describe(table, call)
    await call.catalog.delete(table)
    out["TableStatus"] = "DELETING"
    return {"TableDescription": out}
