"""The symbolic request: who asks (a principal that exists, or one that could be created), from where, on
which resource, and every condition key as a presence flag and a value.

A ``Case`` fixes the finite parts (which principal or which kind of new principal, which network origin,
which resource, hence which policies apply); the rest is free. ``Problem`` collects SMT declarations and
assertions shared by every case of one query; ``SymRequest`` gives each condition key of one case as a
``KeyVal``: concrete (a string, a tuple of strings, or absent) or symbolic.

Symbolic keys, and the views through which each family of operators reads them:

- ``s``: the string value (String, Arn, StringLike, Bool ...);
- ``num``/``date``/``ip``: a Real, an Int (epoch seconds) or a bit-vector address (32 or 128 bits, with an
  IPv4 flag), each with a well-formedness flag. Keys the server fills (aws:SourceIp, aws:CurrentTime,
  aws:MultiFactorAuthAge ...) are always well-formed; a key the caller supplies (request tags, dynamodb:*)
  may be malformed, which makes the statement fail closed exactly as the evaluator does.
- multivalued keys (``MULTI_VALUED`` or used under a set operator) are up to ``k`` elements with a presence
  flag each; an empty set counts as absent, as in the evaluator.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from perimeterdb.policy import NetworkOrigin, PolicySet, PrincipalInfo, standard_keys
from perimeterdb.policy.context import ContextKeys
from perimeterdb.prover import smt
from perimeterdb.prover.smt import FALSE, TRUE, and_, concat, eq, in_re, or_, str_lit

__all__ = ["MULTI_VALUED", "Case", "Fresh", "KeyVal", "Origin", "Problem", "SymRequest", "Unsupported"]

MULTI_VALUED = frozenset(
    {
        "aws:tagkeys",
        "aws:principalorgpaths",
        "aws:resourceorgpaths",
        "aws:vpceorgpaths",
        "aws:calledvia",
        "dynamodb:leadingkeys",
        "dynamodb:attributes",
    }
)
# Keys the server fills from who, where and what: absent unless the case sets them. Everything else (request
# tags, aws:TagKeys, dynamodb:* ...) is the caller's to choose.
_SERVER_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principalservicename",
        "aws:principaltype",
        "aws:userid",
        "aws:username",
        "aws:principalisawsservice",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:sourceidentity",
        "aws:tokenissuetime",
        "aws:multifactorauthpresent",
        "aws:multifactorauthage",
        "aws:requestedregion",
        "aws:currenttime",
        "aws:epochtime",
        "aws:securetransport",
        "aws:viaawsservice",
        "aws:sourcevpce",
        "aws:sourcevpc",
        "aws:vpcsourceip",
        "aws:vpceaccount",
        "aws:vpceorgid",
        "aws:vpceorgpaths",
        "aws:sourceip",
        "aws:resourceaccount",
        "aws:resourceorgid",
        "aws:resourceorgpaths",
        "aws:calledvia",
        "aws:calledviafirst",
        "aws:calledvialast",
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:federatedprovider",
    }
)
_NAME_RE = '(re.+ (re.union (re.range "a" "z") (re.range "A" "Z") (re.range "0" "9") (re.union (str.to_re "+") (str.to_re "=") (str.to_re ",") (str.to_re ".") (str.to_re "@") (str.to_re "_") (str.to_re "-"))))'
_PATH_RE = '(re.union (str.to_re "") (re.++ (re.+ (re.range "!" "~")) (str.to_re "/")))'
_ACCOUNT_RE = '((_ re.loop 12 12) (re.range "0" "9"))'
MAX_DATE = 253402300799  # 9999-12-31T23:59:59Z


_CASE_SYMBOL = re.compile(r"\|c(\d+)[.q]")


class Unsupported(Exception):
    """A construct the encoding does not cover: the query answers UNKNOWN with this reason."""


@dataclass(frozen=True, slots=True)
class Fresh:
    """A principal that does not exist yet: a user or a role session, in ``account`` (None: an account
    outside the world). Its identity policies are whatever its creator attaches, so only guardrails and
    resource-side policies limit it. A new role cannot take a name in ``forbidden`` (the sealed
    break-glass names: reserved in any letter case and under any path)."""

    type: str  # "User" | "AssumedRole"
    account: str | None
    org_id: str | None = None
    org_paths: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    world_accounts: tuple[str, ...] = ()
    free_identity: bool = True  # False: the case's identity/boundary/session policies are its policies
    # Who could create it: one case per existing principal of the account, deciding the create action on
    # the new principal's ARN (resource_free), under the guardrails of IAM calls. None: not asked.
    creators: tuple[Case, ...] | None = None
    create_action: str = "iam:CreateRole"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request comes from: the internet (a public listener) or a VPC endpoint of the world."""

    label: str
    vpce_id: str | None = None
    vpc_id: str | None = None
    cidrs: tuple[str, ...] = ()
    vpce_account: str | None = None
    vpce_org_id: str | None = None
    vpce_org_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Case:
    """The finite part of a request: principal, origin, resource, and the policies that apply."""

    label: str
    principal: PrincipalInfo | Fresh
    policies: PolicySet
    origin: Origin
    resource: str
    region: str
    resource_account: str | None
    resource_tags: tuple[tuple[str, str], ...] = ()
    resource_org_id: str | None = None
    resource_org_paths: tuple[str, ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()  # pinned keys (differential testing): lower key -> value/None
    resource_free: bool = False  # the resource is any ARN (policy comparisons); ``resource`` is ignored


@dataclass(slots=True)
class KeyVal:
    key: str
    present: str
    concrete: bool = False
    value: Any = None  # concrete: str | tuple[str, ...] | None
    s: str | None = None  # symbolic single value
    elems: list[tuple[str, str]] | None = None  # symbolic multivalued: (present, value)
    kind: str = "free"  # "free" | "ip" | "date" | "num" | "bool" | "str" (server-filled, well-formed)


@dataclass
class Problem:
    """Declarations and assertions of one SMT problem."""

    decls: dict[str, str] = field(default_factory=dict)
    asserts: list[str] = field(default_factory=list)
    used: dict[str, set[str]] = field(default_factory=dict)  # key -> views read
    multi_bound: dict[str, int] = field(default_factory=dict)  # multivalued keys -> element bound

    def const(self, name: str, sort: str) -> str:
        sym = smt.symbol(name)
        known = self.decls.get(name)
        if known is None:
            self.decls[name] = sort
        elif known != sort:
            raise Unsupported(f"{name} used as {known} and {sort}")
        return sym

    def add(self, term: str) -> None:
        if term != TRUE:
            self.asserts.append(term)

    def text(self, goal: str, case: int | None = None) -> str:
        """The problem with this goal. With ``case``, the assertions about other cases' principals
        (symbols ``c<n>.…``, ``c<n>q<m>.…``) are left out: they cannot matter to this goal, and each new
        principal's string constraints would otherwise slow every case down."""
        asserts = self.asserts
        if case is not None:
            own = {str(case)}
            asserts = [a for a in asserts if set(_CASE_SYMBOL.findall(a)) <= own]
        lines = ["(set-logic ALL)"]
        lines += [f"(declare-const {smt.symbol(n)} {s})" for n, s in self.decls.items()]
        lines += [f"(assert {a})" for a in asserts]
        lines.append(f"(assert {goal})")
        return "\n".join(lines) + "\n"


class SymRequest:
    """The condition keys of one case, concrete where the case decides them and symbolic elsewhere."""

    def __init__(
        self,
        problem: Problem,
        case: Case,
        index: int | str,
        *,
        ns: str = "",
        resource_term: str | None = None,
    ) -> None:
        self.problem = problem
        self.case = case
        self.index = index
        self.ns = ns  # the namespace of this request's free keys ("" for the request asked about)
        self.fixed: dict[str, Any] = {}
        self.symbolic: dict[str, KeyVal] = {}
        self.principal_terms: dict[str, str] = {}
        self.constraints: list[str] = []  # hold in this case only (its disjunct)
        self.derived: dict[str, str] = {}  # symbols defined by a term of other symbols
        if resource_term is not None:
            self.resource_term = resource_term
        else:
            self.resource_term = problem.const(f"{ns}resource", "String") if case.resource_free else ""
        self._build()

    # --- construction -------------------------------------------------------------------------------------

    def _build(self) -> None:
        case = self.case
        p = case.principal
        if isinstance(p, Fresh):
            info = self._fresh_principal(p)
        else:
            info = p
        origin = NetworkOrigin(source_ip="0.0.0.0", vpce_id=case.origin.vpce_id, vpc_id=case.origin.vpc_id)
        base = standard_keys(
            info,
            origin=origin,
            now=datetime(2026, 1, 1, tzinfo=UTC),
            region=case.region,
            resource_account=case.resource_account,
            resource_org_id=case.resource_org_id,
            resource_org_paths=case.resource_org_paths,
            resource_tags=dict(case.resource_tags),
        )
        self.info = info
        for key in base:
            self.fixed[key] = base.lookup(key)
        for key in (
            "aws:currenttime",
            "aws:epochtime",
            "aws:securetransport",
            "aws:sourceip",
            "aws:vpcsourceip",
            "aws:tokenissuetime",
            "aws:multifactorauthpresent",
            "aws:multifactorauthage",
        ):
            self.fixed.pop(key, None)
        if case.origin.vpce_account:
            self.fixed["aws:vpceaccount"] = case.origin.vpce_account
        if case.origin.vpce_org_id:
            self.fixed["aws:vpceorgid"] = case.origin.vpce_org_id
            if case.origin.vpce_org_paths:
                self.fixed["aws:vpceorgpaths"] = tuple(case.origin.vpce_org_paths)
        pr = self.problem
        # The clock: one instant, read as a date and as epoch seconds.
        now = pr.const(f"{self.ns}clock", "Int")
        pr.add(f"(and (<= 0 {now}) (<= {now} {MAX_DATE}))")
        self.symbolic["aws:currenttime"] = KeyVal("aws:currenttime", TRUE, kind="date")
        self.symbolic["aws:epochtime"] = KeyVal("aws:epochtime", TRUE, kind="num")
        self.symbolic["aws:securetransport"] = self._bool_key("aws:securetransport", TRUE)
        if case.origin.vpce_id:
            self.symbolic["aws:vpcsourceip"] = KeyVal("aws:vpcsourceip", TRUE, kind="ip")
            if case.origin.cidrs:
                v4, a4, a6 = self._ip_terms("aws:vpcsourceip")
                self.constraints.append(or_([_in_net(v4, a4, a6, c) for c in case.origin.cidrs]))
        else:
            self.symbolic["aws:sourceip"] = KeyVal("aws:sourceip", TRUE, kind="ip")
        ptype = info.type
        if ptype not in ("Anonymous", "Service", "WebIdentityUser", "SAMLUser"):
            mfa_present = TRUE if ptype == "AssumedRole" else pr.const(f"c{self.index}.session", "Bool")
            mfa = self._bool_key("aws:multifactorauthpresent", mfa_present)
            self.symbolic["aws:multifactorauthpresent"] = mfa
            self.symbolic["aws:tokenissuetime"] = KeyVal("aws:tokenissuetime", mfa_present, kind="date")
            assert mfa.s is not None
            age_present = and_(mfa_present, eq(mfa.s, str_lit("true")))
            self.symbolic["aws:multifactorauthage"] = KeyVal(
                "aws:multifactorauthage", age_present, kind="num"
            )
            n, _ok = self.num("aws:multifactorauthage")
            pr.add(f"(>= {n} 0.0)")
        for key, value in case.fixed:
            self.symbolic.pop(key, None)
            self.fixed[key] = value

    def _bool_key(self, key: str, present: str) -> KeyVal:
        s = self.problem.const(f"{self.ns}k.{key}.s", "String")
        self.problem.add(or_(eq(s, '"true"'), eq(s, '"false"')))
        return KeyVal(key, present, s=s, kind="bool")

    def _fresh_principal(self, p: Fresh) -> PrincipalInfo:
        """Symbolic identity keys of a principal that could be created; a placeholder PrincipalInfo."""
        pr = self.problem
        i = self.index
        name = pr.const(f"c{i}.name", "String")
        path = pr.const(f"c{i}.path", "String")
        pr.add(in_re(name, _NAME_RE))
        pr.add(in_re(path, _PATH_RE))
        if p.account is None:
            account = pr.const(f"c{i}.account", "String")
            pr.add(in_re(account, _ACCOUNT_RE))
            for known in p.world_accounts:
                pr.add(f"(not (= {account} {str_lit(known)}))")
        else:
            account = str_lit(p.account)
        uid = pr.const(f"c{i}.uid", "String")
        if p.type == "User":
            principal_arn = concat(['"arn:aws:iam::"', account, '":user/"', path, name])
            arn = principal_arn
            userid = concat(['"AIDA"', uid])
            self.symbolic["aws:username"] = KeyVal("aws:username", TRUE, s=name, kind="str")
        else:
            session = pr.const(f"c{i}.session_name", "String")
            pr.add(in_re(session, _NAME_RE))
            principal_arn = concat(['"arn:aws:iam::"', account, '":role/"', path, name])
            arn = concat(['"arn:aws:sts::"', account, '":assumed-role/"', name, '"/"', session])
            userid = concat(['"AROA"', uid, '":"', session])
            self.principal_terms["session"] = session
        # Named once: every policy test reads the same symbol (solvers do better than on repeated concats).
        arn_sym = pr.const(f"c{i}.arn", "String")
        principal_arn_sym = pr.const(f"c{i}.principal_arn", "String")
        pr.add(f"(= {arn_sym} {arn})")
        pr.add(f"(= {principal_arn_sym} {principal_arn})")
        self.derived = {f"c{i}.arn": arn, f"c{i}.principal_arn": principal_arn}  # recomputed after edits
        arn, principal_arn = arn_sym, principal_arn_sym
        if p.type == "AssumedRole":
            for sealed in p.forbidden:
                pr.add(f"(not {in_re(name, smt.fold_regex(sealed.lower()))})")
        self.principal_terms.update(
            {"arn": arn, "principal_arn": principal_arn, "account": account, "name": name, "path": path}
        )
        self.symbolic["aws:principalarn"] = KeyVal("aws:principalarn", TRUE, s=principal_arn, kind="str")
        self.symbolic["aws:userid"] = KeyVal("aws:userid", TRUE, s=userid, kind="str")
        if p.account is None:
            self.symbolic["aws:principalaccount"] = KeyVal(
                "aws:principalaccount", TRUE, s=account, kind="str"
            )
        placeholder_account = p.account or "000000000000"
        return PrincipalInfo(
            arn=f"arn:aws:iam::{placeholder_account}:fresh",
            principal_arn=f"arn:aws:iam::{placeholder_account}:fresh",
            account=placeholder_account,
            type=p.type,
            userid="fresh",
            username=None,
            org_id=p.org_id,
            org_paths=p.org_paths,
        )

    # --- lookups ----------------------------------------------------------------------------------------

    @property
    def fresh(self) -> bool:
        return isinstance(self.case.principal, Fresh)

    def key(self, key: str, *, multi: bool = False) -> KeyVal:
        """The key (lower case) as this case sees it."""
        found = self.symbolic.get(key)
        if found is not None:
            return found
        if key in self.fixed:
            return KeyVal(key, TRUE if self.fixed[key] is not None else FALSE, True, self.fixed[key])
        closed = key in _SERVER_KEYS or key.startswith("aws:resourcetag/")
        if key.startswith("aws:principaltag/") and not self.fresh:
            closed = True
        if closed:
            return KeyVal(key, FALSE, True, None)
        pr = self.problem
        present = pr.const(f"{self.ns}k.{key}.p", "Bool")
        if multi or key in MULTI_VALUED or key in pr.multi_bound:
            bound = pr.multi_bound.get(key, 2)
            elems = []
            for j in range(bound):
                elems.append(
                    (
                        pr.const(f"{self.ns}k.{key}.e{j}.p", "Bool"),
                        pr.const(f"{self.ns}k.{key}.e{j}.s", "String"),
                    )
                )
            kv = KeyVal(key, or_([p for p, _ in elems]), elems=elems)
            pr.add(f"(= {present} {kv.present})")
        else:
            kv = KeyVal(key, present, s=pr.const(f"{self.ns}k.{key}.s", "String"))
        self.symbolic[key] = kv
        return kv

    def _use(self, key: str, view: str) -> None:
        self.problem.used.setdefault(key, set()).add(view)

    def string(self, kv: KeyVal) -> str:
        if kv.s is None:
            if kv.kind in ("date", "num", "ip"):
                raise Unsupported(f"a string operator on {kv.key}, which the encoding keeps typed")
            raise Unsupported(f"{kv.key} is multivalued here")
        self._use(kv.key, "s")
        return kv.s

    def num(self, key: str) -> tuple[str, str]:
        """(Real term, well-formed term) of a numeric reading of the key."""
        kv = self.symbolic[key]
        pr = self.problem
        self._use(key, "num")
        if kv.kind == "num":
            if key == "aws:epochtime":
                return f"(to_real {smt.symbol(self.ns + 'clock')})", TRUE
            return pr.const(f"{self.ns}k.{key}.n", "Real"), TRUE
        if kv.kind != "free":
            raise Unsupported(f"a numeric operator on {key}")
        return pr.const(f"{self.ns}k.{key}.n", "Real"), pr.const(f"{self.ns}k.{key}.n_ok", "Bool")

    def date(self, key: str) -> tuple[str, str]:
        kv = self.symbolic[key]
        pr = self.problem
        self._use(key, "date")
        if kv.kind == "date":
            if key == "aws:currenttime":
                return smt.symbol(self.ns + "clock"), TRUE
            d = pr.const(f"{self.ns}k.{key}.d", "Int")
            pr.add(f"(and (<= 0 {d}) (<= {d} {MAX_DATE}))")
            return d, TRUE
        if kv.kind == "num" and key == "aws:epochtime":
            return smt.symbol(self.ns + "clock"), TRUE
        if kv.kind != "free":
            raise Unsupported(f"a date operator on {key}")
        d = pr.const(f"{self.ns}k.{key}.d", "Int")
        pr.add(f"(and (<= 0 {d}) (<= {d} {MAX_DATE}))")
        return d, pr.const(f"{self.ns}k.{key}.d_ok", "Bool")

    def _ip_terms(self, key: str) -> tuple[str, str, str]:
        pr = self.problem
        return (
            pr.const(f"{self.ns}k.{key}.v4", "Bool"),
            pr.const(f"{self.ns}k.{key}.a4", "(_ BitVec 32)"),
            pr.const(f"{self.ns}k.{key}.a6", "(_ BitVec 128)"),
        )

    def ip(self, key: str) -> tuple[tuple[str, str, str], str]:
        kv = self.symbolic[key]
        self._use(key, "ip")
        if kv.kind == "ip":
            return self._ip_terms(key), TRUE
        if kv.kind != "free":
            raise Unsupported(f"an IP operator on {key}")
        return self._ip_terms(key), self.problem.const(f"{self.ns}k.{key}.ip_ok", "Bool")

    # --- the concrete request of a model -------------------------------------------------------------------

    def consistent(self, model: dict[str, Any]) -> dict[str, Any]:
        """The model with the defined symbols recomputed (after a realistic value replaced a part)."""
        out = dict(model)
        for name, term in self.derived.items():
            out[name] = _eval(term, out)
        return out

    def concrete_keys(self, model: dict[str, Any]) -> ContextKeys:
        out: dict[str, Any] = {k: v for k, v in self.fixed.items() if v is not None}
        for key, kv in self.symbolic.items():
            if not _truth(kv.present, model):
                continue
            out[key] = self._value_of(key, kv, model)
        return ContextKeys(out)

    def _value_of(self, key: str, kv: KeyVal, model: dict[str, Any]) -> Any:
        used = self.problem.used.get(key, set())
        if kv.elems is not None:
            return tuple(_string(s, model) for p, s in kv.elems if _truth(p, model))
        if key in ("aws:currenttime", "aws:tokenissuetime") or (kv.kind == "date"):
            name = "clock" if key == "aws:currenttime" else f"k.{key}.d"
            return _iso(int(model.get(name, 0)))
        if key == "aws:epochtime":
            return str(int(model.get("clock", 0)))
        if kv.kind == "ip":
            return _ip_text(key, model)
        if kv.kind == "num":
            return _num_text(model.get(f"k.{key}.n", Fraction(0)))
        if kv.kind in ("bool", "str"):
            return _string(kv.s or '""', model)
        # A free key: the view the policies read decides its text.
        if "s" in used or not used:
            return _string(kv.s or '""', model)
        if "ip" in used and model.get(f"k.{key}.ip_ok", False):
            return _ip_text(key, model)
        if "num" in used and model.get(f"k.{key}.n_ok", False):
            return _num_text(model.get(f"k.{key}.n", Fraction(0)))
        if "date" in used and model.get(f"k.{key}.d_ok", False):
            return _iso(int(model.get(f"k.{key}.d", 0)))
        return "not-a-value"

    def concrete_principal(self, model: dict[str, Any]) -> PrincipalInfo:
        p = self.case.principal
        if not isinstance(p, Fresh):
            return p
        t = self.principal_terms
        account = p.account or _string(t["account"], model)
        name = _string(t["name"], model)
        path = _string(t["path"], model)
        uid = str(model.get(f"c{self.index}.uid", "AAAAAAAAAAAAAAAA"))
        keys = self.concrete_keys(model)
        tags = tuple(
            (k.split("/", 1)[1], v)
            for k, v in keys.items()
            if k.startswith("aws:principaltag/") and isinstance(v, str)
        )
        if p.type == "User":
            arn = f"arn:aws:iam::{account}:user/{path}{name}"
            return PrincipalInfo(
                arn,
                arn,
                account,
                "User",
                f"AIDA{uid}",
                username=name,
                tags=tags,
                org_id=p.org_id,
                org_paths=p.org_paths,
            )
        session = _string(t["session"], model)
        return PrincipalInfo(
            arn=f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
            principal_arn=f"arn:aws:iam::{account}:role/{path}{name}",
            account=account,
            type="AssumedRole",
            userid=f"AROA{uid}:{session}",
            tags=tags,
            org_id=p.org_id,
            org_paths=p.org_paths,
        )


def _in_net(v4: str, a4: str, a6: str, cidr: str) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 4:
        mask = int(net.netmask)
        return and_(v4, f"(= (bvand {a4} #x{mask:08x}) #x{int(net.network_address):08x})")
    mask = int(net.netmask)
    return and_(smt.not_(v4), f"(= (bvand {a6} #x{mask:032x}) #x{int(net.network_address):032x})")


def in_network(terms: tuple[str, str, str], net: Any) -> str:
    return _in_net(*terms, str(net))


def _truth(term: str, model: dict[str, Any]) -> bool:
    if term == TRUE:
        return True
    if term == FALSE:
        return False
    return bool(_eval(term, model))


def _string(term: str, model: dict[str, Any]) -> str:
    return str(_eval(term, model))


def _eval(term: str, model: dict[str, Any]) -> Any:
    """Evaluate the few term shapes the request builds (symbols, literals, str.++, or, and, =)."""
    from perimeterdb.prover.sexpr import evaluate

    return evaluate(term, model)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num_text(value: Any) -> str:
    f = Fraction(value)
    if f.denominator == 1:
        return str(f.numerator)
    return str(Decimal(f.numerator) / Decimal(f.denominator))


def _ip_text(key: str, model: dict[str, Any]) -> str:
    if model.get(f"k.{key}.v4", True):
        return str(ipaddress.IPv4Address(int(model.get(f"k.{key}.a4", 0))))
    return str(ipaddress.IPv6Address(int(model.get(f"k.{key}.a6", 0))))
