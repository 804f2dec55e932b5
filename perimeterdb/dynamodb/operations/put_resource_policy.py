"""PutResourcePolicy: attach (or replace) the resource-based policy of a table or its stream."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import resource_policies
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:PutResourcePolicy"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, body["ResourceArn"])]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    found = await resource_policies.target(call, body["ResourceArn"])
    resource_policies.validate_policy(body["Policy"])
    if found.field == "_resource_policy":
        await check_invariants(call, found.table, body["Policy"])
    revision = await resource_policies.change(call, found, body["Policy"], body.get("ExpectedRevisionId"))
    return {"RevisionId": revision}


async def check_invariants(call: Call, table: Any, policy: str | None) -> None:
    """Refuse a resource policy (None: its removal) that would break a stored world invariant of the table
    (prover_invariants.py), as DynamoDB's block public access refuses a public policy; UNKNOWN refuses too."""
    from perimeterdb.prover_invariants import message, proposed_table_policy

    violations = await proposed_table_policy(call.engine, table.arn, table.account, table.region, policy)
    if violations:
        raise errors.validation(
            f"Resource-based policy change refused for table {table.name}: it would break a world invariant "
            f"(perimeterdb prove). {message(violations)}"
        )
