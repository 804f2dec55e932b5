"""One break-glass AssumeRole attempt: its rules, its approval, its alert (granted or refused).

``Attempt`` is made by ``assume_role`` when the role is break-glass or the caller is break-glass (chaining
out of a break-glass session). ``admit`` applies the rules after the trust decision and returns the session
duration; ``queue_alert`` queues the alert durably before credentials are minted; ``refused`` alerts a
refusal, whatever raised it. The decision of what a refusal looks like stays STS's: AccessDenied (403).
"""

from __future__ import annotations

import logging
from typing import Any

from perimeterdb.breakglass import alerting, approvals
from perimeterdb.iam import errors
from perimeterdb.iam.call import QueryCall
from perimeterdb.world.breakglass import (
    approval_mode,
    break_glass_settings,
    check_break_glass_assume,
    justification_of,
    ticket_of,
)

log = logging.getLogger(__name__)


class Attempt:
    def __init__(self, call: QueryCall, role: dict[str, Any]) -> None:
        self.call = call
        self.role = role
        self.settings = break_glass_settings(role)  # None: an ordinary role reached from a break-glass session
        p = call.principal
        self.derived = bool(p.break_glass)
        self.origin = (p.break_glass_origin or p.access_key_id) if self.derived else None
        self.approval: str | None = None
        self.review_required = False
        self.duration: int | None = None

    def _base(self) -> dict[str, Any]:
        call, p = self.call, self.call.principal
        params = call.params
        origin = call.origin
        return {
            "alert": "break-glass-assume-role",
            "time": call.now,
            "roleArn": self.role["arn"],
            "who": p.arn,
            "principalArn": p.principal_arn,
            "accessKeyId": p.access_key_id,
            "sourceIdentity": params.get("SourceIdentity") or p.source_identity,
            "justification": justification_of(params),
            "ticket": ticket_of(params),
            "sourceIPAddress": getattr(origin, "source_ip", None),
            "vpcEndpointId": getattr(origin, "vpce_id", None),
            "breakGlassRole": self.settings is not None,
            "derivedFrom": p.arn if self.derived else None,
            "originSessionId": self.origin,
        }

    async def admit(self, duration: int, *, fresh_mfa: bool, session_id: str) -> int:
        """The break-glass rules, after the trust decision; the duration of the session to mint."""
        call, p = self.call, self.call.principal
        engine = call.store.engine
        name = self.role["arn"]
        if self.settings is not None:
            limit = check_break_glass_assume(self.role, {**call.params, "mfa_fresh": fresh_mfa})
            assert limit is not None
            duration = limit if call.params.get("DurationSeconds") is not None else min(duration, limit)
            mode = approval_mode(self.settings)
            if mode != "none":
                self.approval = await approvals.consume_grant(
                    engine, p.principal_arn, name, session_id, call.now
                )
                if self.approval is None:
                    if mode == "required":
                        raise errors.access_denied(
                            f"Break-glass role {name} requires an approved request: ask with "
                            "'perimeterdb break-glass request', and have a member of the approvers group "
                            "approve it; the grant is used by one AssumeRole."
                        )
                    self.review_required = True  # emergency-allowed, without approval
            if self.settings.get("fail_closed") and not await alerting.can_deliver(engine):
                raise errors.access_denied(
                    f"Break-glass role {name} fails closed: no alert channel can accept alerts now."
                )
        if self.derived:
            left = int((p.expires_at or call.now) - call.now)
            if left <= 0:
                raise errors.expired_token()
            duration = min(duration, left)  # no later than the origin session
            self.review_required = self.review_required or p.review_required
        self.duration = duration
        return duration

    def principal_fields(self, session_id: str) -> dict[str, Any]:
        """What the new session's stored principal carries about break-glass."""
        return {
            "break_glass": True,
            "origin_session": self.origin or session_id,
            "parent_session": self.call.principal.access_key_id if self.derived else None,
            "justification": justification_of(self.call.params) or None,
            "ticket": ticket_of(self.call.params),
            "approval": self.approval,
            "review_required": self.review_required,
        }

    async def queue_alert(self, session_arn: str, session_id: str, expires: float) -> None:
        """Queue the grant's alert durably; refuse (AccessDenied) when it cannot be queued."""
        alert = {
            **self._base(),
            "outcome": "granted",
            "sessionArn": session_arn,
            "sessionId": session_id,
            "originSessionId": self.origin or session_id,
            "expires": expires,
            "durationSeconds": self.duration,
            "approval": self.approval,
            "reviewRequired": self.review_required,
            "emergency": self.review_required and self.settings is not None and not self.derived,
        }
        try:
            await alerting.queue(self.call.store.engine, alert)
        except Exception:
            log.exception("break-glass alert could not be queued; the assumption is refused")
            raise errors.access_denied(
                f"Break-glass role {self.role['arn']}: the alert could not be queued, so no session is opened."
            ) from None

    async def refused(self, refusal: errors.ApiError) -> None:
        alert = {**self._base(), "outcome": "refused", "errorCode": refusal.code, "errorMessage": refusal.message}
        try:
            await alerting.queue(self.call.store.engine, alert)
        except Exception:
            log.exception("the alert of a refused break-glass assumption could not be queued")
