"""CreateTable: validate the key schema and indexes as DynamoDB does, then record the table."""

from __future__ import annotations

import time
import uuid
from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import indexes, resource_policies, tags
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.capacity import throughput_description
from perimeterdb.dynamodb.catalog import table_arn
from perimeterdb.dynamodb.indexes import index_description

ACTION = "dynamodb:CreateTable"
MAX_THROUGHPUT = 1_000_000_000_000
_INVALID = "One or more parameter values were invalid: "


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    arn = call.table_arn(body["TableName"])
    pairs = [(ACTION, arn)]
    if body.get("ResourcePolicy"):
        pairs.append(("dynamodb:PutResourcePolicy", arn))
    return pairs


def _check_throughput(throughput: dict[str, Any] | None, billing: str, index: str | None = None) -> None:
    if billing == "PAY_PER_REQUEST":
        if throughput is not None:
            if index is None:
                raise errors.validation(
                    _INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
                    "BillingMode is PAY_PER_REQUEST"
                )
            raise errors.validation(
                _INVALID
                + f"ProvisionedThroughput should not be specified for index: {index} when BillingMode "
                "is PAY_PER_REQUEST"
            )
        return
    if throughput is None:
        if index is None:
            raise errors.validation(
                _INVALID
                + "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is "
                "PROVISIONED"
            )
        raise errors.validation(_INVALID + f"ProvisionedThroughput must be specified for index: {index}")
    for unit in ("ReadCapacityUnits", "WriteCapacityUnits"):
        if throughput[unit] > MAX_THROUGHPUT:
            raise errors.validation(f"Given value {throughput[unit]} for {unit} is out of bounds")


def _check_key_schema(schema: list[dict[str, str]], defined: list[str]) -> None:
    names = [k["AttributeName"] for k in schema]
    if any(n not in defined for n in names):
        raise errors.validation(
            _INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
            f"Keys: [{', '.join(names)}], AttributeDefinitions: [{', '.join(defined)}]"
        )
    if len(names) == 2 and names[0] == names[1]:
        raise errors.validation(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name"
        )
    if schema[0]["KeyType"] != "HASH":
        raise errors.validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(schema) == 2 and schema[1]["KeyType"] != "RANGE":
        raise errors.validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")


