"""The policies of one case as an SMT formula, node for node as ``perimeterdb.policy`` evaluates them.

``CompiledCondition.evaluate`` -> ``condition``; ``statement_applies`` (Resource, Principal/NotPrincipal,
the condition chain with its fail-closed errors) -> ``statement``; ``decide`` -> ``allowed``. Whatever the
case makes concrete is decided by the evaluator's own code (a condition whose keys are all concrete is
simply evaluated), so the formula holds only what is really open.

Constructs the encoding does not cover raise ``Unsupported`` (the query then answers UNKNOWN and says
why): a wildcard pattern whose variables *and* subject are both free, ``...IgnoreCase`` or ``Bool`` with a
free variable in the policy value, ``BinaryEquals`` on a free key, numeric/date/IP operators on a
multivalued free key, and string operators on keys the encoding keeps typed (aws:CurrentTime, aws:SourceIp
...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from perimeterdb.policy import PolicyKind, PolicySet
from perimeterdb.policy.ast import SetQualifier
from perimeterdb.policy.compile import (
    FEDERATED_CALLER_TYPES,
    CompiledPolicy,
    CompiledPrincipal,
    CompiledStatement,
    Grant,
)
from perimeterdb.policy.conditions import (
    _MALFORMED,
    CompiledCondition,
    ConditionError,
)
from perimeterdb.policy.match import arn_regex, compiled, glob_regex
from perimeterdb.policy.variables import Literal, Var, parse_template
from perimeterdb.prover import smt
from perimeterdb.prover.request import Fresh, SymRequest, Unsupported, in_network
from perimeterdb.prover.smt import FALSE, TRUE, and_, concat, eq, implies, in_re, ite, not_, or_, str_lit

__all__ = ["ActionSpace", "PolicyTerms", "allowed", "statement"]

_DIRECT = frozenset(
    {Grant.WILDCARD, Grant.USER, Grant.SESSION, Grant.SERVICE, Grant.FEDERATED, Grant.CANONICAL}
)
_LIMITED = frozenset({Grant.ROLE, Grant.FEDERATING_USER})
_NOT_IAM = frozenset({"Anonymous", "Service"}) | FEDERATED_CALLER_TYPES
_COMPARE: dict[str, Callable[[str, str], str]] = {
    "Equals": lambda a, b: f"(= {a} {b})",
    "LessThan": lambda a, b: f"(< {a} {b})",
    "LessThanEquals": lambda a, b: f"(<= {a} {b})",
    "GreaterThan": lambda a, b: f"(> {a} {b})",
    "GreaterThanEquals": lambda a, b: f"(>= {a} {b})",
}
_TERM = "\x00term"


class Text(str):
    """A concrete request value (terms are plain ``str`` too)."""

    __slots__ = ()


_ACTION_RE = (
    '(re.++ (re.+ (re.union (re.range "a" "z") (re.range "0" "9") (str.to_re "-"))) (str.to_re ":") '
    '(re.+ (re.union (re.range "a" "z") (re.range "A" "Z") (re.range "0" "9"))))'
)


class ActionSpace:
    """The action: an index into a finite list of action names (``universe``), or (``universe`` None) any
    ``service:Action`` string, matched against Action/NotAction patterns case-insensitively."""

    def __init__(self, problem: Any, universe: tuple[str, ...] | None) -> None:
        self.universe = universe
        if universe is None:
            self.term = problem.const("action_name", "String")
            problem.add(in_re(self.term, _ACTION_RE))
            self._lower: tuple[str, ...] = ()
            return
        self._lower = tuple(a.lower() for a in universe)
        if len(universe) == 1:
            self.term = "0"
            return
        self.term = problem.const("action", "Int")
        problem.add(f"(and (<= 0 {self.term}) (< {self.term} {len(universe)}))")

    def matches(self, stmt: CompiledStatement) -> str:
        if self.universe is None:
            s = stmt.statement
            patterns = s.actions if s.actions is not None else s.not_actions or ()
            hit = or_([_action_pattern(self.term, p.lower()) for p in patterns])
            return smt.xor(hit, stmt.not_action)
        hits = [i for i, a in enumerate(self._lower) if stmt.action_matches(a)]
        if len(hits) == len(self._lower):
            return TRUE
        return or_([f"(= {self.term} {i})" for i in hits])

    def name(self, model: dict[str, Any]) -> str:
        if self.universe is None:
            return str(model.get("action_name", ""))
        return self.universe[int(model.get("action", 0))]


def _action_pattern(term: str, pattern: str) -> str:
    if pattern == "*":
        return TRUE
    return in_re(term, smt.glob_re([(pattern, False)], fold=True))


# --- policy values ---------------------------------------------------------------------------------


def _render(parts: tuple[Any, ...], req: SymRequest) -> tuple[str, list[tuple[str, Any]]] | None:
    """A template's rendering: (guard, [(text, is_literal) | (_TERM, term)]); None if it never renders."""
    guard = TRUE
    out: list[tuple[str, Any]] = []
    for part in parts:
        if isinstance(part, str):
            out.append((part, False))
        elif isinstance(part, Literal):
            out.append((part.text, True))
        elif isinstance(part, Var):
            kv = req.key(part.key)
            if kv.concrete:
                value = kv.value if isinstance(kv.value, str) else None
                if value is None:
                    if part.default is None:
                        return None
                    value = part.default
                out.append((value, True))
            elif kv.elems is not None:  # "You can't use a multivalued condition key as a variable"
                if part.default is None:
                    return None
                out.append((part.default, True))
            else:
                value_term = req.string(kv)
                if part.default is None:
                    guard = and_(guard, kv.present)
                    out.append((_TERM, value_term))
                else:
                    out.append((_TERM, ite(kv.present, value_term, str_lit(part.default))))
    if guard == FALSE:
        return None
    return guard, out


