"""DescribeContinuousBackups: backups are available; point-in-time recovery is disabled, as on a new DynamoDB
table (a missing table is TableNotFoundException, as for DynamoDB's backup operations)."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:DescribeContinuousBackups"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    account, region, name = call.resolve_table_name(body["TableName"])
    if await call.catalog.find(account, region, name) is None:
        raise errors.table_not_found(name)
    return {
        "ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
        }
    }
