"""JSON policy documents -> ``Policy`` values, with IAM-style validation.

Every rejection is a ``PolicyParseError`` naming the JSON path (``Statement[0].Condition.StringEquals``)
and what is wrong, the way IAM answers ``MalformedPolicyDocument``. Rules per policy kind:

- identity, boundary, session, SCP: ``Principal`` / ``NotPrincipal`` are rejected. SCPs accept the full
  IAM language since 2025-09-19 (NotAction with Allow, NotResource, conditions, wildcards anywhere).
- resource, trust, RCP, VPC endpoint: exactly one of ``Principal`` / ``NotPrincipal`` is required.
- ``NotPrincipal`` is accepted only with ``Deny`` ("Using it with Allow is not supported", current IAM
  docs, reference_policies_elements_notprincipal) and never in a trust policy.
- trust policies carry no ``Resource``; every other kind needs exactly one of ``Resource`` /
  ``NotResource``.
- RCPs: ``Allow`` only in the shape of ``RCPFullAWSAccess`` (Principal/Action/Resource ``*``, no
  Condition); no ``NotAction`` / ``NotPrincipal``; ``Principal`` must be ``"*"`` (Organizations
  "RCP syntax"); a statement without ``Principal`` means ``"*"`` (AWS's data-perimeter RCP
  network_perimeter_sourcevpc_rcp.json has such statements).
- Condition operator names are matched case-insensitively and stored in their canonical spelling.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from perimeterdb.policy.ast import (
    VERSION_2008,
    VERSION_2012,
    ConditionClause,
    Effect,
    Policy,
    PolicyKind,
    PrincipalSpec,
    Statement,
)
from perimeterdb.policy.conditions import canonical_operator

__all__ = ["PolicyParseError", "parse_policy"]

_TOP_KEYS = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
}
_PRINCIPAL_TYPES = {
    "AWS": "aws",
    "Service": "service",
    "Federated": "federated",
    "CanonicalUser": "canonical_user",
}
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_UNIQUE_ID_RE = re.compile(r"^A[A-Z0-9]{15,127}$")
_ACTION_RE = re.compile(r"^[A-Za-z0-9*?_-]+:[A-Za-z0-9*?_-]*$")
_SID_RE = re.compile(r"^[A-Za-z0-9 _-]*$")


class PolicyParseError(ValueError):
    """A malformed policy document. ``path`` locates the problem; ``message`` says what it is."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def parse_policy(document: str | bytes | Mapping[str, Any], kind: PolicyKind) -> Policy:
    """Parse and validate one policy document of the given kind."""
    if isinstance(document, str | bytes):
        try:
            raw = json.loads(document)
        except ValueError as exc:
            raise PolicyParseError("", f"Syntax errors in policy: {exc}") from None
        except RecursionError:
            raise PolicyParseError("", "Syntax errors in policy: nested too deeply") from None
    else:
        raw = document
    if not isinstance(raw, Mapping):
        raise PolicyParseError("", "The policy must be a JSON object")
    for key in raw:
        if key not in _TOP_KEYS:
            raise PolicyParseError(str(key), f"Unknown field {key}")
    version = raw.get("Version")
    if version is not None and version not in (VERSION_2012, VERSION_2008):
        raise PolicyParseError("Version", f"The policy version {version!r} is not supported")
    if kind is PolicyKind.RCP and version != VERSION_2012:
        raise PolicyParseError("Version", "An RCP must contain Version 2012-10-17")
    pid = raw.get("Id")
    if pid is not None and not isinstance(pid, str):
        raise PolicyParseError("Id", "Id must be a string")
    if "Statement" not in raw:
        raise PolicyParseError("Statement", "Missing required field Statement")
    body = raw["Statement"]
    if isinstance(body, Mapping):
        items: list[tuple[str, Any]] = [("Statement", body)]
    elif isinstance(body, list):
        if not body:
            raise PolicyParseError("Statement", "Statement must not be empty")
        items = [(f"Statement[{i}]", s) for i, s in enumerate(body)]
    else:
        raise PolicyParseError("Statement", "Statement must be an object or a list of objects")
    statements = tuple(_statement(path, i, s, kind) for i, (path, s) in enumerate(items))
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise PolicyParseError("Statement", "Statement IDs (SID) in a single policy must be unique")
    return Policy(kind=kind, version=version, statements=statements, id=pid)


