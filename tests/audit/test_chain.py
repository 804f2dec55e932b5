"""Tamper evidence (audit/chain.py through audit/log.py): every kind of change to a closed log is reported."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from perimeterdb.audit import chain
from perimeterdb.audit.log import KEY_NAME, AuditLog, read_records


def _public(directory: Path) -> Ed25519PublicKey:
    return Ed25519PrivateKey.from_private_bytes((directory / KEY_NAME).read_bytes()).public_key()


def make_log(directory: Path, records: int = 60, max_bytes: int = 3000) -> AuditLog:
    log = AuditLog(directory, max_bytes=max_bytes, digest_interval=3600)
    for i in range(records):
        log.write({"eventTime": f"2026-01-01T00:00:{i % 60:02d}Z", "eventName": "PutItem", "n": i,
                   "pad": "x" * (i % 7) * 10})
    log.close()
    return log


def _verify(directory: Path) -> chain.Report:
    return chain.verify_directory(directory, _public(directory))


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if chain.LOG_FILE.match(p.name))


def test_a_closed_log_verifies(tmp_path: Path) -> None:
    make_log(tmp_path)
    report = _verify(tmp_path)
    assert report.ok, report.problems
    assert report.records == 60 and report.files == len(_files(tmp_path)) > 3
    assert [r["n"] for r in read_records(tmp_path)] == list(range(60))
    assert oct((tmp_path / KEY_NAME).stat().st_mode & 0o777) == "0o600"


def test_random_single_byte_changes_are_all_detected(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    make_log(clean)
    rng = random.Random(1234)
    targets = [*_files(clean), *sorted((clean / chain.DIGEST_DIR).iterdir())]
    for trial in range(40):
        work = tmp_path / f"t{trial}"
        shutil.copytree(clean, work)
        victim = work / rng.choice(targets).relative_to(clean)
        data = bytearray(victim.read_bytes())
        at = rng.randrange(len(data))
        data[at] = (data[at] + rng.randrange(1, 256)) % 256
        victim.write_bytes(bytes(data))
        report = _verify(work)
        assert not report.ok, (victim.name, at)
        shutil.rmtree(work)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_a_deleted_line_is_reported_where_it_was(tmp_path: Path) -> None:
    make_log(tmp_path)
    victim = _files(tmp_path)[1]
    lines = _lines(victim)
    del lines[2]
    victim.write_bytes(b"".join(lines))
    first = chain.first_fatal(_verify(tmp_path).problems)
    assert first is not None and first.kind == "removed" and first.file == victim.name and first.line == 3


def test_swapped_lines_are_reported(tmp_path: Path) -> None:
    make_log(tmp_path)
    victim = _files(tmp_path)[0]
    lines = _lines(victim)
    lines[1], lines[2] = lines[2], lines[1]
    victim.write_bytes(b"".join(lines))
    first = chain.first_fatal(_verify(tmp_path).problems)
    assert first is not None and first.kind == "reordered" and first.line == 2


@pytest.mark.parametrize("which", [0, 2, -1])
def test_a_deleted_file_is_reported(tmp_path: Path, which: int) -> None:
    make_log(tmp_path)
    victim = _files(tmp_path)[which]
    victim.unlink()
    problems = _verify(tmp_path).problems
    assert any(p.kind == "missing-file" and p.file == victim.name and p.fatal for p in problems), problems


def test_a_truncated_file_is_reported(tmp_path: Path) -> None:
    make_log(tmp_path)
    for victim, keep in ((_files(tmp_path)[-1], 1), (_files(tmp_path)[1], 1)):
        lines = _lines(victim)
        victim.write_bytes(b"".join(lines[:keep]))
        assert not _verify(tmp_path).ok, victim


def test_records_added_after_the_final_digest_are_reported(tmp_path: Path) -> None:
    make_log(tmp_path)
    last = _files(tmp_path)[-1]
    lines = _lines(last)
    record = orjson.loads(lines[-1])
    link = record.pop("chain")
    forged = chain.seal(orjson.dumps(record) + b"\n", link["writer"], link["seq"] + 1, chain.line_hash(lines[-1]))
    last.write_bytes(b"".join(lines) + forged)
    first = chain.first_fatal(_verify(tmp_path).problems)
    assert first is not None and "final digest" in first.message


def test_digests_cannot_be_removed_or_forged(tmp_path: Path) -> None:
    make_log(tmp_path)
    digests = sorted((tmp_path / chain.DIGEST_DIR).iterdir())
    digests[1].unlink()
    assert any(p.kind == "missing-file" and digests[1].name in p.file for p in _verify(tmp_path).problems)
    # Re-signed with another key: refused.
    other = Ed25519PrivateKey.generate()
    body = orjson.loads(digests[2].read_bytes())
    body["chainHead"]["seq"] = 1
    digests[2].write_bytes(orjson.dumps(chain.sign_digest({k: v for k, v in body.items() if k != "signature"}, other)))
    assert any(p.kind == "digest" and digests[2].name in p.file for p in _verify(tmp_path).problems)


def test_a_whole_earlier_writer_removed_is_reported_by_the_next(tmp_path: Path) -> None:
    prefix = make_log(tmp_path, records=10).writer
    make_log(tmp_path, records=10)  # a second run: its first digest names the first run's last digest
    assert _verify(tmp_path).ok
    for p in [*tmp_path.glob(f"audit-{prefix}-*.log"), *(tmp_path / chain.DIGEST_DIR).glob(f"{prefix}-*.json")]:
        p.unlink()
    problems = _verify(tmp_path).problems
    assert any(p.kind == "missing-file" and prefix in p.file for p in problems), problems


def test_an_unsealed_tail_is_a_note_and_a_file_without_digests_fails(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_bytes=10_000, digest_interval=3600)
    for i in range(5):
        log.write({"eventTime": "2026-01-01T00:00:00Z", "n": i})
    # Not closed (a crash): the records are chained but the last digest is the start one.
    report = _verify(tmp_path)
    assert report.ok and any(p.kind == "unsealed" for p in report.problems)
    (tmp_path / chain.log_file_name("20260101T000000Z-deadbeef", 1)).write_bytes(b"")
    assert any(p.kind == "extra-file" for p in _verify(tmp_path).problems)


def _crash(log: AuditLog) -> None:
    """What kill -9 leaves: the files as they are, the lock released, no final digest."""
    assert log._fd is not None and log._lock_fd is not None
    os.close(log._fd)
    os.close(log._lock_fd)
    log._fd = log._lock_fd = None
    log._closed = True


def test_a_crashed_writer_fails_until_the_next_start_seals_it(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_bytes=2000, digest_interval=3600)
    for i in range(30):
        log.write({"eventTime": "2026-01-01T00:00:00Z", "n": i})
    _crash(log)
    (tmp_path / chain.log_file_name(log.writer, log._index)).open("ab").write(b'{"torn":')  # mid-write
    first = chain.first_fatal(_verify(tmp_path).problems)
    assert first is not None and "without a final digest" in first.message
    make_log(tmp_path, records=3)  # the next start seals the crashed writer's chain, then writes its own
    report = _verify(tmp_path)
    assert report.ok, report.problems
    assert report.records == 33 and any(p.kind == "torn" for p in report.problems)


def test_the_removed_final_digest_of_a_stopped_writer_is_reported(tmp_path: Path) -> None:
    log = make_log(tmp_path, records=20)
    newest = sorted((tmp_path / chain.DIGEST_DIR).glob(f"{log.writer}-*.json"))[-1]
    newest.unlink()
    first = chain.first_fatal(_verify(tmp_path).problems)
    assert first is not None and first.kind == "removed", first


def test_a_record_after_the_shutdown_seal_reopens_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, digest_interval=3600)
    log.write({"eventTime": "2026-01-01T00:00:00Z", "n": 0})
    log.seal()  # the lifespan shutdown's final digest
    log.write({"eventTime": "2026-01-01T00:00:01Z", "n": 1})  # a request still in flight elsewhere
    _crash(log)  # the process ends before close()
    first = chain.first_fatal(_verify(tmp_path).problems)
    assert first is not None and "without a final digest" in first.message
    make_log(tmp_path, records=1)
    assert _verify(tmp_path).ok


def test_a_tool_writing_to_the_servers_log_signs_with_the_servers_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.key").write_bytes(os.urandom(32))
    server = AuditLog(data / "audit", signing_key=data / KEY_NAME)  # as open_audit makes it
    server.write({"eventTime": "2026-01-01T00:00:00Z", "n": 0})
    tool = AuditLog(data / "audit")  # e.g. perimeterdb break-glass revoke
    tool.write({"eventTime": "2026-01-01T00:00:01Z", "n": 1})
    tool.close()
    server.close()
    assert not (data / "audit" / KEY_NAME).exists()
    report = chain.verify_directory(data / "audit", _public(data))
    assert report.ok and report.writers == 2, report.problems


def test_an_anchored_head_removed_whole_is_reported(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.key").write_bytes(os.urandom(32))
    make_log(data / "audit", records=5)
    newest = make_log(data / "audit", records=5)  # the run an attacker removes whole

    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "perimeterdb", "audit", "verify", "--data-dir", str(data), *args],
                              capture_output=True, text=True, timeout=60)

    anchor = tmp_path / "anchor.json"  # kept off the host
    anchor.write_text(verify("--json").stdout)
    assert json.loads(anchor.read_text())["ok"]
    for p in [*(data / "audit").glob(f"audit-{newest.writer}-*.log"),
              *(data / "audit" / chain.DIGEST_DIR).glob(f"{newest.writer}-*.json")]:
        p.unlink()
    assert verify().returncode == 0, "without an anchor, a whole newest run can go unseen"
    done = verify("--anchor", str(anchor))
    assert done.returncode == 1 and "an anchored digest (seen before) is missing" in done.stdout, done.stdout
