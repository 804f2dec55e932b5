"""The audit log: one JSON line per request, allowed or denied, hash-chained, sealed by signed digests.

Files. Each server process is one *writer* (``--workers N``: N writers) with its own files in the log
directory, ``audit-<writer>-<n>.log`` (n = 1, 2, ...; a new file when the next record would take the current
one past ``max_bytes``), and its own chain (``audit/chain.py``): every line carries the hash of the
writer's previous line. A signed digest (``digests/<writer>-<k>.json``) seals the chain's head at start,
at each rotation, every ``digest_interval`` seconds while records are written (a thread of the writer
checks once a second, also for the disk's free space and the sampling summaries), and at close.
``perimeterdb audit verify`` checks it all. No file is ever renamed or deleted by the server: retention is
the operator's (docs/audit.md), so a flood cannot rotate anything out.

Durability, written down: each record is one ``write(2)`` on a file opened ``O_APPEND``, done before the
response is sent. Once a response has left, its record is in the kernel: a crash of the server process
(even ``kill -9``) loses nothing. A power loss can lose records the kernel had not yet written back; with
``fsync=True`` every record is also fsynced before the response (slower: one fsync per request).

Floods. A request that failed authentication (no principal) is anonymous: its record is written in full
only for the first ``sample_per_source`` of each (source address, error code) in each second (and at most
``sample_total`` in all); the others are counted, and one summary record per second gives the counts.
When the directory holds ``budget_bytes`` (or the disk has less than ``reserve_bytes`` free), anonymous
failures are only counted; records of authenticated requests are always written in full (an unwritable
log fails the request).
"""

from __future__ import annotations

import binascii
import fcntl
import hashlib
import heapq
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from perimeterdb.audit import chain, records
from perimeterdb.audit.keys import KEY_NAME as KEY_NAME  # re-exported: callers name the key file by it
from perimeterdb.audit.keys import PUBLIC_KEY_NAME as PUBLIC_KEY_NAME
from perimeterdb.audit.keys import default_key_path, load_or_create_key
from perimeterdb.audit.sampling import SUMMARY_EVENT as SUMMARY_EVENT
from perimeterdb.audit.sampling import Sampler

log = logging.getLogger(__name__)

_SEAL = chain.SEAL_FORMAT
_sha256 = hashlib.sha256
_hexlify = binascii.hexlify
_monotonic = time.monotonic
LOG_NAME = "audit.log"  # the single file of versions before chaining (still read, never written)


def new_writer_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def _directory_bytes(directory: Path) -> int:
    total = 0
    for folder in (directory, directory / chain.DIGEST_DIR):
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return total


