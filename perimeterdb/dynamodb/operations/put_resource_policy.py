"""PutResourcePolicy: attach (or replace) the resource-based policy of a table or its stream."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb import resource_policies
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:PutResourcePolicy"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, body["ResourceArn"])]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    found = await resource_policies.target(call, body["ResourceArn"])
    resource_policies.validate_policy(body["Policy"])
    revision = await resource_policies.change(call, found, body["Policy"], body.get("ExpectedRevisionId"))
    return {"RevisionId": revision}
