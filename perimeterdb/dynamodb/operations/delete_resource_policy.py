"""DeleteResourcePolicy: remove the resource-based policy of a table or its stream."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb import resource_policies
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:DeleteResourcePolicy"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, body["ResourceArn"])]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    found = await resource_policies.target(call, body["ResourceArn"])
    if found.field == "_resource_policy" and found.table.description.get("_resource_policy"):
        from perimeterdb.dynamodb.operations.put_resource_policy import check_invariants

        await check_invariants(call, found.table, None)  # its Deny may be what keeps an invariant true
    revision = await resource_policies.change(call, found, None, body.get("ExpectedRevisionId"))
    return {"RevisionId": revision}
