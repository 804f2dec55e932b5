"""The questions, each answered with a proof ("holds") or a replayed counterexample (see docs/prover.md).

- ``private(snapshot, table, vpc, except_=…)`` holds iff no request to the table from outside the VPC (the
  internet, or an endpoint of another VPC) is allowed, except by the named principals as they exist —
  a principal named in ``except_`` is excepted only as itself: a new principal with the same ARN (possible
  unless the ARN is sealed) is not.
- ``public(snapshot, table)`` holds iff no anonymous caller and no principal outside the table's
  organization (an existing one, or, in *any principal* mode, one of an account outside the world) is
  allowed any action on the table.
- ``not_granted(snapshot, actions, resources, principal=…)`` holds iff the principal (or any principal)
  is allowed none of the actions on any of the resources.
- ``no_new_access(old, new)`` holds iff every request the new policy allows, the old one allows too.
- ``who_can(snapshot, action, resource)`` lists the classes of principals and origins that are allowed.

``any_principal=False`` ("as deployed") ranges over the principals that exist; ``True`` adds new users
and role sessions, with any name, path and tags, in every account of the world and outside it, whose
identity policies are whatever their creator attaches (guardrails and resource-side policies limit them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from perimeterdb.policy import CompiledPolicy, PolicyKind, PolicySet, PrincipalInfo
from perimeterdb.prover.check import COUNTEREXAMPLE, HOLDS, UNKNOWN, Result, check
from perimeterdb.prover.request import Case, Fresh, Origin, SymRequest
from perimeterdb.prover.smt import FALSE, and_, eq, not_, or_, str_lit
from perimeterdb.prover.world import TABLE_ACTIONS, Snapshot, Table, cases

__all__ = ["WhoCan", "no_new_access", "no_new_world_access", "not_granted", "private", "public", "who_can"]


def _table(snapshot: Snapshot, ref: str) -> Table:
    table = snapshot.table(ref)
    if table is None:
        raise LookupError(f"no such table: {ref}")
    return table


def _resources(table: Table) -> list[tuple[str, str | None, str, Table | None]]:
    return [(table.arn, table.account, table.region, table)]


def private(
    snapshot: Snapshot,
    table: str,
    vpc: str,
    *,
    except_: tuple[str, ...] = (),
    any_principal: bool = False,
    actions: tuple[str, ...] = TABLE_ACTIONS,
    timeout: float = 10.0,
    in_process: bool = False,
) -> Result:
    t = _table(snapshot, table)
    excepted = {_role_arn(e, t.account) for e in except_}
    existing = [
        p for p in snapshot.principals if p.info.principal_arn not in excepted and p.info.arn not in excepted
    ]
    trusted = frozenset(excepted) | _sealed_arns(snapshot)
    all_cases = cases(
        snapshot,
        _resources(t),
        any_principal=any_principal,
        principals=existing,
        origin_filter=lambda o: o.vpc_id != vpc,
        trusted=trusted,
    )
    result = check(
        f"private {t.arn} to {vpc}",
        all_cases,
        actions,
        timeout=timeout,
        in_process=in_process,
        concrete=lambda case, p, keys, action, resource: keys.get("aws:SourceVpc") != vpc,
    )
    return _with_creators(snapshot, result)


def _sealed_arns(snapshot: Snapshot) -> frozenset[str]:
    """The existing roles whose name is sealed (break-glass): trusted, like an excepted principal."""
    sealed = {n.lower() for n in snapshot.sealed}
    return frozenset(
        p.info.principal_arn
        for p in snapshot.principals
        if p.info.type == "AssumedRole" and p.info.principal_arn.rsplit("/", 1)[-1].lower() in sealed
    )


def _role_arn(ref: str, account: str) -> str:
    return ref if ref.startswith("arn:") else f"arn:aws:iam::{account}:role/{ref}"


def public(
    snapshot: Snapshot,
    table: str,
    *,
    any_principal: bool = False,
    actions: tuple[str, ...] = TABLE_ACTIONS,
    timeout: float = 10.0,
    in_process: bool = False,
) -> Result:
    t = _table(snapshot, table)
    org = snapshot.accounts[t.account].org_id if t.account in snapshot.accounts else None

    def outside(p: PrincipalInfo) -> bool:
        account = snapshot.accounts.get(p.account)
        if org is None:
            return p.account != t.account
        return account is None or account.org_id != org

    existing = [p for p in snapshot.principals if outside(p.info)]
    fresh_accounts: list[str | None] = [None] + [
        a for a, acc in snapshot.accounts.items() if (acc.org_id != org if org else a != t.account)
    ]
    all_cases = cases(
        snapshot,
        _resources(t),
        any_principal=any_principal,
        principals=existing,
        fresh_accounts=fresh_accounts,
    )
    result = check(f"public {t.arn}", all_cases, actions, timeout=timeout, in_process=in_process)
    return _with_creators(snapshot, result)


def not_granted(
    snapshot: Snapshot,
    actions: tuple[str, ...],
    resources: tuple[str, ...],
    *,
    principal: str | None = None,
    any_principal: bool = False,
    timeout: float = 10.0,
    in_process: bool = False,
) -> Result:
    chosen = None
    if principal is not None:
        chosen = [p for p in snapshot.principals if principal in (p.info.arn, p.info.principal_arn)]
        if not chosen:
            raise LookupError(f"no such principal: {principal}")
    res: list[tuple[str, str | None, str, Table | None]] = []
    for arn in resources:
        if ":" not in arn:
            found = snapshot.table(arn)
            if found is None:
                raise LookupError(f"no such table: {arn}")
            arn = found.arn
        # A table's policy and tags also cover its indexes and streams (as the authorizer has it).
        table = next((t for t in snapshot.tables if arn == t.arn or arn.startswith(t.arn + "/")), None)
        parts = arn.split(":")
        account = parts[4] if len(parts) > 5 and parts[4] else None
        region = parts[3] if len(parts) > 5 else "us-east-1"
        res.append((arn, account, region, table))
    all_cases = cases(
        snapshot,
        res,
        any_principal=any_principal and principal is None,
        principals=chosen,
        include_anonymous=principal is None,
    )
    label = principal or ("any principal" if any_principal else "every principal")
    result = check(
        f"not-granted {','.join(actions)} on {','.join(resources)} to {label}",
        all_cases,
        actions,
        timeout=timeout,
        in_process=in_process,
    )
    return _with_creators(snapshot, result)


def no_new_access(
    old: CompiledPolicy, new: CompiledPolicy, *, timeout: float = 10.0, in_process: bool = False
) -> Result:
    """Like Access Analyzer's CheckNoNewAccess, for two policies of the same kind: any principal (a new
    user or role session of any account), any action, any resource, any origin."""
    start = time.perf_counter()
    if old.kind is not new.kind:
        raise ValueError(f"the two policies are of different kinds: {old.kind.value} and {new.kind.value}")
    kind = new.kind
    out_cases: list[Case] = []
    for ptype in ("AssumedRole", "User"):
        fresh = Fresh(ptype, None, free_identity=False)
        for label, policy in (("new", new), ("old", old)):
            ps = _alone(kind, policy)
            out_cases.append(
                Case(
                    f"{label}:{ptype}",
                    fresh,
                    ps,
                    Origin("any origin"),
                    "",
                    "us-east-1",
                    None,
                    resource_free=True,
                )
            )
    # One request, two decisions: allowed under NEW, not under OLD. Cases 0/1 (new) and 2/3 (old) share
    # every free symbol except the principal's, which we tie together below.
    result = _compare(out_cases, kind, timeout=timeout, in_process=in_process)
    return replace(result, query=f"no-new-access ({kind.value} policy)", seconds=time.perf_counter() - start)


def _alone(kind: PolicyKind, policy: CompiledPolicy) -> PolicySet:
    """A policy set in which this one policy decides: an identity-like policy as the only identity policy
    (no resource policy); a resource policy as the resource policy of a resource in another account (so
    that it must grant by itself); guardrail kinds as one level under an allow-all identity policy."""
    from perimeterdb.prover.check import _ALLOW_ALL

    if kind in (PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SESSION):
        if kind is PolicyKind.IDENTITY:
            return PolicySet(identity=(policy,))
        if kind is PolicyKind.BOUNDARY:
            return PolicySet(identity=(_ALLOW_ALL,), boundary=policy)
        return PolicySet(identity=(_ALLOW_ALL,), session=(policy,))
    if kind is PolicyKind.SCP:
        return PolicySet(identity=(_ALLOW_ALL,), scp_levels=((policy,),))
    if kind is PolicyKind.RCP:
        return PolicySet(identity=(_ALLOW_ALL,), rcp_levels=((policy,),))
    if kind is PolicyKind.VPCE:
        return PolicySet(identity=(_ALLOW_ALL,), vpce=policy)
    return PolicySet(identity=(_ALLOW_ALL,), resource=policy, cross_account=True)


def _compare(all_cases: list[Case], kind: PolicyKind, *, timeout: float, in_process: bool) -> Result:
    """∃ request: allowed(new) ∧ ¬allowed(old), for each principal type, in one problem."""
    from perimeterdb.policy import RequestContext, decide
    from perimeterdb.prover import solve as solver
    from perimeterdb.prover.check import _multi_bounds, replay, replay_policies
    from perimeterdb.prover.encode import ActionSpace, allowed
    from perimeterdb.prover.request import Problem, Unsupported

    start = time.perf_counter()
    problem = Problem()
    problem.multi_bound.update(_multi_bounds(all_cases))
    space = ActionSpace(problem, None)
    goals = []
    pairs = []
    try:
        for i in range(0, len(all_cases), 2):
            new_case, old_case = all_cases[i], all_cases[i + 1]
            req_new = SymRequest(problem, new_case, i)
            req_old = SymRequest(problem, old_case, i)  # the same request: same symbols
            goals.append(and_(allowed(req_new, space), not_(allowed(req_old, space))))
            pairs.append((req_new, req_old))
    except Unsupported as exc:
        return Result("no-new-access", UNKNOWN, None, str(exc), time.perf_counter() - start)
    answer = (solver.solve_in_process if in_process else solver.solve)(
        problem.text(or_(goals)), timeout=timeout
    )
    if answer.status == "unsat":
        return Result(
            "no-new-access", HOLDS, None, "", time.perf_counter() - start, answer.solver, len(goals)
        )
    if answer.status != "sat":
        return Result(
            "no-new-access", UNKNOWN, None, answer.reason, time.perf_counter() - start, answer.solver
        )
    for req_new, req_old in pairs:

        def denied_before(
            case: Case, p: PrincipalInfo, keys: Any, action: str, resource: str, old: Case = req_old.case
        ) -> bool:
            return not decide(RequestContext(p, action, resource, None, keys), replay_policies(old)).allowed

        found = replay(req_new, space, answer.model, denied_before)
        if found is not None:
            return Result(
                "no-new-access",
                COUNTEREXAMPLE,
                found,
                "",
                time.perf_counter() - start,
                answer.solver,
                len(goals),
            )
    return Result(
        "no-new-access",
        UNKNOWN,
        None,
        "encoding bug: the evaluator does not confirm the model",
        time.perf_counter() - start,
        answer.solver,
    )


def no_new_world_access(
    old: Snapshot,
    new: Snapshot,
    *,
    any_principal: bool = False,
    timeout: float = 10.0,
    in_process: bool = False,
) -> Result:
    """Holds iff no request (principal, origin, action on a table of NEW) that NEW allows is denied by OLD
    (a principal, table or endpoint that OLD lacks counts as denied there)."""
    from perimeterdb.policy import RequestContext, decide
    from perimeterdb.prover import solve as solver
    from perimeterdb.prover.check import _multi_bounds, creatable, replay, replay_policies
    from perimeterdb.prover.encode import ActionSpace, allowed
    from perimeterdb.prover.request import Problem, Unsupported

    start = time.perf_counter()
    resources = [(t.arn, t.account, t.region, t) for t in new.tables]
    new_cases = cases(new, resources, any_principal=any_principal)
    old_resources = [(t.arn, t.account, t.region, old.table(t.arn)) for t in new.tables]
    old_index = {c.label: c for c in cases(old, old_resources, any_principal=any_principal)}
    problem = Problem()
    problem.multi_bound.update(_multi_bounds(new_cases + list(old_index.values())))
    space = ActionSpace(problem, TABLE_ACTIONS)
    goals: list[tuple[int, str]] = []
    pairs: dict[int, tuple[SymRequest, SymRequest | None]] = {}
    try:
        for i, case in enumerate(new_cases):
            req_new = SymRequest(problem, case, i)
            now = and_(allowed(req_new, space), creatable(req_new), *req_new.constraints)
            before_case = old_index.get(case.label)
            req_old = SymRequest(problem, before_case, i) if before_case is not None else None
            before = (
                and_(allowed(req_old, space), creatable(req_old), *req_old.constraints) if req_old else FALSE
            )
            goal = and_(now, not_(before))
            if goal != FALSE:
                goals.append((i, goal))
                pairs[i] = (req_new, req_old)
    except Unsupported as exc:
        return Result("no-new-access (worlds)", UNKNOWN, None, str(exc), time.perf_counter() - start)
    if not goals:
        return Result(
            "no-new-access (worlds)", HOLDS, None, "", time.perf_counter() - start, "", len(new_cases)
        )
    texts = [problem.text(g, case=i) for i, g in goals]
    answer = (solver.solve_in_process if in_process else solver.solve)(texts, timeout=timeout)
    seconds = time.perf_counter() - start
    if answer.status == "unsat":
        return Result("no-new-access (worlds)", HOLDS, None, "", seconds, answer.solver, len(new_cases))
    if answer.status != "sat":
        return Result("no-new-access (worlds)", UNKNOWN, None, answer.reason, seconds, answer.solver)
    i = goals[int(answer.model.get("#problem", 0))][0]
    req_new, req_old = pairs[i]

    def denied_before(case: Case, p: PrincipalInfo, keys: Any, action: str, resource: str) -> bool:
        if req_old is None:
            return True
        ctx = RequestContext(p, action, resource, case.resource_account, keys)
        return not decide(ctx, replay_policies(req_old.case)).allowed

    found = replay(req_new, space, answer.model, denied_before)
    if found is None:
        return Result(
            "no-new-access (worlds)",
            UNKNOWN,
            None,
            "encoding bug: the evaluator does not confirm",
            seconds,
            answer.solver,
        )
    return Result("no-new-access (worlds)", COUNTEREXAMPLE, found, "", seconds, answer.solver, len(new_cases))


@dataclass(frozen=True, slots=True)
class WhoCan:
    """One class of principals allowed from one origin, with what the probes found about it."""

    principal: str
    origin: str
    example: dict[str, Any]
    requires: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "origin": self.origin,
            "requires": list(self.requires),
            "example": self.example,
        }


def who_can(
    snapshot: Snapshot,
    action: str,
    resource: str,
    *,
    any_principal: bool = False,
    timeout: float = 10.0,
    in_process: bool = False,
) -> tuple[list[WhoCan], list[str]]:
    """Every (principal class, origin) allowed ``action`` on ``resource``, each with an example request
    and the conditions it needs (MFA, a specific role name, an origin). Returns (classes, unknowns)."""
    table = snapshot.table(resource) if ":table/" in resource or ":" not in resource else None
    parts = resource.split(":")
    arn = table.arn if table else resource
    account = table.account if table else (parts[4] if len(parts) > 5 else None)
    region = table.region if table else (parts[3] if len(parts) > 5 else "us-east-1")
    all_cases = cases(snapshot, [(arn, account, region, table)], any_principal=any_principal)
    found: list[WhoCan] = []
    unknown: list[str] = []
    for case in all_cases:
        # One small question per case: cvc5 in this process first (no children to start), the portfolio
        # only when that does not decide.
        result = check(case.label, [case], (action,), timeout=min(timeout, 2.0), in_process=True)
        if result.status == UNKNOWN and not in_process:
            result = check(case.label, [case], (action,), timeout=timeout)
        if result.status == UNKNOWN:
            unknown.append(f"{case.label}: {result.reason}")
            continue
        if result.status != COUNTEREXAMPLE or result.counterexample is None:
            continue
        requires: list[str] = []
        mfa = check(
            case.label,
            [case],
            (action,),
            timeout=min(timeout, 2.0),
            in_process=True,  # probes: one solver in process, no children to start
            extra=lambda r: _no_mfa(r),
        )
        if mfa.status == HOLDS and "aws:multifactorauthpresent" in _keys_of(result):
            requires.append("MFA")
        if isinstance(case.principal, Fresh):
            name = result.counterexample.principal.principal_arn.rsplit("/", 1)[-1]
            other = check(
                case.label,
                [case],
                (action,),
                timeout=min(timeout, 2.0),
                in_process=True,
                extra=lambda r, n=name: not_(eq(r.principal_terms["name"], str_lit(n))),
            )
            if other.status == HOLDS:
                requires.append(f"the name {name!r}")
        ce = result.counterexample.to_json()
        principal = case.label.split(" via ", 1)[0]
        found.append(WhoCan(principal, case.origin.label, ce, tuple(requires)))
    return found, unknown


def _keys_of(result: Result) -> set[str]:
    return set(result.counterexample.keys) if result.counterexample else set()


def _no_mfa(req: SymRequest) -> str:
    kv = req.symbolic.get("aws:multifactorauthpresent")
    if kv is None or kv.s is None:
        return "true"
    return or_(not_(kv.present), eq(kv.s, '"false"'))


def _with_creators(snapshot: Snapshot, result: Result) -> Result:
    """(The creators are found during the replay; kept as a hook for adapters.)"""
    return result