class AuditLog:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        backups: int = 0,  # unused: files are never deleted (kept for callers of the old signature)
        fsync: bool = False,
        break_glass: Any = None,
        signing_key: Path | None = None,
        budget_bytes: int = 8 * 1024 * 1024 * 1024,
        reserve_bytes: int = 256 * 1024 * 1024,
        digest_interval: float = 60.0,
        sample_per_source: int = 10,
        sample_total: int = 100,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.break_glass = break_glass  # world.breakglass.BreakGlass: detection and alerts
        self.budget_bytes = budget_bytes
        self.reserve_bytes = reserve_bytes
        self.digest_interval = digest_interval
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self.key_path = signing_key or default_key_path(directory)
        self._key = load_or_create_key(self.key_path)
        self.writer = new_writer_id()
        self.path: Path | None = None  # the current file; made with the first record
        self._fd: int | None = None
        self._index = 0
        self._seq = 0
        self._writer_bytes = self.writer.encode()
        self._prev = chain.genesis(self.writer).encode()  # hex, as bytes: what the next line's link holds
        self._size = 0
        self._file_first_seq = 1
        self._digests = 0
        self._last_signature: str | None = None
        self._digested_seq = -1
        self._digest_due = 0.0
        self._used = _directory_bytes(directory)
        self._low_disk = self._disk_low()
        self._sampler = Sampler(sample_per_source, sample_total)
        self._budget_noted = False
        self._closed = False
        self._stopping = threading.Event()
        self._lock_fd: int | None = None
        self._final_written = False

    # --- files and digests -----------------------------------------------------------------------------

    def _disk_low(self) -> bool:
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < self.reserve_bytes

    def over_budget(self) -> bool:
        return self._used >= self.budget_bytes or self._low_disk

    def _open_next(self) -> None:
        self._index += 1
        self.path = self.directory / chain.log_file_name(self.writer, self._index)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        self._size = 0
        self._file_first_seq = self._seq + 1

    def _start(self) -> None:
        (self.directory / chain.DIGEST_DIR).mkdir(exist_ok=True)
        (self.directory / chain.LOCK_DIR).mkdir(exist_ok=True)
        # Held while this process writes: ``audit verify`` tells a running writer from a stopped one by it.
        self._lock_fd = os.open(self.directory / chain.LOCK_DIR / f"{self.writer}.lock",
                                os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._recover_crashed()
        self._open_next()
        # The first digest names the newest digest of every writer found, so that no earlier chain can be
        # removed without a missing digest showing.
        self._write_digest(final=False, previous=self._heads(), force=True)
        threading.Thread(target=self._tick, name=f"audit-{self.writer}", daemon=True).start()

    def _tick(self) -> None:
        """Once a second: the summary of a sampling window that ended, and the digest that is due, even when
        no record comes to trigger them (a flood that stopped; records followed by silence)."""
        while not self._stopping.wait(1.0):
            with self._lock:
                if self._fd is None:
                    return
                try:
                    now = _monotonic()
                    self._low_disk = self._disk_low()
                    if self._sampler.suppressed and self._sampler.due(now):
                        self._append_summary(now)
                    if now >= self._digest_due:
                        self._write_digest(final=False)
                except OSError:
                    log.exception("audit log: the periodic summary or digest failed")

    def _recover_crashed(self) -> None:
        """Seal the log of every writer that stopped without its final digest (a crash): a final digest of
        its chain as far as it holds, so that ``audit verify`` can tell a crash from a removed digest."""
        folder = self.directory / chain.DIGEST_DIR
        newest: dict[str, int] = {}
        for name in os.listdir(folder):
            m = chain.DIGEST_FILE.match(name)
            if m is not None and m["writer"] != self.writer:
                newest[m["writer"]] = max(newest.get(m["writer"], 0), int(m["seq"]))
        for writer, k in sorted(newest.items()):
            try:
                digest = orjson.loads((folder / chain.digest_file_name(writer, k)).read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if not isinstance(digest, dict) or digest.get("final"):
                continue
            lock_path = self.directory / chain.LOCK_DIR / f"{writer}.lock"
            fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # alive, or being recovered by another process
                if (folder / chain.digest_file_name(writer, k + 1)).exists():
                    continue
                self._seal_crashed(writer, k, digest)
                lock_path.unlink(missing_ok=True)
            except (OSError, ValueError, KeyError, TypeError):
                log.exception("could not seal the log of stopped audit writer %s", writer)
            finally:
                os.close(fd)

    def _seal_crashed(self, writer: str, k: int, digest: dict[str, Any]) -> None:
        head = digest.get("chainHead") or {}
        seq, prev = int(head["seq"]), str(head["hash"])
        files = sorted(p for p in self.directory.glob(f"audit-{writer}-*.log") if chain.LOG_FILE.match(p.name))
        named = [str(e.get("file")) for e in digest.get("logFiles") or []]
        if named:  # from the file holding the head on
            files = [p for p in files if p.name >= named[-1]]
        last_seq, last_hash, last_file, size = chain.chain_tail(files, writer, seq, prev)
        entries = []
        if last_file is not None:
            entries.append({"file": last_file, "firstSeq": seq + 1, "lastSeq": last_seq, "lastHash": last_hash,
                            "bytes": size})
        sealed = chain.sign_digest(
            {
                "version": chain.FORMAT_VERSION,
                "writer": writer,
                "sequence": k + 1,
                "digestTime": records.iso_now(),
                "previousDigests": [{"file": chain.digest_file_name(writer, k), "signature": digest["signature"]}],
                "logFiles": entries,
                "chainHead": {"seq": last_seq, "hash": last_hash},
                "final": True,
                "recoveredBy": self.writer,
            },
            self._key,
        )
        folder = self.directory / chain.DIGEST_DIR
        tmp = folder / f"{chain.digest_file_name(writer, k + 1)}.{self.writer}.tmp"
        tmp.write_bytes(chain.digest_bytes(sealed))
        try:
            os.link(tmp, folder / chain.digest_file_name(writer, k + 1))
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        log.warning("sealed the audit log of writer %s, which stopped without sealing it (records 1..%d)",
                    writer, last_seq)

    def _heads(self) -> list[dict[str, Any]]:
        newest: dict[str, tuple[int, str]] = {}
        folder = self.directory / chain.DIGEST_DIR
        for name in os.listdir(folder):
            m = chain.DIGEST_FILE.match(name)
            if m is None or m["writer"] == self.writer:
                continue
            seq = int(m["seq"])
            if seq > newest.get(m["writer"], (0, ""))[0]:
                newest[m["writer"]] = (seq, name)
        heads = []
        for _seq, name in sorted(newest.values(), key=lambda v: v[1]):
            try:
                digest = orjson.loads((folder / name).read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(digest, dict) and isinstance(digest.get("signature"), str):
                heads.append({"file": name, "signature": digest["signature"]})
        return heads

    def _write_digest(self, *, final: bool, previous: list[dict[str, Any]] | None = None,
                      force: bool = False) -> None:
        if not force and self._seq == self._digested_seq and (not final or self._final_written):
            return
        self._final_written = final
        self._digests += 1
        if previous is None:
            previous = [{"file": chain.digest_file_name(self.writer, self._digests - 1),
                         "signature": self._last_signature}]
        files = []
        if self.path is not None and self._seq >= self._file_first_seq:
            files.append({"file": self.path.name, "firstSeq": self._file_first_seq, "lastSeq": self._seq,
                          "lastHash": self._prev.decode(), "bytes": self._size})
        digest = chain.sign_digest(
            {
                "version": chain.FORMAT_VERSION,
                "writer": self.writer,
                "sequence": self._digests,
                "digestTime": records.iso_now(),
                "previousDigests": previous,
                "logFiles": files,
                "chainHead": {"seq": self._seq, "hash": self._prev.decode()},
                "final": final,
            },
            self._key,
        )
        data = chain.digest_bytes(digest)
        folder = self.directory / chain.DIGEST_DIR
        name = chain.digest_file_name(self.writer, self._digests)
        tmp = folder / f"{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, folder / name)
        self._used += len(data)
        self._last_signature = digest["signature"]
        self._digested_seq = self._seq
        self._digest_due = time.monotonic() + self.digest_interval

    def _rotate(self) -> None:
        self._write_digest(final=False)  # seals the file being left
        assert self._fd is not None
        os.close(self._fd)
        self._open_next()
        self._used = _directory_bytes(self.directory)  # other writers' bytes too
        self._low_disk = self._disk_low()

    # --- writing ---------------------------------------------------------------------------------------

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (any JSON object) as one line."""
        self.append_line(orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE))

    def append_line(self, line: bytes) -> None:
        """Append one serialized record (a JSON object and a newline), chained, in one ``write(2)``."""
        with self._lock:
            self._append(line)
            now = _monotonic()
            if now >= self._digest_due:
                self._write_digest(final=False)
            if self._sampler.suppressed and self._sampler.due(now):
                self._append_summary(now)

    def _append(self, line: bytes) -> None:
        # The hot path (every request): chain.seal and chain.line_hash, inlined.
        fd = self._fd
        if fd is None or self._final_written or self._size + len(line) + 120 > self.max_bytes:
            fd = self._prepare(len(line))
        seq = self._seq + 1
        sealed = _SEAL % (line[:-2], self._writer_bytes, seq, self._prev)
        os.write(fd, sealed)
        self._prev = _hexlify(_sha256(sealed).digest())
        self._seq = seq
        self._size += len(sealed)
        self._used += len(sealed)
        if self.fsync:
            os.fsync(fd)

    def _prepare(self, size: int) -> int:
        """The first record, a full file, or a record after the final digest: the file to write to."""
        if self._fd is None:
            if self._closed:
                raise OSError("the audit log is closed")
            self._start()
        elif self._size and self._size + size + 120 > self.max_bytes:
            self._rotate()
        if self._final_written:  # sealed at shutdown, yet still writing: no longer final
            self._write_digest(final=False, force=True)
        assert self._fd is not None
        return self._fd

    def _append_summary(self, now: float) -> None:
        summary = self._sampler.roll(now)
        if summary is None:
            return
        record = {
            "eventVersion": "1.08",
            "eventTime": records.iso_now(),
            "eventSource": "perimeterdb.audit",
            "eventName": SUMMARY_EVENT,
            "eventType": "AwsServiceEvent",
            "eventID": records.event_id(),
            "userIdentity": {"type": "Unknown"},
            "additionalEventData": {**summary, "overBudget": self.over_budget()},
        }
        self._append(orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE))

    def _admit_anonymous(self, origin: Any, error: Any) -> bool:
        """Whether an anonymous failure's record is written in full (else it is only counted)."""
        key = (str(getattr(origin, "source_ip", None) or "?")[:64],
               str(getattr(error, "code", None) or "?")[:records.NAME_MAX])
        now = time.monotonic()
        with self._lock:
            if self._sampler.due(now):
                if self._sampler.suppressed and self._fd is not None:
                    self._append_summary(now)
                else:
                    self._sampler.roll(now)
            over = self.over_budget()
            if over and not self._budget_noted:
                self._budget_noted = True
                log.warning("audit log budget reached (%d bytes in %s): anonymous failures are only counted",
                            self._used, self.directory)
            return self._sampler.admit(key, now, full_allowed=not over)

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
        The record is written before this returns (see the module docstring for what survives a crash).
        An anonymous failure (no principal) may be only counted (the module docstring): then the record
        returned is ``{"suppressed": True}``."""
        if principal is None and getattr(error, "revoked_principal", None) is not None:
            principal = error.revoked_principal  # a revoked break-glass credential, signed by its holder
        if principal is None and error is not None:
            if not self._admit_anonymous(origin, error):
                return {"suppressed": True}
            # Nobody vouches for an anonymous request's parameters: a few KB of them are enough to see it.
            request_parameters = records.cap_parameters(request_parameters, records.ANONYMOUS_PARAMETERS_MAX)
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

    def seal(self) -> None:
        """Write the final signed digest of everything written so far (at shutdown: the process may end
        without ``close``). A record written afterwards is still chained, and the next digest covers it."""
        with self._lock:
            self._seal_locked()

    def _seal_locked(self) -> None:
        if self._fd is None:
            return
        try:
            if self._sampler.suppressed:
                self._append_summary(time.monotonic() + 1.0)
            self._write_digest(final=True)
        except OSError:
            log.exception("could not seal the audit log")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopping.set()
            if self._fd is None:
                return
            self._seal_locked()
            (self.directory / chain.LOCK_DIR / f"{self.writer}.lock").unlink(missing_ok=True)
            for fd in (self._fd, self._lock_fd):
                try:
                    if fd is not None:
                        os.close(fd)
                except OSError:
                    pass
            self._fd = self._lock_fd = None


def log_files(directory: Path) -> list[Path]:
    """The log's files: the unchained files of earlier versions (oldest first), then each writer's, in order
    of the writers' start and of their files."""
    legacy = sorted(
        (p for p in directory.glob(f"{LOG_NAME}.*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    current = directory / LOG_NAME
    chained = sorted(p for p in directory.glob("audit-*.log") if chain.LOG_FILE.match(p.name))
    return [*legacy, *([current] if current.exists() else []), *chained]


def _records_of(paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    for path in paths:
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            continue
        with f:
            for line in f:
                if not line.endswith(b"\n"):
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    yield record


def read_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record of every file (legacy and every writer's), merged in time order; a torn last line (a
    crash mid-write) is skipped. Summary records of suppressed anonymous failures are included."""
    streams: dict[str, list[Path]] = {}
    for path in log_files(directory):
        m = chain.LOG_FILE.match(path.name)
        streams.setdefault(m["writer"] if m else "", []).append(path)
    iterators = [_records_of(paths) for _, paths in sorted(streams.items())]
    if len(iterators) == 1:
        yield from iterators[0]
        return
    yield from heapq.merge(*iterators, key=lambda r: str(r.get("eventTime") or ""))


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
