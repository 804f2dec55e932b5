"""DescribeLimits: the account's provisioned-capacity quotas (DynamoDB's defaults)."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:DescribeLimits"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, "*")]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    return {
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    }
