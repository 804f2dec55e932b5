"""Sealed break-glass identities: role names the platform reserves across the organization.

A sealed role is declared by the platform only: in the world file (every role with ``break_glass:``, and
the names listed under ``break_glass: {sealed_roles: [...]}``) or with ``perimeterdb break-glass seal``.
Its name (with its path) is reserved in every account of the organization: no principal of a member account
may create, delete or change a role of that name, in any letter case and under any path, whether or not the
account has one yet. Only the management account (exempt from SCPs, as on AWS) and the *platform
principals* (``break_glass: {platform_principals: [role ARNs]}``) may. Platform principals are roles too,
and their names are protected in the same way: whoever could change a platform role could make itself one.

The protection is one SCP-shaped document (``guardrail_documents``): the server evaluates it with the
policy engine on every mutating IAM call (``iam/guardrail.py``), and ``perimeterdb guardrails`` prints it
for deployment on AWS, so that what is rehearsed here is what is deployed there.

The registry is one storage row (``load_registry`` / ``save_registry``). Everything else here is pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from perimeterdb.storage.engine import Decision, Put, RowKey, StorageEngine

ROW = RowKey("meta:break-glass-sealed", b"", b"registry", b"")
GUARDRAIL_POLICY_ID = "perimeterdb-sealed-break-glass"
GUARDRAIL_SID = "ProtectSealedBreakGlassRoles"
GUARDRAIL_POLICY_SID = "ProtectPoliciesOfSealedRoles"
SCP_SIZE_LIMIT = 5120

# Every IAM action that creates, deletes or changes a role (IAM has no rename, and no call changes a path).
ROLE_ACTIONS: tuple[str, ...] = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:TagRole",
    "iam:UntagRole",
)
# Changes to a customer-managed policy that is attached to a sealed role (or is its boundary).
POLICY_ACTIONS: tuple[str, ...] = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
    "iam:TagPolicy",
    "iam:UntagPolicy",
)
GUARDED_ACTIONS = frozenset(ROLE_ACTIONS) | frozenset(POLICY_ACTIONS)

_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_PATH = re.compile(r"/(?:[\x21-\x7e]+/)?")
_PLATFORM = re.compile(r"arn:aws:iam::(\d{12}|\*):role(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]{1,64})")


class SealError(ValueError):
    """A declaration that cannot be sealed (bad name, bad path, a wildcard platform principal)."""


def split_role(text: str) -> tuple[str, str]:
    """``emergency`` or ``/ops/emergency`` -> (path, name), checked against IAM's name and path rules."""
    path, _, name = text.rpartition("/")
    path = (path + "/") if path else "/"
    if not path.startswith("/"):
        path = "/" + path
    if not _NAME.fullmatch(name):
        raise SealError(f"not a valid role name: {text!r}")
    if not _PATH.fullmatch(path) or "*" in path or "?" in path:
        raise SealError(f"not a valid role path: {path!r}")
    return path, name


def parse_platform_principal(arn: str) -> tuple[str, str, str]:
    """A platform principal is one role ARN (its account may be ``*``): (account, path, name).

    No wildcard in the path or the name: a pattern would let a member account create a role that matches
    it and so become the platform."""
    found = _PLATFORM.fullmatch(arn)
    if found is None or "*" in found.group(2) or "?" in found.group(2):
        raise SealError(
            f"platform principal {arn!r} must be a role ARN without wildcards in its path or name "
            "(arn:aws:iam::ACCOUNT-or-*:role/PATH/NAME)"
        )
    return found.group(1), found.group(2), found.group(3)


@dataclass(frozen=True, slots=True)
class SealedRole:
    """One reserved role name. ``accounts``: where the declared break-glass role exists.
    ``source``: "world" (re-derived on every world apply) or "cli" (kept until unsealed)."""

    name: str
    path: str = "/"
    accounts: tuple[str, ...] = ()
    source: str = "world"

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def pattern(self) -> str:
        """The organization-wide ARN pattern of this role (what an SCP names)."""
        return f"arn:aws:iam::*:role{self.path}{self.name}"

    def arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role{self.path}{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "accounts": list(self.accounts), "source": self.source}


