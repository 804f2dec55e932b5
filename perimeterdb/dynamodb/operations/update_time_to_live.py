"""UpdateTimeToLive: enable or disable expiry of items by one numeric attribute."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import ttl
from perimeterdb.dynamodb.call import Call

ACTION = "dynamodb:UpdateTimeToLive"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    spec = body["TimeToLiveSpecification"]
    enabled = bool(spec["Enabled"])
    attribute = spec["AttributeName"]
    table = await call.table(body["TableName"])
    current = ttl.setting(table)
    if enabled and current is not None:
        raise errors.validation("TimeToLive is already enabled")
    if not enabled and current is None:
        raise errors.validation("TimeToLive is already disabled")
    if not enabled and current is not None and current["AttributeName"] != attribute:
        raise errors.validation(
            "TimeToLive is active on a different AttributeName: current AttributeName is "
            f"{current['AttributeName']}"
        )

    def mutate(description: dict[str, Any]) -> None:
        if enabled:
            description["_ttl"] = {"AttributeName": attribute, "Enabled": True}
        else:
            description.pop("_ttl", None)

    await call.catalog.update(table.account, table.region, table.name, mutate)
    return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}