def _static(parts: list[tuple[str, Any]]) -> bool:
    return all(text != _TERM for text, _ in parts)


def _substitute(parts: list[tuple[str, Any]], values: list[str]) -> list[tuple[str, bool]]:
    it = iter(values)
    return [(next(it), True) if text == _TERM else (text, bool(lit)) for text, lit in parts]


def _enumerate_match(
    subject: str, parts: list[tuple[str, Any]], matches: Callable[[list[tuple[str, bool]]], bool]
) -> str:
    """A pattern with free variable parts against a concrete subject: a variable's text is literal, so it
    is a substring of the subject; try each, and keep those for which the rendered pattern matches."""
    terms = [lit for text, lit in parts if text == _TERM]
    if len(terms) > 2 or len(subject) > 256:
        raise Unsupported("a pattern with more than two free variables (or a very long subject)")
    n = len(subject)
    first = next(k for k, (text, _) in enumerate(parts) if text == _TERM)
    last = max(k for k, (text, _) in enumerate(parts) if text == _TERM)
    before = parts[:first]
    after = parts[last + 1 :]
    # Where the first variable starts / the last one ends is fixed when the text around it has no wildcard.
    if all(lit or ("*" not in t and "?" not in t) for t, lit in before):
        prefix = "".join(t for t, _ in before)
        starts = [len(prefix)] if subject.startswith(prefix) else []
    else:
        starts = list(range(n + 1))
    if all(lit or ("*" not in t and "?" not in t) for t, lit in after):
        suffix = "".join(t for t, _ in after)
        ends = [n - len(suffix)] if subject.endswith(suffix) else []
    else:
        ends = list(range(n + 1))
    # A necessary condition, cheap: the text around the variables matches with every wildcard read as
    # ".*"/"." (a superset of what any segment rule allows); only then is the exact pattern built.
    if len(starts) > 1:
        relaxed = compiled(glob_regex([(t, bool(lit)) for t, lit in before]))
        starts = [i for i in starts if relaxed.fullmatch(subject[:i]) is not None]
    if len(ends) > 1:
        relaxed = compiled(glob_regex([(t, bool(lit)) for t, lit in after]))
        ends = [j for j in ends if relaxed.fullmatch(subject[j:]) is not None]
    options: list[str] = []
    if len(terms) == 1:
        subs = sorted({subject[i:j] for i in starts for j in ends if i <= j})
        for s in subs:
            if matches(_substitute(parts, [s])):
                options.append(eq(terms[0], str_lit(s)))
    else:
        firsts = sorted({subject[i:j] for i in starts for j in range(i, n + 1)})
        seconds = sorted({subject[i:j] for j in ends for i in range(0, j + 1)})
        for s1 in firsts:
            for s2 in seconds:
                if matches(_substitute(parts, [s1, s2])):
                    options.append(and_(eq(terms[0], str_lit(s1)), eq(terms[1], str_lit(s2))))
    return or_(options)


