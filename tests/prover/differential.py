"""Differential testing of the prover against the evaluator: random (policy set, request) pairs.

For each pair the evaluator decides; the prover encodes the same policies with every condition key left
*symbolic*, pins the symbols to the request's values (as the evaluator's own converters read them), and
the solver says whether "allowed" is satisfiable. The two must agree on every pair. Pairs are checked in
batches: one SMT problem holds a batch, each pair in its own namespace with a Boolean naming its decision,
so one solver call answers a whole batch (the pins leave the solver no choice).

Shared by tests/prover/test_differential.py (a sample in CI) and bench/prover_differential.py (the full
run).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from perimeterdb.policy import (
    PolicyKind,
    PolicyParseError,
    PolicyRef,
    PolicySet,
    PrincipalInfo,
    RequestContext,
    compile_policy,
    decide,
    parse_policy,
)
from perimeterdb.policy.conditions import to_epoch, to_number
from perimeterdb.policy.context import ContextKeys
from perimeterdb.prover.encode import ActionSpace, allowed
from perimeterdb.prover.request import Case, Fresh, Origin, Problem, SymRequest, Unsupported
from perimeterdb.prover.smt import and_, eq, not_, real_lit, str_lit
from perimeterdb.prover.solve import solve_in_process

ACCOUNT = "111122223333"
OTHER = "444455556666"
ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "s3:GetObject"]
ACTION_PATTERNS = [
    "dynamodb:*",
    "dynamodb:Get*",
    "dynamodb:?utItem",
    "*",
    "DYNAMODB:getitem",
    "s3:*",
    "dynamodb:Query",
]
RESOURCES = [
    f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders",
    f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders/index/byDate",
    f"arn:aws:dynamodb:eu-west-1:{OTHER}:table/payments",
]
RESOURCE_PATTERNS = [
    "*",
    "arn:aws:dynamodb:*:*:table/orders",
    "arn:aws:dynamodb:*:*:table/orders*",
    "arn:aws:dynamodb:us-east-1:*:table/*",
    "arn:aws:dynamodb:*:*:t*/orders",
    "arn:aws:dynamodb:*:*:table/${ex:str}",
    "arn:aws:dynamodb:*:*:table/${ex:str, 'orders'}",
    "arn:aws:dynamodb:*:*:table/${aws:username}*",
    f"arn:aws:dynamodb:eu-west-1:{OTHER}:table/payments",
]
STRING_VALUES = [
    "orders",
    "Orders",
    "ord*",
    "o?ders",
    "",
    "payments",
    "a:b",
    "x/y",
    "${ex:arn}",
    "${aws:username}",
    "${ex:str}",
    "AL${ex:str}",
    "a*${ex:str}",
]
ARN_VALUES = [
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    "arn:aws:iam::*:user/*",
    "arn:aws:iam::*:role/emergency",
    f"arn:aws:iam::{ACCOUNT}:*",
    "arn:aws:iam::${aws:PrincipalAccount}:user/*",
]
NUM_VALUES = ["10", "3.5", "-2", "abc", "0", "1e3"]
DATE_VALUES = ["2026-01-01T00:00:00Z", "2025-07", "2026", "1767225600", "not-a-date", "2026-06-15"]
IP_VALUES = ["10.0.0.0/8", "10.1.2.3", "192.168.0.0/16", "2001:db8::/32", "bad-cidr"]
BOOL_VALUES = ["true", "false", "TRUE"]

PRINCIPALS = [
    ACCOUNT,
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    OTHER,
    f"arn:aws:iam::{ACCOUNT}:role/app",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1",
    f"arn:aws:iam::{ACCOUNT}:role/x:role/app",
]
STRING_OPS = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
]
ARN_OPS = ["ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals"]
NUM_OPS = ["NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericGreaterThanEquals"]
DATE_OPS = ["DateLessThan", "DateGreaterThan", "DateEquals", "DateNotEquals", "DateLessThanEquals"]
IP_OPS = ["IpAddress", "NotIpAddress"]


@dataclass(frozen=True, slots=True)
class Pair:
    policies: PolicySet
    principal: PrincipalInfo
    action: str
    resource: str
    keys: dict[str, Any]
    documents: dict[str, Any]
    fresh: tuple[str, str, str, str] | None = None  # (type, path, name, session): a new principal, pinned


FRESH_NAMES = ["app", "emergency", "alice", "Emergency"]
FRESH_PATHS = ["", "x:role/", "team/"]


def random_fresh_pair(rng: random.Random) -> Pair | None:
    """A pair whose principal is a *new* one (symbolic ARN, session ARN, user id), pinned afterwards."""
    pair = random_pair(rng)
    if pair is None:
        return None
    kind = rng.choice(["AssumedRole", "User"])
    path, name, session = rng.choice(FRESH_PATHS), rng.choice(FRESH_NAMES), rng.choice(["s1", "attacker"])
    uid = "EXAMPLEUID0001"
    if kind == "User":
        arn = f"arn:aws:iam::{ACCOUNT}:user/{path}{name}"
        info = PrincipalInfo(arn, arn, ACCOUNT, "User", f"AIDA{uid}", username=name)
    else:
        info = PrincipalInfo(
            f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}",
            f"arn:aws:iam::{ACCOUNT}:role/{path}{name}",
            ACCOUNT,
            "AssumedRole",
            f"AROA{uid}:{session}",
        )
    keys = {k: v for k, v in pair.keys.items() if k.startswith("ex:")}
    keys.update(
        {"aws:PrincipalArn": info.principal_arn, "aws:PrincipalAccount": ACCOUNT, "aws:userid": info.userid}
    )
    if kind == "User":
        keys["aws:username"] = name
    return Pair(
        pair.policies, info, pair.action, pair.resource, keys, pair.documents, (kind, path, name, session)
    )


def _pick(rng: random.Random, values: list[str], k: int = 3) -> list[str]:
    return rng.sample(values, rng.randint(1, min(k, len(values))))


def _condition(rng: random.Random) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for _ in range(rng.randint(1, 2)):
        family = rng.choice(["string", "string", "arn", "num", "date", "ip", "bool", "null", "set"])
        suffix = "IfExists" if rng.random() < 0.2 else ""
        if family == "string":
            op, key, values = (
                rng.choice(STRING_OPS),
                rng.choice(["ex:str", "ex:str", "aws:username"]),
                _pick(rng, STRING_VALUES),
            )
        elif family == "arn":
            op, key, values = (
                rng.choice(ARN_OPS),
                rng.choice(["ex:arn", "aws:PrincipalArn"]),
                _pick(rng, ARN_VALUES),
            )
        elif family == "num":
            op, key, values = rng.choice(NUM_OPS), "ex:num", _pick(rng, NUM_VALUES, 2)
        elif family == "date":
            op, key, values = rng.choice(DATE_OPS), "ex:date", _pick(rng, DATE_VALUES, 2)
        elif family == "ip":
            op, key, values = rng.choice(IP_OPS), "ex:ip", _pick(rng, IP_VALUES, 2)
        elif family == "bool":
            op, key, values = "Bool", "ex:bool", [rng.choice(BOOL_VALUES)]
        elif family == "null":
            op, key, values, suffix = (
                "Null",
                rng.choice(["ex:str", "ex:set", "ex:num"]),
                [rng.choice(["true", "false"])],
                "",
            )
        else:
            qualifier = rng.choice(["ForAnyValue:", "ForAllValues:"])
            op = qualifier + rng.choice(["StringEquals", "StringNotEquals", "StringLike", "StringNotLike"])
            key, values = "ex:set", _pick(rng, ["a", "b", "c*", "team"], 2)
        block.setdefault(op + suffix, {})[key] = values if len(values) > 1 else values[0]
    return block


def _statement(rng: random.Random, kind: PolicyKind, sid: int) -> dict[str, Any]:
    effect = "Deny" if rng.random() < 0.3 else "Allow"
    if kind is PolicyKind.RCP:
        effect = "Deny" if rng.random() < 0.7 else effect
    s: dict[str, Any] = {"Sid": f"S{sid}", "Effect": effect}
    if rng.random() < 0.15 and effect == "Deny":
        s["NotAction"] = _pick(rng, ACTION_PATTERNS, 2)
    else:
        s["Action"] = _pick(rng, ACTION_PATTERNS, 2)
    if rng.random() < 0.15:
        s["NotResource"] = _pick(rng, RESOURCE_PATTERNS, 2)
    else:
        s["Resource"] = _pick(rng, RESOURCE_PATTERNS, 2)
    if kind.has_principal:
        s["Principal"] = (
            "*" if (kind is PolicyKind.RCP or rng.random() < 0.5) else {"AWS": rng.choice(PRINCIPALS)}
        )
    if kind.has_principal and effect == "Deny" and kind is not PolicyKind.RCP and rng.random() < 0.3:
        s.pop("Principal", None)
        s["NotPrincipal"] = {"AWS": _pick(rng, [ACCOUNT, *PRINCIPALS[1:]], 3)}
    if rng.random() < 0.75:
        s["Condition"] = _condition(rng)
    if kind is PolicyKind.RCP and effect == "Allow":
        s = {"Sid": f"S{sid}", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
    return s


def _policy(rng: random.Random, kind: PolicyKind, name: str) -> tuple[Any, dict[str, Any]] | None:
    doc = {"Version": "2012-10-17", "Statement": [_statement(rng, kind, i) for i in range(rng.randint(1, 3))]}
    try:
        return compile_policy(parse_policy(doc, kind), PolicyRef(kind.value, name, name)), doc
    except PolicyParseError:
        return None


def _principal(rng: random.Random) -> PrincipalInfo:
    choice = rng.random()
    if choice < 0.45:
        return PrincipalInfo(
            f"arn:aws:iam::{ACCOUNT}:user/alice",
            f"arn:aws:iam::{ACCOUNT}:user/alice",
            ACCOUNT,
            "User",
            "AIDAEXAMPLEALICE01",
            username="alice",
        )
    if choice < 0.8:
        return PrincipalInfo(
            f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1",
            f"arn:aws:iam::{ACCOUNT}:role/app",
            ACCOUNT,
            "AssumedRole",
            "AROAEXAMPLEAPP0001:s1",
        )
    if choice < 0.9:
        return PrincipalInfo(
            f"arn:aws:iam::{OTHER}:user/eve",
            f"arn:aws:iam::{OTHER}:user/eve",
            OTHER,
            "User",
            "AIDAEXAMPLEEVE0001",
            username="eve",
        )
    return PrincipalInfo("anonymous", "anonymous", "", "Anonymous", "anonymous")


def _keys(rng: random.Random, p: PrincipalInfo) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "aws:PrincipalArn": p.principal_arn,
        "aws:PrincipalAccount": p.account or "anonymous",
    }
    if p.username:
        keys["aws:username"] = p.username
    pools = {
        "ex:str": ["orders", "ORDERS", "ord", "o:ders", "payments", "", "x/y", "*"],
        "ex:arn": [
            f"arn:aws:iam::{ACCOUNT}:user/alice",
            "arn:aws:iam::999999999999:role/emergency",
            "orders",
            "a:b:c",
        ],
        "ex:num": ["10", "3.5", "-2", "abc", "1000", "10.0"],
        "ex:date": [
            "2026-01-01T00:00:00Z",
            "2025-06-30T23:59:59Z",
            "2025-07-01T00:00:00Z",
            "1767225600",
            "bad",
        ],
        "ex:ip": ["10.1.2.3", "192.168.1.1", "2001:db8::1", "8.8.8.8", "not-ip"],
        "ex:bool": ["true", "false", "TRUE", "yes"],
    }
    for key, values in pools.items():
        if rng.random() < 0.7:
            keys[key] = rng.choice(values)
    if rng.random() < 0.7:
        keys["ex:set"] = tuple(rng.sample(["a", "b", "cat", "team", "z"], rng.randint(0, 2)))
    return keys


def random_pair(rng: random.Random) -> Pair | None:
    documents: dict[str, Any] = {}

    def one(kind: PolicyKind, name: str) -> Any:
        found = _policy(rng, kind, name)
        if found is None:
            return None
        documents[name] = found[1]
        return found[0]

    identity = tuple(p for p in (one(PolicyKind.IDENTITY, "id1"), one(PolicyKind.IDENTITY, "id2")) if p)
    boundary = one(PolicyKind.BOUNDARY, "boundary") if rng.random() < 0.3 else None
    resource = one(PolicyKind.RESOURCE, "resource") if rng.random() < 0.5 else None
    scp = one(PolicyKind.SCP, "scp") if rng.random() < 0.4 else None
    rcp = one(PolicyKind.RCP, "rcp") if rng.random() < 0.2 else None
    vpce = one(PolicyKind.VPCE, "vpce") if rng.random() < 0.2 else None
    principal = _principal(rng)
    session = None
    if principal.type == "AssumedRole" and rng.random() < 0.3:
        found = one(PolicyKind.SESSION, "session")
        session = (found,) if found else None
    policies = PolicySet(
        identity=identity,
        boundary=boundary,
        session=session,
        resource=resource,
        scp_levels=((scp,),) if scp else (),
        rcp_levels=((rcp,),) if rcp else (),
        vpce=vpce,
    )
    resource_arn = rng.choice(RESOURCES)
    return Pair(policies, principal, rng.choice(ACTIONS), resource_arn, _keys(rng, principal), documents)


def evaluate(pair: Pair) -> bool:
    account = pair.resource.split(":")[4]
    ctx = RequestContext(pair.principal, pair.action, pair.resource, account, ContextKeys(pair.keys))
    return decide(ctx, pair.policies).allowed


def _pin(req: SymRequest, problem: Problem, keys: dict[str, Any]) -> list[str]:
    """Constraints fixing every symbolic key of the request to the pair's value."""
    lowered = {k.lower(): v for k, v in keys.items()}
    ns = req.ns
    out: list[str] = []
    for key, kv in req.symbolic.items():
        if kv.kind != "free":
            continue
        value = lowered.get(key)
        present = value is not None and value != ()
        out.append(kv.present if present else not_(kv.present))
        if kv.elems is not None:
            values = list(value) if present else []
            for j, (p, s) in enumerate(kv.elems):
                if j < len(values):
                    out += [p, eq(s, str_lit(values[j]))]
                else:
                    out.append(not_(p))
            continue
        if not present:
            continue
        text = value if isinstance(value, str) else ""
        if kv.s is not None:
            out.append(eq(kv.s, str_lit(text)))
        decls = problem.decls
        if f"{ns}k.{key}.n" in decls:
            try:
                number = to_number(text)
                out += [f"|{ns}k.{key}.n_ok|", f"(= |{ns}k.{key}.n| {real_lit(Fraction(number))})"]
            except ValueError:
                out.append(f"(not |{ns}k.{key}.n_ok|)")
        if f"{ns}k.{key}.d" in decls:
            try:
                epoch = to_epoch(text)
                if epoch != int(epoch) or not 0 <= epoch <= 253402300799:
                    raise Unsupported("a date outside the encoded range")
                out += [f"|{ns}k.{key}.d_ok|", f"(= |{ns}k.{key}.d| {int(epoch)})"]
            except ValueError:
                out.append(f"(not |{ns}k.{key}.d_ok|)")
        if f"{ns}k.{key}.a4" in decls:
            try:
                addr = ipaddress.ip_address(text.strip())
                out.append(f"|{ns}k.{key}.ip_ok|")
                if addr.version == 4:
                    out += [f"|{ns}k.{key}.v4|", f"(= |{ns}k.{key}.a4| #x{int(addr):08x})"]
                else:
                    out += [f"(not |{ns}k.{key}.v4|)", f"(= |{ns}k.{key}.a6| #x{int(addr):032x})"]
            except ValueError:
                out.append(f"(not |{ns}k.{key}.ip_ok|)")
    return out


