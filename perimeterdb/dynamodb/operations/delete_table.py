"""DeleteTable: refuse while deletion protection is on; otherwise drop the table and its indexes."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.operations.describe_table import describe

ACTION = "dynamodb:DeleteTable"
_DELETE_FIELDS = frozenset(
    {
        "TableName",
        "TableArn",
        "TableId",
        "TableStatus",
        "TableSizeBytes",
        "ItemCount",
        "ProvisionedThroughput",
        "BillingModeSummary",
        "TableClassSummary",
        "SSEDescription",
        "StreamSpecification",
        "LatestStreamLabel",
        "LatestStreamArn",
        "DeletionProtectionEnabled",
    }
)


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    table = await call.table(body["TableName"])
    if table.description.get("DeletionProtectionEnabled"):
        raise errors.validation(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion "
            "protection first."
        )
    described = await describe(table, call)
    await call.catalog.delete(table)
    # DynamoDB's DeleteTable answers with a summary, not the whole description: no schema, no creation
    # time and no index descriptions.
    out = {k: v for k, v in described.items() if k in _DELETE_FIELDS}
    out["TableStatus"] = "DELETING"
    return {"TableDescription": out}
