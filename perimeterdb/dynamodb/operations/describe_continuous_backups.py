"""DescribeContinuousBackups: backups are available; point-in-time recovery is reported disabled."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:DescribeContinuousBackups"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    await call.table(body["TableName"])
    return {
        "ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
        }
    }