def _exact_concat(parts: list[tuple[str, Any]], *, wildcards: bool) -> str:
    """The rendered value as a string term; for a Like pattern only if its own text has no wildcard."""
    pieces = []
    for text, lit in parts:
        if text == _TERM:
            pieces.append(lit)
        else:
            if wildcards and not lit and ("*" in text or "?" in text):
                raise Unsupported("a wildcard pattern with a free variable, matched against a free value")
            pieces.append(str_lit(text))
    return concat(pieces)


# --- one condition -----------------------------------------------------------------------------------


def _getter(req: SymRequest) -> Callable[[str], Any]:
    def get(key: str) -> Any:
        kv = req.key(key)
        return kv.value if kv.concrete else None

    return get


def _var_keys(cc: CompiledCondition) -> set[str]:
    out = set()
    for v in cc.values:
        if isinstance(v, tuple):
            out |= {p.key for p in v if isinstance(p, Var)}
    return out


def condition(cc: CompiledCondition, req: SymRequest) -> tuple[str, str]:
    """(value, error) terms of one clause, as ``CompiledCondition.evaluate``."""
    multi = cc.qualifier is not SetQualifier.NONE
    kv = req.key(cc.key, multi=multi)
    if kv.concrete and all(req.key(k).concrete for k in _var_keys(cc)):
        try:
            return (TRUE if cc.evaluate(_getter(req)) else FALSE), FALSE
        except ConditionError:
            return FALSE, TRUE
    if cc.is_null:
        absent = not_(kv.present)
        values = {True: absent, False: kv.present}
        return or_([values[v] for v in cc.null_absent]), FALSE
    if cc.qualifier is SetQualifier.FOR_ANY_VALUE:
        absent_value = FALSE
    elif cc.if_exists or cc.qualifier is SetQualifier.FOR_ALL_VALUES:
        absent_value = TRUE
    else:
        absent_value = TRUE if cc.negated else FALSE
    if kv.concrete and kv.value in (None, ()):
        return absent_value, FALSE  # absent: the policy values are never looked at
    if cc.all_static and cc.malformed:
        return ite(kv.present, FALSE, absent_value), kv.present
    family = cc.spec.family
    negated = cc.negated
    if family in ("numeric", "date", "ip", "binary"):
        if kv.concrete or kv.elems is not None:
            raise Unsupported(f"{cc.clause.operator} on the multivalued key {cc.key}")
        positive, ok = _typed_positive(cc, req)
        value = smt.xor(positive, negated)
        return ite(kv.present, value, absent_value), and_(kv.present, not_(ok))
    policy_values = _string_values(cc, req)
    if kv.concrete:
        raw = kv.value
        subjects = [Text(raw)] if isinstance(raw, str) else [Text(v) for v in raw]
        elems = [(TRUE, s) for s in subjects]
        single = isinstance(raw, str)
    elif kv.elems is not None:
        elems = list(kv.elems)
        single = False
    else:
        elems = [(TRUE, req.string(kv))]
        single = True

    def pos(subject: Any) -> str:
        return or_([and_(guard, test(subject)) for guard, test in policy_values])

    if single:
        value = smt.xor(pos(elems[0][1]), negated)
    elif cc.qualifier is SetQualifier.FOR_ANY_VALUE:
        value = or_([and_(p, smt.xor(pos(s), negated)) for p, s in elems])
    elif cc.qualifier is SetQualifier.FOR_ALL_VALUES:
        value = and_([implies(p, smt.xor(pos(s), negated)) for p, s in elems])
    else:
        value = smt.xor(or_([and_(p, pos(s)) for p, s in elems]), negated)
    present = kv.present if not kv.concrete else (TRUE if kv.value not in (None, ()) else FALSE)
    return ite(present, value, absent_value), FALSE


