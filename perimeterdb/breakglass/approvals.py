"""The two-person rule for break-glass roles: request, approve (or deny), a time-boxed grant, consumed once.

A role says how it is approved in its ``break_glass`` settings:

- ``approval: none`` (default): no approval; MFA and a justification are enough;
- ``approval: required``: the requester first asks (``request``), a member of the IAM group
  ``approvers_group`` (in the role's account) who is not the requester approves, and the grant lasts
  ``grant_seconds`` (default 3600 s). The requester's next AssumeRole of that role *consumes* the grant: one
  approval opens one session. Without a live grant, AssumeRole is refused;
- ``approval: emergency-allowed``: a grant is used when there is one; without one the session opens
  anyway, marked ``review_required`` (the review is mandatory) and alerted as an emergency.

Requests live in the ``breakglass:requests`` space (not ``meta:``: nothing caches them, so writing one drops
no cache); every change is one atomic read-decide-write, so two approvers, or two AssumeRole calls racing for
one grant, cannot both win. The requester is identified by ``aws:PrincipalArn`` (the IAM user; a
GetSessionToken session of that user is the same requester).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from perimeterdb.errors import ApiError
from perimeterdb.storage.engine import Decision, Delete, Put, RowKey

SPACE = "breakglass:requests"
DEFAULT_GRANT_SECONDS = 3600
PENDING_SECONDS = 24 * 3600  # an unanswered request lapses after a day
MAX_PENDING_PER_REQUESTER = 5  # a caller cannot flood the approvers (or the storage) with requests
KEEP_SECONDS = 30 * 24 * 3600  # decided or lapsed requests are deleted after 30 days (the audit log keeps them)
MAX_LISTED = 1000
STATUSES = ("pending", "approved", "denied", "consumed", "expired")


def _key(request_id: str) -> RowKey:
    return RowKey(SPACE, b"", request_id.encode(), b"")


def denied(message: str) -> ApiError:
    """The refusal: AccessDeniedException (403) in the JSON API's shape."""
    return ApiError("AccessDeniedException", message, status=403, namespace="com.amazon.coral.service",
                    message_key="Message")


def invalid(message: str) -> ApiError:
    return ApiError("ValidationException", message, status=400, namespace="com.amazon.coral.validate")


def not_found(request_id: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"Break-glass request {request_id} not found.", status=400)


@dataclass(frozen=True, slots=True)
class Caller:
    arn: str  # the calling principal's ARN (a session's ARN for a session)
    principal_arn: str  # aws:PrincipalArn: the requester's identity across sessions
    account: str
    kind: str
    username: str | None


def effective_status(request: Mapping[str, Any], now: float) -> str:
    status = str(request["status"])
    if status == "approved" and float(request.get("grant_expires") or 0) <= now:
        return "expired"
    if status == "pending" and float(request["created"]) + PENDING_SECONDS <= now:
        return "expired"
    return status


def shape(request: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """The wire shape of one request (JSON API and CLI)."""
    now = time.time() if now is None else now
    out = {
        "RequestId": request["id"],
        "RoleArn": request["role_arn"],
        "Requester": request["requester"],
        "Justification": request["justification"],
        "Status": effective_status(request, now),
        "CreatedAt": request["created"],
    }
    for src, dst in (("ticket", "Ticket"), ("approver", "Approver"), ("decided", "DecidedAt"),
                     ("grant_expires", "GrantExpiresAt"), ("comment", "Comment"), ("session", "SessionId")):
        if request.get(src) is not None:
            out[dst] = request[src]
    return out


def check_text(justification: Any, ticket: Any) -> tuple[str, str | None]:
    if not isinstance(justification, str) or not justification.strip():
        raise invalid("Justification must be a non-blank text.")
    if len(justification) > 256:
        raise invalid("Justification must be at most 256 characters.")
    if ticket is not None and (not isinstance(ticket, str) or len(ticket) > 256):
        raise invalid("Ticket must be a text of at most 256 characters.")
    return justification.strip(), (ticket.strip() or None) if isinstance(ticket, str) else None


async def create(
    engine: Any, caller: Caller, role: Mapping[str, Any], justification: str, ticket: str | None, now: float
) -> dict[str, Any]:
    existing = await list_requests(engine)
    stale = [_key(r["id"]) for r in existing if float(r["created"]) + KEEP_SECONDS < now]
    if stale:
        await engine.atomic(stale, lambda _values: Decision([Delete(k) for k in stale]))
    pending = [r for r in existing if r["requester"] == caller.principal_arn and effective_status(r, now) == "pending"]
    if len(pending) >= MAX_PENDING_PER_REQUESTER:
        raise ApiError("LimitExceededException",
                       f"You have {len(pending)} pending break-glass requests; wait for a decision first.")
    request_id = "bgr-" + secrets.token_hex(10)
    record = {
        "id": request_id,
        "role_arn": role["arn"],
        "account": role["account"] if "account" in role else role["arn"].split(":")[4],
        "requester": caller.principal_arn,
        "requester_session": caller.arn,
        "justification": justification,
        "ticket": ticket,
        "status": "pending",
        "created": now,
    }
    value = orjson.dumps(record)
    key = _key(request_id)

    def decide(values: list[bytes | None]) -> Decision:
        if values[0] is not None:
            raise RuntimeError("request id collision")
        return Decision([Put(key, value)], record)

    return dict(await engine.atomic([key], decide))


async def get(engine: Any, request_id: str) -> dict[str, Any] | None:
    raw = await engine.get(_key(request_id))
    return orjson.loads(raw) if raw is not None else None


async def decide_request(
    engine: Any, request_id: str, approver: Caller, approve: bool, grant_seconds: int, comment: str | None,
    now: float,
) -> dict[str, Any]:
    """Approve or deny a pending request, atomically (the caller checked group membership)."""
    key = _key(request_id)

    def decide(values: list[bytes | None]) -> Decision:
        if values[0] is None:
            raise not_found(request_id)
        request = orjson.loads(values[0])
        if approver.principal_arn == request["requester"]:
            raise denied("The requester cannot approve or deny their own break-glass request.")
        status = effective_status(request, now)
        if status != "pending":
            raise ApiError("ConflictException", f"Break-glass request {request_id} is {status}, not pending.",
                           status=409)
        request.update(status="approved" if approve else "denied", approver=approver.principal_arn,
                       decided=now, comment=comment)
        if approve:
            request["grant_expires"] = now + grant_seconds
        return Decision([Put(key, orjson.dumps(request))], request)

    return dict(await engine.atomic([key], decide))


async def consume_grant(engine: Any, requester: str, role_arn: str, session_id: str, now: float) -> str | None:
    """Consume the requester's oldest live grant for the role; its request id, or None when there is none."""
    live = [r for r in await list_requests(engine) if r["requester"] == requester and r["role_arn"] == role_arn
            and effective_status(r, now) == "approved"]
    for request in sorted(live, key=lambda r: r["created"]):
        key = _key(request["id"])

        def decide(values: list[bytes | None], key: RowKey = key) -> Decision:
            if values[0] is None:
                return Decision((), False)
            current = orjson.loads(values[0])
            if effective_status(current, now) != "approved":
                return Decision((), False)  # consumed by a racing call, or lapsed meanwhile
            current.update(status="consumed", session=session_id, consumed=now)
            return Decision([Put(key, orjson.dumps(current))], True)

        if await engine.atomic([key], decide):
            return str(request["id"])
    return None


async def list_requests(engine: Any) -> list[dict[str, Any]]:
    rows = await engine.scan(SPACE, limit=MAX_LISTED * 10)
    return [orjson.loads(r.value) for r in rows]
