"""Holes in the perimeter: SCP/RCP exceptions on ``aws:PrincipalArn`` that let more than the sealed roles out.

A deny-list SCP or RCP usually carves out its emergency exit with a negated condition on the caller, e.g.
``StringNotLike {"aws:PrincipalArn": "arn:aws:iam::*:role/emergency"}``. That exit is safe only when every
principal it can match is a *sealed* break-glass role (``world/sealed.py``): a name the platform declared,
which no member account can create, delete or change. Each value of such a condition is a hole when:

- it can match a role name that is not sealed: a wildcard in the path or name
  (``…:role/emergency*`` matches ``emergency-2``), a policy variable, or a literal name nobody sealed;
- it matches other spellings (``…IgnoreCase`` operators: IAM lets a member create ``EMERGENCY`` in an
  account that has no ``emergency``);
- it is not a role at all (a user, a root, ``*``);
- it matches an existing role that is not the declared break-glass role (e.g. a role of that name made in
  another account before the name was sealed).

A *positive* condition on ``aws:PrincipalArn`` in a Deny statement (``ArnLike``/``StringEquals``/…) limits the
deny to the principals it names, so every other principal is exempt: that is reported too. The platform
principals (declared, protected like sealed roles) are not holes. Pure: documents in, findings out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perimeterdb.world.sealed import Registry, parse_platform_principal

_KEY = "aws:principalarn"
_NEGATED = frozenset(
    {"stringnotequals", "stringnotlike", "arnnotequals", "arnnotlike", "stringnotequalsignorecase"}
)
_POSITIVE = frozenset({"stringequals", "stringlike", "arnequals", "arnlike", "stringequalsignorecase"})
# StringEquals/StringNotEquals compare literally; the ARN operators and StringLike take wildcards.
_LITERAL = frozenset({"stringequals", "stringnotequals", "stringequalsignorecase", "stringnotequalsignorecase"})


@dataclass(frozen=True, slots=True)
class Hole:
    policy: str  # the policy's name (or id)
    policy_type: str  # "SERVICE_CONTROL_POLICY" | "RESOURCE_CONTROL_POLICY"
    statement: str  # its Sid, or "#<index>"
    operator: str
    value: str
    reason: str

    def describe(self) -> str:
        kind = "SCP" if self.policy_type.startswith("SERVICE") else "RCP"
        return (
            f"hole in the perimeter: {kind} {self.policy} statement {self.statement}: "
            f"{self.operator} aws:PrincipalArn {self.value!r}: {self.reason}"
        )

    def to_json(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "policy_type": self.policy_type,
            "statement": self.statement,
            "operator": self.operator,
            "value": self.value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class ExistingRole:
    """A role that exists, for matching exceptions against: its ARN and whether it is break-glass."""

    arn: str
    break_glass: bool


def _base_operator(operator: str) -> str:
    op = operator.split(":", 1)[1] if ":" in operator else operator  # ForAnyValue:/ForAllValues:
    if op.lower().endswith("ifexists"):
        op = op[: -len("ifexists")]
    return op.lower()


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _glob(pattern: str, literal: bool, ignore_case: bool) -> re.Pattern[str]:
    if literal:
        source = re.escape(pattern)
    else:
        source = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(source, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _example(resource: str) -> str:
    return resource.replace("*", "-2").replace("?", "x")


def exception_problem(value: str, operator: str, registry: Registry, *, rcp: bool = False) -> str | None:
    """Why one exception value is a hole, or None when it matches only sealed or platform roles.

    In an RCP the caller may belong to any AWS account, so the exception must name the accounts that have the
    sealed role: ``arn:aws:iam::*:role/emergency`` there also exempts an outsider's role named ``emergency``.
    (In an SCP the caller is always of a member account, where the name is reserved.)"""
    op = _base_operator(operator)
    literal = op in _LITERAL
    if "${" in value:
        return "a policy variable can match principals that are not sealed"
    if not literal and value.strip("*?") == "":
        return "matches every principal"
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return "not an IAM principal ARN: it can match principals that are not sealed"
    resource = parts[5]
    if op in ("stringlike", "stringnotlike") and any("*" in part for part in parts[:5]):
        # StringLike's * crosses ':', unlike the ARN operators' segment-by-segment match: with a * in the
        # account, a *user* whose path ends in ":role/" matches too (arn:aws:iam::<acct>:user/x:role/<name>).
        return (
            "StringLike's * crosses ':', so a user with the path /x:role/ and this name matches too; "
            "use ArnLike/ArnNotLike, which match segment by segment"
        )
    wild = (lambda s: False) if literal else (lambda s: "*" in s or "?" in s)
    if not resource.startswith("role/"):
        if wild(resource):
            return f"the wildcard matches users and roles that are not sealed ({resource})"
        return f"{resource.split('/', 1)[0]} is not a role: only sealed break-glass roles may be exempt"
    rest = resource[len("role") :]
    if wild(rest):
        return (
            f"the wildcard matches role names that are not sealed (e.g. role{_example(rest)}); "
            "name each sealed role exactly"
        )
    path, _, name = rest.rpartition("/")
    path += "/"
    sealed = registry.find(name)
    platform = [r for r in registry.platform_roles() if r.name.lower() == name.lower()]
    candidates = ([sealed] if sealed is not None else []) + platform
    exact = [r for r in candidates if r.name == name and r.path == path]
    if not exact:
        if candidates:
            r = candidates[0]
            return f"role{path}{name} is not the sealed role's spelling or path (role{r.path}{r.name})"
        return f"role{path}{name} is not a sealed break-glass role (seal it, or remove the exception)"
    if op.endswith("ignorecase"):
        return "IgnoreCase also matches other spellings of the name, which IAM lets a member create elsewhere"
    if rcp:
        account = parts[4]
        declared = {a for r in exact for a in r.accounts} | ({"*"} if any(not r.accounts for r in platform) else set())
        if not account.isdigit() or len(account) != 12:
            return (
                "in an RCP the account must be named: any AWS account, outside the organization too, can "
                f"have a role{path}{name}"
            )
        if account not in declared and "*" not in declared:
            return f"account {account} has no declared sealed role{path}{name}; anyone's role of that name there is exempt"
    return None  # in an SCP, wildcards in the account at most: the name is reserved in every member account


def _is_platform(arn: str, registry: Registry) -> bool:
    for declared in registry.platform_principals:
        account, path, name = parse_platform_principal(declared)
        parsed = arn.split(":", 5)
        if len(parsed) == 6 and parsed[5] == f"role{path}{name}" and account in ("*", parsed[4]):
            return True
    return False


def statement_holes(
    policy: str,
    policy_type: str,
    statements: Sequence[Mapping[str, Any]],
    registry: Registry,
    existing: Iterable[ExistingRole] = (),
) -> list[Hole]:
    roles = list(existing)
    out: list[Hole] = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
            continue
        sid = str(statement.get("Sid") or f"#{index}")
        condition = statement.get("Condition") or {}
        if not isinstance(condition, Mapping):
            continue
        for operator, block in condition.items():
            if not isinstance(block, Mapping):
                continue
            op = _base_operator(str(operator))
            for key, value in block.items():
                if str(key).lower() != _KEY:
                    continue
                if op in _POSITIVE:
                    out.append(
                        Hole(policy, policy_type, sid, str(operator), ", ".join(_values(value)),
                             "the deny applies only to these principals: every other principal is exempt")
                    )
                    continue
                if op not in _NEGATED:
                    continue
                for v in _values(value):
                    problem = exception_problem(
                        v, str(operator), registry, rcp=policy_type.startswith("RESOURCE")
                    )
                    if problem is None:
                        matcher = _glob(v, op in _LITERAL, op.endswith("ignorecase"))
                        strays = [
                            r.arn for r in roles
                            if matcher.fullmatch(r.arn)
                            and not (r.break_glass and registry.is_sealed_arn(r.arn))
                            and not _is_platform(r.arn, registry)
                        ]
                        if strays:
                            problem = (
                                f"matches {', '.join(sorted(strays))}, which is not a declared sealed "
                                "break-glass role"
                            )
                    if problem is not None:
                        out.append(Hole(policy, policy_type, sid, str(operator), v, problem))
    return out


def policy_holes(
    policies: Iterable[tuple[str, str, Mapping[str, Any]]],
    registry: Registry,
    existing: Iterable[ExistingRole] = (),
) -> list[Hole]:
    """Every hole in these (name, type, document) SCPs and RCPs."""
    roles = list(existing)
    out: list[Hole] = []
    for name, policy_type, document in policies:
        statements = document.get("Statement", []) if isinstance(document, Mapping) else []
        if isinstance(statements, Mapping):
            statements = [statements]
        out += statement_holes(name, policy_type, statements, registry, roles)
    return out


# --- where the documents come from ---------------------------------------------------------------------------


def world_policies(world: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    org = world.get("organization") or {}
    return [
        (str(name), str(spec.get("type")), spec.get("document") or {})
        for name, spec in (org.get("policies") or {}).items()
        if isinstance(spec, Mapping)
    ]


def world_roles(world: Mapping[str, Any], ids: Mapping[str, str] | None = None) -> list[ExistingRole]:
    out = []
    for alias, spec in (world.get("accounts") or {}).items():
        account = (ids or {}).get(alias) or str(spec.get("id") or alias)
        for name, role in (spec.get("roles") or {}).items():
            path = role.get("path", "/")
            out.append(ExistingRole(f"arn:aws:iam::{account}:role{path}{name}", bool(role.get("break_glass"))))
    return out


# --- who can become the platform -----------------------------------------------------------------------------


def platform_trust_problems(
    role_arn: str, trust: Mapping[str, Any], management_account: str | None
) -> list[str]:
    """A platform role may change sealed roles, so whoever can assume it is the platform: its trust policy
    should let in the management account's principals only. Each other principal it trusts is reported
    (``*``, a member account, or any principal of one: a member that can grant itself ``sts:AssumeRole``
    there becomes the platform)."""
    out: list[str] = []
    statements = trust.get("Statement", []) if isinstance(trust, Mapping) else []
    if isinstance(statements, Mapping):
        statements = [statements]
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in statement:
            out.append(f"platform role {role_arn} trusts every principal but those of a NotPrincipal")
            continue
        principal = statement.get("Principal")
        if principal == "*":
            values = ["*"]
        elif isinstance(principal, Mapping):
            values = _values(principal.get("AWS", []))
        else:
            values = []
        for value in values:
            account = value if value.isdigit() else (value.split(":")[4] if value.count(":") >= 5 else "*")
            if account != management_account:
                out.append(f"platform role {role_arn} trusts {value}: whoever can assume it may change sealed roles")
    return out
