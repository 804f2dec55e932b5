"""Tamper evidence for the audit log, pure: the hash chain of records, signed digests, and verification.

Every server process is one *writer* with its own files (``audit-<writer>-<n>.log``) and its own chain: a
record's line ends with ``"chain":{"writer":W,"seq":N,"prev":H}`` where ``H`` is the SHA-256 of the
previous line of the same writer (newline included), or of ``genesis(W)`` for the first record. Changing,
removing, inserting or reordering any line breaks the chain at that line. A *digest* (``digests/<writer>-
<k>.json``, like CloudTrail's digest files) names the files a writer wrote since its previous digest with
the hash of the last record of each, and the chain's head; it is signed with Ed25519 and holds the
previous digest's signature (the first digest of a writer holds the signatures of the newest digest of
every writer found at its start), so that digests cannot be removed or changed unseen, and records after
the newest digest of a writer are the only ones whose removal a digest does not show. docs/audit.md
describes the format.

Nothing here does I/O except ``verify_directory``, which reads (never writes) a log directory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT_VERSION = 1
ALGORITHM = "Ed25519"
LOG_FILE = re.compile(r"^audit-(?P<writer>[0-9A-Za-z]+-[0-9a-f]+)-(?P<index>\d{6})\.log$")
DIGEST_FILE = re.compile(r"^(?P<writer>[0-9A-Za-z]+-[0-9a-f]+)-(?P<seq>\d{6})\.json$")
DIGEST_DIR = "digests"
_CHAIN_KEY = b',"chain":{"writer":"'


def genesis(writer: str) -> str:
    """The ``prev`` of a writer's first record: bound to the writer, so no chain can start another's."""
    return hashlib.sha256(b"perimeterdb-audit-genesis:" + writer.encode()).hexdigest()


# A sealed line: the record without its closing "}\n", then the link (writer, seq, prev as hex).
SEAL_FORMAT = b'%b,"chain":{"writer":"%b","seq":%d,"prev":"%b"}}\n'


def seal(line: bytes, writer: str, seq: int, prev: str) -> bytes:
    """``line`` (one JSON object, ending ``}\\n``) with its chain link as the object's last member."""
    return SEAL_FORMAT % (line[:-2], writer.encode(), seq, prev.encode())


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def log_file_name(writer: str, index: int) -> str:
    return f"audit-{writer}-{index:06d}.log"


def digest_file_name(writer: str, seq: int) -> str:
    return f"{writer}-{seq:06d}.json"


# --- keys and signatures --------------------------------------------------------------------------------


def public_key_hex(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def fingerprint(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:32]


def _signed_bytes(digest: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in digest.items() if k != "signature"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def sign_digest(digest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``digest`` with ``signatureAlgorithm``, ``publicKeyFingerprint`` and ``signature`` added."""
    public_hex = public_key_hex(key.public_key())
    out = {**digest, "signatureAlgorithm": ALGORITHM, "publicKeyFingerprint": fingerprint(public_hex)}
    out["signature"] = key.sign(_signed_bytes(out)).hex()
    return out


LOCK_DIR = "locks"


def writer_is_running(directory: Path, writer: str) -> bool:
    """Whether a live process holds the writer's lock (``locks/<writer>.lock``, flock'ed while it writes)."""
    import fcntl
    import os

    try:
        fd = os.open(directory / LOCK_DIR / f"{writer}.lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def chain_tail(paths: list[Path], writer: str, seq: int, prev: str) -> tuple[int, str, str | None, int]:
    """Follow a writer's chain from record ``seq`` (hash ``prev``) through ``paths`` (its files from the one
    holding record ``seq + 1``, in order): the last record that chains, its hash, its file and that file's
    size up to it. Stops at the first line that does not chain."""
    last_file, size = None, 0
    for path in paths:
        offset = 0
        for line in path.read_bytes().splitlines(keepends=True):
            if not line.endswith(b"\n"):
                return seq, prev, last_file, size
            try:
                link = _chain_of(orjson.loads(line))
            except orjson.JSONDecodeError:
                return seq, prev, last_file, size
            if link is None:
                return seq, prev, last_file, size
            if link[0] != writer:
                return seq, prev, last_file, size
            if link[1] <= seq:  # an earlier record of the file (before the digest's head)
                offset += len(line)
                continue
            if link[1] != seq + 1 or link[2] != prev:
                return seq, prev, last_file, size
            seq, prev = seq + 1, line_hash(line)
            offset += len(line)
            last_file, size = path.name, offset
    return seq, prev, last_file, size


def digest_bytes(digest: Mapping[str, Any]) -> bytes:
    """A digest file's exact bytes: the writer writes these, and the verifier accepts only these."""
    return orjson.dumps(digest, option=orjson.OPT_INDENT_2) + b"\n"


def signature_ok(digest: Mapping[str, Any], key: Ed25519PublicKey) -> bool:
    try:
        signature = bytes.fromhex(str(digest.get("signature") or ""))
        key.verify(signature, _signed_bytes(digest))
    except (InvalidSignature, ValueError):
        return False
    return True


# --- verification ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # changed | removed | reordered | missing-file | extra-file | digest | torn | unsealed | legacy
    file: str
    line: int | None
    message: str
    fatal: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.file, "line": self.line, "message": self.message,
                "fatal": self.fatal}


