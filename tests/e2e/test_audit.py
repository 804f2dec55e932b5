"""The audit log: records of real requests, rotation, torn lines, search and the break-glass listing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from perimeterdb.audit.log import AuditLog, read_records
from perimeterdb.audit.search import Query, break_glass_sessions, search
from perimeterdb.auth.principal import Principal
from perimeterdb.server.network import NetworkOrigin
from tests.support.server import ServerProcess


def _cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "perimeterdb.cli", "audit", *args], capture_output=True,
                          timeout=60, check=True)
    return done.stdout.decode()


def test_requests_are_audited(server: ServerProcess, ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "secret-key"}, "v": {"S": "very secret value"}})
    with pytest.raises(ClientError):
        ddb.get_item(TableName="no-such-table-audit", Key={"pk": {"S": "a"}})
    records = list(read_records(server.data_dir / "audit"))
    put = [r for r in records if r["eventName"] == "PutItem" and (r["requestParameters"] or {}).get("tableName") == hash_table]
    assert put, "the PutItem is audited"
    record = put[-1]
    assert record["eventSource"] == "dynamodb.amazonaws.com" and record["awsRegion"] == "us-east-1"
    assert record["userIdentity"]["type"] == "IAMUser" and record["userIdentity"]["accessKeyId"].startswith("AKIA")
    assert record["sourceIPAddress"] == "127.0.0.1" and "vpcEndpointId" not in record
    assert "very secret value" not in json.dumps(record), "item values are never logged"
    decisions = record["additionalEventData"]["decisions"]
    assert decisions and decisions[0]["action"] == "dynamodb:PutItem" and decisions[0]["decision"] == "Allow"
    failed = [r for r in records if (r["requestParameters"] or {}).get("tableName") == "no-such-table-audit"]
    assert failed and failed[-1]["errorCode"] == "ResourceNotFoundException"
    out = _cli("--data-dir", str(server.data_dir), "--table", hash_table, "--event", "PutItem")
    assert hash_table in out and "PutItem" in out


def _principal(kind: str = "User") -> Principal:
    if kind == "AssumedRole":
        return Principal(arn="arn:aws:sts::222222222222:assumed-role/emergency/s", principal_arn=
                         "arn:aws:iam::222222222222:role/emergency", account="222222222222", kind="AssumedRole",
                         userid="AROAX:s", role_name="emergency", access_key_id="ASIAX", token_issue_time=1.0,
                         mfa_authenticated=True, source_identity="INC-1", break_glass=True)
    return Principal(arn="arn:aws:iam::222222222222:user/u", principal_arn="arn:aws:iam::222222222222:user/u",
                     account="222222222222", kind="User", userid="AIDAX", username="u", access_key_id="AKIAX")


class _Glass:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    async def is_break_glass(self, principal: Any) -> bool:
        return bool(principal is not None and principal.break_glass)

    async def role_arn_is_break_glass(self, arn: str) -> bool:
        return arn.endswith("role/emergency")

    async def alert(self, record: dict[str, Any]) -> None:
        self.alerts.append(record)


def test_rotation_search_and_break_glass(tmp_path: Path) -> None:
    glass = _Glass()
    log = AuditLog(tmp_path, max_bytes=4000, backups=50, break_glass=glass)
    origin = NetworkOrigin(source_ip="10.77.1.10", local_ip="10.77.1.1", local_port=1, vpc_id="vpc-1",
                           vpce_id="vpce-1")

    async def write_all() -> None:
        await log.record(event_source="sts.amazonaws.com", event_name="AssumeRole", region="us-east-1",
                         request_id="r0", principal=_principal(), origin=origin,
                         request_parameters={"roleArn": "arn:aws:iam::222222222222:role/emergency",
                                             "sourceIdentity": "INC-1"},
                         response_elements={"credentials": {"accessKeyId": "ASIAX"},
                                            "assumedRoleUser": {"arn": "arn:aws:sts::222222222222:assumed-role/emergency/s"}})
        for i in range(30):
            await log.record(event_source="dynamodb.amazonaws.com", event_name="PutItem", region="us-east-1",
                             request_id=f"r{i + 1}", principal=_principal("AssumedRole" if i % 10 == 0 else "User"),
                             origin=origin, request_parameters={"tableName": f"t{i % 3}"},
                             error=None if i % 2 else type("E", (), {"code": "AccessDeniedException", "message": "no"})())

    asyncio.run(write_all())
    log.close()
    files = sorted(p.name for p in tmp_path.glob("audit-*.log"))
    assert len(files) > 2, files
    records = list(read_records(tmp_path))
    assert len(records) == 31 and [r["requestID"] for r in records] == [f"r{i}" for i in range(31)]
    assert log.path is not None
    log.path.open("ab").write(b'{"torn": ')  # a crash mid-line loses only that line
    assert len(list(read_records(tmp_path))) == len(records)
    denied = list(search(records, Query(denied_only=True, table="t0")))
    assert denied and all(r["errorCode"] == "AccessDeniedException" for r in denied)
    assert list(search(records, Query(principal="user/u"), limit=2)).__len__() == 2
    assert not list(search(records, Query(since="2999-01-01")))
    assert glass.alerts and all(a["breakGlass"] for a in glass.alerts)
    sessions = break_glass_sessions(read_records(tmp_path))
    assert sessions and sessions[0].access_key_id == "ASIAX"
    assert all(r["vpcEndpointId"] == "vpce-1" for r in records)
    out = _cli("break-glass", "--audit-dir", str(tmp_path))
    assert "session arn:aws:sts::222222222222:assumed-role/emergency/s" in out


def test_rotation_never_deletes(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_bytes=200)
    for i in range(10):
        log.write({"n": i, "pad": "x" * 150})
    log.close()
    assert len(list(tmp_path.glob("audit-*.log"))) == 10
    assert [r["n"] for r in read_records(tmp_path)] == list(range(10))


def test_iam_sts_and_organizations_calls_are_audited(server: ServerProcess) -> None:
    server.client("sts").get_caller_identity()
    server.client("iam").list_users()
    with pytest.raises(ClientError):  # no organization here: still an audited request
        server.client("organizations", region="us-east-1").describe_organization()
    records = list(read_records(server.data_dir / "audit"))
    sources = {(r["eventSource"], r["eventName"]) for r in records}
    assert ("sts.amazonaws.com", "GetCallerIdentity") in sources
    assert ("iam.amazonaws.com", "ListUsers") in sources
    assert ("organizations.amazonaws.com", "DescribeOrganization") in sources
