"""Audit records in CloudTrail's record shape, built from what the request path knows.

Fields follow CloudTrail's record contents (eventVersion 1.08): eventTime, eventSource, eventName,
awsRegion, sourceIPAddress, userAgent, vpcEndpointId, userIdentity {type, principalId, arn, accountId,
accessKeyId, userName, sessionContext {sessionIssuer, attributes {creationDate, mfaAuthenticated},
sourceIdentity}}, requestParameters, errorCode, errorMessage, requestID, eventID, eventType,
recipientAccountId. perimeterdb's own facts (the decisions with their determining statements, the VPC,
break-glass) go under ``additionalEventData``, the field CloudTrail keeps for service-specific data.

``requestParameters`` never holds item values: for DynamoDB only table and index names, the primary key
of single-item operations and the table names of batch and transaction requests are kept.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from perimeterdb.auth.principal import Principal
from perimeterdb.counted_ids import CountedIds
from perimeterdb.policy.context import iso_second
from perimeterdb.policy.decide import Response

_IDENTITY_TYPES = {
    "User": "IAMUser",
    "Account": "Root",
    "AssumedRole": "AssumedRole",
    "FederatedUser": "FederatedUser",
}
_DYNAMODB_KEPT = {
    "TableName": "tableName",
    "IndexName": "indexName",
    "Key": "key",
    "Limit": "limit",
    "Select": "select",
    "ConsistentRead": "consistentRead",
    "ReturnValues": "returnValues",
}
_DYNAMODB_KEPT_PAIRS = tuple(_DYNAMODB_KEPT.items())
_MAX_PARAM_CHARS = 8192

# Caps on what a caller controls, so that no request can write a record larger than about 110 KB. CloudTrail
# truncates a field that exceeds its maximum size (and marks it "omitted"); its requestParameters and
# responseElements are at most 100 KB. A truncated text keeps its start and says how long it was.
USER_AGENT_MAX = 1024
ERROR_MESSAGE_MAX = 1024
NAME_MAX = 128  # eventName (the caller's X-Amz-Target / Action), errorCode
PARAMETERS_MAX = 100 * 1024
ANONYMOUS_PARAMETERS_MAX = 4 * 1024  # a request that failed authentication: nobody vouches for it


def cap(text: Any, limit: int) -> Any:
    """``text`` cut to ``limit`` characters, saying so; anything else unchanged."""
    if type(text) is not str or len(text) <= limit:
        return text
    return f"{text[:limit]}...[truncated from {len(text)} characters]"


def cap_parameters(params: Any, limit: int = PARAMETERS_MAX) -> Any:
    """``params`` when its JSON is at most ``limit`` bytes, else CloudTrail's omitted marker."""
    if params is None:
        return None
    size = len(orjson.dumps(params, default=str))
    return params if size <= limit else {"omitted": True, "originalSize": size}


def iso_now(moment: datetime | None = None) -> str:
    if moment is None:
        return _event_time()
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# The current second: its start and end (epoch floats, so that checking costs no int() conversion), its
# text and that text as JSON. Every record in that second reuses them. One tuple, so that a thread never
# reads the second of one update with the text of another.
_clock: tuple[float, float, str, bytes] = (0.0, 0.0, "", b"")


def _tick(now: float) -> tuple[float, float, str, bytes]:
    global _clock
    second = int(now)
    text = iso_second(second)
    _clock = clock = (float(second), float(second + 1), text, orjson.dumps(text))
    return clock


def _event_time() -> str:
    now = time.time()
    clock = _clock
    if not clock[0] <= now < clock[1]:
        clock = _tick(now)
    return clock[2]


# eventID: UUID-shaped, unique per record without a urandom call per record: a random version-4 UUID's
# first 20 hex digits (74 random bits) per process, and the last 12 hex digits count the records.
_EVENT_IDS = CountedIds(lambda: str(uuid.UUID(bytes=os.urandom(16), version=4))[:24], 1 << 48)


def event_id() -> str:
    prefix, n = _EVENT_IDS.next()
    return f"{prefix}{n:012x}"