@dataclass
class Report:
    files: int = 0
    records: int = 0
    digests: int = 0
    writers: int = 0
    problems: list[Problem] = field(default_factory=list)
    heads: list[dict[str, Any]] = field(default_factory=list)  # the newest digest of each writer

    @property
    def ok(self) -> bool:
        return not any(p.fatal for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": self.files, "records": self.records, "digests": self.digests,
                "writers": self.writers, "problems": [p.as_json() for p in self.problems],
                "heads": self.heads}


@dataclass
class _Writer:
    files: dict[int, Path] = field(default_factory=dict)
    digests: dict[int, dict[str, Any]] = field(default_factory=dict)
    hashes: dict[int, tuple[str, str, int]] = field(default_factory=dict)  # seq -> (hash, file, line)
    last_seq: int = 0


def _chain_of(record: Any) -> tuple[str, int, str] | None:
    chain = record.get("chain") if isinstance(record, dict) else None
    if not isinstance(chain, dict):
        return None
    writer, seq, prev = chain.get("writer"), chain.get("seq"), chain.get("prev")
    if not isinstance(writer, str) or type(seq) is not int or not isinstance(prev, str):
        return None
    return writer, seq, prev


def _check_file(name: str, data: bytes, writer: str, w: _Writer, expected_prev: str,
                problems: list[Problem], last_file: bool) -> tuple[str, bool]:
    """Walk one file's lines; return the chain's last hash and whether the chain is still intact."""
    prev = expected_prev
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    for number, raw in enumerate(lines, 1):
        line = raw + b"\n"
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            problems.append(Problem("changed", name, number, "the line is not a JSON record (changed or cut)"))
            return prev, False
        link = _chain_of(record)
        if link is None:
            problems.append(Problem("changed", name, number, "the record has no valid chain link"))
            return prev, False
        rec_writer, seq, rec_prev = link
        expected = w.last_seq + 1
        if rec_writer != writer:
            problems.append(Problem("changed", name, number, f"the record names writer {rec_writer!r}"))
            return prev, False
        if seq != expected:
            later = b'"seq":%d,' % expected in b"\n".join(lines[number:])
            kind = "removed" if seq > expected and not later else "reordered"
            problems.append(Problem(kind, name, number,
                                    f"record seq {seq} where seq {expected} was expected "
                                    f"({'records missing before it' if kind == 'removed' else 'out of order'})"))
            return prev, False
        if rec_prev != prev:
            before = w.hashes.get(seq - 1)
            if before is None:  # the first record: its own link was changed
                problems.append(Problem("changed", name, number, f"record seq {seq}'s chain link was changed"))
            else:
                problems.append(Problem("changed", before[1], before[2],
                                        f"record seq {seq - 1} was changed (or the chain link of the record "
                                        f"after it, {name} line {number})"))
            return prev, False
        prev = line_hash(line)
        w.hashes[seq] = (prev, name, number)
        w.last_seq = seq
    if tail:
        if last_file:
            problems.append(Problem("torn", name, len(lines) + 1,
                                    "a partial last line (a crash while writing), not chained", fatal=False))
        else:
            problems.append(Problem("changed", name, len(lines) + 1, "text after the last record"))
            return prev, False
    return prev, True


