"""One question to the solvers: "is some request of these cases allowed (and, optionally, more)?"

``check`` encodes every case into one SMT problem (a disjunction over a case selector), asks the
portfolio, and turns a model into a concrete request: realistic values are substituted where the model is
degenerate, and the request is replayed through ``perimeterdb.policy.decide``. The replay must agree
(allowed, and the query's own condition true) before the counterexample is shown; a disagreement is an
encoding bug and the answer is UNKNOWN with that reason, never a wrong counterexample and never "holds".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from perimeterdb.policy import (
    PolicyKind,
    PolicyRef,
    PolicySet,
    PrincipalInfo,
    RequestContext,
    Response,
    compile_policy,
    decide,
    parse_policy,
)
from perimeterdb.policy.ast import SetQualifier
from perimeterdb.policy.context import ContextKeys
from perimeterdb.prover import solve as solver
from perimeterdb.prover.encode import ActionSpace, allowed
from perimeterdb.prover.request import Case, Fresh, Problem, SymRequest, Unsupported
from perimeterdb.prover.smt import FALSE, TRUE, and_, eq, not_, or_, str_lit

__all__ = ["COUNTEREXAMPLE", "HOLDS", "UNKNOWN", "Counterexample", "Result", "check", "replay_policies"]

HOLDS = "holds"
COUNTEREXAMPLE = "counterexample"
UNKNOWN = "unknown"

_ALLOW_ALL = compile_policy(
    parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
        PolicyKind.IDENTITY,
    ),
    PolicyRef("identity", "created-with-any-permissions", "(whatever its creator attaches)"),
)


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A concrete request that breaks the property, replayed through the evaluator."""

    case: str
    principal: PrincipalInfo
    action: str
    resource: str
    origin: str
    keys: dict[str, Any]
    response: Response
    fresh: bool = False
    created_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        p = self.principal
        return {
            "case": self.case,
            "principal": {
                "arn": p.arn,
                "principal_arn": p.principal_arn,
                "account": p.account,
                "type": p.type,
                "tags": dict(p.tags),
                "exists": not self.fresh,
            },
            "created_by": list(self.created_by),
            "action": self.action,
            "resource": self.resource,
            "origin": self.origin,
            "context": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(self.keys.items())},
            "decision": self.response.decision.value,
            "determining": [
                {"kind": s.kind, "policy": s.policy_id, "sid": s.sid, "index": s.index}
                for s in self.response.determining
            ],
        }


@dataclass(frozen=True, slots=True)
class Result:
    """The answer to one query. ``status``: holds | counterexample | unknown."""

    query: str
    status: str
    counterexample: Counterexample | None = None
    reason: str = ""
    seconds: float = 0.0
    solver: str = ""
    cases: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def holds(self) -> bool:
        return self.status == HOLDS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "query": self.query,
            "result": self.status,
            "seconds": round(self.seconds, 4),
            "solver": self.solver,
            "cases": self.cases,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample.to_json()
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def replay_policies(case: Case) -> PolicySet:
    """The policies to replay a case with: a new principal gets an identity policy that allows everything
    (its creator chooses its policies) and no boundary or session policy."""
    if isinstance(case.principal, Fresh) and case.principal.free_identity:
        return replace(case.policies, identity=(_ALLOW_ALL,), boundary=None, session=None)
    return case.policies


def _multi_bounds(cases: list[Case]) -> dict[str, int]:
    """Keys read under a set operator, and how many elements a witness set needs (one per clause + 1)."""
    counts: dict[str, int] = {}
    seen: set[int] = set()
    for case in cases:
        ps = case.policies
        groups = [*ps.identity, ps.boundary, *(ps.session or ()), ps.resource, ps.vpce]
        groups += [p for level in ps.scp_levels for p in level] + [
            p for level in ps.rcp_levels for p in level
        ]
        for policy in groups:
            if policy is None or id(policy) in seen:
                continue
            seen.add(id(policy))
            for stmt in policy.statements:
                for cc in stmt.conditions:
                    if cc.qualifier is not SetQualifier.NONE:
                        counts[cc.key] = counts.get(cc.key, 0) + 1
    return {k: min(4, v + 1) for k, v in counts.items()}


Extra = Callable[[SymRequest], str]
Concrete = Callable[
    [Case, PrincipalInfo, ContextKeys, str, str], bool
]  # case, principal, keys, action, resource


