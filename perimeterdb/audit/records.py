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

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from perimeterdb.policy.context import iso_second

_IDENTITY_TYPES = {"User": "IAMUser", "Account": "Root", "AssumedRole": "AssumedRole", "FederatedUser": "FederatedUser"}
_DYNAMODB_KEPT = {"TableName": "tableName", "IndexName": "indexName", "Key": "key", "Limit": "limit",
                  "Select": "select", "ConsistentRead": "consistentRead", "ReturnValues": "returnValues"}
_MAX_PARAM_CHARS = 8192


def iso_now(moment: datetime | None = None) -> str:
    if moment is None:
        return iso_second(int(time.time()))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")



def user_identity(principal: Any) -> dict[str, Any]:
    """CloudTrail's userIdentity for an authenticated ``auth.principal.Principal`` (or None)."""
    if principal is None:
        return {"type": "Unknown"}
    try:
        return _user_identity(principal)
    except TypeError:  # an unhashable principal (tests' stand-ins): build it every time
        return _user_identity.__wrapped__(principal)


@lru_cache(maxsize=4096)
def _user_identity(principal: Any) -> dict[str, Any]:
    """Built once per principal (principals are frozen values); the record serializes it, never edits it."""
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
    if not isinstance(body, Mapping):
        return None
    out: dict[str, Any] = {}
    for name, kept in _DYNAMODB_KEPT.items():
        if name in body:
            out[kept] = body[name]
    if isinstance(body.get("RequestItems"), Mapping):
        out["requestItems"] = sorted(body["RequestItems"])
    items = body.get("TransactItems")
    if isinstance(items, list):
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
        out.append(
            {
                "action": d.action,
                "resource": d.resource,
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
        )
    return out


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
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": iso_now(now),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": getattr(origin, "source_ip", None),
        "userAgent": user_agent,
        "userIdentity": user_identity(principal),
        "requestParameters": request_parameters,
        "responseElements": None,
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "recipientAccountId": recipient_account or getattr(principal, "account", None),
    }
    vpce = getattr(origin, "vpce_id", None)
    if vpce:
        record["vpcEndpointId"] = vpce
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = error_message or ""
    additional: dict[str, Any] = {"decisions": decision_entries(decisions)}
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
