"""All applicable policies -> one ``Response``, following AWS's evaluation logic.

Source: IAM User Guide "How AWS enforcement code logic evaluates requests to allow or deny access"
(reference_policies_evaluation-logic_policy-eval-denyallow, current text) and
reference_policies_evaluation-logic-cross-account; Organizations SCP/RCP pages. In order:

1. Explicit deny anywhere (SCPs, RCPs, resource-based/trust policy, VPC endpoint policy, identity
   policies, permissions boundary, session policies) -> EXPLICIT_DENY.
2. RCPs (resource's account; not for resources of the management account, not for service-linked roles):
   every level root -> OUs -> account must have an applicable Allow (RCPFullAWSAccess is attached at each).
3. SCPs (principal's account; not for principals of the management account, not for service-linked
   roles): every level must have an applicable Allow.
4. VPC endpoint policy, when the request came through an endpoint: must allow.
5. Resource-based policy. Same account: an Allow naming the caller's user ARN, session ARN (assumed-role
   or federated user), or ``*`` (including ``*`` narrowed by ``aws:PrincipalArn``) is final: implicit
   denies in identity policies, boundary and session policies do not limit it. An Allow naming the role
   ARN (or, for a federated user, the IAM user who federated) bypasses only the identity-policy implicit
   deny; boundary and session policy still apply. An Allow naming the account delegates to IAM (identity
   policies must allow). Cross-account, and always for role trust policies ("must explicitly allow access
   for principals"), the resource side must allow *and* the principal side must allow.
6. Identity-based policies (user + groups, or role) must allow; the root user "has full access".
7. Permissions boundary, if any, must allow.
8. Session policies: a session with session policies needs one of them to allow. Without a session
   policy a role session is allowed ("a default session policy is created", current text); an STS
   federated-user session is implicitly denied (section 8 #3: the same page goes on "If the principal is a
   role session, then the request is Allowed. Otherwise, the request is implicitly denied", and the
   GetFederationToken page says a session without a session policy "has no permissions").

A stored policy that cannot be compiled arrives here as a ``BrokenPolicy`` (policy/stored.py): a Deny of
everything, so rule 1 denies and names it; its reason goes into ``errors``. ``PolicySet.repair`` is the one
exception: a broken *resource* policy has no effect on a request that removes it (the authorizer sets
``repair`` for dynamodb:DeleteResourcePolicy and dynamodb:DeleteTable) made by an IAM principal of the
resource's own account; every other policy type still applies, so the identity policies must allow it and
SCPs, RCPs, the endpoint policy, boundary and session policies still limit it (docs/policy-engine.md).

When several policy types deny, the reported one (``denied_by``) follows the order above for implicit
denies, and SCP, RCP, resource, VPC endpoint, identity, boundary, session for explicit denies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from perimeterdb.policy.ast import PolicyKind
from perimeterdb.policy.compile import (
    FEDERATED_CALLER_TYPES,
    CompiledPolicy,
    CompiledStatement,
    Grant,
    StatementRef,
)
from perimeterdb.policy.context import RequestContext
from perimeterdb.policy.evaluate import Env, PolicyResult, evaluate_policy
from perimeterdb.policy.stored import BrokenPolicy, BrokenStatement

__all__ = ["Decision", "PolicySet", "Response", "decide"]

_DIRECT = frozenset(
    {Grant.WILDCARD, Grant.USER, Grant.SESSION, Grant.SERVICE, Grant.FEDERATED, Grant.CANONICAL}
)
_LIMITED = frozenset({Grant.ROLE, Grant.FEDERATING_USER})
_ARN_IN_MESSAGE = frozenset({"scp", "rcp", "boundary", "session", "identity"})
# Callers without an IAM identity side (no identity policies, SCPs, boundary or session policy): only
# the resource-based (or trust) policy can grant, guardrails (RCPs, endpoint policy) still apply.
_NOT_IAM = frozenset({"Anonymous", "Service"}) | FEDERATED_CALLER_TYPES


class Decision(Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True, slots=True)
class Response:
    """The decision and why: the determining statements, evaluation errors, and the denying policy type.

    ``denied_by`` is a PolicyKind value ("scp", "identity", ...). ``denied_policy_arn`` is set when AWS's
    message would name the denying policy (explicit deny, same account or organization, policy with ARN).
    """

    decision: Decision
    determining: tuple[StatementRef, ...] = ()
    errors: tuple[str, ...] = ()
    denied_by: str | None = None
    denied_policy_arn: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every policy that applies to one request, compiled.

    ``session``: None when the caller is not a session or no session policy was passed; otherwise the
    inline and managed session policies. ``scp_levels`` / ``rcp_levels``: root -> OUs -> account, each a
    tuple of the policies attached at that level (SCPs of the principal's account, RCPs of the resource's
    account); empty when the account is not in an organization (or the policy type is not enabled).
    ``cross_account``: None means "compare the principal's and the resource's account".
    ``repair``: the request removes the resource policy; a broken one then has no effect for a same-account
    IAM principal (see the module docstring).
    """

    identity: tuple[CompiledPolicy, ...] = ()
    boundary: CompiledPolicy | None = None
    session: tuple[CompiledPolicy, ...] | None = None
    resource: CompiledPolicy | None = None
    scp_levels: tuple[tuple[CompiledPolicy, ...], ...] = ()
    rcp_levels: tuple[tuple[CompiledPolicy, ...], ...] = ()
    vpce: CompiledPolicy | None = None
    principal_in_management_account: bool = False
    resource_in_management_account: bool = False
    principal_in_org: bool = False
    resource_in_org: bool = False
    same_organization: bool = False
    cross_account: bool | None = None
    repair: bool = False


