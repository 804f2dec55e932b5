"""ListTables: the caller's tables in the request's region, in name order, paginated."""

from __future__ import annotations

from typing import Any

from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:ListTables"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, "*")]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    limit = body.get("Limit", 100)
    start = body.get("ExclusiveStartTableName")
    names = await call.catalog.list_names(call.account, call.region)
    if start is not None:
        names = [n for n in names if n > start]
    page = names[:limit]
    out: dict[str, Any] = {"TableNames": page}
    if len(names) > limit:
        out["LastEvaluatedTableName"] = page[-1]
    return out
