"""Evaluate one statement, or one policy, against a request.

A statement applies when its Action, Resource, Principal (for resource-like policies) and every condition
match. Fail closed (STYLE.md example 8): when a condition cannot be evaluated, a Deny statement counts as
applying and an Allow statement does not; either way the error is recorded.

``NotPrincipal`` with Deny, for a caller with a permissions boundary, always applies: "The NotPrincipal
element with a Deny effect will always deny any IAM principal that has a permissions boundary policy
attached, regardless of the values specified in the NotPrincipal element" (IAM User Guide,
access_policies_boundaries).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from perimeterdb.policy.compile import CompiledPolicy, CompiledStatement, Grant
from perimeterdb.policy.conditions import ConditionError
from perimeterdb.policy.context import ContextValue, RequestContext
from perimeterdb.policy.match import arn_regex, compiled
from perimeterdb.policy.variables import render

__all__ = ["Env", "PolicyResult", "evaluate_policy", "resource_matches", "statement_applies"]

Getter = Callable[[str], "ContextValue | None"]


@dataclass(slots=True)
class Env:
    """Per-decision evaluation state: the request, and errors collected along the way."""

    ctx: RequestContext
    action_lower: str
    get: Getter
    has_boundary: bool = False
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, ctx: RequestContext, *, has_boundary: bool = False) -> Env:
        return cls(ctx, ctx.action.lower(), ctx.keys.lookup, has_boundary, [])


class PolicyResult:
    """The applicable Allow statements (with how the Principal named the caller) and Deny statements."""

    __slots__ = ("allows", "denies")

    def __init__(self) -> None:
        self.allows: list[tuple[CompiledStatement, Grant | None]] = []
        self.denies: list[CompiledStatement] = []


def resource_matches(stmt: CompiledStatement, resource: str, get: Getter) -> bool:
    hit = stmt.resource_static(resource)
    if not hit:
        for parts in stmt.resource_templates:
            rendered = render(parts, get)
            if rendered is None:
                continue  # "will not match any resource"
            if compiled(arn_regex(rendered, resource=True)).fullmatch(resource) is not None:
                hit = True
                break
    return hit != stmt.not_resource


_NO = (False, None)


def statement_applies(stmt: CompiledStatement, env: Env) -> tuple[bool, Grant | None]:
    """Does the statement apply (action already matched by ``candidates``)? Returns (applies, grant)."""
    ctx = env.ctx
    if not resource_matches(stmt, ctx.resource, env.get):
        return _NO
    grant: Grant | None = None
    if stmt.principal is not None:
        grant = stmt.principal.grant(ctx.principal)
        if grant is None:
            return _NO
    elif stmt.not_principal is not None:
        p = ctx.principal
        boundary_quirk = env.has_boundary and p.type in ("User", "AssumedRole")
        if not boundary_quirk and stmt.not_principal.excludes(p):
            return _NO
    for cond in stmt.conditions:
        try:
            if not cond.evaluate(env.get):
                return _NO
        except ConditionError as exc:
            ref = stmt.ref
            env.errors.append(f"{ref.kind} {ref.policy_id} statement {ref.sid or ref.index}: {exc}")
            return (stmt.is_deny, grant)  # fail closed
    return (True, grant)


def evaluate_policy(policy: CompiledPolicy, env: Env, result: PolicyResult | None = None) -> PolicyResult:
    """Collect the applicable Allow and Deny statements of one policy."""
    out = result if result is not None else PolicyResult()
    for stmt in policy.candidates(env.action_lower):
        applies, grant = statement_applies(stmt, env)
        if applies:
            if stmt.is_deny:
                out.denies.append(stmt)
            else:
                out.allows.append((stmt, grant))
    return out