def validate_indexes(body: dict[str, Any], defined: list[str], billing: str) -> set[str]:
    """Check the LSIs and GSIs of a CreateTable request; return every attribute an index key uses."""
    names: set[str] = set()
    used: set[str] = set()
    schema = body["KeySchema"]
    lsis = body.get("LocalSecondaryIndexes")
    if lsis is not None:
        if not lsis:
            raise errors.validation(_INVALID + "List of LocalSecondaryIndexes is empty")
        if len(schema) != 2:
            raise errors.validation(
                _INVALID + "Table KeySchema does not have a range key, which is required when specifying a "
                "LocalSecondaryIndex"
            )
        for index in lsis:
            name = index["IndexName"]
            _check_key_schema(index["KeySchema"], defined)
            if len(index["KeySchema"]) != 2:
                raise errors.validation(
                    _INVALID + f"Index KeySchema does not have a range key for index: {name}"
                )
            index_hash = index["KeySchema"][0]["AttributeName"]
            if index_hash != schema[0]["AttributeName"]:
                raise errors.validation(
                    _INVALID
                    + "Index KeySchema does not have the same leading hash key as table KeySchema for "
                    f"index: {name}. index hash key: {index_hash}, table hash key: {schema[0]['AttributeName']}"
                )
            indexes.check_projection(index)
            if name in names:
                raise errors.validation(_INVALID + f"Duplicate index name: {name}")
            names.add(name)
            used.update(k["AttributeName"] for k in index["KeySchema"])
        if len(lsis) > 5:
            raise errors.validation(_INVALID + "Number of LocalSecondaryIndexes exceeds per-table limit of 5")
    gsis = body.get("GlobalSecondaryIndexes")
    if gsis is not None:
        if not gsis:
            raise errors.validation(_INVALID + "List of GlobalSecondaryIndexes is empty")
        for index in gsis:
            name = index["IndexName"]
            _check_key_schema(index["KeySchema"], defined)
            indexes.check_projection(index)
            _check_throughput(index.get("ProvisionedThroughput"), billing, name)
            if name in names:
                raise errors.validation(_INVALID + f"Duplicate index name: {name}")
            names.add(name)
            used.update(k["AttributeName"] for k in index["KeySchema"])
        if len(gsis) > 20:
            raise errors.validation(_INVALID + "GlobalSecondaryIndex count exceeds the per-table limit of 20")
    return used


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    account, region, name = call.resolve_table_name(body["TableName"])
    billing = body.get("BillingMode", "PROVISIONED")
    _check_throughput(body.get("ProvisionedThroughput"), billing)
    definitions = body["AttributeDefinitions"]
    defined = [d["AttributeName"] for d in definitions]
    schema = [dict(k) for k in body["KeySchema"]]
    if len(schema) > len(defined):
        raise errors.validation("Invalid KeySchema: Some index key attribute have no definition")
    _check_key_schema(schema, defined)
    duplicate = next((n for i, n in enumerate(defined) if n in defined[:i]), None)
    if duplicate is not None:
        raise errors.validation(f"Attribute Name is duplicated: {duplicate}")
    used = validate_indexes(body, defined, billing) | {k["AttributeName"] for k in schema}
    if set(defined) != used:
        if not body.get("LocalSecondaryIndexes") and not body.get("GlobalSecondaryIndexes"):
            raise errors.validation(
                _INVALID + "Number of attributes in KeySchema does not exactly match number of attributes "
                "defined in AttributeDefinitions"
            )
        raise errors.validation(
            _INVALID + "Some AttributeDefinitions are not used. AttributeDefinitions: "
            f"[{', '.join(defined)}], keys used: [{', '.join(sorted(used))}]"
        )
    arn = table_arn(region, account, name)
    now = time.time()
    description: dict[str, Any] = {
        "AttributeDefinitions": definitions,
        "TableName": name,
        "KeySchema": schema,
        "TableStatus": "ACTIVE",
        "CreationDateTime": now,
        "ProvisionedThroughput": throughput_description(body.get("ProvisionedThroughput")),
        "TableSizeBytes": 0,
        "ItemCount": 0,
        "TableArn": arn,
        "TableId": str(uuid.uuid4()),
        "DeletionProtectionEnabled": bool(body.get("DeletionProtectionEnabled", False)),
    }
    if billing == "PAY_PER_REQUEST":
        description["BillingModeSummary"] = {
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": now,
        }
    if body.get("LocalSecondaryIndexes"):
        description["LocalSecondaryIndexes"] = [
            index_description(arn, i, is_global=False, billing=billing) for i in body["LocalSecondaryIndexes"]
        ]
    if body.get("GlobalSecondaryIndexes"):
        description["GlobalSecondaryIndexes"] = [
            index_description(arn, i, is_global=True, billing=billing) for i in body["GlobalSecondaryIndexes"]
        ]
    if body.get("TableClass"):
        description["TableClassSummary"] = {"TableClass": body["TableClass"]}
    stream = body.get("StreamSpecification")
    if stream and stream.get("StreamEnabled"):
        label = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"
        description["StreamSpecification"] = stream
        description["LatestStreamLabel"] = label
        description["LatestStreamArn"] = f"{arn}/stream/{label}"
    if body.get("Tags") is not None:
        description["_tags"] = tags.validate_tags(body["Tags"])
    if body.get("ResourcePolicy"):
        description["_resource_policy"] = {
            "Policy": body["ResourcePolicy"],
            "RevisionId": str(int(now * 1000)),
        }
    if body.get("ResourcePolicy"):
        resource_policies.validate_policy(body["ResourcePolicy"])
    await _check_invariants(call, arn, account, region, body.get("ResourcePolicy") or None, description)
    indexes.allocate_spaces(description)
    table = await call.catalog.create(account, region, name, description)
    out = table.public_description()
    out["TableStatus"] = "CREATING"
    for gsi in out.get("GlobalSecondaryIndexes", []):
        gsi["IndexStatus"] = "CREATING"
    return {"TableDescription": out}


async def _check_invariants(
    call: Call, arn: str, account: str, region: str, policy: str | None, description: dict[str, Any]
) -> None:
    """A table named by a stored world invariant (prover_invariants.py) is created only if the invariant
    holds with its resource policy and tags; refused as PutResourcePolicy refuses (ValidationException)."""
    from perimeterdb.prover_invariants import message, proposed_table_policy

    if await call.catalog.find(account, region, arn.split(":table/", 1)[-1]) is not None:
        return  # it exists: the catalog answers ResourceInUseException
    tags = tuple((t["Key"], t["Value"]) for t in description.get("_tags") or [])
    violations = await proposed_table_policy(call.engine, arn, account, region, policy, tags)
    if violations:
        raise errors.validation(
            f"Resource-based policy change refused for table {arn.split(':table/', 1)[-1]}: it would break a "
            f"world invariant (perimeterdb prove). {message(violations)}"
        )
