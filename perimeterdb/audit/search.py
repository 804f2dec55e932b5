"""Searching the audit log: by principal, table, denied only, time range; and break-glass sessions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "NetworkOriginRefused"})


@dataclass(frozen=True, slots=True)
class Query:
    principal: str | None = None  # substring of the ARN, or an access key id, or an account id
    table: str | None = None
    denied_only: bool = False
    since: str | None = None  # ISO 8601 (compared as text: records use YYYY-MM-DDTHH:MM:SSZ)
    until: str | None = None
    event_name: str | None = None
    break_glass_only: bool = False


def _tables(record: dict[str, Any]) -> set[str]:
    params = record.get("requestParameters") or {}
    out: set[str] = set()
    if isinstance(params, dict):
        for key in ("tableName",):
            if isinstance(params.get(key), str):
                out.add(params[key].rsplit("/", 1)[-1])
        for key in ("requestItems", "transactItems"):
            for name in params.get(key) or []:
                out.add(str(name).rsplit("/", 1)[-1])
    return out


def is_denied(record: dict[str, Any]) -> bool:
    if record.get("errorCode") in DENIED_CODES:
        return True
    decisions = (record.get("additionalEventData") or {}).get("decisions") or []
    return any(d.get("decision") != "Allow" for d in decisions)


def _normalise_time(text: str) -> str:
    text = text.strip().replace(" ", "T")
    if len(text) == 10:
        text += "T00:00:00"
    return text.rstrip("Z")[:19] + "Z"


def matches(record: dict[str, Any], q: Query) -> bool:
    if q.principal:
        ident = record.get("userIdentity") or {}
        issuer = ((ident.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn") or ""
        haystack = " ".join(str(ident.get(k) or "") for k in ("arn", "accessKeyId", "accountId", "principalId"))
        if q.principal not in haystack and q.principal not in issuer:
            return False
    if q.table and q.table not in _tables(record):
        return False
    if q.denied_only and not is_denied(record):
        return False
    when = str(record.get("eventTime") or "")
    if q.since and when < _normalise_time(q.since):
        return False
    if q.until and when > _normalise_time(q.until):
        return False
    if q.event_name and record.get("eventName") != q.event_name:
        return False
    return not (q.break_glass_only and not record.get("breakGlass"))


def search(records: Iterable[dict[str, Any]], q: Query, limit: int | None = None) -> Iterator[dict[str, Any]]:
    n = 0
    for record in records:
        if matches(record, q):
            yield record
            n += 1
            if limit is not None and n >= limit:
                return


@dataclass
class BreakGlassSession:
    session_arn: str
    access_key_id: str | None
    role_arn: str | None
    source_identity: str | None
    assumed_at: str | None = None
    assumed_by: str | None = None
    justification: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "sessionArn": self.session_arn,
            "accessKeyId": self.access_key_id,
            "roleArn": self.role_arn,
            "sourceIdentity": self.source_identity,
            "assumedAt": self.assumed_at,
            "assumedBy": self.assumed_by,
            "justification": self.justification,
            "firstSeen": self.first_seen,
            "lastSeen": self.last_seen,
            "requests": len(self.actions),
            "actions": self.actions,
        }


def break_glass_sessions(records: Iterable[dict[str, Any]]) -> list[BreakGlassSession]:
    """Group break-glass records by session: the assumption (if logged) and every request made with it."""
    sessions: dict[str, BreakGlassSession] = {}
    for record in records:
        if not record.get("breakGlass"):
            continue
        extra = record.get("additionalEventData") or {}
        if record.get("errorCode") and extra.get("breakGlassAssumption"):
            continue  # a refused attempt (alerted and audited) opened no session
        if record.get("eventName") == "BreakGlassAssumeRole" or extra.get("breakGlassAssumption"):
            key = extra.get("sessionAccessKeyId") or extra.get("sessionArn") or record["eventID"]
            s = sessions.setdefault(
                key,
                BreakGlassSession(extra.get("sessionArn") or "", extra.get("sessionAccessKeyId"),
                                  extra.get("roleArn"), extra.get("sourceIdentity")),
            )
            s.assumed_at = record.get("eventTime")
            s.assumed_by = (record.get("userIdentity") or {}).get("arn")
            s.justification = extra.get("justification")
            continue
        ident = record.get("userIdentity") or {}
        key = ident.get("accessKeyId") or ident.get("arn") or "?"
        context = ident.get("sessionContext") or {}
        s = sessions.setdefault(
            key,
            BreakGlassSession(ident.get("arn") or "", ident.get("accessKeyId"),
                              (context.get("sessionIssuer") or {}).get("arn"), context.get("sourceIdentity")),
        )
        if not s.session_arn:
            s.session_arn = ident.get("arn") or ""
        when = record.get("eventTime")
        s.first_seen = s.first_seen or when
        s.last_seen = when
        s.actions.append(
            {
                "eventTime": when,
                "eventName": record.get("eventName"),
                "tables": sorted(_tables(record)),
                "sourceIPAddress": record.get("sourceIPAddress"),
                "vpcEndpointId": record.get("vpcEndpointId"),
                "errorCode": record.get("errorCode"),
            }
        )
    return list(sessions.values())
