"""The break-glass review: each session (who, why, approvals, duration), every request it made, every change,
what it created that still exists; sign-offs; the sessions nobody has signed off.

Where the facts come from, so that a session is found even after the audit log rotated:

- the session's own facts are stored when its alert is queued (``session_rows``, written by the outbox in the
  same atomic write as the alert; space ``breakglass:review``, rows ``session/<session id>/<alert id>``);
- every break-glass request's alert leaves an activity row (``activity/<access key id>/<alert id>``): time,
  action, outcome, event id; every refused assumption leaves one too (``refused/attempt/<alert id>``);
- the audit log adds, where it still has the record, the resource and the decision of each request;
- ``breakglass/lineage.created_during`` lists what the session (and what derives from it) created; this
  module checks whether each still exists;
- sign-offs are rows ``signoff/<session id>/<time>``, and each is also an audit record
  (``BreakGlassSignOff``, flagged break-glass).

A session is *unreviewed* until signed off, and again when it (or a credential derived from it) made a request
after the last sign-off. Sessions marked ``reviewRequired`` (emergency without approval, H2's procedure) are
listed first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from perimeterdb.storage.engine import Decision, Put, RowKey

SPACE = "breakglass:review"
_SESSION, _ACTIVITY, _SIGNOFF, _REFUSED = b"session", b"activity", b"signoff", b"refused"
_STS_SESSIONS = "meta:sts-sessions"  # world/identities.SESSIONS: the session credentials (read only here)
READ_ONLY_PREFIXES = (
    "Get", "List", "Describe", "Query", "Scan", "BatchGet", "TransactGet", "Simulate", "Check", "Lookup",
)
MAX_NOTE = 2000
MAX_REVIEWER = 128


class ReviewError(ValueError):
    """A sign-off that cannot be recorded (said in the message)."""


def _key(kind: bytes, owner: str, sort: str) -> RowKey:
    return RowKey(SPACE, kind, owner.encode(), sort.encode())


def _iso(ts: Any) -> str | None:
    if isinstance(ts, int | float):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    return str(ts) if ts else None


def _epoch(text: Any) -> float | None:
    if isinstance(text, int | float):
        return float(text)
    if not text:
        return None
    try:
        return float(time.mktime(time.strptime(str(text)[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone)
    except ValueError:
        return None


def is_mutating(event_name: str | None) -> bool:
    return bool(event_name) and not str(event_name).startswith(READ_ONLY_PREFIXES)


# --- written with each alert (the outbox calls this) ---------------------------------------------------


def session_rows(alert_id: str, alert: Mapping[str, Any]) -> list[Put]:
    """The review rows an alert leaves: a granted break-glass session's facts, or one request's activity."""
    if alert.get("outcome") == "granted" and alert.get("sessionId"):
        facts = {k: alert.get(k) for k in (
            "sessionId", "sessionArn", "roleArn", "who", "principalArn", "accessKeyId", "sourceIdentity",
            "justification", "ticket", "sourceIPAddress", "vpcEndpointId", "derivedFrom", "originSessionId",
            "expires", "durationSeconds", "approval", "reviewRequired", "emergency", "time",
        )}
        facts["alertId"] = alert_id
        return [Put(_key(_SESSION, str(alert["sessionId"]), alert_id), orjson.dumps(facts, default=str))]
    if alert.get("outcome") == "refused":
        attempt = {k: alert.get(k) for k in (
            "time", "roleArn", "who", "principalArn", "accessKeyId", "sourceIdentity", "justification", "ticket",
            "sourceIPAddress", "vpcEndpointId", "errorCode", "errorMessage", "derivedFrom",
        )}
        attempt["alertId"] = alert_id
        return [Put(_key(_REFUSED, "attempt", alert_id), orjson.dumps(attempt, default=str))]
    key_id = alert.get("accessKeyId")
    if alert.get("alert") == "break-glass" and key_id and alert.get("what"):
        activity = {
            "time": alert.get("time"),
            "action": alert.get("what"),
            "who": alert.get("who"),
            "eventID": alert.get("eventID"),
            "errorCode": alert.get("errorCode"),
            "sourceIPAddress": alert.get("sourceIPAddress"),
            "vpcEndpointId": alert.get("vpcEndpointId"),
            "alertId": alert_id,
        }
        return [Put(_key(_ACTIVITY, str(key_id), alert_id), orjson.dumps(activity, default=str))]
    return []


async def remember(engine: Any, alert_id: str, alert: Mapping[str, Any]) -> list[Put]:
    """``session_rows``, and for an approved session a copy of its approval (who approved, when, why): the
    approval requests are deleted after 30 days, the review must still show it."""
    rows = session_rows(alert_id, alert)
    if not rows or alert.get("outcome") != "granted" or not alert.get("approval"):
        return rows
    details = await _approval(engine, alert.get("approval"))
    facts = orjson.loads(rows[0].value)
    facts["approvalDetails"] = details
    return [Put(rows[0].key, orjson.dumps(facts, default=str))]


# --- reading -----------------------------------------------------------------------------------------


async def _rows(engine: Any, kind: bytes, owner: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    after: RowKey | None = None
    while True:
        rows = await engine.scan(SPACE, after=after, hh_lo=kind, hh_hi=kind + b"\x00", limit=1000)
        for row in rows:
            if row.key.hh != kind:
                continue
            hk = row.key.hk.decode()
            if owner is None or hk == owner:
                out.append((hk, orjson.loads(row.value)))
        if len(rows) < 1000:
            return out
        after = rows[-1].key


def _session_facts(rows: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    sessions: dict[str, dict[str, Any]] = {}
    for session_id, facts in rows:
        merged = sessions.setdefault(session_id, {})
        merged.update({k: v for k, v in facts.items() if v is not None})
    return sessions


def _audit_index(records: Iterable[dict[str, Any]], keys: set[str]) -> dict[str, dict[str, Any]]:
    """Audit records of the given access keys, by event id (and break-glass records of any key)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        key = (record.get("userIdentity") or {}).get("accessKeyId")
        if key in keys and record.get("eventID"):
            out[str(record["eventID"])] = record
    return out


