"""Retention an attacker cannot drive (audit/log.py, audit/records.py): capped fields, sampled anonymous
failures with counts kept, a disk budget that only ever drops anonymous detail, and no file ever deleted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from perimeterdb.audit import records
from perimeterdb.audit.chain import verify_directory
from perimeterdb.audit.log import SUMMARY_EVENT, AuditLog, read_records
from perimeterdb.auth.principal import Principal
from perimeterdb.server.network import NetworkOrigin


class _Error:
    def __init__(self, code: str, message: str = "no") -> None:
        self.code, self.message = code, message


USER = Principal(arn="arn:aws:iam::222222222222:user/u", principal_arn="arn:aws:iam::222222222222:user/u",
                 account="222222222222", kind="User", userid="AIDAX", username="u", access_key_id="AKIAX")


def _record(log: AuditLog, *, principal: Any = None, ip: str = "10.77.0.9", code: str = "MissingAuthenticationToken",
            agent: str = "curl", params: Any = None, message: str = "no", name: str = "ListTables") -> dict[str, Any]:
    return asyncio.run(log.record(
        event_source="dynamodb.amazonaws.com", event_name=name, region="us-east-1", request_id="r",
        principal=principal, origin=NetworkOrigin(source_ip=ip, local_ip="127.0.0.1", local_port=1),
        request_parameters=params, error=_Error(code, message) if code else None, user_agent=agent))


def test_caller_controlled_fields_are_capped(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    _record(log, principal=USER, agent="B" * 4_000_000, params={"tableName": "t" * 300_000},
            message="m" * 50_000, name="N" * 10_000, code="C" * 5000)
    log.close()
    (record,) = list(read_records(tmp_path))
    assert len(record["userAgent"]) < records.USER_AGENT_MAX + 64 and record["userAgent"].startswith("BBBB")
    assert "truncated from 4000000 characters" in record["userAgent"]
    assert record["requestParameters"] == {"omitted": True, "originalSize": 300_016}
    assert len(record["errorMessage"]) < records.ERROR_MESSAGE_MAX + 64
    assert len(record["eventName"]) < records.NAME_MAX + 64 and len(record["errorCode"]) < records.NAME_MAX + 64
    assert max(p.stat().st_size for p in tmp_path.glob("audit-*.log")) < 8 * 1024


def test_the_templated_line_is_capped_too() -> None:
    origin = NetworkOrigin(source_ip="10.77.0.9", local_ip="127.0.0.1", local_port=1)
    parts = records.line_template("dynamodb.amazonaws.com", "GetItem", "us-east-1", USER, origin, True)
    assert parts is not None
    line = records.render_line(parts, "U" * 1_000_000, {"tableName": "x" * 200_000}, "r", [], "E", "e" * 100_000)
    assert len(line) < 8 * 1024 and b"truncated from 1000000 characters" in line and b'"omitted":true' in line


def test_anonymous_failures_are_sampled_and_counted(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, sample_per_source=3, sample_total=5)
    results = [_record(log, ip=f"10.77.0.{i % 3}") for i in range(300)]
    for _ in range(20):
        _record(log, principal=USER, code="AccessDeniedException")  # authenticated: always in full
    log.close()
    written = [r for r in results if not r.get("suppressed")]
    rows = list(read_records(tmp_path))
    anonymous = [r for r in rows if r["eventName"] == "ListTables" and r["userIdentity"] == {"type": "Unknown"}]
    summaries = [r["additionalEventData"] for r in rows if r["eventName"] == SUMMARY_EVENT]
    assert summaries and len(anonymous) == len(written) < 60, "at most sample_total in full per second"
    assert all(s["written"] <= 5 for s in summaries)
    assert len(anonymous) + sum(s["suppressed"] for s in summaries) == 300, "every one is counted"
    assert {x["sourceIPAddress"] for s in summaries for x in s["sources"]} == {"10.77.0.0", "10.77.0.1", "10.77.0.2"}
    assert sum(1 for r in rows if r.get("errorCode") == "AccessDeniedException") == 20
    assert verify_directory(tmp_path, log._key.public_key()).ok


def test_over_budget_anonymous_detail_goes_but_authenticated_records_stay(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_bytes=4096, budget_bytes=20_000)
    for i in range(200):
        _record(log, principal=USER, params={"tableName": f"t{i}"}, code="")
    assert log.over_budget()
    before = len(list(tmp_path.glob("audit-*.log")))
    results = [_record(log, ip="10.77.0.5", agent="A" * 1000) for _ in range(100)]
    assert all(r.get("suppressed") for r in results), "over budget: anonymous failures only counted"
    _record(log, principal=USER, params={"tableName": "after"}, code="")
    log.close()
    rows = list(read_records(tmp_path))
    tables = [r["requestParameters"]["tableName"] for r in rows if r["userIdentity"].get("userName") == "u"]
    assert tables == [f"t{i}" for i in range(200)] + ["after"], "no authenticated record is lost"
    summary = [r for r in rows if r["eventName"] == SUMMARY_EVENT][-1]["additionalEventData"]
    assert summary["overBudget"] and summary["suppressed"] == 100 and summary["written"] == 0
    assert len(list(tmp_path.glob("audit-*.log"))) >= before, "nothing deleted"
    assert verify_directory(tmp_path, log._key.public_key()).ok


def test_the_signing_key_is_owner_only_and_never_in_the_records(tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "audit-digest.key"
    log = AuditLog(tmp_path / "audit", signing_key=key_path)
    _record(log, principal=USER, code="")
    log.close()
    assert key_path.stat().st_mode & 0o777 == 0o600
    raw = key_path.read_bytes().hex()
    for path in (tmp_path / "audit").rglob("*"):
        if path.is_file():
            assert raw not in path.read_bytes().hex()
    assert not (tmp_path / "audit" / "audit-digest.key").exists()


def test_anonymous_parameters_are_capped_harder_and_cannot_claim_to_be_omitted(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    _record(log, params={"tableName": "t" * 10_000})  # anonymous: 4 KB at most
    _record(log, principal=USER, params={"omitted": True, "pad": "p" * 200_000}, code="")  # no way around
    _record(log, principal=USER, params={"tableName": "t" * 10_000}, code="")  # authenticated: 100 KB
    log.close()
    rows = [r for r in read_records(tmp_path)]
    assert rows[0]["requestParameters"] == {"omitted": True, "originalSize": 10_016}
    assert rows[1]["requestParameters"] == {"omitted": True, "originalSize": len(b"{\"omitted\":true,\"pad\":\"\"}") + 200_000}
    assert rows[2]["requestParameters"] == {"tableName": "t" * 10_000}
    assert not list((tmp_path / "locks").iterdir()), "a closed writer leaves no lock file"


def test_summaries_and_digests_come_without_further_records(tmp_path: Path) -> None:
    import time

    log = AuditLog(tmp_path, sample_per_source=1, sample_total=1, digest_interval=1.0)
    for _ in range(5):
        _record(log)
    deadline = time.monotonic() + 20
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # no further request: the log's own ticker writes them
        rows = list(read_records(tmp_path))
        if any(r["eventName"] == SUMMARY_EVENT for r in rows) and log._digested_seq == log._seq:
            break
        time.sleep(0.1)
    assert [r["additionalEventData"]["suppressed"] for r in rows if r["eventName"] == SUMMARY_EVENT] == [4]
    report = verify_directory(tmp_path, log._key.public_key())
    assert report.ok and not any(p.kind == "unsealed" for p in report.problems), report.problems
    log.close()