@dataclass(frozen=True, slots=True)
class Registry:
    """The sealed roles, the platform principals, and whether a hole in the perimeter is an error."""

    roles: tuple[SealedRole, ...] = ()
    platform_principals: tuple[str, ...] = ()
    holes: str = "warn"  # "warn" | "error"
    _index: dict[str, SealedRole] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({r.key: r for r in self.roles})

    # --- what is protected --------------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self.roles and not self.platform_principals

    def find(self, name: str) -> SealedRole | None:
        """The sealed role a role name denotes: IAM role names are unique regardless of case, so
        ``EMERGENCY`` is ``emergency``."""
        return self._index.get(name.lower())

    def platform_roles(self) -> tuple[SealedRole, ...]:
        out = []
        for arn in self.platform_principals:
            account, path, name = parse_platform_principal(arn)
            out.append(SealedRole(name, path, () if account == "*" else (account,), "platform"))
        return tuple(out)

    def protected(self, name: str) -> SealedRole | None:
        """The reserved identity (sealed break-glass role or platform role) a role name denotes."""
        found = self.find(name)
        if found is not None:
            return found
        lower = name.lower()
        return next((r for r in self.platform_roles() if r.key == lower), None)

    def is_sealed_arn(self, arn: str) -> bool:
        """Is this exact role ARN a declared sealed break-glass role (its account has the role)?"""
        parsed = _role_arn(arn)
        if parsed is None:
            return False
        account, path, name = parsed
        role = self.find(name)
        return role is not None and role.name == name and role.path == path and account in role.accounts

    # --- changes ------------------------------------------------------------------------------------------

    def with_world(self, roles: Iterable[SealedRole], platform: Sequence[str], holes: str) -> Registry:
        """The world file's declarations replace the previous world's; CLI seals stay."""
        kept = [r for r in self.roles if r.source != "world"]
        merged = {r.key: r for r in roles}
        for r in kept:
            if r.key in merged:
                merged[r.key] = replace(merged[r.key], accounts=_union(merged[r.key].accounts, r.accounts))
            else:
                merged[r.key] = r
        return Registry(tuple(sorted(merged.values(), key=lambda r: r.key)), tuple(platform), holes)

    def sealed(self, role: SealedRole) -> Registry:
        current = self.find(role.name)
        if current is not None:
            if current.name != role.name or current.path != role.path:
                raise SealError(
                    f"{role.path}{role.name} collides with sealed role {current.path}{current.name} "
                    "(role names are unique regardless of case and path)"
                )
            role = replace(current, accounts=_union(current.accounts, role.accounts))
        others = [r for r in self.roles if r.key != role.key]
        return Registry(
            tuple(sorted([*others, role], key=lambda r: r.key)), self.platform_principals, self.holes
        )

    def unsealed(self, name: str) -> Registry:
        return Registry(
            tuple(r for r in self.roles if r.key != name.lower()), self.platform_principals, self.holes
        )

    # --- storage form -------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "roles": [r.to_json() for r in self.roles],
            "platform_principals": list(self.platform_principals),
            "holes": self.holes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Registry:
        roles = tuple(
            SealedRole(r["name"], r.get("path", "/"), tuple(r.get("accounts") or ()), r.get("source", "world"))
            for r in data.get("roles") or ()
        )
        return cls(roles, tuple(data.get("platform_principals") or ()), str(data.get("holes") or "warn"))


def _union(a: Iterable[str], b: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(a) | set(b)))


def _role_arn(arn: str) -> tuple[str, str, str] | None:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    rest = parts[5][len("role") :]
    path, _, name = rest.rpartition("/")
    return (parts[4], path + "/", name) if name else None


def role_name_of(arn: str) -> str | None:
    """The role name of a role ARN (any path), or None."""
    parsed = _role_arn(arn)
    return parsed[2] if parsed is not None else None


# --- the world file -----------------------------------------------------------------------------------------


def registry_from_world(world: Mapping[str, Any], ids: Mapping[str, str]) -> tuple[list[SealedRole], list[str], str]:
    """(sealed roles, platform principals, holes mode) that a world file declares. ``ids``: account alias
    -> account id (an unknown alias keeps its own value: the world file is validated before)."""
    roles: dict[str, SealedRole] = {}
    for alias, spec in (world.get("accounts") or {}).items():
        account = ids.get(alias) or str(spec.get("id") or alias)
        for name, role in (spec.get("roles") or {}).items():
            if not role.get("break_glass"):
                continue
            path = role.get("path", "/")
            key = name.lower()
            found = roles.get(key)
            if found is not None and (found.path != path or found.name != name):
                raise SealError(
                    f"break-glass role {path}{name} in account {alias} collides with {found.path}{found.name} "
                    "declared elsewhere: a sealed name has one spelling and one path in the organization"
                )
            roles[key] = SealedRole(name, path, _union(found.accounts if found else (), [account]), "world")
    glass = world.get("break_glass") or {}
    for text in glass.get("sealed_roles") or ():
        path, name = split_role(str(text))
        found = roles.get(name.lower())
        if found is not None and (found.path != path or found.name != name):
            raise SealError(f"sealed_roles: {text!r} collides with break-glass role {found.path}{found.name}")
        if found is None:
            roles[name.lower()] = SealedRole(name, path, (), "world")
    platform = [str(p) for p in glass.get("platform_principals") or ()]
    for arn in platform:
        parse_platform_principal(arn)
    return sorted(roles.values(), key=lambda r: r.key), platform, str(glass.get("holes") or "warn")