def _string_values(cc: CompiledCondition, req: SymRequest) -> list[tuple[str, Callable[[Any], str]]]:
    """Each policy value as (guard, test(subject)), where subject is a Python str (concrete) or a term."""
    name = cc.spec.name.replace("Not", "", 1) if cc.negated else cc.spec.name
    family = cc.spec.family
    out: list[tuple[str, Callable[[Any], str]]] = []
    for raw, value in zip(cc.clause.values, cc.values, strict=True):
        if isinstance(value, tuple):
            rendered = _render(value, req)
            if rendered is None:
                continue
            guard, parts = rendered
        else:
            guard, parts = TRUE, [(raw, False)]
        out.append((guard, _string_test(name, family, parts)))
    return out


def _string_test(name: str, family: str, parts: list[tuple[str, Any]]) -> Callable[[Any], str]:
    static = _static(parts)
    if family == "bool" or name == "StringEqualsIgnoreCase":
        if not static:
            rendered = _exact_concat(parts, wildcards=False)

            def test_folded(s: Any) -> str:
                # lower(value) == lower(rendered): with a concrete value, the rendered text is one of the
                # strings that lower-case to it; with both free, SMT strings have no lower-case function.
                if isinstance(s, Text):
                    return in_re(rendered, smt.fold_regex(s.lower()))
                raise Unsupported(f"{name} with a free policy variable, matched against a free value")

            return test_folded
        lowered = "".join(t for t, _ in parts).lower()
        regex = smt.fold_regex(lowered)
        return lambda s: (TRUE if s.lower() == lowered else FALSE) if isinstance(s, Text) else in_re(s, regex)
    if name == "StringEquals":
        if static:
            text = "".join(t for t, _ in parts)
            return lambda s: (TRUE if s == text else FALSE) if isinstance(s, Text) else eq(s, str_lit(text))
        term = _exact_concat(parts, wildcards=False)
        return lambda s: eq(str_lit(s) if isinstance(s, Text) else s, term)
    arn = family == "arn"
    to_regex = arn_regex if arn else glob_regex
    if static:
        regex = smt.glob_re(parts, arn=arn)
        pattern = compiled(to_regex(parts))  # type: ignore[arg-type]

        def test_static(s: Any) -> str:
            if isinstance(s, Text):
                return TRUE if pattern.fullmatch(s) is not None else FALSE
            return in_re(s, regex)

        return test_static

    def test_template(s: Any) -> str:
        if isinstance(s, Text):
            return _enumerate_match(s, parts, lambda p: compiled(to_regex(p)).fullmatch(s) is not None)
        return eq(s, _exact_concat(parts, wildcards=True))

    return test_template


def _typed_positive(cc: CompiledCondition, req: SymRequest) -> tuple[str, str]:
    family = cc.spec.family
    name = cc.spec.name
    if family == "binary":
        raise Unsupported("BinaryEquals on a free key")
    values = [v for v in cc.values if v is not _MALFORMED]
    if family == "ip":
        terms, ok = req.ip(cc.key)
        return or_([in_network(terms, net) for net in values]), ok
    suffix = name.split("Numeric", 1)[-1] if family == "numeric" else name.split("Date", 1)[-1]
    suffix = suffix.replace("Not", "", 1)
    compare = _COMPARE[suffix]
    if family == "numeric":
        n, ok = req.num(cc.key)
        return or_([compare(n, smt.real_lit(Fraction(v))) for v in values]), ok
    d, ok = req.date(cc.key)
    return or_([compare(f"(to_real {d})", smt.real_lit(Fraction(v))) for v in values]), ok


# --- statements ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    """A statement's applicability, and (for resource-like policies) how its Principal named the caller."""

    applies: str
    direct: str = FALSE
    limited: str = FALSE


def _static_patterns(stmt: CompiledStatement) -> list[str]:
    s = stmt.statement
    patterns = s.resources if s.resources is not None else s.not_resources
    if patterns is None:
        return ["*"]
    if not stmt.resource_templates:
        return list(patterns)
    return [p for p in patterns if all(isinstance(x, str) for x in parse_template(p))]


def _symbolic_resource(stmt: CompiledStatement, req: SymRequest, resource: str) -> str:
    """Resource matching when the resource itself is free (policy comparisons)."""
    options = []
    for pattern in _static_patterns(stmt):
        if pattern == "*":
            options.append(TRUE)
        elif "*" in pattern or "?" in pattern:
            options.append(in_re(resource, smt.glob_re([(pattern, False)], arn=True, resource=True)))
        else:
            options.append(eq(resource, str_lit(pattern)))
    for parts in stmt.resource_templates:
        rendered = _render(parts, req)
        if rendered is None:
            continue
        guard, rparts = rendered
        if _static(rparts):
            options.append(and_(guard, in_re(resource, smt.glob_re(rparts, arn=True, resource=True))))
        else:
            options.append(and_(guard, eq(resource, _exact_concat(rparts, wildcards=True))))
    return smt.xor(or_(options), stmt.not_resource)