def _load_digests(directory: Path, key: Ed25519PublicKey | None, writers: dict[str, _Writer],
                  problems: list[Problem]) -> dict[str, dict[str, Any]]:
    """Every digest whose signature holds, by file name; the others are problems."""
    by_name: dict[str, dict[str, Any]] = {}
    folder = directory / DIGEST_DIR
    if not folder.is_dir():
        return by_name
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".tmp"):
            continue
        m = DIGEST_FILE.match(path.name)
        rel = f"{DIGEST_DIR}/{path.name}"
        if m is None:
            problems.append(Problem("extra-file", rel, None, "an unexpected file among the digests"))
            continue
        try:
            raw = path.read_bytes()
            digest = orjson.loads(raw)
        except (OSError, orjson.JSONDecodeError):
            problems.append(Problem("digest", rel, None, "the digest is not valid JSON (changed)"))
            continue
        if not isinstance(digest, dict):
            problems.append(Problem("digest", rel, None, "the digest is not a JSON object (changed)"))
            continue
        if raw != digest_bytes(digest):  # the signature covers the content; this, every byte of the file
            problems.append(Problem("digest", rel, None, "the digest file is not as written (changed)"))
            continue
        if key is None:
            problems.append(Problem("digest", rel, None, "no public key to check the signature with"))
            continue
        if not signature_ok(digest, key):
            problems.append(Problem("digest", rel, None,
                                    "the signature does not hold (the digest was changed, or signed by "
                                    "another key)"))
            continue
        if digest.get("writer") != m["writer"] or digest.get("sequence") != int(m["seq"]):
            problems.append(Problem("digest", rel, None, "the digest's name does not match its contents"))
            continue
        by_name[path.name] = digest
        writers.setdefault(m["writer"], _Writer()).digests[int(m["seq"])] = digest
    return by_name


def _check_links(by_name: dict[str, dict[str, Any]], writers: dict[str, _Writer],
                 problems: list[Problem]) -> None:
    for writer, w in writers.items():
        if not w.digests:
            continue
        top = max(w.digests)
        for k in range(1, top + 1):
            name = digest_file_name(writer, k)
            if k not in w.digests:
                if not any(p.file == f"{DIGEST_DIR}/{name}" for p in problems):
                    problems.append(Problem("missing-file", f"{DIGEST_DIR}/{name}", None, "a digest is missing"))
                continue
            for ref in w.digests[k].get("previousDigests") or []:
                ref_name, signature = str(ref.get("file")), ref.get("signature")
                target = by_name.get(ref_name)
                if target is None:
                    if not any(p.file == f"{DIGEST_DIR}/{ref_name}" for p in problems):
                        problems.append(Problem("missing-file", f"{DIGEST_DIR}/{ref_name}", None,
                                                f"digest {name} names it as a previous digest"))
                elif target.get("signature") != signature:
                    problems.append(Problem("digest", f"{DIGEST_DIR}/{ref_name}", None,
                                            f"its signature is not the one digest {name} recorded"))


def verify_directory(directory: Path, key: Ed25519PublicKey | None,
                     running: Callable[[str], bool] | None = None) -> Report:
    """Check every log file and digest in ``directory``: the first problem of each writer's chain, any
    missing or extra file, and every digest's signature and links. ``running(writer)``: whether that writer
    is alive (default: it holds its lock), so that its newest records may not be sealed yet."""
    if running is None:
        def running(writer: str) -> bool:
            return writer_is_running(directory, writer)

    report = Report()
    problems = report.problems
    writers: dict[str, _Writer] = {}
    by_name = _load_digests(directory, key, writers, problems)
    legacy: list[Path] = []
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if not path.is_file():
            continue
        m = LOG_FILE.match(path.name)
        if m is not None:
            writers.setdefault(m["writer"], _Writer()).files[int(m["index"])] = path
        elif path.name == "audit.log" or path.name.startswith("audit.log."):
            legacy.append(path)
    for path in legacy:
        problems.append(_legacy_problem(path, min(writers, default=None)))
    _check_links(by_name, writers, problems)
    report.digests = len(by_name)
    report.writers = len(writers)
    for writer, w in sorted(writers.items()):
        _verify_writer(writer, w, report, running)
    return report


def _legacy_problem(path: Path, first_writer: str | None) -> Problem:
    """A file of the versions before chaining: not verifiable, so only a note, unless it holds a record dated
    at or after the start of the first chained writer (its id begins with its start time). No such record
    can be genuine: only a server from before chaining wrote these files, and it stopped before the first
    chained one started. Without this, anyone who can write the directory could add an ``audit.log`` of
    forged records that ``perimeterdb audit`` shows as any other while verify still passes."""
    if first_writer is not None and len(first_writer) >= 16 and first_writer[8] == "T":
        w = first_writer
        chained_since = f"{w[0:4]}-{w[4:6]}-{w[6:8]}T{w[9:11]}:{w[11:13]}:{w[13:15]}Z"
        try:
            with path.open("rb") as lines:
                for number, line in enumerate(lines, 1):
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    when = record.get("eventTime") if isinstance(record, dict) else None
                    if isinstance(when, str) and when[:20] >= chained_since:
                        return Problem("extra-file", path.name, number,
                                       f"a record dated {when[:20]} in a file that is not chained, though "
                                       f"records have been chained since {chained_since}: it was added")
        except OSError as exc:
            return Problem("extra-file", path.name, None, f"an unchained file that cannot be read: {exc}")
    return Problem("legacy", path.name, None, "written before records were chained: not verifiable", fatal=False)