def check(
    query: str,
    cases: list[Case],
    actions: tuple[str, ...] | None,
    *,
    extra: Extra | None = None,
    concrete: Concrete | None = None,
    timeout: float = 10.0,
    in_process: bool = False,
    want_allowed: bool = True,
) -> Result:
    """Is there a request of one of ``cases`` that is allowed (``want_allowed``; denied otherwise) and
    satisfies ``extra``? SAT -> counterexample (replayed), UNSAT -> holds, else unknown."""
    start = time.perf_counter()
    problem = Problem()
    problem.multi_bound.update(_multi_bounds(cases))
    space = ActionSpace(problem, actions)
    goals: list[tuple[int, str]] = []
    requests: list[SymRequest | None] = []
    unsupported: list[str] = []
    for index, case in enumerate(cases):
        try:
            req = SymRequest(problem, case, index)
            decision = allowed(req, space)
            if not want_allowed:
                decision = not_(decision)
            term = and_(decision, extra(req) if extra else TRUE, creatable(req), *req.constraints)
        except Unsupported as exc:
            unsupported.append(f"{case.label}: {exc}")
            requests.append(None)
            continue
        except Exception as exc:  # a bug in the encoding: say so, and never answer "holds" past it
            unsupported.append(f"{case.label}: encoding error {exc!r}")
            requests.append(None)
            continue
        requests.append(req)
        if term != FALSE:
            goals.append((index, term))
    notes = tuple(f"not encoded: {u}" for u in unsupported)
    if not goals:
        status, reason = (UNKNOWN, "; ".join(unsupported)) if unsupported else (HOLDS, "")
        return Result(query, status, None, reason, time.perf_counter() - start, "", len(cases), notes)
    # Guesses first: each new principal with a name taken from the policies (pinned), which the solvers
    # answer far faster than a free name; then every case in full.
    names = _candidate_names(cases)
    hinted: list[tuple[int, str]] = []
    for index, goal in goals:
        req = requests[index]
        if req is not None and isinstance(req.case.principal, Fresh):
            for name in names:
                pin = and_(
                    eq(req.principal_terms["name"], str_lit(name)), eq(req.principal_terms["path"], '""')
                )
                hinted.append((index, and_(goal, pin)))
    ordered = hinted + goals
    hints = frozenset(range(len(hinted)))
    texts = [problem.text(goal, case=index) for index, goal in ordered]
    if in_process:
        answer = solver.solve_in_process(texts, timeout=timeout, hints=hints)
    else:
        answer = solver.solve(texts, timeout=timeout, hints=hints)
    goals = ordered
    seconds = time.perf_counter() - start
    if answer.status == "unsat":
        if unsupported:
            return Result(
                query, UNKNOWN, None, "; ".join(unsupported), seconds, answer.solver, len(cases), notes
            )
        return Result(query, HOLDS, None, "", seconds, answer.solver, len(cases), notes)
    if answer.status != "sat":
        return Result(query, UNKNOWN, None, answer.reason, seconds, answer.solver, len(cases), notes)
    model = _complete(problem, answer.model)
    index = goals[int(answer.model.get("#problem", 0))][0]
    req = requests[index]
    assert req is not None
    found, problem_text = _replay(req, space, model, concrete, want_allowed)
    seconds = time.perf_counter() - start
    if found is None:
        return Result(
            query, UNKNOWN, None, f"encoding bug: {problem_text}", seconds, answer.solver, len(cases), notes
        )
    return Result(query, COUNTEREXAMPLE, found, "", seconds, answer.solver, len(cases), notes)


_NAME_IN_ARN = re.compile(r":(?:role|user)/(?:[^*?]*/)?([\w+=,.@*?-]+)$")


def _candidate_names(cases: list[Case]) -> list[str]:
    """Role and user names the policies mention (in ARN patterns, with wildcards filled in), and one
    unrelated name: likely witnesses for a new principal."""
    found: list[str] = []
    seen: set[int] = set()
    for case in cases:
        fresh = case.principal
        groups = [case.policies.resource, case.policies.vpce]
        groups += [p for level in case.policies.scp_levels for p in level]
        groups += [p for level in case.policies.rcp_levels for p in level]
        if isinstance(fresh, Fresh):
            for creator in fresh.creators or ():
                groups += list(creator.policies.identity)
        for policy in groups:
            if policy is None or id(policy) in seen:
                continue
            seen.add(id(policy))
            for stmt in policy.statements:
                texts = list(stmt.statement.resources or ()) + list(stmt.statement.not_resources or ())
                texts += [v for cc in stmt.conditions for v in cc.clause.values]
                for text in texts:
                    m = _NAME_IN_ARN.search(text)
                    if m is not None:
                        name = m.group(1).replace("*", "x").replace("?", "x")
                        if name not in found and not name.startswith("x"):
                            found.append(name)
    return [*found[:6], "attacker"]


def creatable(req: SymRequest) -> str:
    """A new principal exists only if one of its possible creators is allowed to create it (the create
    action decided on its ARN, with that creator's policies in force)."""
    fresh = req.case.principal
    if not isinstance(fresh, Fresh) or fresh.creators is None:
        return TRUE
    space = ActionSpace(req.problem, (fresh.create_action,))
    options = []
    for j, creator in enumerate(fresh.creators):
        sub = SymRequest(
            req.problem,
            creator,
            f"{req.index}q{j}",
            ns=f"c{req.index}q{j}.",
            resource_term=req.principal_terms["principal_arn"],
        )
        options.append(and_(allowed(sub, space), *sub.constraints))
    return or_(options)


