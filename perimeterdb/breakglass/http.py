"""The break-glass approval API: JSON 1.1, ``X-Amz-Target: PerimeterDBBreakGlass_20261206.<Op>``, SigV4.

Requests are signed like any AWS JSON API, with the credential scope's service ``breakglass`` (the CLI,
``perimeterdb break-glass request|approve|deny|requests``, signs with botocore and the standard credential
chain), so the requester and the approver each act with their own credentials.

Operations (input -> output):
- ``RequestAccess`` ``{RoleArn, Justification, Ticket?}`` -> ``{Request}``: by anyone who will assume the
  role; the role must be break-glass with ``approval`` ``required`` or ``emergency-allowed``;
- ``ApproveRequest`` / ``DenyRequest`` ``{RequestId, Comment?}`` -> ``{Request}``: by an IAM user of the
  role's account who is a member of the role's ``approvers_group``, never the requester;
- ``ListRequests`` ``{Status?, RoleArn?}`` -> ``{Requests: [...]}``: the caller's own requests, and those an
  approver may decide.

Refusals are ``AccessDeniedException`` (403); bad input ``ValidationException``; an unknown request
``ResourceNotFoundException``; a request no longer pending ``ConflictException`` (409). Every call, refused
ones included, is audited (event source ``breakglass.perimeterdb``) and alerted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from perimeterdb import errors
from perimeterdb.auth import verify as sigv4_verify
from perimeterdb.auth.principal import Principal
from perimeterdb.breakglass import alerting, approvals
from perimeterdb.errors import ApiError
from perimeterdb.server import wire
from perimeterdb.world.breakglass import approval_mode, break_glass_settings

if TYPE_CHECKING:
    from perimeterdb.server.request import IncomingRequest
    from perimeterdb.server.runtime import Runtime

log = logging.getLogger(__name__)

TARGET_PREFIX = "PerimeterDBBreakGlass_20261206."
SERVICE = "breakglass"
EVENT_SOURCE = "breakglass.perimeterdb"
JSON_11 = "application/x-amz-json-1.1"
MAX_BODY = 64 * 1024


def _caller(p: Principal) -> approvals.Caller:
    return approvals.Caller(p.arn, p.principal_arn, p.account, p.kind, p.username)


def _text(body: dict[str, Any], name: str, *, required: bool = True, limit: int = 256) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise approvals.invalid(f"{name} must be a string of 1 to {limit} characters.")
    return value


async def _role(rt: Runtime, role_arn: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        raise approvals.invalid(f"RoleArn {role_arn} is not a role ARN.")
    role = await rt.identities.get_role(parts[4], parts[5].rsplit("/", 1)[-1])
    settings = break_glass_settings(role)
    if role is None or role["arn"] != role_arn or settings is None:
        raise approvals.invalid(f"{role_arn} is not a break-glass role.")
    return role, settings


async def _may_approve(rt: Runtime, p: Principal, role: dict[str, Any], settings: dict[str, Any]) -> bool:
    group = settings.get("approvers_group")
    account = role["arn"].split(":")[4]
    if not group or p.kind != "User" or not p.username or p.account != account:
        return False
    user = await rt.identities.get_user(account, p.username)
    return user is not None and str(group).lower() in {str(g).lower() for g in user.get("groups", [])}


async def request_access(rt: Runtime, p: Principal, body: dict[str, Any], now: float) -> dict[str, Any]:
    role_arn = _text(body, "RoleArn", limit=2048) or ""
    role, settings = await _role(rt, role_arn)
    if approval_mode(settings) == "none":
        raise approvals.invalid(f"Break-glass role {role_arn} needs no approval: assume it directly.")
    if p.kind == "Account":
        raise approvals.denied("The root user cannot request break-glass access.")
    justification, ticket = approvals.check_text(body.get("Justification"), body.get("Ticket"))
    if settings.get("require_ticket") and not ticket:
        raise approvals.denied(f"Break-glass role {role_arn} requires a ticket reference (Ticket).")
    request = await approvals.create(rt.engine, _caller(p), role, justification, ticket, now)
    return {"Request": approvals.shape(request, now)}


async def _decide(rt: Runtime, p: Principal, body: dict[str, Any], now: float, approve: bool) -> dict[str, Any]:
    request_id = _text(body, "RequestId", limit=64) or ""
    comment = _text(body, "Comment", required=False, limit=1024)
    request = await approvals.get(rt.engine, request_id)
    if request is None:
        raise approvals.not_found(request_id)
    role, settings = await _role(rt, request["role_arn"])
    if p.principal_arn.lower() == str(request["requester"]).lower():
        raise approvals.denied("The requester cannot approve or deny their own break-glass request.")
    if not await _may_approve(rt, p, role, settings):
        group = settings.get("approvers_group") or "(none configured)"
        raise approvals.denied(
            f"User: {p.arn} is not a member of the approvers group {group} of break-glass role {role['arn']}."
        )
    grant = int(settings.get("grant_seconds") or approvals.DEFAULT_GRANT_SECONDS)
    decided = await approvals.decide_request(rt.engine, request_id, _caller(p), approve, grant, comment, now)
    return {"Request": approvals.shape(decided, now)}


async def approve_request(rt: Runtime, p: Principal, body: dict[str, Any], now: float) -> dict[str, Any]:
    return await _decide(rt, p, body, now, True)


async def deny_request(rt: Runtime, p: Principal, body: dict[str, Any], now: float) -> dict[str, Any]:
    return await _decide(rt, p, body, now, False)


async def list_requests(rt: Runtime, p: Principal, body: dict[str, Any], now: float) -> dict[str, Any]:
    status = _text(body, "Status", required=False, limit=16)
    if status is not None and status not in approvals.STATUSES:
        raise approvals.invalid(f"Status must be one of {', '.join(approvals.STATUSES)}.")
    role_filter = _text(body, "RoleArn", required=False, limit=2048)
    out = []
    approvable: dict[str, bool] = {}
    for request in await approvals.list_requests(rt.engine):
        if role_filter and request["role_arn"] != role_filter:
            continue
        mine = str(request["requester"]).lower() == p.principal_arn.lower()
        if not mine:
            if request["role_arn"] not in approvable:
                try:
                    role, settings = await _role(rt, request["role_arn"])
                    approvable[request["role_arn"]] = await _may_approve(rt, p, role, settings)
                except ApiError:
                    approvable[request["role_arn"]] = False
            if not approvable[request["role_arn"]]:
                continue
        shaped = approvals.shape(request, now)
        if status is None or shaped["Status"] == status:
            out.append(shaped)
    return {"Requests": sorted(out, key=lambda r: r["CreatedAt"])}


Handler = Callable[["Runtime", Principal, dict[str, Any], float], Awaitable[dict[str, Any]]]
OPERATIONS: dict[str, Handler] = {
    "RequestAccess": request_access,
    "ApproveRequest": approve_request,
    "DenyRequest": deny_request,
    "ListRequests": list_requests,
}


async def handle_breakglass(rt: Runtime, req: IncomingRequest, target: str, request_id: str) -> wire.HttpResponse:
    import time

    op_name = target[len(TARGET_PREFIX):]
    principal: Principal | None = None
    body: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: ApiError | None = None
    region = "us-east-1"
    try:
        content_type = (req.header("content-type") or "").split(";")[0].strip()
        if req.method != "POST" or content_type not in (JSON_11, "application/json"):
            raise errors.unknown_operation()
        if len(req.body) > MAX_BODY:
            raise approvals.invalid("The request body is too large.")
        handler = OPERATIONS.get(op_name)
        if handler is None:
            raise errors.unknown_operation()
        parts = sigv4_verify.HttpRequestParts(
            req.method, req.raw_path, parse_qsl(req.query_string.decode("latin-1"), keep_blank_values=True),
            req.headers, req.body,
        )
        verified = await sigv4_verify.authenticate(parts, rt.identities.credential, service=SERVICE)
        principal = verified.credential.principal
        region = verified.region
        try:
            decoded = orjson.loads(req.body) if req.body else {}
        except orjson.JSONDecodeError:
            raise errors.serialization("") from None
        if not isinstance(decoded, dict):
            raise errors.serialization("")
        body = decoded
        result = await handler(rt, principal, body, time.time())
        return wire.json_response(result, request_id, content_type=JSON_11)
    except ApiError as exc:
        error = exc
        return wire.json_error(exc, request_id, content_type=JSON_11)
    except Exception:
        log.exception("internal error in %s", target)
        error = errors.internal()
        return wire.json_error(error, request_id, content_type=JSON_11)
    finally:
        await _audit(rt, req, request_id, op_name or target, principal, body, result, error, region)


_MEMBERS = frozenset({"RoleArn", "Justification", "Ticket", "RequestId", "Comment", "Status"})
_FIELD_CAP = 512


def _capped(value: str) -> str:
    return value if len(value) <= _FIELD_CAP else value[:_FIELD_CAP] + f"...({len(value)} characters)"


async def _audit(
    rt: Runtime, req: IncomingRequest, request_id: str, op_name: str, principal: Principal | None,
    body: dict[str, Any] | None, result: dict[str, Any] | None, error: ApiError | None, region: str,
) -> None:
    request = (result or {}).get("Request") or {}
    # Only the API's own members, each capped: the body is the caller's (up to 64 KB), the alert is not.
    params = {k[:1].lower() + k[1:]: v if not isinstance(v, str) else _capped(v)
              for k, v in (body or {}).items() if k in _MEMBERS and isinstance(v, str | int)} or None
    audit = getattr(rt, "audit", None)
    if audit is not None:
        await audit.record(
            event_source=EVENT_SOURCE,
            event_name=op_name,
            region=region,
            request_id=request_id,
            principal=principal,
            origin=req.origin,
            request_parameters=params,
            error=error,
            user_agent=req.header("user-agent"),
            extra={"breakGlassRequest": request} if request else None,
        )
    if (op_name == "ListRequests" and error is None) or principal is None:
        return
    alert = {
        "alert": "break-glass-approval",
        "what": op_name,
        "who": principal.arn,
        "request": request or None,
        "requestParameters": params,
        "sourceIPAddress": getattr(req.origin, "source_ip", None),
        "errorCode": error.code if error is not None else None,
        "errorMessage": error.message if error is not None else None,
    }
    try:
        await alerting.queue(rt.engine, alert)
    except Exception:
        log.exception("break-glass approval alert could not be queued")
