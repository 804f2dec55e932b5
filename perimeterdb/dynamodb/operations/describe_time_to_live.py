"""DescribeTimeToLive: whether items of a table expire, and by which attribute."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb import ttl
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:DescribeTimeToLive"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    table = await call.table(body["TableName"])
    return {"TimeToLiveDescription": ttl.description(table)}
