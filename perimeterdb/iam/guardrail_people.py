"""The people of break-glass, protected like the sealed roles: approvers and the users who may break the glass.

The two-person rule and the identity in a break-glass alert only mean something if a team with iam:* in
its account cannot make itself an approver or become the on-call user. So, next to the sealed roles
(``world/sealed.py``), the guardrail (``iam/guardrail.py``) also protects, with the same explicit-deny shape
and the same exemptions (management account, platform principals):

- the **approvers groups**: every ``approvers_group`` of a sealed break-glass role, by name (any letter
  case, any path) in every account of the organization, whether or not the group exists yet: a member
  account may not create, delete, join, leave or change one (``GROUP_ACTIONS``);
- the **break-glass people** of an account: the members of an approvers group there, and the IAM users
  that a sealed role's trust policy names as principals (``arn:aws:iam::ACCOUNT:user/NAME``). Nobody but
  the platform may create such a user (a deleted one recreated by the team), delete it, give it
  credentials (access keys, login profile, MFA devices), or change its permissions or tags
  (``USER_ACTIONS``). A trust policy that names the account (``:root``) names nobody in particular: any
  user the account allows may break glass, and is alerted as itself; name the users to protect them.

Pure except ``protected_target``, which reads the roles, groups and users it needs from the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from perimeterdb import policy
from perimeterdb.policy import CompiledPolicy, PolicyKind, PolicyRef
from perimeterdb.world.breakglass import break_glass_settings
from perimeterdb.world.sealed import Registry

SID_GROUPS = "ProtectBreakGlassApproverGroups"
SID_USERS = "ProtectBreakGlassPeople"
POLICY_ID = "perimeterdb-break-glass-people"

GROUP_ACTIONS: tuple[str, ...] = (
    "iam:CreateGroup",
    "iam:DeleteGroup",
    "iam:UpdateGroup",
    "iam:AddUserToGroup",
    "iam:RemoveUserFromGroup",
    "iam:PutGroupPolicy",
    "iam:DeleteGroupPolicy",
    "iam:AttachGroupPolicy",
    "iam:DetachGroupPolicy",
)
USER_ACTIONS: tuple[str, ...] = (
    "iam:CreateUser",
    "iam:DeleteUser",
    "iam:UpdateUser",
    "iam:TagUser",
    "iam:UntagUser",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:DeleteLoginProfile",
    "iam:EnableMFADevice",
    "iam:DeactivateMFADevice",
    "iam:ResyncMFADevice",
    "iam:PutUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
    "iam:PutUserPermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:UploadSigningCertificate",
    "iam:UploadSSHPublicKey",
    "iam:CreateServiceSpecificCredential",
)
ACTIONS = frozenset(GROUP_ACTIONS) | frozenset(USER_ACTIONS)

_USER_ARN = re.compile(r"arn:aws:iam::(\d{12}):user/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})", re.ASCII)


def _entity(arn: str, kind: str) -> str | None:
    """The name in ``arn:aws:iam::ACCOUNT:KIND/PATH/NAME`` (any path), or None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith(kind + "/"):
        return None
    return parts[5].rsplit("/", 1)[-1] or None


def trusted_users(trust: Any, account: str) -> set[str]:
    """The IAM users of ``account`` that a trust policy (text or document) names in an Allow statement."""
    try:
        document = json.loads(trust) if isinstance(trust, str) else trust
    except ValueError:
        return set()
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    out: set[str] = set()
    for statement in statements if isinstance(statements, list) else ():
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        values = principal.get("AWS") if isinstance(principal, dict) else None
        for value in [values] if isinstance(values, str) else values if isinstance(values, list) else ():
            found = _USER_ARN.fullmatch(str(value))
            if found is not None and found.group(1) == account:
                out.add(found.group(2))
    return out


def documents(account: str, groups: Iterable[str], users: Iterable[str], platform: tuple[str, ...]) -> list[dict]:
    """The SCP-shaped deny statements protecting these approvers groups (org-wide) and users (of ``account``),
    with the platform principals as the only exception (as ``sealed.guardrail_statements``)."""
    statements: list[dict[str, Any]] = []
    group_arns = sorted({f"arn:aws:iam::*:group/{g}" for g in groups})
    user_arns = sorted({f"arn:aws:iam::{account}:user/{u}" for u in users})
    if group_arns:
        statements.append({"Sid": SID_GROUPS, "Effect": "Deny", "Action": list(GROUP_ACTIONS), "Resource": group_arns})
    if user_arns:
        statements.append({"Sid": SID_USERS, "Effect": "Deny", "Action": list(USER_ACTIONS), "Resource": user_arns})
    if platform:
        for statement in statements:
            statement["Condition"] = {"ArnNotLike": {"aws:PrincipalArn": list(platform)}}
    return [{"Version": "2012-10-17", "Statement": statements}] if statements else []


async def approver_groups(store: Any, registry: Registry) -> dict[str, str]:
    """lower-case name -> name of every approvers group of a sealed break-glass role."""
    out: dict[str, str] = {}
    for role in registry.roles:
        for account in role.accounts:
            settings = break_glass_settings(await store.get_role(account, role.name))
            group = (settings or {}).get("approvers_group")
            if group:
                out[str(group).lower()] = str(group)
    return out