def _resource(stmt: CompiledStatement, req: SymRequest, resource: str) -> str:
    if req.case.resource_free:
        return _symbolic_resource(stmt, req, resource)
    hit = TRUE if stmt.resource_static(resource) else FALSE
    if hit == FALSE:
        options = []
        for parts in stmt.resource_templates:
            rendered = _render(parts, req)
            if rendered is None:
                continue
            guard, rparts = rendered
            if _static(rparts):
                matched = compiled(arn_regex(rparts, resource=True)).fullmatch(resource) is not None
                options.append(and_(guard, TRUE if matched else FALSE))
            else:
                options.append(
                    and_(
                        guard,
                        _enumerate_match(
                            resource,
                            rparts,
                            lambda p: compiled(arn_regex(p, resource=True)).fullmatch(resource) is not None,
                        ),
                    )
                )
        hit = or_(options)
    return smt.xor(hit, stmt.not_resource)


def _fresh_grant(cp: CompiledPrincipal, req: SymRequest) -> tuple[str, str, str]:
    """(any, direct, limited) for a principal that could be created (no unique id, no canonical user)."""
    if cp.wildcard:
        return TRUE, TRUE, FALSE
    fresh = req.case.principal
    assert isinstance(fresh, Fresh)
    t = req.principal_terms
    arn_hit = or_([eq(t["arn"], str_lit(a)) for a in cp.arns])
    role_hit = (
        or_([eq(t["principal_arn"], str_lit(a)) for a in cp.arns]) if fresh.type == "AssumedRole" else FALSE
    )
    if fresh.account is not None:
        account_hit = TRUE if fresh.account in cp.accounts else FALSE
    else:
        account_hit = or_([eq(t["account"], str_lit(a)) for a in cp.accounts])
    direct = arn_hit
    limited = and_(not_(arn_hit), role_hit)
    return or_(arn_hit, role_hit, account_hit), direct, limited


def _fresh_excludes(cp: CompiledPrincipal, req: SymRequest) -> str:
    if cp.wildcard:
        return TRUE
    fresh = req.case.principal
    assert isinstance(fresh, Fresh)
    t = req.principal_terms
    if fresh.account is not None:
        account = TRUE if fresh.account in cp.accounts else FALSE
    else:
        account = or_([eq(t["account"], str_lit(a)) for a in cp.accounts])
    arn_listed = or_([eq(t["arn"], str_lit(a)) for a in cp.arns])
    if fresh.type == "AssumedRole":
        return and_(account, arn_listed, or_([eq(t["principal_arn"], str_lit(a)) for a in cp.arns]))
    return and_(account, arn_listed)


def statement(
    stmt: CompiledStatement, req: SymRequest, actions: ActionSpace, resource: str, has_boundary: bool
) -> Applied:
    """``statement_applies`` (with the action test that ``candidates`` does)."""
    act = actions.matches(stmt)
    if act == FALSE:
        return Applied(FALSE)
    res = _resource(stmt, req, resource)
    if res == FALSE:
        return Applied(FALSE)
    fresh = req.fresh
    principal_ok, direct, limited = TRUE, FALSE, FALSE
    if stmt.principal is not None:
        if fresh:
            principal_ok, direct, limited = _fresh_grant(stmt.principal, req)
        else:
            grant = stmt.principal.grant(req.info)
            if grant is None:
                return Applied(FALSE)
            direct = TRUE if grant in _DIRECT else FALSE
            limited = TRUE if grant in _LIMITED else FALSE
    elif stmt.not_principal is not None:
        info = req.info
        boundary_quirk = has_boundary and info.type in ("User", "AssumedRole")
        if not boundary_quirk:
            if fresh:
                principal_ok = not_(_fresh_excludes(stmt.not_principal, req))
            elif stmt.not_principal.excludes(info):
                return Applied(FALSE)
    chain = TRUE
    for cc in reversed(stmt.conditions):
        value, error = condition(cc, req)
        chain = ite(error, TRUE if stmt.is_deny else FALSE, and_(value, chain))
    applies = and_(act, res, principal_ok, chain)
    return Applied(applies, and_(applies, direct), and_(applies, limited))


