"""The one audit call of each request path (called from a ``finally:``, so every answered request counts).

Each hook is a no-op when the runtime has no audit log, and never raises into the request path except
when the log cannot be written (an unwritable audit log fails the request: fail closed).
"""

from __future__ import annotations

from typing import Any

from perimeterdb.audit.records import dynamodb_parameters, generic_parameters

_SECRET_KEYS = ("SecretAccessKey", "SessionToken")
_DYNAMODB = "dynamodb.amazonaws.com"


async def dynamodb(
    rt: Any, req: Any, request_id: str, target: str, body: Any, principal: Any, call: Any, error: Any
) -> None:
    audit = getattr(rt, "audit", None)
    if audit is None:
        return
    decisions = call.notes.get("decisions", []) if call is not None else []
    region = call.region if call is not None else rt.settings.default_region
    event_name = target.partition(".")[2] or target
    parameters = dynamodb_parameters(body if isinstance(body, dict) else None)
    user_agent = req.header("user-agent")
    # The common request's record is written from a cached template (the same line record() writes).
    if audit.record_from_template(
        _DYNAMODB,
        event_name,
        region,
        request_id,
        principal,
        req.origin,
        parameters,
        error,
        decisions,
        user_agent,
    ):
        return
    await audit.record(
        event_source=_DYNAMODB,
        event_name=event_name,
        region=region,
        request_id=request_id,
        principal=principal,
        origin=req.origin,
        request_parameters=parameters,
        error=error,
        decisions=decisions,
        user_agent=user_agent,
    )


def _response_elements(action: str | None, result: Any) -> dict[str, Any] | None:
    if action not in ("AssumeRole", "GetSessionToken", "GetFederationToken") or not isinstance(result, dict):
        return None
    out: dict[str, Any] = {}
    credentials = result.get("Credentials")
    if isinstance(credentials, dict):
        out["credentials"] = {
            "accessKeyId": credentials.get("AccessKeyId"),
            "expiration": str(credentials.get("Expiration")),
        }
    assumed = result.get("AssumedRoleUser")
    if isinstance(assumed, dict):
        out["assumedRoleUser"] = {"arn": assumed.get("Arn"), "assumedRoleId": assumed.get("AssumedRoleId")}
    if result.get("SourceIdentity"):
        out["sourceIdentity"] = result["SourceIdentity"]
    return out or None


async def query(
    rt: Any,
    req: Any,
    request_id: str,
    service: str | None,
    action: str | None,
    params: Any,
    principal: Any,
    region: str | None,
    result: Any,
    error: Any,
    decisions: Any = (),
) -> None:
    """IAM and STS (query protocol). ``result`` is the operation's result dict (STS credentials are reduced
    to the access key id and expiry); ``decisions`` the ``authz.Decided`` values of the request, allowed
    or denied."""
    audit = getattr(rt, "audit", None)
    if audit is None:
        return
    service = service or "iam"
    await audit.record(
        event_source=f"{service}.amazonaws.com",
        event_name=action or "Unknown",
        region=region or "us-east-1",
        request_id=request_id,
        principal=principal,
        origin=req.origin,
        request_parameters=generic_parameters(params if isinstance(params, dict) else None),
        error=error,
        decisions=decisions,
        user_agent=req.header("user-agent"),
        response_elements=_response_elements(action, result),
    )
