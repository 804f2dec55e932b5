"""Break-glass roles: emergency access that is possible, but never quiet.

A role is break-glass when its IAM record carries ``"break_glass": {...}`` (the world file's
``break_glass: true`` or ``break_glass: {...}`` on a role writes it). Assuming one requires, on top of the
trust policy (``check_break_glass_assume``, called by STS AssumeRole):

- a fresh MFA code in the AssumeRole call itself (``SerialNumber`` + ``TokenCode``); an MFA session from
  GetSessionToken is not enough, and each code is accepted once (``iam/mfa.py``);
- a justification: the session tag ``justification`` (any case), free text up to 256 characters (AWS's
  tag-value limit), not blank. ``SourceIdentity`` is *not* a justification (its pattern cannot hold a
  sentence); it may still name the person and is shown separately;
- a ticket reference (session tag ``ticket``) when the role says ``require_ticket: true``;
- a short session: ``DurationSeconds`` at most the role's ``max_session_seconds`` (default 3600 s);
- an approval when the role says ``approval: required`` (``breakglass/approvals.py``).

Per-role settings (``break_glass: {...}`` on the role): ``max_session_seconds``, ``require_ticket``,
``approval: required|emergency-allowed|none`` (default none), ``approvers_group``, ``grant_seconds``,
``fail_closed`` (refuse when no alert channel can deliver). Every assumption, refused ones included, and
every request made with such a session (or anything derived from it, ``breakglass/lineage.py``) is flagged
in the audit log (``breakGlass: true``) and alerted.

Settings (alerts file, webhook URL, default maximum duration) live in one storage row written by the world
file (``break_glass:`` section).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from perimeterdb.audit.alerts import AlertSink
from perimeterdb.auth.principal import Principal
from perimeterdb.errors import ApiError
from perimeterdb.storage.engine import Decision, Put, RowKey, StorageEngine

log = logging.getLogger(__name__)

ROW = RowKey("meta:break-glass", b"", b"settings", b"")
DEFAULT_MAX_SECONDS = 3600
JUSTIFICATION_TAG = "justification"


def _denied(message: str) -> ApiError:
    # The query protocol's AccessDenied (STS): status 403, code AccessDenied.
    return ApiError("AccessDenied", message, status=403, namespace="query")


def break_glass_settings(role_record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The role's break-glass settings, or None for an ordinary role."""
    if not role_record:
        return None
    value = role_record.get("break_glass")
    if value is None or value is False:  # ``break_glass: true`` is stored as {}: break-glass, defaults
        return None
    return dict(value) if isinstance(value, Mapping) else {}


TICKET_TAG = "ticket"
MAX_TAG_VALUE = 256
APPROVAL_MODES = ("none", "required", "emergency-allowed")


def _tag(request: Mapping[str, Any], name: str) -> str | None:
    for tag in request.get("Tags") or []:
        if str(tag.get("Key", "")).lower() == name:
            return str(tag.get("Value") or "")
    return None


def justification_of(request: Mapping[str, Any]) -> str | None:
    """The ``justification`` session tag's text (stripped), or None when absent or blank."""
    value = _tag(request, JUSTIFICATION_TAG)
    return value.strip() if value and value.strip() else None


def ticket_of(request: Mapping[str, Any]) -> str | None:
    value = _tag(request, TICKET_TAG)
    return value.strip() if value and value.strip() else None


def approval_mode(settings: Mapping[str, Any]) -> str:
    mode = str(settings.get("approval") or "none").lower()
    return mode if mode in APPROVAL_MODES else "required"  # an unknown mode fails closed


def check_break_glass_assume(role_record: Mapping[str, Any], request: Mapping[str, Any]) -> int | None:
    """Enforce the break-glass rules on one AssumeRole request (approval aside: ``breakglass/approvals``).

    ``request``: the decoded AssumeRole parameters (``DurationSeconds``, ``Tags``, ``SerialNumber``,
    ``TokenCode``) plus ``mfa_fresh`` (bool: an MFA code was given in this very call and verified).
    Returns None for an ordinary role; for a break-glass role the longest session allowed (the requested
    duration, or the role's maximum when none was requested). Raises AccessDenied when a rule is not met."""
    settings = break_glass_settings(role_record)
    if settings is None:
        return None
    name = role_record.get("arn") or role_record.get("name")
    if not request.get("mfa_fresh"):
        raise _denied(
            f"Break-glass role {name} can only be assumed with a fresh MFA code in the AssumeRole call "
            "(SerialNumber and TokenCode); an MFA session from GetSessionToken is not enough."
        )
    if not justification_of(request):
        raise _denied(
            f"Break-glass role {name} requires a justification: a non-blank '{JUSTIFICATION_TAG}' session "
            f"tag (free text, at most {MAX_TAG_VALUE} characters)."
        )
    if settings.get("require_ticket") and not ticket_of(request):
        raise _denied(f"Break-glass role {name} requires a ticket reference: a non-blank '{TICKET_TAG}' session tag.")
    limit = int(settings.get("max_session_seconds") or DEFAULT_MAX_SECONDS)
    duration = request.get("DurationSeconds")
    if duration is not None and int(duration) > limit:
        raise _denied(f"Break-glass role {name} allows sessions of at most {limit} seconds.")
    return int(duration) if duration is not None else min(limit, DEFAULT_MAX_SECONDS)