def check_batch(
    pairs: list[Pair], *, solver: str = "cvc5", timeout: float = 30.0
) -> list[tuple[Pair, bool, bool | None, str]]:
    """[(pair, evaluator allowed, prover allowed or None, note)] for a batch, in one solver call."""
    problem = Problem()
    problem.multi_bound["ex:set"] = 2
    rows: list[tuple[Pair, bool, str | None, str]] = []
    for i, pair in enumerate(pairs):
        expected = evaluate(pair)
        account = pair.resource.split(":")[4]
        # Every key is the caller's here (the case fixes none), so the encoding keeps them symbolic.
        principal: Any = pair.principal
        if pair.fresh is not None:
            principal = Fresh(pair.fresh[0], ACCOUNT, free_identity=False)
        case = Case(
            f"pair {i}", principal, pair.policies, Origin("test"), pair.resource, "us-east-1", account
        )
        try:
            req = SymRequest(problem, case, f"d{i}", ns=f"d{i}.")
            keep = {"aws:principalarn", "aws:userid", "aws:username"} if pair.fresh else set()
            for key in list(req.symbolic):
                if key not in keep:
                    del req.symbolic[key]  # no server keys: only what the pair's context holds
            req.fixed = {k.lower(): v for k, v in pair.keys.items() if not k.startswith("ex:")}
            term = allowed(req, ActionSpace(problem, (pair.action,)))
            pins = _pin(req, problem, pair.keys)
            if pair.fresh is not None:
                _kind, path, name, session = pair.fresh
                t = req.principal_terms
                pins += [
                    eq(t["name"], str_lit(name)),
                    eq(t["path"], str_lit(path)),
                    eq(f"|cd{i}.uid|", str_lit("EXAMPLEUID0001")),
                ]
                if "session" in t:
                    pins.append(eq(t["session"], str_lit(session)))
        except Unsupported as exc:
            rows.append((pair, expected, None, f"unsupported: {exc}"))
            continue
        flag = problem.const(f"d{i}.allowed", "Bool")
        problem.add(f"(= {flag} {term})")
        problem.add(and_(pins))
        rows.append((pair, expected, f"d{i}.allowed", ""))
    answer = solve_in_process(problem.text("true"), solver=solver, timeout=timeout)
    out: list[tuple[Pair, bool, bool | None, str]] = []
    for pair, expected, flag, note in rows:
        if flag is None:
            out.append((pair, expected, None, note))
        elif answer.status != "sat":
            out.append((pair, expected, None, f"batch {answer.status}: {answer.reason}"))
        else:
            out.append((pair, expected, bool(answer.model.get(flag, False)), ""))
    return out
