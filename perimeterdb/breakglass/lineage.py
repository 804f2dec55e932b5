"""Lineage: what derives from a break-glass session, and what it created.

Every credential derived from a break-glass session is itself break-glass, and carries the id of its
*origin* (the access key id ``ASIA…`` of the break-glass session at the root of the chain):

- a session from AssumeRole called with a break-glass session (role chaining): flagged, alerted, and its
  expiry is no later than its origin's (``sts/assume_role.py``);
- an access key created during a break-glass session (``iam/access_keys.py``): the key row carries
  ``break_glass: {origin_session, session, expires}``; requests signed with it are break-glass, and it stops
  working when the origin session expires or is revoked. AWS would keep such a key; we are stricter on
  purpose: an emergency must not leave a long-lived credential behind (``auth/credentials.lineage_bound``);
- a session from GetSessionToken signed with such a key (``sts/identity.py``): the same rules;
- a login profile created during a break-glass session: the user's ``login`` carries the same
  ``break_glass`` marker, listed for the review.

Resources created or granted during a break-glass session are recorded in the ``breakglass:lineage`` space
(not ``meta:``: recording them drops no cache), keyed by origin session id, then by the session that did it
when it is not the origin. ``created_during`` lists them for the review.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from perimeterdb.storage.engine import Decision, Put, RowKey

SPACE = "breakglass:lineage"
_SESSIONS = "meta:sts-sessions"
_ACCESS_KEYS = "meta:access-keys"

# eventName -> (resource kind, the request parameter naming it). What a session leaves behind.
CREATIONS: dict[str, tuple[str, str]] = {
    "CreateUser": ("user", "userName"),
    "CreateRole": ("role", "roleName"),
    "CreatePolicy": ("policy", "policyName"),
    "CreatePolicyVersion": ("policy-version", "policyArn"),
    "CreateGroup": ("group", "groupName"),
    "CreateLoginProfile": ("login-profile", "userName"),
    "CreateVirtualMFADevice": ("mfa-device", "virtualMFADeviceName"),
    "PutUserPolicy": ("user-inline-policy", "policyName"),
    "PutRolePolicy": ("role-inline-policy", "policyName"),
    "PutGroupPolicy": ("group-inline-policy", "policyName"),
    "AttachUserPolicy": ("user-policy-attachment", "policyArn"),
    "AttachRolePolicy": ("role-policy-attachment", "policyArn"),
    "AttachGroupPolicy": ("group-policy-attachment", "policyArn"),
    "AddUserToGroup": ("group-membership", "groupName"),
    "UpdateAssumeRolePolicy": ("trust-policy", "roleName"),
    "CreateTable": ("table", "tableName"),
}
_OWNER_PARAMS = ("userName", "roleName", "groupName")


def _key(hh: str, sort: str) -> RowKey:
    return RowKey(SPACE, hh.encode(), sort.encode(), b"")


async def origin_of(engine: Any, access_key_id: str | None) -> tuple[str, str] | None:
    """(origin session id, session id) of a break-glass credential, or None when it is not one."""
    if not access_key_id:
        return None
    if access_key_id.startswith("ASIA"):
        raw = await engine.get(RowKey(_SESSIONS, b"", access_key_id.encode(), b""))
        if raw is None:
            return None
        principal = orjson.loads(raw).get("principal") or {}
        if not principal.get("break_glass"):
            return None
        return str(principal.get("origin_session") or access_key_id), access_key_id
    raw = await engine.get(RowKey(_ACCESS_KEYS, b"", access_key_id.encode(), b""))
    if raw is None:
        return None
    marker = orjson.loads(raw).get("break_glass") or {}
    if not marker.get("origin_session"):
        return None
    return str(marker["origin_session"]), str(marker.get("session") or marker["origin_session"])


async def record_created(
    engine: Any, origin: str, session: str, entry: dict[str, Any], sort: str | None = None
) -> None:
    """Record one thing a break-glass session created (under its origin, and under the session too)."""
    sort = sort or f"{time.time():017.6f}-{entry.get('eventID') or entry.get('name')}"
    value = orjson.dumps({**entry, "originSessionId": origin, "sessionId": session})
    keys = [_key(origin, sort)] + ([_key(session, sort)] if session != origin else [])
    await engine.atomic(keys, lambda _values: Decision([Put(k, value) for k in keys]))


async def note_record(engine: Any, record: dict[str, Any]) -> None:
    """From a flagged audit record: if a break-glass credential created something, record it."""
    name = record.get("eventName")
    if record.get("errorCode") or name not in CREATIONS:
        return
    ident = record.get("userIdentity") or {}
    found = await origin_of(engine, ident.get("accessKeyId"))
    if found is None:
        return
    kind, param = CREATIONS[name]
    params = record.get("requestParameters") or {}
    account = ident.get("accountId")
    entry = {
        "eventName": name,
        "eventTime": record.get("eventTime"),
        "eventID": record.get("eventID"),
        "kind": kind,
        "name": params.get(param),
        "account": account,
        "region": record.get("awsRegion"),
        "by": ident.get("arn"),
    }
    owners = {p: params[p] for p in _OWNER_PARAMS if p in params and p != param}
    if owners:
        entry["owner"] = owners
    await record_created(engine, found[0], found[1], entry)


async def created_during(engine: Any, session_id: str) -> list[dict[str, Any]]:
    """What the break-glass session ``session_id`` (its access key id, ``ASIA…``) created or granted.

    For an origin session this includes what every session and key derived from it created. Each entry:
    ``{"eventName", "eventTime", "eventID", "kind", "name", "account", "region", "by", "owner"?,
    "originSessionId", "sessionId"}``; ``kind`` is one of ``CREATIONS``'s kinds, or ``access-key`` (then
    ``name`` is the key id and ``owner`` its user). Oldest first. Whether each still exists is the
    reviewer's question (``breakglass/review.py`` checks)."""
    lo = session_id.encode()
    rows = await engine.scan(SPACE, hh_lo=lo, hh_hi=lo + b"\x00")
    return [orjson.loads(r.value) for r in rows if r.key.hh == lo]
