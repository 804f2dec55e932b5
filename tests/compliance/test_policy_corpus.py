"""Data-driven policy-engine corpus: tests/compliance/policy/*.json.

File format (``_library.json`` holds shared ``principals`` and ``policies``; a file may add or override):

    {"description": ..., "principals": {...}, "policies": {"name": {"kind", "document", "arn"?}},
     "defaults": {case fields applied to every case of the file},
     "cases": [{
        "name", "why" (quote or cite of the AWS rule),
        "principal": name | {PrincipalInfo fields}, "action", "resource", "resource_account",
        "keys": {condition key: value or list},
        "policies": {"identity": [names], "boundary": name, "session": [names], "resource": name,
                     "scp": [[names per level]], "rcp": [[...]], "vpce": name},
        "flags": {PolicySet flags},
        "expect": "Allow" | "ExplicitDeny" | "ImplicitDeny",
        "determining": ["policy#Sid or policy#index", ...]   (optional; compared as a set),
        "denied_by": kind (optional), "message": exact AccessDenied text (optional),
        "errors": true/false (optional: whether evaluation errors are reported)
     }]}

Shortcuts: a case with ``"condition": {...}`` tests one Condition block: the runner builds the identity
policy ``cond`` = one statement (Sid ``C``, ``"effect"`` Allow by default, Action/Resource ``*``, the
``"version"`` given or 2012-10-17) and, for a Deny, adds ``allow_all``; ``"match": true|false`` then
gives the expected decision and determining statement. A case with ``"parse": {"kind", "document"}``
expects ``"error_path"`` (a PolicyParseError at that path) or ``"ok": true``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from perimeterdb.policy import (
    ContextKeys,
    PolicyKind,
    PolicyParseError,
    PolicyRef,
    PolicySet,
    PrincipalInfo,
    RequestContext,
    access_denied_message,
    compile_policy,
    decide,
    parse_policy,
)

CORPUS = Path(__file__).parent / "policy"
LIBRARY = json.loads((CORPUS / "_library.json").read_text())
DEFAULTS: dict[str, Any] = {
    "principal": "alice",
    "action": "dynamodb:GetItem",
    "resource": "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
    "resource_account": "111122223333",
}


def _load() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for path in sorted(CORPUS.glob("*.json")):
        if path.name.startswith("_"):
            continue
        data = json.loads(path.read_text())
        env = {
            "principals": {**LIBRARY["principals"], **data.get("principals", {})},
            "policies": {**LIBRARY["policies"], **data.get("policies", {})},
        }
        for i, case in enumerate(data["cases"]):
            merged = {**DEFAULTS, **data.get("defaults", {}), **case}
            out.append((f"{path.stem}[{i}]:{case['name']}", merged, env))
    return out


CASES = _load()


def _principal(spec: str | dict[str, Any], env: dict[str, Any]) -> PrincipalInfo:
    raw = dict(env["principals"][spec]) if isinstance(spec, str) else dict(spec)
    raw["tags"] = tuple(raw.get("tags", {}).items())
    if raw.get("token_issue_time"):
        raw["token_issue_time"] = datetime.fromisoformat(raw["token_issue_time"])
    raw["org_paths"] = tuple(raw.get("org_paths", ()))
    return PrincipalInfo(**raw)


_compiled_cache: dict[str, Any] = {}


def _policy(name: str, policies: dict[str, Any]) -> Any:
    spec = policies[name]
    kind = PolicyKind(spec["kind"])
    return compile_policy(
        parse_policy(spec["document"], kind), PolicyRef(kind.value, name, name, spec.get("arn"))
    )


def _policy_set(case: dict[str, Any], policies: dict[str, Any]) -> PolicySet:
    sel = case.get("policies", {})
    one = lambda key: _policy(sel[key], policies) if sel.get(key) else None  # noqa: E731
    many = lambda key: tuple(_policy(n, policies) for n in sel.get(key, ()))  # noqa: E731
    levels = lambda key: tuple(tuple(_policy(n, policies) for n in lvl) for lvl in sel.get(key, ()))  # noqa: E731
    session = many("session") if "session" in sel else None
    return PolicySet(
        identity=many("identity"),
        boundary=one("boundary"),
        session=session,
        resource=one("resource"),
        scp_levels=levels("scp"),
        rcp_levels=levels("rcp"),
        vpce=one("vpce"),
        **case.get("flags", {}),
    )


def _expand_condition(case: dict[str, Any], env: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    effect = case.get("effect", "Allow")
    doc: dict[str, Any] = {
        "Statement": [
            {"Sid": "C", "Effect": effect, "Action": "*", "Resource": "*", "Condition": case["condition"]}
        ]
    }
    if case.get("version", "2012-10-17") is not None:
        doc["Version"] = case.get("version", "2012-10-17")
    policies = {**env["policies"], "cond": {"kind": "identity", "document": doc}}
    case = dict(case)
    case["policies"] = {"identity": ["cond"] + (["allow_all"] if effect == "Deny" else [])}
    match = case["match"]
    if effect == "Allow":
        case.setdefault("expect", "Allow" if match else "ImplicitDeny")
        case.setdefault("determining", ["cond#C"] if match else [])
    else:
        case.setdefault("expect", "ExplicitDeny" if match else "Allow")
        case.setdefault("determining", ["cond#C"] if match else ["allow_all#All"])
    return case, policies


def _ref_name(ref: Any) -> str:
    return f"{ref.policy_id}#{ref.sid if ref.sid else ref.index}"


@pytest.mark.parametrize(("case", "env"), [(c, e) for _, c, e in CASES], ids=[i for i, _, _ in CASES])
def test_case(case: dict[str, Any], env: dict[str, Any]) -> None:
    assert case.get("why", "").strip(), "every case cites the AWS rule it encodes"
    if "parse" in case:
        kind = PolicyKind(case["parse"]["kind"])
        if case.get("ok"):
            parse_policy(case["parse"]["document"], kind)
            return
        with pytest.raises(PolicyParseError) as info:
            parse_policy(case["parse"]["document"], kind)
        assert info.value.path == case["error_path"], info.value
        return
    policies = env["policies"]
    if "condition" in case:
        case, policies = _expand_condition(case, env)
    principal = _principal(case["principal"], env)
    ctx = RequestContext(
        principal,
        case["action"],
        case["resource"],
        case["resource_account"],
        ContextKeys(case.get("keys", {})),
    )
    response = decide(ctx, _policy_set(case, policies))
    assert response.decision.value == case["expect"], response
    if "determining" in case:
        assert sorted(_ref_name(r) for r in response.determining) == sorted(case["determining"]), response
    if "denied_by" in case:
        assert response.denied_by == case["denied_by"], response
    if "errors" in case:
        assert bool(response.errors) == case["errors"], response
    if "message" in case:
        assert access_denied_message(ctx, response) == case["message"]


def test_corpus_size() -> None:
    assert len(CASES) >= 300