@dataclass(slots=True)
class PolicyTerms:
    allows: list[Applied]
    denies: list[str]

    @property
    def any_allow(self) -> str:
        return or_([a.applies for a in self.allows])

    @property
    def any_deny(self) -> str:
        return or_(self.denies)


def _policies(
    policies: tuple[CompiledPolicy, ...] | list[CompiledPolicy],
    req: SymRequest,
    actions: ActionSpace,
    resource: str,
    has_boundary: bool,
) -> PolicyTerms:
    out = PolicyTerms([], [])
    for policy in policies:
        for stmt in policy.statements:
            applied = statement(stmt, req, actions, resource, has_boundary)
            if applied.applies == FALSE:
                continue
            if stmt.is_deny:
                out.denies.append(applied.applies)
            else:
                out.allows.append(applied)
    return out


def allowed(req: SymRequest, actions: ActionSpace) -> str:
    """The request is allowed: ``decide(...).decision is Decision.ALLOW``, as a formula."""
    case = req.case
    ps: PolicySet = case.policies
    p = req.info
    fresh = isinstance(case.principal, Fresh) and case.principal.free_identity
    resource = req.resource_term if case.resource_free else case.resource
    has_boundary = ps.boundary is not None and not fresh
    ptype = p.type
    principal_side = ptype not in _NOT_IAM
    if ps.cross_account is not None:
        cross = ps.cross_account
    elif isinstance(case.principal, Fresh) and case.principal.account is None:
        cross = case.resource_account is not None
    else:
        cross = case.resource_account is not None and case.resource_account != p.account
    scp_applies = (
        bool(ps.scp_levels)
        and principal_side
        and not ps.principal_in_management_account
        and not p.is_service_linked_role
    )
    rcp_applies = (
        bool(ps.rcp_levels) and not ps.resource_in_management_account and not p.is_service_linked_role
    )

    def group(policies: Any) -> PolicyTerms:
        return _policies(policies, req, actions, resource, has_boundary)

    scps = [group(level) for level in ps.scp_levels] if scp_applies else []
    rcps = [group(level) for level in ps.rcp_levels] if rcp_applies else []
    resource_policy = ps.resource
    if (
        getattr(ps, "repair", False)
        and hasattr(resource_policy, "error")
        and principal_side
        and not cross
        and resource_policy is not None
        and resource_policy.kind is PolicyKind.RESOURCE
    ):
        resource_policy = None
    res = group([resource_policy]) if resource_policy is not None else None
    vpce = group([ps.vpce]) if ps.vpce is not None else None
    identity = boundary = session = None
    if principal_side and not fresh:
        identity = group(ps.identity)
        boundary = group([ps.boundary]) if ps.boundary is not None else None
        session = group(ps.session) if ps.session else None

    denies = [t.any_deny for t in (*scps, *rcps, res, vpce, identity, boundary, session) if t is not None]
    explicit = or_(denies)
    gates = and_([t.any_allow for t in rcps] + [t.any_allow for t in scps])
    if vpce is not None:
        gates = and_(gates, vpce.any_allow)
    res_any = res.any_allow if res is not None else FALSE
    is_trust = resource_policy is not None and resource_policy.kind is PolicyKind.TRUST
    if not principal_side:
        rest = res_any
    else:
        direct = or_([a.direct for a in res.allows]) if (res is not None and not cross) else FALSE
        limited = or_([a.limited for a in res.allows]) if (res is not None and not cross) else FALSE
        if fresh:
            id_ok = b_ok = s_ok = TRUE
        else:
            assert identity is not None
            id_ok = TRUE if p.is_root else or_(identity.any_allow, limited)
            b_ok = TRUE if (boundary is None or p.is_root) else boundary.any_allow
            s_ok = TRUE
            if p.is_session:
                if session is not None:
                    s_ok = session.any_allow
                elif ptype == "FederatedUser":
                    s_ok = FALSE
        need_res = res_any if (cross or is_trust) else TRUE
        rest = and_(need_res, or_(direct, and_(id_ok, b_ok, s_ok)))
    return and_(not_(explicit), gates, rest)
