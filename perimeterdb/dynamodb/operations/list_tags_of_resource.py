"""ListTagsOfResource: a table's tags (at most 50, so one page)."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import tags
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:ListTagsOfResource"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, body.get("ResourceArn") or "*")]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    if not body.get("ResourceArn"):
        raise errors.validation("Invalid TableArn")
    table = await tags.tagged_table(call, body["ResourceArn"])
    return {"Tags": tags.current(table)}
