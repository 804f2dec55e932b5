"""Revocation of break-glass sessions, and of every credential derived from them.

``revoke(engine, session_id=…|role_arn=…|everything=True)`` marks the chosen live sessions, and every live
session and access key derived from them (chained sessions, keys created during them, GetSessionToken
sessions of those keys: followed through their ``parent`` links, ``breakglass/lineage.py``), as
``revoked: {at, by, reason}`` in one atomic write. The rows are in ``meta:`` spaces, so the commit bumps the
shared metadata generation (``storage/generation.py``): every server process drops its credential cache
before its next request and reloads the row, and ``auth/credentials.lineage_bound`` makes a revoked
credential inactive. It works from the CLI on the data directory while the server runs.

What a revoked credential gets: the answer for a credential the service does not know —
``UnrecognizedClientException`` (DynamoDB, Organizations) or ``InvalidClientTokenId`` (IAM, STS), 403,
"The security token included in the request is invalid." AWS's own "Revoke active sessions" attaches a deny
policy on ``aws:TokenIssueTime`` instead (AccessDenied per action); we refuse at authentication, so a
revoked session cannot even call GetCallerIdentity, and nothing about it depends on a policy staying
attached. Expiry is enforced the same way on every request (``auth/verify.py``: ExpiredToken).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from perimeterdb.storage.engine import Decision, Put, RowKey

SESSIONS = "meta:sts-sessions"
ACCESS_KEYS = "meta:access-keys"


def _parent(space: str, row: dict[str, Any]) -> str | None:
    if space == SESSIONS:
        principal = row.get("principal") or {}
        return principal.get("parent_session") or (
            principal.get("origin_session") if principal.get("origin_session") != row.get("id") else None
        )
    marker = row.get("break_glass") if isinstance(row.get("break_glass"), dict) else {}
    return marker.get("session") or marker.get("origin_session")


def _origin(space: str, row: dict[str, Any]) -> str | None:
    if space == SESSIONS:
        return (row.get("principal") or {}).get("origin_session")
    marker = row.get("break_glass") if isinstance(row.get("break_glass"), dict) else {}
    return marker.get("origin_session")


async def live_credentials(engine: Any, now: float) -> list[tuple[str, RowKey, dict[str, Any]]]:
    """Every unexpired session, and every access key derived from a break-glass session: (space, key, row)."""
    out = []
    for row in await engine.scan(SESSIONS):
        record = orjson.loads(row.value)
        if float(record.get("expires") or 0) > now:
            out.append((SESSIONS, row.key, record))
    for row in await engine.scan(ACCESS_KEYS):
        record = orjson.loads(row.value)
        if isinstance(record.get("break_glass"), dict):
            out.append((ACCESS_KEYS, row.key, record))
    return out


def choose(
    credentials: Sequence[tuple[str, RowKey, dict[str, Any]]],
    *,
    session_id: str | None = None,
    role_arn: str | None = None,
    everything: bool = False,
) -> list[tuple[str, RowKey, dict[str, Any]]]:
    """The credentials to revoke: the chosen sessions, then everything derived from them (transitively)."""
    chosen: dict[str, tuple[str, RowKey, dict[str, Any]]] = {}
    for space, key, row in credentials:
        principal = row.get("principal") or {}
        if (
            (session_id is not None and row.get("id") == session_id)
            or (role_arn is not None and space == SESSIONS and str(principal.get("principal_arn", "")).lower()
                == role_arn.lower())
            or (everything and (principal.get("break_glass") or _origin(space, row)))
        ):
            chosen[str(row["id"])] = (space, key, row)
    changed = True
    while changed:  # follow parent and origin links until nothing new joins
        changed = False
        for space, key, row in credentials:
            ident = str(row["id"])
            if ident in chosen:
                continue
            if _parent(space, row) in chosen or _origin(space, row) in chosen:
                chosen[ident] = (space, key, row)
                changed = True
    return list(chosen.values())


async def revoke(
    engine: Any,
    *,
    session_id: str | None = None,
    role_arn: str | None = None,
    everything: bool = False,
    by: str = "perimeterdb break-glass revoke",
    reason: str | None = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Revoke, atomically; returns ``[{"id", "kind", "arn", "derived"}]`` for what was revoked now."""
    now = time.time() if now is None else now
    targets = choose(await live_credentials(engine, now), session_id=session_id, role_arn=role_arn,
                     everything=everything)
    targets = [t for t in targets if not t[2].get("revoked")]
    if not targets:
        return []
    keys = [key for _, key, _ in targets]
    mark = {"at": now, "by": by, "reason": reason}

    def decide(values: list[bytes | None]) -> Decision:
        changes = []
        result = []
        for (space, key, _), raw in zip(targets, values, strict=True):
            if raw is None:
                continue
            row = orjson.loads(raw)
            row["revoked"] = mark
            if space == ACCESS_KEYS:
                row["status"] = "Inactive"
            changes.append(Put(key, orjson.dumps(row)))
            principal = row.get("principal") or {}
            result.append({
                "id": row["id"],
                "kind": "session" if space == SESSIONS else "access-key",
                "arn": principal.get("arn") or row.get("user"),
                "derived": row["id"] != session_id and _origin(space, row) not in (None, row["id"]),
            })
        return Decision(changes, result)

    return list(await engine.atomic(keys, decide))


async def break_glass_sessions(engine: Any, now: float | None = None) -> list[dict[str, Any]]:
    """Live break-glass sessions and derived credentials, for ``perimeterdb break-glass sessions``."""
    now = time.time() if now is None else now
    out = []
    for space, _, row in await live_credentials(engine, now):
        principal = row.get("principal") or {}
        origin = _origin(space, row)
        if not (principal.get("break_glass") or origin):
            continue
        out.append({
            "id": row["id"],
            "kind": "session" if space == SESSIONS else "access-key",
            "arn": principal.get("arn") or f"user/{row.get('user')}",
            "originSessionId": origin,
            "derived": origin not in (None, row["id"]),
            "created": row.get("created"),
            "expires": row.get("expires") or (row.get("break_glass") or {}).get("expires"),
            "revoked": row.get("revoked"),
            "justification": principal.get("justification"),
            "ticket": principal.get("ticket"),
            "sourceIdentity": principal.get("source_identity"),
            "approval": principal.get("approval"),
            "reviewRequired": bool(principal.get("review_required")),
        })
    return sorted(out, key=lambda s: s.get("created") or 0)
