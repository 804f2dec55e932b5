"""UntagResource: remove tags from a table by key (absent keys are ignored)."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import tags
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:UntagResource"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, body.get("ResourceArn") or "*")]


async def run(body: dict[str, Any], call: Call) -> None:  # (no output: an empty body, as DynamoDB)
    if not body.get("ResourceArn"):
        raise errors.validation("Invalid TableArn")
    keys = body.get("TagKeys")
    if not keys:
        raise errors.validation("Atleast one Tag Key needs to be provided as Input.")
    for key in keys:
        if not key or len(key) > tags.MAX_KEY:
            raise errors.validation(f"The Tag Key provided is invalid, Key: {key}")
    if len(keys) > tags.MAX_TAGS:
        raise errors.validation("Number of Tags exceed the current limit for the provided ResourceArn")
    table = await tags.tagged_table(call, body["ResourceArn"])
    doomed = set(keys)
    await tags.update(call, table, lambda existing: [t for t in existing if t["Key"] not in doomed])