# Per-object caches of the parts of a record that depend only on immutable values: the principal (the
# identity store hands out one Principal object per credential until something changes) and the
# authorizer's Response. Keyed by id() with the object itself kept in the entry, so an id cannot be reused
# by another object while its entry lives; bounded by clearing (a miss only costs a rebuild). The cached
# dicts are shared between records: the record is serialized, never edited.
_CACHE_MAX = 4096
_identities: dict[int, tuple[Principal, dict[str, Any]]] = {}
# (response, entry, entry as JSON, [entry] as JSON)
_decisions: dict[tuple[int, str, str], tuple[Response, dict[str, Any], bytes, bytes]] = {}


def user_identity(principal: Any) -> dict[str, Any]:
    """CloudTrail's userIdentity for an authenticated ``auth.principal.Principal`` (or None)."""
    if principal is None:
        return {"type": "Unknown"}
    hit = _identities.get(id(principal))
    if hit is not None and hit[0] is principal:
        return hit[1]
    out = _user_identity(principal)
    # Only the frozen Principal is cached: a stand-in (tests') may change between records.
    if type(principal) is Principal:
        if len(_identities) >= _CACHE_MAX:
            _identities.clear()
        _identities[id(principal)] = (principal, out)
    return out


def _user_identity(principal: Any) -> dict[str, Any]:
    """Built from the principal's fields only, so it can be kept as long as the (frozen) principal."""
    kind = _IDENTITY_TYPES.get(principal.kind, principal.kind)
    out: dict[str, Any] = {
        "type": kind,
        "principalId": principal.userid,
        "arn": principal.arn,
        "accountId": principal.account,
    }
    if principal.access_key_id:
        out["accessKeyId"] = principal.access_key_id
    if principal.kind == "User" and principal.username:
        out["userName"] = principal.username
    if principal.token_issue_time is not None or principal.kind == "AssumedRole":
        context: dict[str, Any] = {
            "attributes": {
                "creationDate": iso_now(datetime.fromtimestamp(principal.token_issue_time, UTC))
                if principal.token_issue_time
                else None,
                "mfaAuthenticated": "true" if principal.mfa_authenticated else "false",
            }
        }
        if principal.kind == "AssumedRole":
            context["sessionIssuer"] = {
                "type": "Role",
                "principalId": principal.role_id,
                "arn": principal.principal_arn,
                "accountId": principal.account,
                "userName": principal.role_name,
            }
        if principal.source_identity:
            context["sourceIdentity"] = principal.source_identity
        out["sessionContext"] = context
    return out


