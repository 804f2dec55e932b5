"""IAM roles: CreateRole, GetRole, ListRoles, DeleteRole, UpdateRole, UpdateAssumeRolePolicy, tags.

A role's trust policy is validated as a TRUST policy by the policy engine, limited to 2048 characters
(IAM's ACLSizePerRole quota) and its ``AWS`` principals must exist, as IAM checks on write
(``Invalid principal in policy``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from perimeterdb.iam import errors
from perimeterdb.iam.boundaries import check_boundary_arn
from perimeterdb.iam.call import (
    Handler,
    QueryCall,
    check_document,
    encode_document,
    merge_tag_lists,
    paginate,
    parse_iam_arn,
    tag_list,
)
from perimeterdb.policy.ast import PolicyKind
from perimeterdb.world.identities import ROLES, Change, Record, account_key, new_unique_id

TRUST_POLICY_LIMIT = 2048
_ACCOUNT = re.compile(r"\d{12}")


def role_shape(role: Record, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": role["path"],
        "RoleName": role["name"],
        "RoleId": role["role_id"],
        "Arn": role["arn"],
        "CreateDate": role["created"],
        "AssumeRolePolicyDocument": encode_document(role["trust"]),
        "MaxSessionDuration": role["max_session"],
    }
    if role.get("description"):
        out["Description"] = role["description"]
    if full:
        if role.get("boundary"):
            out["PermissionsBoundary"] = {
                "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                "PermissionsBoundaryArn": role["boundary"],
            }
        if role.get("tags"):
            out["Tags"] = role["tags"]
        used = role.get("last_used")
        out["RoleLastUsed"] = {"LastUsedDate": used["date"], "Region": used["region"]} if used else {}
    return out


def no_such_role(name: str) -> errors.ApiError:
    return errors.no_such_entity(f"The role with name {name} cannot be found.")


async def role_arn(call: QueryCall, name: str) -> str:
    role = await call.store.get_role(call.account, name)
    return role["arn"] if role is not None else call.arn("role", "/", name)


async def require_role(call: QueryCall, name: str) -> Record:
    role = await call.store.get_role(call.account, name)
    if role is None:
        raise no_such_role(name)
    return role


async def update_role_record(call: QueryCall, name: str, change: Any) -> Record:
    key = account_key(ROLES, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], Record]:
        role = values[0]
        if role is None:
            raise no_such_role(name)
        change(role)
        return [(key, role)], role

    return await call.store.write([key], decide)


async def _principal_exists(call: QueryCall, value: str) -> bool:
    if value == "*" or _ACCOUNT.fullmatch(value):
        return True
    if not value.startswith("arn:"):
        return False
    parts = value.split(":", 5)
    if len(parts) != 6 or not _ACCOUNT.fullmatch(parts[4]):
        return False
    account, resource = parts[4], parts[5]
    if parts[2] == "iam" and resource == "root":
        return True
    if await call.store.get_account(account) is None:
        return True  # an account this server does not host: nothing to check against
    if parts[2] == "sts" and resource.startswith("assumed-role/"):
        role_name = resource.split("/")[1] if resource.count("/") >= 2 else ""
        return bool(role_name) and await call.store.get_role(account, role_name) is not None
    for kind in ("user", "role"):
        parsed = parse_iam_arn(value, kind)
        if parsed is not None:
            record = await call.store.get(f"meta:iam-{kind}s", account, parsed[2])
            return record is not None and record["arn"] == value
    return False


async def check_trust_policy(call: QueryCall, text: str) -> str:
    check_document(text, PolicyKind.TRUST, TRUST_POLICY_LIMIT, "ACLSizePerRole")
    statements = json.loads(text).get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = statement.get("Principal") if isinstance(statement, dict) else None
        if not isinstance(principal, dict):
            continue
        aws = principal.get("AWS", [])
        for value in aws if isinstance(aws, list) else [aws]:
            if not await _principal_exists(call, str(value)):
                raise errors.malformed_policy(f'Invalid principal in policy: "AWS":"{value}"')
    return text


SERVICE_LINKED_PATH = "/aws-service-role/"


async def create_role(call: QueryCall) -> dict[str, Any]:
    name = call.params["RoleName"]
    path = call.params.get("Path") or "/"
    if path.startswith(SERVICE_LINKED_PATH):
        # Roles under this path are service-linked, exempt from SCPs and RCPs: IAM keeps it for AWS.
        raise errors.invalid_input(f"Path prefix '{SERVICE_LINKED_PATH}' can only be used for AWS Service linked Roles")
    arn = call.arn("role", path, name)
    await call.authorize("iam:CreateRole", arn)
    tags = tag_list(call.params)
    trust = await check_trust_policy(call, call.params["AssumeRolePolicyDocument"])
    boundary = call.params.get("PermissionsBoundary")
    if boundary:
        await check_boundary_arn(call, boundary)
    record: Record = {
        "name": name,
        "account": call.account,
        "path": path,
        "arn": arn,
        "role_id": new_unique_id("AROA"),
        "created": time.time(),
        "trust": trust,
        "description": call.params.get("Description", ""),
        "max_session": call.params.get("MaxSessionDuration") or 3600,
        "tags": tags,
        "inline": {},
        "attached": [],
        "boundary": boundary or None,
        "last_used": None,
    }
    key = account_key(ROLES, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        if values[0] is not None:
            raise errors.entity_already_exists(f"Role with name {name} already exists.")
        return [(key, record)], None

    await call.store.write([key], decide)
    return {"Role": role_shape(record)}


async def get_role(call: QueryCall) -> dict[str, Any]:
    name = call.params["RoleName"]
    await call.authorize("iam:GetRole", await role_arn(call, name))
    return {"Role": role_shape(await require_role(call, name))}


async def list_roles(call: QueryCall) -> dict[str, Any]:
    await call.authorize("iam:ListRoles", f"arn:aws:iam::{call.account}:role/")
    prefix = call.params.get("PathPrefix") or "/"
    roles = [r for r in await call.store.list(ROLES, call.account) if r["path"].startswith(prefix)]
    roles.sort(key=lambda r: r["name"].lower())
    return paginate([role_shape(r, full=False) for r in roles], call.params, "Roles")


async def delete_role(call: QueryCall) -> None:
    name = call.params["RoleName"]
    await call.authorize("iam:DeleteRole", await role_arn(call, name))
    key = account_key(ROLES, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        role = values[0]
        if role is None:
            raise no_such_role(name)
        if role.get("inline"):
            raise errors.delete_conflict("Cannot delete entity, must delete policies first.")
        if role.get("attached"):
            raise errors.delete_conflict("Cannot delete entity, must detach all policies first.")
        return [(key, None)], None

    await call.store.write([key], decide)
    return None


async def update_role(call: QueryCall) -> dict[str, Any]:
    name = call.params["RoleName"]
    await call.authorize("iam:UpdateRole", await role_arn(call, name))

    def change(role: Record) -> None:
        if "Description" in call.params:
            role["description"] = call.params["Description"]
        if call.params.get("MaxSessionDuration"):
            role["max_session"] = call.params["MaxSessionDuration"]

    await update_role_record(call, name, change)
    return {}


async def update_assume_role_policy(call: QueryCall) -> None:
    name = call.params["RoleName"]
    await call.authorize("iam:UpdateAssumeRolePolicy", await role_arn(call, name))
    await require_role(call, name)
    trust = await check_trust_policy(call, call.params["PolicyDocument"])
    await update_role_record(call, name, lambda r: r.__setitem__("trust", trust))
    return None


async def tag_role(call: QueryCall) -> None:
    name = call.params["RoleName"]
    await call.authorize("iam:TagRole", await role_arn(call, name))
    tags = tag_list(call.params)
    await update_role_record(
        call, name, lambda r: r.__setitem__("tags", merge_tag_lists(r.get("tags", []), tags))
    )
    return None


async def untag_role(call: QueryCall) -> None:
    name = call.params["RoleName"]
    await call.authorize("iam:UntagRole", await role_arn(call, name))
    drop = {k.lower() for k in call.params.get("TagKeys", [])}
    await update_role_record(
        call,
        name,
        lambda r: r.__setitem__("tags", [t for t in r.get("tags", []) if t["Key"].lower() not in drop]),
    )
    return None


async def list_role_tags(call: QueryCall) -> dict[str, Any]:
    name = call.params["RoleName"]
    await call.authorize("iam:ListRoleTags", await role_arn(call, name))
    role = await require_role(call, name)
    return paginate(role.get("tags", []), call.params, "Tags")


OPERATIONS: dict[str, Handler] = {
    "CreateRole": create_role,
    "GetRole": get_role,
    "ListRoles": list_roles,
    "DeleteRole": delete_role,
    "UpdateRole": update_role,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
    "TagRole": tag_role,
    "UntagRole": untag_role,
    "ListRoleTags": list_role_tags,
}
