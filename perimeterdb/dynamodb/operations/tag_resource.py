"""TagResource: add tags to a table, or change their values."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import tags
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:TagResource"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, body.get("ResourceArn") or "*")]


async def run(body: dict[str, Any], call: Call) -> None:  # (no output: an empty body, as DynamoDB)
    if not body.get("ResourceArn"):
        raise errors.validation("Invalid TableArn")
    if not body.get("Tags"):
        raise errors.validation("Atleast one Tag needs to be provided as Input.")
    new = tags.validate_tags(body["Tags"])
    table = await tags.tagged_table(call, body["ResourceArn"])
    await tags.update(call, table, lambda existing: tags.merged(existing, new))
