"""GetResourcePolicy: the resource-based policy of a table or its stream, with its revision."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb import resource_policies
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:GetResourcePolicy"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, body["ResourceArn"])]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    found = await resource_policies.target(call, body["ResourceArn"])
    current = found.table.description.get(found.field)
    if current is None:
        raise resource_policies.not_found(body["ResourceArn"])
    return {"Policy": current["Policy"], "RevisionId": current["RevisionId"]}
