"""UpdateTable: billing mode, provisioned throughput, deletion protection, streams and table class.

Index creation and deletion through ``GlobalSecondaryIndexUpdates`` is handled by ``dynamodb/indexes``
when present; without it such a request is refused rather than half-applied.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.operations.create_table import MAX_THROUGHPUT, throughput_description
from perimeterdb.dynamodb.operations.describe_table import describe

ACTION = "dynamodb:UpdateTable"
_INVALID = "One or more parameter values were invalid: "
_UPDATABLE = (
    "ProvisionedThroughput",
    "BillingMode",
    "StreamSpecification",
    "GlobalSecondaryIndexUpdates",
    "SSESpecification",
    "ReplicaUpdates",
    "DeletionProtectionEnabled",
    "TableClass",
    "OnDemandThroughput",
    "WarmThroughput",
    "AttributeDefinitions",
)


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, call.table_arn(body["TableName"]))]


def _apply_throughput(description: dict[str, Any], body: dict[str, Any], billing: str) -> None:
    requested = body.get("ProvisionedThroughput")
    if billing == "PAY_PER_REQUEST":
        if requested is not None:
            raise errors.validation(
                _INVALID
                + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode "
                "is PAY_PER_REQUEST"
            )
        description["ProvisionedThroughput"] = throughput_description(None)
        return
    if requested is None:
        if description["ProvisionedThroughput"]["ReadCapacityUnits"] == 0:
            raise errors.validation(
                _INVALID + "ProvisionedThroughput must be specified when BillingMode is PROVISIONED"
            )
        return
    for unit in ("ReadCapacityUnits", "WriteCapacityUnits"):
        if requested[unit] > MAX_THROUGHPUT:
            raise errors.validation(f"Given value {requested[unit]} for {unit} is out of bounds")
    current = description["ProvisionedThroughput"]
    if (  # (also with BillingMode PROVISIONED named again: a PAY_PER_REQUEST table's units are 0, never equal)
        current["ReadCapacityUnits"] == requested["ReadCapacityUnits"]
        and current["WriteCapacityUnits"] == requested["WriteCapacityUnits"]
    ):
        raise errors.validation(
            "The provisioned throughput for the table will not change. The requested value equals the current "
            f"value. Current ReadCapacityUnits provisioned for the table: {current['ReadCapacityUnits']}. "
            f"Requested ReadCapacityUnits: {requested['ReadCapacityUnits']}. Current WriteCapacityUnits "
            f"provisioned for the table: {current['WriteCapacityUnits']}. Requested WriteCapacityUnits: "
            f"{requested['WriteCapacityUnits']}. Refer to the Amazon DynamoDB Developer Guide for current limits "
            "and how to request higher limits."
        )
    now = time.time()
    updated = dict(current)
    if (
        requested["ReadCapacityUnits"] > current["ReadCapacityUnits"]
        or requested["WriteCapacityUnits"] > current["WriteCapacityUnits"]
    ):
        updated["LastIncreaseDateTime"] = now
    if (
        requested["ReadCapacityUnits"] < current["ReadCapacityUnits"]
        or requested["WriteCapacityUnits"] < current["WriteCapacityUnits"]
    ):
        updated["LastDecreaseDateTime"] = now
        updated["NumberOfDecreasesToday"] = current.get("NumberOfDecreasesToday", 0) + 1
    updated["ReadCapacityUnits"] = requested["ReadCapacityUnits"]
    updated["WriteCapacityUnits"] = requested["WriteCapacityUnits"]
    description["ProvisionedThroughput"] = updated


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    table = await call.table(body["TableName"])
    if not any(k in body for k in _UPDATABLE):
        raise errors.validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates "
            "or SSESpecification or ReplicaUpdates is required"
        )
    description = copy.deepcopy(table.description)
    current_billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    billing = body.get("BillingMode", current_billing)
    if "BillingMode" in body or "ProvisionedThroughput" in body:
        _apply_throughput(description, body, billing)
        if billing == "PAY_PER_REQUEST" and current_billing != "PAY_PER_REQUEST":
            description["BillingModeSummary"] = {
                "BillingMode": "PAY_PER_REQUEST",
                "LastUpdateToPayPerRequestDateTime": time.time(),
            }
        elif billing == "PROVISIONED" and current_billing != "PROVISIONED":
            description["BillingModeSummary"] = {"BillingMode": "PROVISIONED"}
    if "DeletionProtectionEnabled" in body:
        description["DeletionProtectionEnabled"] = bool(body["DeletionProtectionEnabled"])
    if "TableClass" in body:
        description["TableClassSummary"] = {
            "TableClass": body["TableClass"],
            "LastUpdateDateTime": time.time(),
        }
    if "StreamSpecification" in body:
        description["StreamSpecification"] = body["StreamSpecification"]
    if body.get("GlobalSecondaryIndexUpdates"):
        from perimeterdb.dynamodb import indexes

        description = await indexes.apply_updates(table, description, body, call)
    updated = await call.catalog.replace(table, description)
    return {"TableDescription": await describe(updated, call)}