def _request_entry(activity: Mapping[str, Any], record: Mapping[str, Any] | None, key_id: str) -> dict[str, Any]:
    action = activity.get("action")
    entry: dict[str, Any] = {
        "time": _iso(activity.get("time")),
        "action": action,
        "accessKeyId": key_id,
        "principal": activity.get("who"),
        "sourceIPAddress": activity.get("sourceIPAddress"),
        "vpcEndpointId": activity.get("vpcEndpointId"),
        "errorCode": activity.get("errorCode"),
        "eventID": activity.get("eventID"),
        "alertId": activity.get("alertId"),
    }
    resources: list[str] = []
    decision = "Error" if activity.get("errorCode") else "Allow"
    if record is not None:
        source = str(record.get("eventSource") or "").split(".", 1)[0]
        entry["action"] = f"{source}:{record.get('eventName')}" if source else record.get("eventName")
        for d in (record.get("additionalEventData") or {}).get("decisions") or []:
            if d.get("resource") and d["resource"] not in resources:
                resources.append(str(d["resource"]))
            if d.get("decision") and d.get("decision") != "Allow":
                decision = str(d["decision"])
        params = record.get("requestParameters") or {}
        if not resources and isinstance(params, dict):
            for name in ("tableName", "userName", "roleName", "groupName", "policyArn", "policyName"):
                if params.get(name):
                    resources.append(f"{name}={params[name]}")
        if record.get("errorCode") in ("AccessDenied", "AccessDeniedException"):
            decision = "Deny"
    elif activity.get("errorCode") in ("AccessDenied", "AccessDeniedException"):
        decision = "Deny"
    entry["resources"] = resources
    entry["decision"] = decision
    entry["mutating"] = is_mutating(action)
    entry["auditRecord"] = record is not None
    return entry


