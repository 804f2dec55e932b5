"""Compile a parsed policy once: precompiled action/resource/principal matchers and condition values.

Callers cache ``CompiledPolicy`` objects (keyed by policy id and version). A compiled policy also memoises,
per action name, which statements can apply (``candidates``), so a decision touches only the statements
whose Action/NotAction matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from perimeterdb.policy.ast import Effect, Policy, PolicyKind, PrincipalSpec, Statement
from perimeterdb.policy.conditions import CompiledCondition
from perimeterdb.policy.context import PrincipalInfo
from perimeterdb.policy.match import GlobSet, compile_arns, compile_globs
from perimeterdb.policy.variables import Part, parse_template

__all__ = [
    "CompiledPolicy",
    "CompiledPrincipal",
    "CompiledStatement",
    "Grant",
    "PolicyRef",
    "StatementRef",
    "compile_policy",
]

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ROOT_RE = re.compile(r"^arn:[^:]+:iam::(\d{12}):root$")
_UNIQUE_ID_RE = re.compile(r"^A[A-Z0-9]{15,127}$")
_CANDIDATE_CACHE_LIMIT = 4096
# Callers authenticated by an external identity provider (sts:AssumeRoleWithWebIdentity / WithSAML):
# not IAM principals of any account; only a Principal {"Federated": ...} names them.
FEDERATED_CALLER_TYPES = frozenset({"WebIdentityUser", "SAMLUser"})


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """Which policy this is: ``kind`` is a PolicyKind value ("identity", "scp", ...)."""

    kind: str
    policy_id: str
    name: str | None = None
    arn: str | None = None


@dataclass(frozen=True, slots=True)
class StatementRef:
    """One statement of one policy: what a decision names as determining."""

    kind: str
    policy_id: str
    sid: str | None
    index: int
    policy_arn: str | None = None


class Grant(Enum):
    """How a Principal element named the caller; decides what a same-account resource grant bypasses."""

    WILDCARD = "wildcard"  # "*" (with or without an aws:PrincipalArn condition)
    ACCOUNT = "account"  # account id or :root -> delegation to the account's IAM
    USER = "user"  # IAM user ARN
    ROLE = "role"  # IAM role ARN, caller is a session of that role
    SESSION = "session"  # assumed-role session ARN or STS federated-user ARN
    FEDERATING_USER = "federating_user"  # ARN of the IAM user who called GetFederationToken
    SERVICE = "service"
    FEDERATED = "federated"
    CANONICAL = "canonical"


class CompiledPrincipal:
    """A Principal / NotPrincipal element. ``"*"`` inside one principal type (``{"Federated": "*"}``, as in
    AWS's data-perimeter STS endpoint policy, or ``{"Service": "*"}``) names every principal of that type."""

    __slots__ = (
        "accounts",
        "any_federated",
        "any_service",
        "arns",
        "canonical",
        "federated",
        "services",
        "unique_ids",
        "wildcard",
    )

    def __init__(self, spec: PrincipalSpec) -> None:
        self.wildcard = spec.wildcard
        accounts: set[str] = set()
        arns: set[str] = set()
        unique_ids: set[str] = set()
        for value in spec.aws:
            if _ACCOUNT_RE.match(value):
                accounts.add(value)
            elif (m := _ROOT_RE.match(value)) is not None:
                accounts.add(m.group(1))
            elif _UNIQUE_ID_RE.match(value):
                unique_ids.add(value)
            else:
                arns.add(value)
        self.accounts = frozenset(accounts)
        self.arns = frozenset(arns)
        self.unique_ids = frozenset(unique_ids)
        self.services = frozenset(spec.service)
        self.federated = frozenset(spec.federated)
        self.any_service = "*" in self.services
        self.any_federated = "*" in self.federated
        self.canonical = frozenset(spec.canonical_user)

    def grant(self, p: PrincipalInfo) -> Grant | None:
        """How (if at all) this Principal element names the caller."""
        if self.wildcard:
            return Grant.WILDCARD
        t = p.type
        if t == "Anonymous":
            return None
        if t == "Service":
            return Grant.SERVICE if self.any_service or p.arn in self.services else None
        if t in FEDERATED_CALLER_TYPES:
            return Grant.FEDERATED if self._names_provider(p) else None
        if p.arn in self.arns:
            if t == "User":
                return Grant.USER
            if t in ("AssumedRole", "FederatedUser"):
                return Grant.SESSION
        if t == "AssumedRole" and p.principal_arn in self.arns:
            return Grant.ROLE
        if t == "FederatedUser" and p.source_user_arn and p.source_user_arn in self.arns:
            return Grant.FEDERATING_USER
        if self.unique_ids:
            uid = p.userid.split(":", 1)[0]
            if uid in self.unique_ids:
                return Grant.USER if t == "User" else Grant.ROLE
        if p.canonical_user and p.canonical_user in self.canonical:
            return Grant.CANONICAL
        if p.account in self.accounts:
            return Grant.ACCOUNT
        return None

    def _names_provider(self, p: PrincipalInfo) -> bool:
        provider = p.federated_provider
        return bool(provider) and (self.any_federated or provider in self.federated)

    def excludes(self, p: PrincipalInfo) -> bool:
        """For NotPrincipal: is *every* identity of the caller's chain listed?

        IAM docs: "When you use NotPrincipal with Deny, you must also specify the account ARN of the
        not-denied principal. Otherwise, the policy might deny access to the entire account". A role
        session's chain is session ARN, role ARN, account; a user's is user ARN, account.
        """
        if self.wildcard:
            return True
        t = p.type
        if t == "Anonymous":
            return False
        if t == "Service":
            return self.any_service or p.arn in self.services
        if t in FEDERATED_CALLER_TYPES:
            return self._names_provider(p)
        account_listed = p.account in self.accounts
        if t == "Account":
            return account_listed
        if not account_listed:
            return False
        if t == "AssumedRole":
            return p.arn in self.arns and p.principal_arn in self.arns
        return p.arn in self.arns


class CompiledStatement:
    __slots__ = (
        "actions",
        "conditions",
        "is_deny",
        "not_action",
        "not_principal",
        "not_resource",
        "principal",
        "ref",
        "resource_static",
        "resource_templates",
        "statement",
    )

    def __init__(self, stmt: Statement, ref: StatementRef, *, variables: bool) -> None:
        self.statement = stmt
        self.ref = ref
        self.is_deny = stmt.effect is Effect.DENY
        self.not_action = stmt.actions is None
        self.actions: GlobSet = compile_globs(
            stmt.actions if stmt.actions is not None else stmt.not_actions or (), ignore_case=True
        )
        patterns = stmt.resources if stmt.resources is not None else stmt.not_resources
        self.not_resource = stmt.resources is None and stmt.not_resources is not None
        static: list[str] = []
        templates: list[tuple[Part, ...]] = []
        if patterns is None:  # trust policies have no Resource element
            static = ["*"]
        else:
            for pattern in patterns:
                if variables and "${" in pattern:
                    parts = parse_template(pattern)
                    if any(not isinstance(p, str) for p in parts):
                        templates.append(parts)
                        continue
                static.append(pattern)
        self.resource_static: GlobSet = compile_arns(static)
        self.resource_templates = tuple(templates)
        self.principal = CompiledPrincipal(stmt.principal) if stmt.principal is not None else None
        self.not_principal = CompiledPrincipal(stmt.not_principal) if stmt.not_principal is not None else None
        self.conditions = tuple(CompiledCondition(c, variables=variables) for c in stmt.conditions)

    def action_matches(self, action_lower: str) -> bool:
        return self.actions(action_lower) != self.not_action


class CompiledPolicy:
    """A policy ready for evaluation. Immutable except for its private per-action candidate cache."""

    __slots__ = ("_candidates", "kind", "policy", "ref", "statements")

    def __init__(self, policy: Policy, ref: PolicyRef) -> None:
        self.policy = policy
        self.ref = ref
        self.kind = policy.kind
        variables = policy.supports_variables
        self.statements = tuple(
            CompiledStatement(
                s,
                StatementRef(ref.kind, ref.policy_id, s.sid, s.index, ref.arn),
                variables=variables,
            )
            for s in policy.statements
        )
        self._candidates: dict[str, tuple[CompiledStatement, ...]] = {}

    def candidates(self, action_lower: str) -> tuple[CompiledStatement, ...]:
        """The statements whose Action/NotAction matches this (lower-cased) action."""
        found = self._candidates.get(action_lower)
        if found is None:
            found = tuple(s for s in self.statements if s.action_matches(action_lower))
            if len(self._candidates) >= _CANDIDATE_CACHE_LIMIT:
                self._candidates.clear()
            self._candidates[action_lower] = found
        return found

    def __repr__(self) -> str:
        return f"CompiledPolicy({self.ref!r}, {len(self.statements)} statements)"


def compile_policy(policy: Policy, ref: PolicyRef) -> CompiledPolicy:
    """Compile once; cache the result by policy id (and version) on the caller's side."""
    return CompiledPolicy(policy, ref)


def policy_kind_of(ref: PolicyRef) -> PolicyKind:
    return PolicyKind(ref.kind)
