"""Managed policies: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy and the version operations
(CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions, SetDefaultPolicyVersion, DeletePolicyVersion).

A customer-managed policy keeps at most five versions and one default. AWS-managed policies
(``arn:aws:iam::aws:policy/…``) come from ``world/managed_policies.py`` and are read-only. The policy row
counts its attachments and its uses as a permissions boundary, so DeletePolicy can refuse atomically.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from perimeterdb.iam import errors
from perimeterdb.iam.call import (
    Handler,
    QueryCall,
    check_document,
    encode_document,
    paginate,
    parse_iam_arn,
    tag_list,
)
from perimeterdb.policy.ast import PolicyKind
from perimeterdb.world.identities import POLICIES, Change, Record, account_key, new_unique_id
from perimeterdb.world.managed_policies import MANAGED_POLICIES, ManagedPolicy, managed_policy

MANAGED_POLICY_LIMIT = 6144
MAX_VERSIONS = 5


def policy_shape(p: Record | ManagedPolicy, *, tags: bool = True) -> dict[str, Any]:
    if isinstance(p, ManagedPolicy):
        return {
            "PolicyName": p.name,
            "PolicyId": p.policy_id,
            "Arn": p.arn,
            "Path": p.path,
            "DefaultVersionId": p.version_id,
            "AttachmentCount": 0,
            "PermissionsBoundaryUsageCount": 0,
            "IsAttachable": True,
            "Description": p.description,
            "CreateDate": p.created,
            "UpdateDate": p.updated,
        }
    out: dict[str, Any] = {
        "PolicyName": p["name"],
        "PolicyId": p["policy_id"],
        "Arn": p["arn"],
        "Path": p["path"],
        "DefaultVersionId": p["default_version"],
        "AttachmentCount": p.get("attachments", 0),
        "PermissionsBoundaryUsageCount": p.get("boundary_uses", 0),
        "IsAttachable": True,
        "CreateDate": p["created"],
        "UpdateDate": p["updated"],
    }
    if p.get("description"):
        out["Description"] = p["description"]
    if tags and p.get("tags"):
        out["Tags"] = p["tags"]
    return out


def no_such_policy(arn: str) -> errors.ApiError:
    return errors.no_such_entity(f"Policy {arn} does not exist or is not attachable.")


def check_policy_arn(arn: str) -> None:
    """A policy ARN must be an IAM policy ARN (before authorization, as IAM validates input first)."""
    parsed = parse_iam_arn(arn, "policy")
    if parsed is None or not (parsed[0] == "aws" or (parsed[0].isdigit() and len(parsed[0]) == 12)):
        raise errors.invalid_input(f"ARN {arn} is not valid.")


def policy_key(arn: str) -> tuple[Any, str]:
    """The row key of a customer-managed policy ARN (and its name); a bad ARN is a ValidationError."""
    parsed = parse_iam_arn(arn, "policy")
    if parsed is None or not parsed[0].isdigit():
        raise errors.invalid_input(f"ARN {arn} is not valid.")
    return account_key(POLICIES, parsed[0], parsed[2]), parsed[2]


async def find_policy(call: QueryCall, arn: str) -> Record | ManagedPolicy:
    aws = managed_policy(arn)
    if aws is not None:
        return aws
    if arn.startswith("arn:aws:iam::aws:policy/"):
        raise no_such_policy(arn)
    policy_key(arn)
    record = await call.store.get_policy_by_arn(arn)
    if record is None or record["account"] != call.account:
        raise no_such_policy(arn)
    return record


def _check(document: str) -> str:
    return check_document(document, PolicyKind.IDENTITY, MANAGED_POLICY_LIMIT, "PolicySize")


async def create_policy(call: QueryCall) -> dict[str, Any]:
    name = call.params["PolicyName"]
    path = call.params.get("Path") or "/"
    arn = call.arn("policy", path, name)
    await call.authorize("iam:CreatePolicy", arn)
    document = _check(call.params["PolicyDocument"])
    now = time.time()
    record: Record = {
        "name": name,
        "account": call.account,
        "path": path,
        "arn": arn,
        "policy_id": new_unique_id("ANPA"),
        "created": now,
        "updated": now,
        "description": call.params.get("Description", ""),
        "default_version": "v1",
        "next_version": 2,
        "versions": {"v1": {"document": document, "created": now}},
        "attachments": 0,
        "boundary_uses": 0,
        "tags": tag_list(call.params),
    }
    key = account_key(POLICIES, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        if values[0] is not None:
            raise errors.entity_already_exists(
                f"A policy called {name} already exists. Duplicate names are not allowed."
            )
        return [(key, record)], None

    await call.store.write([key], decide)
    return {"Policy": policy_shape(record)}


async def get_policy(call: QueryCall) -> dict[str, Any]:
    arn = call.params["PolicyArn"]
    check_policy_arn(arn)
    await call.authorize("iam:GetPolicy", arn)
    return {"Policy": policy_shape(await find_policy(call, arn))}


async def list_policies(call: QueryCall) -> dict[str, Any]:
    await call.authorize("iam:ListPolicies", f"arn:aws:iam::{call.account}:policy/")
    scope = call.params.get("Scope") or "All"
    prefix = call.params.get("PathPrefix") or "/"
    only_attached = bool(call.params.get("OnlyAttached"))
    found: list[dict[str, Any]] = []
    if scope in ("All", "AWS") and not only_attached:
        found += [policy_shape(p) for p in MANAGED_POLICIES.values() if p.path.startswith(prefix)]
    if scope in ("All", "Local"):
        for record in await call.store.list(POLICIES, call.account):
            if record["path"].startswith(prefix) and (not only_attached or record.get("attachments")):
                found.append(policy_shape(record, tags=False))
    found.sort(key=lambda p: p["PolicyName"].lower())
    return paginate(found, call.params, "Policies")


def _version_shape(document: str, version_id: str, default: bool, created: Any) -> dict[str, Any]:
    return {
        "Document": encode_document(document),
        "VersionId": version_id,
        "IsDefaultVersion": default,
        "CreateDate": created,
    }


def _no_such_version(arn: str, version: str) -> errors.ApiError:
    return errors.no_such_entity(f"Policy {arn} version {version} does not exist or is not attachable.")


async def get_policy_version(call: QueryCall) -> dict[str, Any]:
    arn = call.params["PolicyArn"]
    version = call.params["VersionId"]
    check_policy_arn(arn)
    await call.authorize("iam:GetPolicyVersion", arn)
    policy = await find_policy(call, arn)
    if isinstance(policy, ManagedPolicy):
        if version != policy.version_id:
            raise _no_such_version(arn, version)
        return {"PolicyVersion": _version_shape(policy.document, version, True, policy.updated)}
    found = policy["versions"].get(version)
    if found is None:
        raise _no_such_version(arn, version)
    return {
        "PolicyVersion": _version_shape(
            found["document"], version, version == policy["default_version"], found["created"]
        )
    }


async def list_policy_versions(call: QueryCall) -> dict[str, Any]:
    arn = call.params["PolicyArn"]
    check_policy_arn(arn)
    await call.authorize("iam:ListPolicyVersions", arn)
    policy = await find_policy(call, arn)
    if isinstance(policy, ManagedPolicy):
        versions = [{"VersionId": policy.version_id, "IsDefaultVersion": True, "CreateDate": policy.updated}]
    else:
        versions = [
            {
                "VersionId": v,
                "IsDefaultVersion": v == policy["default_version"],
                "CreateDate": data["created"],
            }
            for v, data in sorted(policy["versions"].items(), key=lambda kv: -int(kv[0][1:]))
        ]
    return paginate(versions, call.params, "Versions")


async def _update_policy(call: QueryCall, arn: str, change: Any) -> Any:
    policy = await find_policy(call, arn)
    if isinstance(policy, ManagedPolicy):
        raise errors.ApiError(
            "UnmodifiableEntity", f"Cannot modify an AWS managed policy: {arn}", namespace="query"
        )
    key, _ = policy_key(arn)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], Any]:
        record = values[0]
        if record is None or record["arn"] != arn:
            raise no_such_policy(arn)
        result = change(record)
        if result == "delete":
            return [(key, None)], None
        return [(key, record)], result

    return await call.store.write([key], decide)


async def create_policy_version(call: QueryCall) -> dict[str, Any]:
    arn = call.params["PolicyArn"]
    check_policy_arn(arn)
    await call.authorize("iam:CreatePolicyVersion", arn)
    document = _check(call.params["PolicyDocument"])
    make_default = bool(call.params.get("SetAsDefault"))
    now = time.time()

    def change(record: Record) -> dict[str, Any]:
        if len(record["versions"]) >= MAX_VERSIONS:
            raise errors.limit_exceeded(
                f"A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new version, "
                "you must delete an existing version."
            )
        version = f"v{record['next_version']}"
        record["next_version"] += 1
        record["versions"][version] = {"document": document, "created": now}
        record["updated"] = now
        if make_default:
            record["default_version"] = version
        return {"VersionId": version, "IsDefaultVersion": make_default, "CreateDate": now}

    return {"PolicyVersion": await _update_policy(call, arn, change)}


async def set_default_policy_version(call: QueryCall) -> None:
    arn = call.params["PolicyArn"]
    version = call.params["VersionId"]
    check_policy_arn(arn)
    await call.authorize("iam:SetDefaultPolicyVersion", arn)

    def change(record: Record) -> None:
        if version not in record["versions"]:
            raise _no_such_version(arn, version)
        record["default_version"] = version
        record["updated"] = time.time()

    await _update_policy(call, arn, change)
    return None


async def delete_policy_version(call: QueryCall) -> None:
    arn = call.params["PolicyArn"]
    version = call.params["VersionId"]
    check_policy_arn(arn)
    await call.authorize("iam:DeletePolicyVersion", arn)

    def change(record: Record) -> None:
        if version not in record["versions"]:
            raise _no_such_version(arn, version)
        if version == record["default_version"]:
            raise errors.delete_conflict("Cannot delete the default version of a policy.")
        del record["versions"][version]

    await _update_policy(call, arn, change)
    return None


async def delete_policy(call: QueryCall) -> None:
    arn = call.params["PolicyArn"]
    check_policy_arn(arn)
    await call.authorize("iam:DeletePolicy", arn)

    def change(record: Record) -> str:
        if record.get("attachments") or record.get("boundary_uses"):
            raise errors.delete_conflict("Cannot delete a policy attached to entities.")
        if len(record["versions"]) > 1:
            raise errors.delete_conflict(
                "This policy has more than one version. Before you delete a policy, you must delete the "
                "policy's non-default versions."
            )
        return "delete"

    await _update_policy(call, arn, change)
    return None


OPERATIONS: dict[str, Handler] = {
    "CreatePolicy": create_policy,
    "GetPolicy": get_policy,
    "ListPolicies": list_policies,
    "DeletePolicy": delete_policy,
    "CreatePolicyVersion": create_policy_version,
    "GetPolicyVersion": get_policy_version,
    "ListPolicyVersions": list_policy_versions,
    "SetDefaultPolicyVersion": set_default_policy_version,
    "DeletePolicyVersion": delete_policy_version,
}