def _statement(path: str, index: int, raw: Any, kind: PolicyKind) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyParseError(path, "A statement must be a JSON object")
    for key in raw:
        if key not in _STATEMENT_KEYS:
            raise PolicyParseError(f"{path}.{key}", f"Statement has an unknown field {key}")
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or not _SID_RE.match(sid)):
        raise PolicyParseError(f"{path}.Sid", "Sid must be a string of letters, digits, spaces, _ and -")
    if "Effect" not in raw:
        raise PolicyParseError(f"{path}.Effect", "Missing required field Effect")
    effect_raw = raw["Effect"]
    if effect_raw == "Allow":
        effect = Effect.ALLOW
    elif effect_raw == "Deny":
        effect = Effect.DENY
    else:
        raise PolicyParseError(f"{path}.Effect", f"Invalid effect {effect_raw!r}: must be Allow or Deny")

    actions = _pair(raw, path, "Action", "NotAction", required=True)
    action_values = None if actions[1] is None else _actions(f"{path}.{actions[0]}", actions[1])

    if kind is PolicyKind.TRUST:
        for key in ("Resource", "NotResource"):
            if key in raw:
                raise PolicyParseError(f"{path}.{key}", f"Has prohibited field {key}")
        resources: tuple[str, Any] = ("Resource", None)
    else:
        resources = _pair(raw, path, "Resource", "NotResource", required=True)
    resource_values = None if resources[1] is None else _resources(f"{path}.{resources[0]}", resources[1])

    has_p, has_np = "Principal" in raw, "NotPrincipal" in raw
    principal: PrincipalSpec | None = None
    not_principal: PrincipalSpec | None = None
    if kind is PolicyKind.RCP and not has_p and not has_np:
        # An RCP statement without Principal applies to every principal, like Principal "*": the
        # Organizations RCP syntax admits only "*" there, and AWS's own data-perimeter RCP
        # (aws-samples/data-perimeter-policy-examples, resource_control_policies/
        # network_perimeter_sourcevpc_rcp.json, Sid SourceVPCRegion) omits it.
        principal = PrincipalSpec(wildcard=True)
    elif kind.has_principal:
        if has_p == has_np:
            raise PolicyParseError(path, "A statement must contain exactly one of Principal or NotPrincipal")
        if has_p:
            principal = _principal(f"{path}.Principal", raw["Principal"])
        else:
            if effect is Effect.ALLOW:
                raise PolicyParseError(f"{path}.NotPrincipal", "NotPrincipal is supported only with Deny")
            if kind in (PolicyKind.TRUST, PolicyKind.RCP):
                raise PolicyParseError(
                    f"{path}.NotPrincipal", f"Has prohibited field NotPrincipal ({kind.value})"
                )
            not_principal = _principal(f"{path}.NotPrincipal", raw["NotPrincipal"])
    else:
        for key in ("Principal", "NotPrincipal"):
            if key in raw:
                raise PolicyParseError(f"{path}.{key}", f"Has prohibited field {key}")

    conditions: tuple[ConditionClause, ...] = ()
    if "Condition" in raw:
        conditions = _conditions(f"{path}.Condition", raw["Condition"])

    stmt = Statement(
        index=index,
        effect=effect,
        sid=sid or None,
        actions=action_values if actions[0] == "Action" else None,
        not_actions=action_values if actions[0] == "NotAction" else None,
        resources=resource_values if resources[0] == "Resource" else None,
        not_resources=resource_values if resources[0] == "NotResource" else None,
        principal=principal,
        not_principal=not_principal,
        conditions=conditions,
    )
    if kind is PolicyKind.RCP:
        _check_rcp(path, stmt)
    return stmt


def _check_rcp(path: str, stmt: Statement) -> None:
    if stmt.not_actions is not None:
        raise PolicyParseError(f"{path}.NotAction", "Has prohibited field NotAction (rcp)")
    if stmt.principal is not None and not stmt.principal.wildcard:
        raise PolicyParseError(f"{path}.Principal", 'An RCP Principal must be "*"')
    if stmt.effect is Effect.ALLOW:
        full = stmt.actions == ("*",) and stmt.resources == ("*",) and not stmt.conditions
        if not full:
            raise PolicyParseError(
                f"{path}.Effect", "The Allow effect is supported only for RCPFullAWSAccess"
            )