async def _still_exists(engine: Any, item: Mapping[str, Any]) -> bool | None:
    """Whether a thing a session created is still there (None: this kind is not checked)."""
    from perimeterdb.dynamodb.catalog import Catalog
    from perimeterdb.world import identities as ids

    store = ids.IdentityStore(engine, None)  # type: ignore[arg-type]  # reads only: no secret is touched
    kind, name, account = item.get("kind"), item.get("name"), str(item.get("account") or "")
    owner = item.get("owner") or {}
    if not name:
        return None
    if kind == "user":
        return await store.get_user(account, str(name)) is not None
    if kind == "role":
        return await store.get_role(account, str(name)) is not None
    if kind == "group":
        return await store.get_group(account, str(name)) is not None
    if kind == "policy":
        return await store.get(ids.POLICIES, account, str(name)) is not None
    if kind == "access-key":
        return await store.get_global(ids.ACCESS_KEYS, str(name)) is not None
    if kind == "login-profile":
        user = await store.get_user(account, str(name))
        return bool(user and user.get("login"))
    if kind in ("user-inline-policy", "role-inline-policy", "group-inline-policy"):
        holder_kind = kind.split("-", 1)[0]
        holder = owner.get(f"{holder_kind}Name")
        getter = {"user": store.get_user, "role": store.get_role, "group": store.get_group}[holder_kind]
        record = await getter(account, str(holder)) if holder else None
        return bool(record and str(name).lower() in {k.lower() for k in record.get("inline", {})})
    if kind in ("user-policy-attachment", "role-policy-attachment", "group-policy-attachment"):
        holder_kind = kind.split("-", 1)[0]
        holder = owner.get(f"{holder_kind}Name")
        getter = {"user": store.get_user, "role": store.get_role, "group": store.get_group}[holder_kind]
        record = await getter(account, str(holder)) if holder else None
        return bool(record and str(name) in record.get("attached", []))
    if kind == "group-membership":
        group = await store.get_group(account, str(name))
        member = str(owner.get("userName") or "")
        return bool(group and member.lower() in {str(m).lower() for m in group.get("members", [])})
    if kind == "mfa-device":
        return await store.get_global(ids.MFA_DEVICES, f"arn:aws:iam::{account}:mfa/{name}") is not None
    if kind == "table":
        return await Catalog(engine).find(account, str(item.get("region") or "us-east-1"), str(name)) is not None
    return None