class BreakGlass:
    """Detects break-glass sessions and raises alerts; the audit log calls it for every record."""

    def __init__(self, engine: StorageEngine, identities: Any, data_dir: Path) -> None:
        self.engine = engine
        self.identities = identities
        self.data_dir = data_dir
        self._roles: dict[tuple[str, str], tuple[int, bool]] = {}
        # id(principal) -> (principal, identity generation, verdict): the audit log asks for every record,
        # and the identity store hands out one Principal object per credential, so the role lookup (and
        # two coroutines) are skipped while nothing in the identity store changed. The principal is kept
        # in the entry so that its id is not reused by another object while the entry lives.
        self._principals: dict[int, tuple[Principal, int, bool]] = {}
        self._settings: dict[str, Any] | None = None
        self._settings_read = 0.0
        self._sink: AlertSink | None = None
        from perimeterdb.breakglass import alerting

        alerting.register(engine, self)

    async def settings(self) -> dict[str, Any]:
        if self._settings is None or time.monotonic() - self._settings_read > 5.0:
            raw = await self.engine.get(ROW)
            settings = orjson.loads(raw) if raw is not None else {}
            if settings != self._settings or self._sink is None:
                alerts = settings.get("alerts_file") or str(self.data_dir / "audit" / "alerts.jsonl")
                path = Path(alerts) if Path(alerts).is_absolute() else self.data_dir / alerts
                self._sink = AlertSink(path, settings.get("webhook"))
            self._settings = settings
            self._settings_read = time.monotonic()
        return self._settings

    async def role_is_break_glass(self, account: str, role_name: str) -> bool:
        generation = getattr(self.identities, "generation", 0)
        key = (account, role_name.lower())
        cached = self._roles.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        role = await self.identities.get_role(account, role_name)
        flagged = break_glass_settings(role) is not None
        if len(self._roles) > 10_000:
            self._roles.clear()
        self._roles[key] = (generation, flagged)
        return flagged

    def known_break_glass(self, principal: Any) -> bool | None:
        """``is_break_glass``'s answer when it is known without a lookup, else None (then await that)."""
        if principal is None:
            return False
        if getattr(principal, "break_glass", False):  # a break-glass session, or a credential derived from one
            return True
        if principal.kind != "AssumedRole":
            return False
        if not principal.role_name:
            return False
        hit = self._principals.get(id(principal))
        if hit is not None and hit[0] is principal and hit[1] == getattr(self.identities, "generation", 0):
            return hit[2]
        return None

    async def is_break_glass(self, principal: Any) -> bool:
        known = self.known_break_glass(principal)
        if known is not None:
            return known
        # Read before the lookup: a change during it leaves the entry stale, so it is looked up again.
        generation = getattr(self.identities, "generation", 0)
        flagged = await self.role_is_break_glass(principal.account, principal.role_name)
        if type(principal) is Principal:  # frozen; a stand-in could change under its id
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[id(principal)] = (principal, generation, flagged)
        return flagged

    async def role_arn_is_break_glass(self, role_arn: str) -> bool:
        parts = role_arn.split(":", 5)
        if len(parts) != 6 or not parts[5].startswith("role/"):
            return False
        return await self.role_is_break_glass(parts[4], parts[5].rsplit("/", 1)[-1])

    async def emit(self, alert: dict[str, Any]) -> None:
        """Write one alert to this process's sink (the alerts file, then the webhook in the background)."""
        await self.settings()
        if self._sink is None:
            raise RuntimeError("no alert sink")
        self._sink.emit(alert)

    async def can_deliver(self) -> bool:
        await self.settings()
        sink = self._sink
        path = getattr(sink, "path", None)
        return sink is not None and (path is None or os.access(path.parent, os.W_OK))

    async def alert(self, record: dict[str, Any]) -> None:
        """Alert on one flagged audit record, and note what a break-glass session created (lineage).

        STS queues its own alert for a break-glass AssumeRole before answering (granted or refused with
        AccessDenied); those records are not alerted a second time here."""
        from perimeterdb.breakglass import alerting, lineage

        try:
            await lineage.note_record(self.engine, record)
        except Exception:
            log.exception("break-glass lineage could not be recorded")
        if record.get("eventName") == "AssumeRole" and record.get("errorCode") in (None, "AccessDenied"):
            return
        ident = record.get("userIdentity") or {}
        alert = {
            "alert": "break-glass",
            "time": record.get("eventTime"),
            "what": record.get("eventName"),
            "who": ident.get("arn"),
            "accessKeyId": ident.get("accessKeyId"),
            "sourceIPAddress": record.get("sourceIPAddress"),
            "vpcEndpointId": record.get("vpcEndpointId"),
            "errorCode": record.get("errorCode"),
            "eventID": record.get("eventID"),
            "details": {
                k: v for k, v in (record.get("additionalEventData") or {}).items() if k != "decisions"
            },
        }
        await alerting.queue(self.engine, alert)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


async def save_settings(engine: StorageEngine, settings: dict[str, Any]) -> bool:
    value = orjson.dumps(settings, option=orjson.OPT_SORT_KEYS)

    def decide(values: list[bytes | None]) -> Decision:
        return Decision((), False) if values[0] == value else Decision([Put(ROW, value)], True)

    return bool(await engine.atomic([ROW], decide))


async def load_settings(engine: StorageEngine) -> dict[str, Any]:
    raw = await engine.get(ROW)
    return orjson.loads(raw) if raw is not None else {}