def _pair(raw: Mapping[str, Any], path: str, a: str, b: str, *, required: bool) -> tuple[str, Any]:
    if a in raw and b in raw:
        raise PolicyParseError(path, f"A statement cannot contain both {a} and {b}")
    if a in raw:
        return a, raw[a]
    if b in raw:
        return b, raw[b]
    if required:
        raise PolicyParseError(path, f"A statement must contain {a} or {b}")
    return a, None


def _strings(path: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PolicyParseError(path, "must not be an empty list")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            where = f"{path}[{i}]" if isinstance(value, list) else path
            raise PolicyParseError(where, "must be a string or a list of strings")
        out.append(item)
    return tuple(out)


def _actions(path: str, value: Any) -> tuple[str, ...]:
    actions = _strings(path, value)
    for action in actions:
        if action != "*" and not _ACTION_RE.match(action):
            raise PolicyParseError(
                path, f"Action {action!r}: actions must be prefaced by a vendor, e.g. dynamodb:GetItem"
            )
    return actions


def _resources(path: str, value: Any) -> tuple[str, ...]:
    resources = _strings(path, value)
    for res in resources:
        if res == "*":
            continue
        parts = res.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn":
            raise PolicyParseError(path, f'Resource {res} must be in ARN format or "*"')
        if "*" in parts[2] or "?" in parts[2]:
            raise PolicyParseError(path, f"Resource {res}: you can't use a wildcard in the service segment")
    return resources


def _principal(path: str, value: Any) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(wildcard=True)
    if not isinstance(value, Mapping) or not value:
        raise PolicyParseError(path, 'Principal must be "*" or an object such as {"AWS": [...]}')
    fields: dict[str, tuple[str, ...]] = {}
    wildcard = False
    for ptype, pvalue in value.items():
        if ptype not in _PRINCIPAL_TYPES:
            raise PolicyParseError(f"{path}.{ptype}", f"Invalid principal type {ptype}")
        values = _strings(f"{path}.{ptype}", pvalue)
        if ptype == "AWS":
            for v in values:
                if v == "*":
                    wildcard = True
                    continue
                if _ACCOUNT_RE.match(v) or _UNIQUE_ID_RE.match(v):
                    continue
                if not v.startswith("arn:") or v.count(":") < 5:
                    raise PolicyParseError(f"{path}.AWS", f"Invalid principal in policy: {v!r}")
                if "*" in v or "?" in v:
                    raise PolicyParseError(
                        f"{path}.AWS", f"Invalid principal in policy: {v!r} (no partial wildcards)"
                    )
        fields[_PRINCIPAL_TYPES[ptype]] = tuple(v for v in values if not (ptype == "AWS" and v == "*"))
    return PrincipalSpec(wildcard=wildcard, **fields)


def _scalar(path: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    raise PolicyParseError(path, "Condition values must be strings, numbers or booleans")


def _conditions(path: str, value: Any) -> tuple[ConditionClause, ...]:
    if not isinstance(value, Mapping):
        raise PolicyParseError(path, "Condition must be an object of operators")
    clauses: list[ConditionClause] = []
    for op_name, body in value.items():
        op_path = f"{path}.{op_name}"
        parsed = canonical_operator(str(op_name))
        if parsed is None:
            raise PolicyParseError(op_path, f"Invalid Condition type : {op_name}")
        base, qualifier, if_exists = parsed
        if not isinstance(body, Mapping) or not body:
            raise PolicyParseError(op_path, "A condition operator must map condition keys to values")
        for key, raw_values in body.items():
            key_path = f"{op_path}.{key}"
            if not isinstance(key, str) or not key:
                raise PolicyParseError(key_path, "Invalid condition key")
            items = raw_values if isinstance(raw_values, list) else [raw_values]
            values = tuple(_scalar(f"{key_path}[{i}]", v) for i, v in enumerate(items))
            if base == "Null":
                for v in values:
                    if v.lower() not in ("true", "false"):
                        raise PolicyParseError(key_path, "The Null operator takes true or false")
            display = (
                f"{qualifier.value + ':' if qualifier.value else ''}{base}{'IfExists' if if_exists else ''}"
            )
            clauses.append(ConditionClause(display, base, qualifier, if_exists, key, values))
    return tuple(clauses)