async def _created(engine: Any, session_id: str, requests: Sequence[Mapping[str, Any]],
                   audit: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        from perimeterdb.breakglass import lineage
    except ImportError:
        lineage = None  # type: ignore[assignment]
    items: list[dict[str, Any]] = []
    if lineage is not None and hasattr(lineage, "created_during"):
        items = [dict(i) for i in await lineage.created_during(engine, session_id)]
    else:  # derive from the audit records of successful Create* calls
        for r in requests:
            record = audit.get(str(r.get("eventID")))
            if record is None or record.get("errorCode") or not str(record.get("eventName", "")).startswith("Create"):
                continue
            params = record.get("requestParameters") or {}
            kind = {"CreateTable": ("table", "tableName"), "CreateUser": ("user", "userName"),
                    "CreateRole": ("role", "roleName"), "CreatePolicy": ("policy", "policyName"),
                    "CreateGroup": ("group", "groupName")}.get(str(record.get("eventName")))
            if kind is None:
                continue
            items.append({"eventName": record["eventName"], "eventTime": record.get("eventTime"),
                          "eventID": record.get("eventID"), "kind": kind[0], "name": params.get(kind[1]),
                          "account": (record.get("userIdentity") or {}).get("accountId"),
                          "region": record.get("awsRegion")})
    for item in items:
        item["stillExists"] = await _still_exists(engine, item)
    return items


async def sessions(
    engine: Any, audit_records: Iterable[dict[str, Any]] = (), *, session: str | None = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Every break-glass session (or the one named by id, ARN or access key), assembled for the review.
    Sessions derived from another (role chaining) are listed under their origin too, as ``derived``."""
    now = time.time() if now is None else now
    facts = _session_facts(await _rows(engine, _SESSION))
    wanted: set[str] = set()
    if session is not None:
        wanted = {sid for sid, f in facts.items() if session in (sid, f.get("sessionArn"))}
        if not wanted:
            return []
        facts_of = {sid: f for sid, f in facts.items()
                    if sid in wanted or f.get("originSessionId") in wanted}
    else:
        facts_of = facts
    activity_rows = await _rows(engine, _ACTIVITY)
    signoffs: dict[str, list[dict[str, Any]]] = {}
    for sid, row in await _rows(engine, _SIGNOFF):
        signoffs.setdefault(sid, []).append(row)
    # Which access keys belong to which origin session: its own, derived sessions', and keys it created.
    keys_of: dict[str, set[str]] = {}
    for sid, f in facts_of.items():
        origin = str(f.get("originSessionId") or sid)
        keys_of.setdefault(sid, set()).add(sid)
        if origin != sid:
            keys_of.setdefault(origin, {origin}).add(sid)
    all_keys = {k for ks in keys_of.values() for k in ks}
    # Credentials no session's alert names (a GetSessionToken session of a key created during a session):
    # their origin, from lineage, while their credential row exists.
    for key_id in sorted({k for k, _ in activity_rows} - set(facts)):
        origin = await _origin_of(engine, key_id)
        if origin is not None and origin in keys_of:
            keys_of[origin].add(key_id)
    audit = _audit_index(audit_records, all_keys | {k for k, _ in activity_rows})
    out: list[dict[str, Any]] = []
    for sid, f in sorted(facts_of.items(), key=lambda kv: str(kv[1].get("time") or "")):
        if session is not None and sid not in wanted:
            continue
        keys = set(keys_of.get(sid, {sid}))
        # Keys created during the session (lineage) sign requests that belong to it too.
        requests: list[dict[str, Any]] = []
        created = await _created(engine, sid, [], audit)
        keys |= {str(c["name"]) for c in created if c.get("kind") == "access-key" and c.get("name")}
        for key_id, activity in activity_rows:
            if key_id in keys:
                requests.append(_request_entry(activity, audit.get(str(activity.get("eventID"))), key_id))
        requests.sort(key=lambda r: (str(r.get("time") or ""), str(r.get("alertId") or "")))
        if not created and requests:  # no lineage module: derive from the audit records
            created = await _created(engine, sid, requests, audit)
        expires = f.get("expires")
        revoked = await _revoked(engine, sid)
        state = "revoked" if revoked else ("expired" if isinstance(expires, int | float) and expires <= now
                                           else "active")
        ended = revoked.get("at") if revoked else (expires if state == "expired" else None)
        marks = sorted(signoffs.get(sid, []), key=lambda s: str(s.get("time")))
        last_activity = max((r["time"] or "" for r in requests), default="")
        reviewed = bool(marks) and (not last_activity or last_activity <= str(marks[-1].get("time")))
        out.append({
            "sessionId": sid,
            "sessionArn": f.get("sessionArn"),
            "roleArn": f.get("roleArn"),
            "who": {
                "principal": f.get("principalArn") or f.get("who"),
                "callerArn": f.get("who"),
                "sourceIdentity": f.get("sourceIdentity"),
                "sourceIPAddress": f.get("sourceIPAddress"),
                "vpcEndpointId": f.get("vpcEndpointId"),
            },
            "why": {"justification": f.get("justification"), "ticket": f.get("ticket")},
            "approval": await _approval(engine, f.get("approval"), f.get("approvalDetails")),
            "reviewRequired": bool(f.get("reviewRequired")),
            "emergency": bool(f.get("emergency")),
            "originSessionId": f.get("originSessionId") or sid,
            "derivedFrom": f.get("derivedFrom"),
            "derivedSessions": sorted(k for k in keys_of.get(sid, set()) if k != sid),
            "assumedAt": _iso(f.get("time")),
            "durationSeconds": f.get("durationSeconds"),
            "expires": _iso(expires),
            "revoked": revoked,
            "endedAt": _iso(ended),
            "usedSeconds": round(float(ended) - float(f["time"])) if isinstance(ended, int | float)
            and isinstance(f.get("time"), int | float) else None,
            "state": state,
            "requests": requests,
            "changes": [r for r in requests if r["mutating"] and r["decision"] == "Allow" and not r["errorCode"]],
            "created": created,
            "stillExisting": [c for c in created if c.get("stillExists")],
            "signoffs": marks,
            "reviewed": reviewed,
        })
    return out


async def _origin_of(engine: Any, key_id: str) -> str | None:
    try:
        from perimeterdb.breakglass import lineage
    except ImportError:
        return None
    try:
        found = await lineage.origin_of(engine, key_id)
    except Exception:
        return None
    return str(found[0]) if found else None


async def _approval(engine: Any, approval_id: Any, kept: Any = None) -> dict[str, Any] | None:
    """The approval request as it is now, else the copy kept when the session was granted."""
    if not approval_id:
        return None
    fallback = dict(kept) if isinstance(kept, Mapping) else {"RequestId": approval_id}
    try:
        from perimeterdb.breakglass import approvals
    except ImportError:
        return fallback
    try:
        request = await approvals.get(engine, str(approval_id))
    except Exception:
        request = None
    if request is None:
        return fallback
    return approvals.shape(request) if hasattr(approvals, "shape") else dict(request)


async def _revoked(engine: Any, session_id: str) -> dict[str, Any] | None:
    """The revocation mark (``{at, by, reason}``, ``breakglass/revocation.py``) on the session's credential
    row, while that row exists (it is purged a day after the session expires)."""
    raw = await engine.get(RowKey(_STS_SESSIONS, b"", session_id.encode(), b""))
    if raw is None:
        return None
    mark = orjson.loads(raw).get("revoked")
    return dict(mark) if isinstance(mark, Mapping) else None


async def refused_attempts(engine: Any) -> list[dict[str, Any]]:
    """Every refused break-glass assumption (no MFA, a replayed code, no justification, no approval, ...),
    oldest first: who, from where, which role, and STS's error."""
    out = []
    for _, attempt in await _rows(engine, _REFUSED):
        attempt["time"] = _iso(attempt.get("time"))
        out.append(attempt)
    return out


def unreviewed(all_sessions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sessions without a sign-off covering their last request; review-required ones first. A session derived
    from another (role chaining) is reviewed with its origin, whose review holds its requests."""
    listed = list(all_sessions)
    origins = {s["sessionId"] for s in listed}
    pending = [s for s in listed if not s["reviewed"]
               and (s["originSessionId"] == s["sessionId"] or s["originSessionId"] not in origins)]
    return sorted(pending, key=lambda s: (not s["reviewRequired"], str(s.get("assumedAt") or "")))


# --- sign-off ---------------------------------------------------------------------------------------


async def sign_off(
    engine: Any,
    audit_dir: Path | None,
    session_id: str,
    reviewer: str,
    note: str,
    *,
    now: float | None = None,
    signing_key: Path | None = None,
) -> dict[str, Any]:
    """Record a sign-off of one session (a storage row, and an audit record). The reviewer must not be
    who used the session. Returns the sign-off."""
    reviewer, note = (reviewer or "").strip(), (note or "").strip()
    if not reviewer or len(reviewer) > MAX_REVIEWER:
        raise ReviewError(f"--reviewer must name the reviewer (1 to {MAX_REVIEWER} characters)")
    if not note or len(note) > MAX_NOTE:
        raise ReviewError(f"--note must say what was reviewed (1 to {MAX_NOTE} characters)")
    found = await sessions(engine, (), session=session_id, now=now)
    if not found:
        raise ReviewError(f"no break-glass session {session_id}")
    if len(found) > 1:  # a session ARN names every session of that role and session name
        ids = ", ".join(s["sessionId"] for s in found)
        raise ReviewError(f"{session_id} names {len(found)} sessions ({ids}): sign off one by its session id")
    s = found[0]
    users = {str(x) for x in (s["who"]["principal"], s["who"]["callerArn"], s["who"]["sourceIdentity"]) if x}
    names = users | {u.rsplit("/", 1)[-1] for u in users}
    if reviewer in names or reviewer.lower() in {n.lower() for n in names}:
        raise ReviewError(f"{reviewer} used this session and cannot sign it off: another person must review it")
    when = time.time() if now is None else now
    signoff = {
        "sessionId": s["sessionId"],
        "reviewer": reviewer,
        "note": note,
        "time": _iso(when),
        "stateAtSignOff": s["state"],
        "requestsReviewed": len(s["requests"]),
        "lastRequest": max((r["time"] or "" for r in s["requests"]), default=None),
    }
    key = _key(_SIGNOFF, s["sessionId"], f"{when:017.6f}")
    await engine.atomic([key], lambda _values: Decision([Put(key, orjson.dumps(signoff))]))
    if audit_dir is not None:
        from perimeterdb.audit.log import AuditLog
        from perimeterdb.breakglass.outbox import system_record

        record = system_record(
            "BreakGlassSignOff", signoff,
            identity={"type": "Reviewer", "userName": reviewer, "invokedBy": "perimeterdb break-glass signoff"},
        )
        log = AuditLog(audit_dir, signing_key=signing_key)
        try:
            log.write(record)
        finally:
            log.close()
        signoff["eventID"] = record["eventID"]
    return signoff
