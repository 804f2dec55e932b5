"""DescribeEndpoints: the regional endpoint, as DynamoDB reports it (cached for a day)."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:DescribeEndpoints"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return []  # DescribeEndpoints needs no permission in DynamoDB


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    return {"Endpoints": [{"Address": f"dynamodb.{call.region}.amazonaws.com", "CachePeriodInMinutes": 1440}]}