def dynamodb_parameters(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Table names and keys only; never item values, expressions' values or conditions."""
    # type() first: the decoded body is a dict, and isinstance against an ABC costs more than the rest.
    if type(body) is not dict and not isinstance(body, Mapping):
        return None
    out: dict[str, Any] = {kept: body[name] for name, kept in _DYNAMODB_KEPT_PAIRS if name in body}
    requests = body.get("RequestItems")
    if requests is not None and isinstance(requests, Mapping):
        out["requestItems"] = sorted(requests)
    items = body.get("TransactItems")
    if items is not None and isinstance(items, list):
        tables = set()
        for entry in items:
            if isinstance(entry, Mapping):
                for op in entry.values():
                    if isinstance(op, Mapping) and isinstance(op.get("TableName"), str):
                        tables.add(op["TableName"])
        out["transactItems"] = sorted(tables)
    return out or None


def generic_parameters(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Control-plane parameters (Organizations, IAM, STS), lower-camel-cased, secrets removed."""
    if not params:
        return None
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in ("TokenCode", "Password", "OldPassword", "NewPassword", "SecretAccessKey"):
            continue
        text = value if isinstance(value, str) else None
        if text is not None and len(text) > _MAX_PARAM_CHARS:
            value = text[:_MAX_PARAM_CHARS] + "…"
        out[name[:1].lower() + name[1:]] = value
    return out


def decision_entries(decisions: Sequence[Any]) -> list[dict[str, Any]]:
    """``authz.Decided`` values (action, resource, response) as JSON."""
    out = []
    for d in decisions:
        response = d.response
        key = (id(response), d.action, d.resource)
        hit = _decisions.get(key)
        if hit is not None and hit[0] is response:
            out.append(hit[1])
            continue
        entry = _decision_entry(d.action, d.resource, response)
        if type(response) is Response:  # frozen: its entry holds for the object's life
            if len(_decisions) >= _CACHE_MAX:
                _decisions.clear()
            serialized = orjson.dumps(entry, default=str)
            _decisions[key] = (response, entry, serialized, b"[" + serialized + b"]")
        out.append(entry)
    return out


def _decision_entry(action: str, resource: str, response: Any) -> dict[str, Any]:
    return {
        "action": action,
        "resource": resource,
        "decision": response.decision.value,
        "deniedBy": response.denied_by,
        "determining": [
            {
                "kind": ref.kind,
                "policyId": ref.policy_id,
                "policyArn": ref.policy_arn,
                "sid": ref.sid,
                "index": ref.index,
            }
            for ref in response.determining
        ],
        "errors": list(response.errors),
    }


def build(
    *,
    event_source: str,
    event_name: str,
    region: str,
    request_id: str,
    principal: Any,
    origin: Any,
    request_parameters: dict[str, Any] | None,
    error_code: str | None = None,
    error_message: str | None = None,
    decisions: Sequence[Any] = (),
    user_agent: str | None = None,
    recipient_account: str | None = None,
    break_glass: bool = False,
    extra: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    return _assemble(
        event_time=_event_time() if now is None else iso_now(now),
        event_id=event_id(),
        event_source=event_source,
        event_name=event_name,
        region=region,
        request_id=request_id,
        principal=principal,
        origin=origin,
        request_parameters=request_parameters,
        error_code=error_code,
        error_message=error_message,
        decision_list=decision_entries(decisions),
        user_agent=user_agent,
        recipient_account=recipient_account,
        break_glass=break_glass,
        extra=extra,
    )


def _assemble(
    *,
    event_time: str,
    event_id: str,
    event_source: str,
    event_name: str,
    region: str,
    request_id: str,
    principal: Any,
    origin: Any,
    request_parameters: Any,
    error_code: Any,
    error_message: Any,
    decision_list: Any,
    user_agent: str | None,
    recipient_account: str | None,
    break_glass: bool,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    # The one place that decides the record's fields and their order: ``build`` and the line templates
    # both come from here, so a templated line is the same bytes as the record's own serialization.
    if type(request_parameters) is not str:  # not a template's hole
        request_parameters = cap_parameters(request_parameters)
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": event_time,
        "eventSource": event_source,
        "eventName": cap(event_name, NAME_MAX),
        "awsRegion": cap(region, NAME_MAX),
        "sourceIPAddress": getattr(origin, "source_ip", None),
        "userAgent": cap(user_agent, USER_AGENT_MAX),
        "userIdentity": user_identity(principal),
        "requestParameters": request_parameters,
        "responseElements": None,
        "requestID": request_id,
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": recipient_account or getattr(principal, "account", None),
    }
    vpce = getattr(origin, "vpce_id", None)
    if vpce:
        record["vpcEndpointId"] = vpce
    if error_code:
        record["errorCode"] = cap(error_code, NAME_MAX)
        record["errorMessage"] = cap(error_message or "", ERROR_MESSAGE_MAX)
    additional: dict[str, Any] = {"decisions": decision_list}
    if vpce:
        additional["vpcId"] = getattr(origin, "vpc_id", None)
    additional["secureTransport"] = bool(getattr(origin, "secure", False))
    if break_glass:
        additional["breakGlass"] = True
        record["breakGlass"] = True
    if extra:
        additional.update(extra)
    record["additionalEventData"] = additional
    return record


# --- line templates ------------------------------------------------------------------------------------
#
# Most records differ from the previous one of the same caller only in eventTime, userAgent,
# requestParameters, requestID, eventID, the error and the decisions. A template is the serialized record
# of one context (caller, origin, event, region, with or without an error) cut at those values; a line is
# the template's pieces with the request's values serialized in between. The template is made by
# serializing ``_assemble``'s record with a unique marker in each hole, so a line is byte for byte what
# serializing the whole record gives. The user agent is a hole, not part of the context, because the
# client chooses it freely (a new one per request would only churn the cache).

_MARK = f"\x00perimeterdb-audit-{os.urandom(8).hex()}-"  # random: no request text can contain it
_HOLES = ("eventTime", "userAgent", "requestParameters", "requestID", "eventID", "decisions")
_ERROR_HOLES = (*_HOLES[:-1], "errorCode", "errorMessage", "decisions")
_templates: dict[tuple[Any, ...], tuple[Principal, tuple[bytes, ...] | None]] = {}


def line_template(
    event_source: str, event_name: str, region: str, principal: Any, origin: Any, with_error: bool
) -> tuple[bytes, ...] | None:
    """The pieces around the holes (``_HOLES``, or ``_ERROR_HOLES`` ``with_error``) of this context's line
    for ``render_line``; None when the context has none (no Principal, no NetworkOrigin): build the record.
    Only for records without recipient account, break-glass flag, extra data or response elements."""
    if type(principal) is not Principal:  # a frozen value: what it says cannot change under its id
        return None
    try:
        key = (
            id(principal),
            event_source,
            event_name,
            region,
            origin.source_ip,
            origin.vpce_id,
            origin.vpc_id,
            origin.secure,
            with_error,
        )
    except AttributeError:
        return None
    hit = _templates.get(key)
    if hit is not None and hit[0] is principal:
        return hit[1]
    parts = _cut(event_source, event_name, region, principal, origin, _ERROR_HOLES if with_error else _HOLES)
    if len(_templates) >= _CACHE_MAX:
        _templates.clear()
    _templates[key] = (principal, parts)
    return parts


def _cut(
    event_source: str, event_name: str, region: str, principal: Any, origin: Any, holes: tuple[str, ...]
) -> tuple[bytes, ...] | None:
    marks = {name: f"{_MARK}{name}\x00" for name in holes}
    record = _assemble(
        event_time=marks["eventTime"],
        event_id=marks["eventID"],
        event_source=event_source,
        event_name=event_name,
        region=region,
        request_id=marks["requestID"],
        principal=principal,
        origin=origin,
        request_parameters=marks["requestParameters"],
        error_code=marks.get("errorCode"),
        error_message=marks.get("errorMessage"),
        decision_list=marks["decisions"],
        user_agent=marks["userAgent"],
        recipient_account=None,
        break_glass=False,
        extra=None,
    )
    line = orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    pieces: list[bytes] = []
    start = 0
    for name in holes:
        mark = orjson.dumps(marks[name])
        at = line.find(mark, start)
        if at < 0 or line.count(mark) != 1:  # the holes are not in _HOLES' order: no template
            return None
        pieces.append(line[start:at])
        start = at + len(mark)
    pieces.append(line[start:])
    return tuple(pieces)


def render_line(
    parts: tuple[bytes, ...],
    user_agent: str | None,
    request_parameters: dict[str, Any] | None,
    request_id: str,
    decisions: Sequence[Any],
    error_code: str | None = None,
    error_message: str | None = None,
) -> bytes:
    """One record's JSON line from its context's template (``error_code`` exactly when it was made
    ``with_error``); the same bytes as ``orjson.dumps(build(...), default=str)`` plus a newline."""
    dumps = orjson.dumps
    if user_agent is not None and len(user_agent) > USER_AGENT_MAX:
        user_agent = cap(user_agent, USER_AGENT_MAX)
    parameters = dumps(request_parameters, default=str)
    if len(parameters) > PARAMETERS_MAX:
        parameters = dumps({"omitted": True, "originalSize": len(parameters)})
    now = time.time()
    clock = _clock
    if not clock[0] <= now < clock[1]:
        clock = _tick(now)
    prefix, n = _EVENT_IDS.next()
    head = (
        parts[0],
        clock[3],
        parts[1],
        dumps(user_agent),
        parts[2],
        parameters,
        parts[3],
        dumps(request_id, default=str),
        parts[4],
        b'"%s%012x"' % (prefix.encode(), n),
        parts[5],
    )
    if error_code is None:
        return b"".join((*head, decisions_json(decisions), parts[6]))
    return b"".join(
        (
            *head,
            dumps(cap(error_code, NAME_MAX), default=str),
            parts[6],
            dumps(cap(error_message or "", ERROR_MESSAGE_MAX), default=str),
            parts[7],
            decisions_json(decisions),
            parts[8],
        )
    )


def decisions_json(decisions: Sequence[Any]) -> bytes:
    """``decision_entries(decisions)`` serialized, from the per-Response cache when it holds them all."""
    if len(decisions) == 1:  # nearly every request: one (action, resource) pair
        d = decisions[0]
        response = d.response
        hit = _decisions.get((id(response), d.action, d.resource))
        if hit is not None and hit[0] is response:
            return hit[3]
    parts = []
    for d in decisions:
        response = d.response
        hit = _decisions.get((id(response), d.action, d.resource))
        if hit is None or hit[0] is not response:
            return orjson.dumps(decision_entries(decisions), default=str)
        parts.append(hit[2])
    return b"[" + b",".join(parts) + b"]"