def created_by(case: Case, principal: PrincipalInfo) -> tuple[str, ...]:
    """The existing principals allowed to create this new principal (concrete decisions)."""
    fresh = case.principal
    if not isinstance(fresh, Fresh) or not fresh.creators:
        return ()
    out = []
    for creator in fresh.creators:
        info = creator.principal
        assert isinstance(info, PrincipalInfo)
        ctx = RequestContext(
            info,
            fresh.create_action,
            principal.principal_arn,
            principal.account,
            ContextKeys(
                {
                    "aws:PrincipalArn": info.principal_arn,
                    "aws:PrincipalAccount": info.account,
                    "aws:PrincipalType": info.type,
                    "aws:SecureTransport": "true",
                    "aws:MultiFactorAuthPresent": "true",
                }
            ),
        )
        if decide(ctx, creator.policies).allowed:
            out.append(info.principal_arn)
    return tuple(out)


def _complete(problem: Problem, model: dict[str, Any]) -> dict[str, Any]:
    """Solvers leave out symbols the formula does not constrain: give them a default."""
    defaults: dict[str, Any] = {"String": "", "Bool": False, "Int": 0, "Real": Fraction(0)}
    out = dict(model)
    for name, sort in problem.decls.items():
        out.setdefault(name, defaults.get(sort, 0))
    return out


_REALISTIC = {
    "name": ("attacker", "app"),
    "session_name": ("attacker-session", "session1"),
    "path": ("",),
    "uid": ("EXAMPLEEXAMPLE23",),
    "account": ("444455556666",),
}


def replay(
    req: SymRequest,
    space: ActionSpace,
    model: dict[str, Any],
    concrete: Concrete | None,
    want_allowed: bool = True,
) -> Counterexample | None:
    """The model as a replayed counterexample (None: the evaluator does not confirm it)."""
    return _replay(req, space, _complete(req.problem, model), concrete, want_allowed)[0]


def _replay(
    req: SymRequest,
    space: ActionSpace,
    model: dict[str, Any],
    concrete: Concrete | None,
    want_allowed: bool,
) -> tuple[Counterexample | None, str]:
    """Replay the model through ``decide``; then try realistic values for degenerate parts, keeping each
    substitution only if the replay still agrees."""

    def attempt(m: dict[str, Any]) -> Counterexample | None:
        case = req.case
        try:
            m = req.consistent(m)
            principal = req.concrete_principal(m)
            keys = req.concrete_keys(m)
        except Exception:
            return None
        if keys.get("aws:PrincipalArn") not in (None, principal.principal_arn):
            return None  # not a request the server could see
        action = space.name(m)
        resource = str(m.get("resource", "")) if case.resource_free else case.resource
        ctx = RequestContext(principal, action, resource, case.resource_account, keys)
        response = decide(ctx, replay_policies(case))
        if response.allowed != want_allowed:
            return None
        if concrete is not None and not concrete(case, principal, keys, action, resource):
            return None
        return Counterexample(
            case.label,
            principal,
            action,
            resource,
            case.origin.label,
            dict(keys.items()),
            response,
            fresh=isinstance(case.principal, Fresh),
            created_by=created_by(case, principal),
        )

    first = attempt(model)
    if first is None:
        keys = None
        try:
            keys = dict(req.concrete_keys(model).items())
        except Exception as exc:  # pragma: no cover - reported as the bug
            keys = {"error": str(exc)}
        return None, f"the evaluator disagrees with the model for {req.case.label} (keys {keys})"
    best, best_model = first, model
    i = req.index
    for suffix, options in _REALISTIC.items():
        name = f"c{i}.{suffix}"
        if name not in best_model:
            continue
        for option in options:
            trial = {**best_model, name: option}
            found = attempt(trial)
            if found is not None:
                best, best_model = found, trial
                break
    realistic: list[dict[str, Any]] = [{"clock": 1767225600}]  # 2026-01-01T00:00:00Z
    if space.universe is not None and len(space.universe) > 1:
        realistic += [
            {"action": space.universe.index(a)}
            for a in ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:Scan")
            if a in space.universe
        ]
    realistic.append({"c{i}.session": True, "k.aws:multifactorauthpresent.s": "false"})
    action_done = False
    for change in realistic:
        change = {k.replace("{i}", str(i)): v for k, v in change.items()}
        if action_done and "action" in change:
            continue
        found = attempt({**best_model, **change})
        if found is not None:
            best, best_model = found, {**best_model, **change}
            action_done = action_done or "action" in change
    for key in ("aws:sourceip", "aws:vpcsourceip"):
        a4 = f"k.{key}.a4"
        if key in req.symbolic and best_model.get(f"k.{key}.v4", True):
            for option in (0xCB00710A, 0x0A4D0164):  # 203.0.113.10 (TEST-NET-3), 10.77.1.100
                trial = {**best_model, a4: option, f"k.{key}.v4": True}
                found = attempt(trial)
                if found is not None:
                    best, best_model = found, trial
                    break
    return best, ""