# --- the guardrail SCP ---------------------------------------------------------------------------------------


def guardrail_statements(registry: Registry, policy_arns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The Deny statements that protect the sealed and platform roles (and the customer-managed policies
    attached to them, ``policy_arns``), with the platform principals as the only exception."""
    protected = [*registry.roles, *registry.platform_roles()]
    if not protected:
        return []
    condition: dict[str, Any] = {}
    if registry.platform_principals:
        values: Any = list(registry.platform_principals)
        condition = {"ArnNotLike": {"aws:PrincipalArn": values[0] if len(values) == 1 else values}}
    resources = sorted({r.pattern for r in protected})
    out: list[dict[str, Any]] = [
        {
            "Sid": GUARDRAIL_SID,
            "Effect": "Deny",
            "Action": list(ROLE_ACTIONS),
            "Resource": resources if len(resources) > 1 else resources[0],
        }
    ]
    if policy_arns:
        arns = sorted(set(policy_arns))
        out.append(
            {
                "Sid": GUARDRAIL_POLICY_SID,
                "Effect": "Deny",
                "Action": list(POLICY_ACTIONS),
                "Resource": arns if len(arns) > 1 else arns[0],
            }
        )
    if condition:
        for statement in out:
            statement["Condition"] = condition
    return out


def _size(document: Mapping[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")))


def guardrail_documents(registry: Registry, policy_arns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The guardrail as SCP documents of at most 5,120 characters each (minified), split by resource
    when one would be larger. Statement ids get a suffix (``…2``, ``…3``) in the documents after the first."""
    statements = guardrail_statements(registry, policy_arns)
    documents: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    for statement in _split_resources(statements):
        candidate = {"Version": "2012-10-17", "Statement": [*current, statement]}
        if current and _size(candidate) > SCP_SIZE_LIMIT:
            documents.append({"Version": "2012-10-17", "Statement": current})
            current = []
        current.append(statement)
    if current:
        documents.append({"Version": "2012-10-17", "Statement": current})
    for document in documents:
        if _size(document) > SCP_SIZE_LIMIT:
            raise SealError("one guardrail statement exceeds the SCP size limit of 5,120 characters")
    # Sids are unique within a policy; make them unique across the set too (the audit names one).
    seen: dict[str, int] = {}
    for document in documents:
        for statement in document["Statement"]:
            sid = statement["Sid"]
            seen[sid] = seen.get(sid, 0) + 1
            if seen[sid] > 1:
                statement["Sid"] = f"{sid}{seen[sid]}"
    return documents


def _split_resources(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements too large for one SCP, cut (by halves of their resources) into statements that fit."""
    out: list[dict[str, Any]] = []
    for statement in statements:
        resources = statement["Resource"]
        alone = {"Version": "2012-10-17", "Statement": [statement]}
        if _size(alone) <= SCP_SIZE_LIMIT or not isinstance(resources, list) or len(resources) < 2:
            out.append(statement)
            continue
        half = len(resources) // 2
        out += _split_resources(
            [{**statement, "Resource": resources[:half]}, {**statement, "Resource": resources[half:]}]
        )
    return out


# --- storage ---------------------------------------------------------------------------------------------------


async def load_registry(engine: StorageEngine) -> Registry:
    raw = await engine.get(ROW)
    return Registry.from_json(orjson.loads(raw)) if raw is not None else Registry()


async def save_registry(engine: StorageEngine, registry: Registry) -> bool:
    """Store the registry; False when it was already stored as it is."""
    value = orjson.dumps(registry.to_json(), option=orjson.OPT_SORT_KEYS)

    def decide(values: list[bytes | None]) -> Decision:
        return Decision((), False) if values[0] == value else Decision([Put(ROW, value)], True)

    return bool(await engine.atomic([ROW], decide))
