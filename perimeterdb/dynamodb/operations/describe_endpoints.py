"""DescribeEndpoints: the endpoint the client called, as DynamoDB names its regional endpoint (cached for a
day)."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:DescribeEndpoints"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return []  # DescribeEndpoints needs no permission in DynamoDB


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    address = call.host or f"dynamodb.{call.region}.amazonaws.com"  # the host the client called
    return {"Endpoints": [{"Address": address, "CachePeriodInMinutes": 1440}]}
