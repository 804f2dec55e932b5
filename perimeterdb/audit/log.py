"""The audit log: one JSON line per request, allowed or denied, with size-based rotation.

Durability, written down: each record is one ``write(2)`` on a file opened ``O_APPEND``, done before the
response is sent. Once a response has left, its record is in the kernel: a crash of the server process
(even ``kill -9``) loses nothing. A power loss can lose records the kernel had not yet written back; with
``fsync=True`` every record is also fsynced before the response (slower: one fsync per request).
Rotation renames ``audit.log`` to ``audit.log.1`` (and so on, keeping ``backups`` files) when the next
record would take the file past ``max_bytes``. Several server processes (``--workers``) may share one
directory: each record is one ``O_APPEND`` write, and a process that finds the file rotated by another
reopens it; two processes may then both rotate at about the same moment, leaving one file shorter.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from perimeterdb.audit import records

log = logging.getLogger(__name__)

LOG_NAME = "audit.log"


_FOLLOW_EVERY = 1.0  # seconds between checks that another process rotated the file


class AuditLog:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        backups: int = 10,
        fsync: bool = False,
        break_glass: Any = None,
    ) -> None:
        self.directory = directory
        self.path = directory / LOG_NAME
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync = fsync
        self.break_glass = break_glass  # world.breakglass.BreakGlass: detection and alerts
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._checked = time.monotonic()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    # --- writing ---------------------------------------------------------------------------------------

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (any JSON object) as one line."""
        self.append_line(orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE))

    def append_line(self, line: bytes) -> None:
        """Append one serialized record, newline included, in one ``write(2)``."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= _FOLLOW_EVERY:
                # Another server process sharing this directory may have rotated the file: follow it. Lines
                # written meanwhile land in the rotated file, which is kept: nothing is lost.
                self._checked = now
                try:
                    if os.stat(self.path).st_ino != os.fstat(self._fd).st_ino:
                        os.close(self._fd)
                        self._fd = self._open()
                        self._size = os.fstat(self._fd).st_size
                except FileNotFoundError:
                    os.close(self._fd)
                    self._fd = self._open()
                    self._size = 0
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            os.write(self._fd, line)
            self._size += len(line)
            if self.fsync:
                os.fsync(self._fd)

    def record_from_template(
        self,
        event_source: str,
        event_name: str,
        region: str,
        request_id: str,
        principal: Any,
        origin: Any,
        request_parameters: dict[str, Any] | None,
        error: Any,
        decisions: Sequence[Any],
        user_agent: str | None,
    ) -> bool:
        """Write the record ``record`` would write (same line, before this returns) from a cached template of
        its context (``records.line_template``), when the caller is known not to be break-glass; return
        False, having written nothing, otherwise: then call ``record``. Synchronous and positional, because
        it is the common request's whole audit step."""
        if event_name == "AssumeRole":  # may start a break-glass session: record() looks at its parameters
            return False
        bg = self.break_glass
        if bg is not None:
            # Only a verdict known without a lookup (BreakGlass.known_break_glass) will do: a lookup, or a
            # break-glass session (alerted), takes record()'s way.
            known = getattr(bg, "known_break_glass", None)
            try:
                if known is None or known(principal) is not False:
                    return False
            except Exception:
                return False
        error_code = getattr(error, "code", None) if error is not None else None
        parts = records.line_template(event_source, event_name, region, principal, origin, bool(error_code))
        if parts is None:
            return False
        if error_code:
            message = getattr(error, "message", None)
            line = records.render_line(
                parts, user_agent, request_parameters, request_id, decisions, error_code, message
            )
        else:
            line = records.render_line(parts, user_agent, request_parameters, request_id, decisions)
        try:
            self.append_line(line)
        except OSError:
            log.exception("audit log write failed")
            raise
        return True

    async def record(
        self,
        *,
        event_source: str,
        event_name: str,
        region: str,
        request_id: str,
        principal: Any,
        origin: Any,
        request_parameters: dict[str, Any] | None,
        error: Any = None,
        decisions: Sequence[Any] = (),
        user_agent: str | None = None,
        recipient_account: str | None = None,
        response_elements: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build the CloudTrail-shaped record of one request, write it, and alert on break-glass use.

        ``principal``: the authenticated ``Principal`` (None when authentication failed); ``origin``: the
        ``server.network.NetworkOrigin``; ``error``: the ``ApiError`` answered, if any; ``decisions``: the
        ``authz.Decided`` values of the request (``call.notes["decisions"]``); ``response_elements``: for
        STS AssumeRole, ``{"assumedRoleUser": {...}, "credentials": {"accessKeyId": ...}}`` (never secrets).
        The record is written before this returns (see the module docstring for what survives a crash)."""
        bg = self.break_glass
        flagged = False
        if bg is not None:
            try:
                # Most records' answer is known without a coroutine (BreakGlass caches it per principal);
                # another detector (tests') only has the awaitable.
                known = getattr(bg, "known_break_glass", None)
                verdict = known(principal) if known is not None else None
                flagged = verdict if verdict is not None else await bg.is_break_glass(principal)
                if not flagged and event_name == "AssumeRole" and request_parameters:  # refused ones too
                    role_arn = str(request_parameters.get("roleArn") or "")
                    if role_arn and await bg.role_arn_is_break_glass(role_arn):
                        flagged = True
                        extra = {
                            **(extra or {}),
                            **_assumption_details(request_parameters, response_elements, role_arn),
                        }
            except Exception:
                log.exception("break-glass detection failed; record flagged to be safe")
                flagged = principal is not None and getattr(principal, "kind", "") == "AssumedRole"
        rec = records.build(
            event_source=event_source,
            event_name=event_name,
            region=region,
            request_id=request_id,
            principal=principal,
            origin=origin,
            request_parameters=request_parameters,
            error_code=getattr(error, "code", None) if error is not None else None,
            error_message=getattr(error, "message", None) if error is not None else None,
            decisions=decisions,
            user_agent=user_agent,
            recipient_account=recipient_account,
            break_glass=flagged,
            extra=extra,
        )
        if response_elements:
            rec["responseElements"] = response_elements
        try:
            self.write(rec)
        except OSError:
            log.exception("audit log write failed")
            raise
        if flagged and bg is not None:
            try:
                await bg.alert(rec)
            except Exception:
                log.exception("break-glass alert failed")
        return rec

    def _rotate(self) -> None:
        os.close(self._fd)
        for n in range(self.backups - 1, 0, -1):
            older = self.directory / f"{LOG_NAME}.{n}"
            if older.exists():
                older.replace(self.directory / f"{LOG_NAME}.{n + 1}")
        if self.backups > 0:
            self.path.replace(self.directory / f"{LOG_NAME}.1")
        else:
            self.path.unlink(missing_ok=True)
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        with self._lock:
            try:
                os.close(self._fd)
            except OSError:
                pass


def log_files(directory: Path) -> list[Path]:
    """The log's files, oldest first."""
    rotated = sorted(
        (p for p in directory.glob(f"{LOG_NAME}.*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    current = directory / LOG_NAME
    return [*rotated, *([current] if current.exists() else [])]


def read_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record, oldest first; a torn last line (a crash mid-write) is skipped."""
    for path in log_files(directory):
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    continue
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue


def _assumption_details(
    params: dict[str, Any], response: dict[str, Any] | None, role_arn: str
) -> dict[str, Any]:
    from perimeterdb.world.breakglass import justification_of

    response = response or {}
    assumed = response.get("assumedRoleUser") or {}
    credentials = response.get("credentials") or {}
    request = {"SourceIdentity": params.get("sourceIdentity"), "Tags": params.get("tags") or []}
    return {
        "breakGlassAssumption": True,
        "roleArn": role_arn,
        "sessionArn": assumed.get("arn"),
        "sessionAccessKeyId": credentials.get("accessKeyId"),
        "sourceIdentity": params.get("sourceIdentity"),
        "justification": justification_of(request),
        "durationSeconds": params.get("durationSeconds"),
    }