def _verify_writer(writer: str, w: _Writer, report: Report, running: Callable[[str], bool]) -> None:
    problems = report.problems
    covered: dict[str, dict[str, Any]] = {}
    for k in sorted(w.digests):
        for entry in w.digests[k].get("logFiles") or []:
            covered[str(entry.get("file"))] = entry
    top = max(w.files) if w.files else 0
    highest = max([top, *(_index(n) for n in covered)])
    for index in range(1, highest + 1):
        if index not in w.files:
            name = log_file_name(writer, index)
            why = "named by a signed digest" if name in covered else "the writer's files are numbered without gaps"
            problems.append(Problem("missing-file", name, None, f"a log file is missing ({why})"))
    if not w.digests:
        for _n, path in sorted(w.files.items()):
            problems.append(Problem("extra-file", path.name, None,
                                    "no signed digest of this writer exists: the file cannot be trusted"))
        return
    prev = genesis(writer)
    intact = True
    for index in range(1, top + 1):
        path = w.files.get(index)
        if path is None:  # reported above
            intact = False
            break
        report.files += 1
        prev, intact = _check_file(path.name, path.read_bytes(), writer, w, prev, problems, index == top)
        if not intact:
            break
    report.records += w.last_seq
    newest = w.digests[max(w.digests)]
    report.heads.append({"file": f"{DIGEST_DIR}/{digest_file_name(writer, max(w.digests))}",
                         "signature": newest.get("signature"), "digestTime": newest.get("digestTime")})
    # What the signed digests say exists must be there, with the same hashes.
    for name, entry in covered.items():
        last_seq, last_hash = entry.get("lastSeq"), entry.get("lastHash")
        if type(last_seq) is not int or last_seq == 0:
            continue
        seen = w.hashes.get(last_seq)
        if seen is None:
            if intact:
                problems.append(Problem("removed", name, None,
                                        f"a signed digest names record seq {last_seq}, which is not there "
                                        "(records were removed from the end)"))
        elif seen[0] != last_hash or seen[1] != name:
            problems.append(Problem("changed", seen[1], seen[2],
                                    f"record seq {last_seq} is not the one a signed digest sealed"))
    head = newest.get("chainHead") or {}
    sealed = int(head.get("seq") or 0)
    if not intact:
        return
    if newest.get("final"):
        if w.last_seq > sealed:
            problems.append(Problem("extra-file", log_file_name(writer, top), None,
                                    f"records after the writer's final digest (seq {sealed}): added"))
    elif running(writer):
        if w.last_seq > sealed:
            problems.append(Problem("unsealed", log_file_name(writer, top), None,
                                    f"records {sealed + 1}..{w.last_seq} are chained but not yet in a signed "
                                    "digest (the writer is running)", fatal=False))
    else:
        problems.append(Problem("removed", f"{DIGEST_DIR}/{digest_file_name(writer, max(w.digests))}", None,
                                "the writer stopped without a final digest: its final digest was removed, or "
                                "it crashed (the next server start seals a crashed writer's log)"))


def _index(name: str) -> int:
    m = LOG_FILE.match(name)
    return int(m["index"]) if m else 0


def first_fatal(problems: Iterable[Problem]) -> Problem | None:
    return next((p for p in problems if p.fatal), None)


def check_anchors(directory: Path, anchors: Iterable[Mapping[str, Any]], report: Report) -> None:
    """Digests seen earlier (``heads`` of an earlier report, kept off the host) must still be there, with
    the same signature: what a local attacker could otherwise remove whole (a writer's newest files and
    digests) cannot go unseen."""
    for anchor in anchors:
        rel = str(anchor.get("file") or "")
        name = rel.rpartition("/")[2]
        if DIGEST_FILE.match(name) is None:
            report.problems.append(Problem("digest", rel, None, "the anchor does not name a digest file"))
            continue
        try:
            digest = orjson.loads((directory / DIGEST_DIR / name).read_bytes())
        except FileNotFoundError:
            report.problems.append(Problem("missing-file", f"{DIGEST_DIR}/{name}", None,
                                           "an anchored digest (seen before) is missing"))
            continue
        except (OSError, orjson.JSONDecodeError):
            digest = None
        if not isinstance(digest, dict) or digest.get("signature") != anchor.get("signature"):
            report.problems.append(Problem("digest", f"{DIGEST_DIR}/{name}", None,
                                           "an anchored digest is not the one seen before"))