async def break_glass_people(store: Any, registry: Registry, account: str, groups: dict[str, str]) -> dict[str, str]:
    """lower-case name -> name of the protected users of ``account``: approvers and users named in trust."""
    out: dict[str, str] = {}
    for group_name in groups.values():
        group = await store.get_group(account, group_name)
        for member in (group or {}).get("members") or ():
            out[str(member).lower()] = str(member)
    for role in registry.roles:
        if account not in role.accounts:
            continue
        record = await store.get_role(account, role.name)
        for user in trusted_users((record or {}).get("trust"), account):
            out.setdefault(user.lower(), user)
    return out


async def protected_target(
    store: Any, registry: Registry, account: str, action: str, resource: str
) -> tuple[str, tuple[CompiledPolicy, ...]] | None:
    """(the protected entity's ARN that this request touches, the guardrail documents to decide it) or None
    when the request touches no approvers group and no break-glass person."""
    if action not in ACTIONS:
        return None
    groups = await approver_groups(store, registry)
    if action in GROUP_ACTIONS:
        name = _entity(resource, "group")
        canonical = groups.get(name.lower()) if name else None
        if canonical is None:
            return None
        arn = f"arn:aws:iam::{account}:group/{canonical}"
        docs = documents(account, groups.values(), (), registry.platform_principals)
    else:
        name = _entity(resource, "user")
        people = await break_glass_people(store, registry, account, groups) if name else {}
        canonical = people.get(name.lower()) if name else None
        if canonical is None:
            return None
        arn = f"arn:aws:iam::{account}:user/{canonical}"
        docs = documents(account, (), people.values(), registry.platform_principals)
    compiled = tuple(
        policy.load_policy(doc, PolicyKind.SCP, PolicyRef("guardrail", POLICY_ID)) for doc in docs
    )
    return arn, compiled


# --- for `perimeterdb guardrails`: the same protection as SCP documents to deploy on AWS ------------------------


def deployable_documents(
    groups: Iterable[str], users: Iterable[tuple[str, str]], platform: tuple[str, ...],
    into: Iterable[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """SCP documents (at most 5,120 characters each) protecting these approvers groups (every account) and
    these (account, user name) pairs, with the platform principals as the exception: ``into`` (the sealed
    roles' documents) with these statements added to its last document while it fits, then new ones."""
    from perimeterdb.world.sealed import SCP_SIZE_LIMIT, _split_resources

    statements: list[dict[str, Any]] = []
    group_arns = sorted({f"arn:aws:iam::*:group/{g}" for g in groups})
    user_arns = sorted({f"arn:aws:iam::{account}:user/{name}" for account, name in users})
    for sid, actions, arns in ((SID_GROUPS, GROUP_ACTIONS, group_arns), (SID_USERS, USER_ACTIONS, user_arns)):
        if arns:
            statement: dict[str, Any] = {"Sid": sid, "Effect": "Deny", "Action": list(actions), "Resource": arns}
            if platform:
                statement["Condition"] = {"ArnNotLike": {"aws:PrincipalArn": list(platform)}}
            statements.append(statement)
    out: list[dict[str, Any]] = [{**d, "Statement": list(d["Statement"])} for d in into]
    for statement in _split_resources(statements):
        document = {"Version": "2012-10-17", "Statement": [statement]}
        if out and len(json.dumps({**out[-1], "Statement": [*out[-1]["Statement"], statement]},
                                  separators=(",", ":"))) <= SCP_SIZE_LIMIT:
            out[-1]["Statement"].append(statement)
        else:
            out.append(document)
    seen: dict[str, int] = {}
    for document in out:
        for statement in document["Statement"]:
            seen[statement["Sid"]] = seen.get(statement["Sid"], 0) + 1
            if seen[statement["Sid"]] > 1:
                statement["Sid"] = f"{statement['Sid']}{seen[statement['Sid']]}"
    return out


def world_people(world: Any, registry: Registry) -> tuple[list[str], list[tuple[str, str]]]:
    """(approvers groups, (account, user) pairs) that a world file's sealed roles call for."""
    accounts = world.get("accounts") or {}
    ids = {alias: str((spec or {}).get("id") or alias) for alias, spec in accounts.items()}
    groups: dict[str, str] = {}
    for spec in accounts.values():
        for name, role in ((spec or {}).get("roles") or {}).items():
            settings = role.get("break_glass") if registry.find(name) is not None else None
            if isinstance(settings, dict) and settings.get("approvers_group"):
                groups[str(settings["approvers_group"]).lower()] = str(settings["approvers_group"])
    users: set[tuple[str, str]] = set()
    for alias, spec in accounts.items():
        account = ids[alias]
        for name, user in ((spec or {}).get("users") or {}).items():
            if {str(g).lower() for g in (user or {}).get("groups") or ()} & set(groups):
                users.add((account, name))
        for name, role in ((spec or {}).get("roles") or {}).items():
            if registry.find(name) is not None and role.get("trust"):
                users |= {(account, u) for u in trusted_users(role["trust"], account)}
    return sorted(groups.values()), sorted(users)


async def stored_people(store: Any, registry: Registry) -> tuple[list[str], list[tuple[str, str]]]:
    """(approvers groups, (account, user) pairs) of a data directory."""
    groups = await approver_groups(store, registry)
    users: set[tuple[str, str]] = set()
    for account in await store.list_accounts():
        people = await break_glass_people(store, registry, account["id"], groups)
        users |= {(account["id"], name) for name in people.values()}
    return sorted(groups.values()), sorted(users)