def _merged(policies: tuple[CompiledPolicy, ...] | list[CompiledPolicy], env: Env) -> PolicyResult:
    result = PolicyResult()
    for policy in policies:
        evaluate_policy(policy, env, result)
    return result


def _refs(stmts: list[CompiledStatement]) -> tuple[StatementRef, ...]:
    return tuple(s.ref for s in stmts)


def _explicit_deny(
    denies: list[tuple[str, list[CompiledStatement]]], errors: tuple[str, ...], *, linked: bool
) -> Response:
    kind, first = next((k, ds[0]) for k, ds in denies if ds)
    arn = first.ref.policy_arn if kind in _ARN_IN_MESSAGE and linked else None
    refs = tuple(s.ref for _, ds in denies for s in ds)
    broken = tuple(s.error for _, ds in denies for s in ds if isinstance(s, BrokenStatement))
    return Response(Decision.EXPLICIT_DENY, refs, errors + broken, kind, arn)


def decide(ctx: RequestContext, policies: PolicySet) -> Response:
    """Decide one request. Pure: same inputs, same Response."""
    ps = policies
    p = ctx.principal
    env = Env.of(ctx, has_boundary=ps.boundary is not None)
    ptype = p.type
    principal_side = ptype not in _NOT_IAM
    if ps.cross_account is not None:
        cross = ps.cross_account
    else:
        cross = ctx.resource_account is not None and ctx.resource_account != p.account

    scp_applies = (
        bool(ps.scp_levels)
        and principal_side
        and not ps.principal_in_management_account
        and not p.is_service_linked_role
    )
    rcp_applies = (
        bool(ps.rcp_levels) and not ps.resource_in_management_account and not p.is_service_linked_role
    )

    scp_results = [_merged(level, env) for level in ps.scp_levels] if scp_applies else []
    rcp_results = [_merged(level, env) for level in ps.rcp_levels] if rcp_applies else []
    resource_policy = ps.resource
    if (
        ps.repair
        and isinstance(resource_policy, BrokenPolicy)
        and principal_side
        and not cross
        and resource_policy.kind is PolicyKind.RESOURCE
    ):
        ref = resource_policy.ref
        env.errors.append(
            f"{ref.kind} policy {ref.policy_id} cannot be compiled; ignored because the request removes it "
            "(repair rule, docs/policy-engine.md)"
        )
        resource_policy = None
    resource = evaluate_policy(resource_policy, env) if resource_policy is not None else None
    vpce = evaluate_policy(ps.vpce, env) if ps.vpce is not None else None
    if principal_side:
        identity = _merged(ps.identity, env)
        boundary = evaluate_policy(ps.boundary, env) if ps.boundary is not None else None
        sessions = ps.session if ps.session else None
        session = _merged(sessions, env) if sessions is not None else None
    else:
        identity = PolicyResult()
        boundary = session = None

    # 1. Explicit deny anywhere.
    errors = tuple(env.errors)
    resource_kind = ps.resource.kind.value if ps.resource is not None else "resource"
    if (
        identity.denies
        or any(r.denies for r in scp_results)
        or any(r.denies for r in rcp_results)
        or (resource is not None and resource.denies)
        or (vpce is not None and vpce.denies)
        or (boundary is not None and boundary.denies)
        or (session is not None and session.denies)
    ):
        return _explicit_deny(
            [
                ("scp", [s for r in scp_results for s in r.denies]),
                ("rcp", [s for r in rcp_results for s in r.denies]),
                (resource_kind, resource.denies if resource else []),
                ("vpce", vpce.denies if vpce else []),
                ("identity", identity.denies),
                ("boundary", boundary.denies if boundary else []),
                ("session", session.denies if session else []),
            ],
            errors,
            linked=not cross or ps.same_organization,
        )

    def implicit(kind: str) -> Response:
        return Response(Decision.IMPLICIT_DENY, (), errors, kind)

    # 2-4. Guardrails: RCPs, SCPs (every level must allow), VPC endpoint policy.
    if any(not r.allows for r in rcp_results):
        return implicit("rcp")
    if any(not r.allows for r in scp_results):
        return implicit("scp")
    if vpce is not None and not vpce.allows:
        return implicit("vpce")

    # 5. Resource-based (or trust) policy.
    res_allows = resource.allows if resource is not None else []
    is_trust = ps.resource is not None and ps.resource.kind is PolicyKind.TRUST
    if not principal_side:
        if res_allows:
            return Response(Decision.ALLOW, tuple(s.ref for s, _ in res_allows), errors)
        return implicit(resource_kind)
    if (cross or is_trust) and not res_allows:
        return implicit(resource_kind)
    if not cross:
        direct = [s for s, g in res_allows if g in _DIRECT]
        if direct:
            return Response(Decision.ALLOW, _refs(direct), errors)
    limited = [s for s, g in res_allows if g in _LIMITED] if not cross else []

    # 6. Identity-based policies (the root user has full access).
    id_allows = [s for s, _ in identity.allows]
    if not p.is_root and not id_allows and not limited:
        return implicit("identity")

    # 7. Permissions boundary.
    if boundary is not None and not p.is_root and not boundary.allows:
        return implicit("boundary")

    # 8. Session policies.
    if p.is_session:
        if session is not None:
            if not session.allows:
                return implicit("session")
        elif ptype == "FederatedUser":
            return implicit("session")

    granting = id_allows + (limited if not id_allows else []) + ([s for s, _ in res_allows] if cross else [])
    return Response(Decision.ALLOW, _refs(granting), errors)
