"""The audit trail against a real server: an anonymous flood cannot erase it, and it verifies.

The world is examples/private-tables.yaml plus a feature team's IAM administrator in prod (``team-admin``)
and an SCP on the Prod OU that denies ``iam:CreateUser``. The server runs with small audit files (64 KiB)
so that the flood of issue 13 (760 unsigned requests with huge user agents, which rotated every record out
of the old eleven-file log) is bounded in time here.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from perimeterdb.audit.log import SUMMARY_EVENT, read_records
from perimeterdb.auth import totp
from tests.support.server import ServerProcess

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "private-tables.yaml"
PROD = "222222222222"
FLOOD = 760
USER_AGENT_BYTES = 12 * 1024  # under the front door's header limit, far over the record's 1 KiB cap


def _key(tag: str) -> dict[str, str]:
    return {"id": f"AKIAPDBAUDT{tag.upper():0>9}"[:20], "secret": secrets.token_urlsafe(30)[:40]}


def _world(directory: Path, keys: dict[str, dict[str, str]], seed: str) -> Path:
    world = yaml.safe_load(EXAMPLE.read_text())
    accounts = world["accounts"]
    accounts["management"]["users"]["platform-admin"]["access_keys"] = [keys["platform"]]
    prod = accounts["prod"]
    prod["users"]["oncall"]["access_keys"] = [keys["oncall"]]
    prod["users"]["oncall"]["mfa"] = {"name": "oncall", "seed_base32": seed}
    prod["users"]["team-admin"] = {
        "inline": {"iam-admin": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iam:*", "Resource": f"arn:aws:iam::{PROD}:*"}]}},
        "access_keys": [keys["team"]],
    }
    world["organization"]["policies"]["NoNewUsers"] = {
        "type": "SERVICE_CONTROL_POLICY",
        "description": "users are made by the platform only",
        "document": {"Version": "2012-10-17", "Statement": [
            {"Sid": "DenyCreateUser", "Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"}]},
    }
    world["organization"]["units"][0]["policies"].append("NoNewUsers")
    world["break_glass"].pop("alerts_file", None)
    del world["network"]  # no endpoint listener: the public listener is the subject here
    path = directory / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    return path


class Lab:
    def __init__(self, server: ServerProcess, keys: dict[str, dict[str, str]], seed: str) -> None:
        self.server, self.keys, self.seed = server, keys, seed

    def client(self, who: str, service: str, **extra: Any) -> Any:
        key = self.keys[who]
        return self.server.client(service, aws_access_key_id=key["id"], aws_secret_access_key=key["secret"], **extra)

    def records(self) -> list[dict[str, Any]]:
        return list(read_records(self.server.data_dir / "audit"))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "perimeterdb", "audit", *args, "--data-dir",
                               str(self.server.data_dir)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("audit-trail")
    keys = {name: _key(name) for name in ("platform", "oncall", "team")}
    seed = base64.b32encode(totp.new_seed()).decode().rstrip("=")
    world = _world(directory, keys, seed)
    server = ServerProcess(directory / "data", extra_args=[
        "--world", str(world), "--durability", "normal", "--audit-file-bytes", str(64 * 1024),
    ]).start()
    try:
        yield Lab(server, keys, seed)
    finally:
        server.stop()


def _break_glass(lab: Lab) -> str:
    """A break-glass session that writes one item; its access key id."""
    seed = base64.b32decode(lab.seed + "=" * (-len(lab.seed) % 8))
    creds = lab.client("oncall", "sts").assume_role(
        RoleArn=f"arn:aws:iam::{PROD}:role/emergency", RoleSessionName="incident",
        SerialNumber=f"arn:aws:iam::{PROD}:mfa/oncall", TokenCode=totp.totp(seed), SourceIdentity="alice",
        DurationSeconds=900, Tags=[{"Key": "justification", "Value": "INC-42: restoring orders"}],
    )["Credentials"]
    ddb = lab.server.client("dynamodb", aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    ddb.put_item(TableName="orders", Item={"pk": {"S": "restored"}})
    return str(creds["AccessKeyId"])


def _flood(lab: Lab, count: int) -> list[int]:
    """``count`` unsigned DynamoDB requests with a huge user agent, on one keep-alive connection."""
    agent = "A" * USER_AGENT_BYTES
    statuses = []
    conn = http.client.HTTPConnection("127.0.0.1", lab.server.port, timeout=30)
    deadline = time.monotonic() + 120
    try:
        for _ in range(count):
            assert time.monotonic() < deadline, "the flood is bounded in time"
            conn.request("POST", "/", body=b"{}", headers={
                "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
                "User-Agent": agent})
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        conn.close()
    return statuses


def test_an_scp_denied_iam_call_names_the_scp_statement(lab: Lab) -> None:
    iam = lab.client("team", "iam")
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="backdoor")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    record = [r for r in lab.records() if r["eventName"] == "CreateUser"][-1]
    assert record["eventSource"] == "iam.amazonaws.com" and record["errorCode"] == "AccessDenied"
    decisions = record["additionalEventData"]["decisions"]
    assert decisions and decisions[0]["action"] == "iam:CreateUser" and decisions[0]["decision"] != "Allow"
    assert {"kind": "scp", "sid": "DenyCreateUser"}.items() <= decisions[0]["determining"][0].items(), decisions
    # The sealed break-glass guardrail's denial names its statement too.
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "AWS": f"arn:aws:iam::{PROD}:user/team-admin"}, "Action": "sts:AssumeRole"}]})
    with pytest.raises(ClientError) as exc:
        iam.update_assume_role_policy(RoleName="emergency", PolicyDocument=trust)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    record = [r for r in lab.records() if r["eventName"] == "UpdateAssumeRolePolicy"][-1]
    determining = [ref for d in record["additionalEventData"]["decisions"] for ref in d["determining"]]
    assert any(ref["kind"] == "guardrail" for ref in determining), record["additionalEventData"]
    # STS: an AssumeRole the trust policy denies (no MFA) carries its decision.
    with pytest.raises(ClientError):
        lab.client("oncall", "sts").assume_role(RoleArn=f"arn:aws:iam::{PROD}:role/emergency",
                                                RoleSessionName="nomfa",
                                                Tags=[{"Key": "justification", "Value": "INC-1"}])
    assumed = [r for r in lab.records() if r["eventName"] == "AssumeRole"][-1]
    assert assumed["errorCode"] == "AccessDenied"
    assert any(d["action"] == "sts:AssumeRole" and d["decision"] != "Allow"
               for d in assumed["additionalEventData"]["decisions"]), assumed
    # Allowed IAM, STS and Organizations calls carry theirs too.
    iam.list_users()
    lab.client("platform", "organizations").describe_organization()
    records = lab.records()
    listed = [r for r in records if r["eventName"] == "ListUsers"][-1]
    assert listed["additionalEventData"]["decisions"][0]["decision"] == "Allow"
    described = [r for r in records if r["eventName"] == "DescribeOrganization"][-1]
    assert described["additionalEventData"]["decisions"][0]["action"] == "organizations:DescribeOrganization"


def test_an_anonymous_flood_erases_nothing_and_the_log_verifies(lab: Lab) -> None:
    key_id = _break_glass(lab)
    with pytest.raises(ClientError):
        lab.client("team", "iam").create_user(UserName="backdoor2")
    audit = lab.server.data_dir / "audit"
    first_file = sorted(audit.glob("audit-*.log"))[0]
    statuses = _flood(lab, FLOOD)
    assert set(statuses) == {400}, set(statuses)
    _flood(lab, 1)  # a request in a later second: the last window's summary is written
    time.sleep(1.1)
    _flood(lab, 1)
    assert first_file.exists(), "no file is ever deleted"

    records = lab.records()
    anonymous = [r for r in records if r["userIdentity"] == {"type": "Unknown"} and r["eventName"] == "ListTables"]
    summaries = [r for r in records if r["eventName"] == SUMMARY_EVENT]
    suppressed = sum(s["additionalEventData"]["suppressed"] for s in summaries)
    assert summaries and len(anonymous) < FLOOD, "a flood is sampled"
    assert len(anonymous) + suppressed == FLOOD + 2, "every anonymous request is counted"
    assert all(len(r["userAgent"]) < 1100 and "truncated" in r["userAgent"] for r in anonymous)
    assert max(p.stat().st_size for p in audit.glob("audit-*.log")) <= 64 * 1024

    # The break-glass session, its action and the denied IAM call are all still there.
    out = lab.cli("break-glass", "--json")
    sessions = [json.loads(line) for line in out.stdout.splitlines()]
    session = next(s for s in sessions if s["accessKeyId"] == key_id)
    assert session["justification"] == "INC-42: restoring orders"
    assert any(a["eventName"] == "PutItem" for a in session["actions"])
    assert sum(1 for r in records if r["eventName"] == "CreateUser" and r["errorCode"] == "AccessDenied") >= 2

    # While the server runs, the log verifies (the newest records are chained, not yet sealed).
    done = lab.cli("verify")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_huge_unsigned_body_makes_a_small_record(lab: Lab) -> None:
    time.sleep(1.1)  # a new second: the flood's sampling window is over
    body = json.dumps({"TableName": "x" * (5 * 1024 * 1024), "Key": {"pk": {"S": "y" * 100_000}}}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", lab.server.port, timeout=60)
    try:
        conn.request("POST", "/", body=body, headers={
            "X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/x-amz-json-1.0",
            "User-Agent": "huge-body"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert 400 <= response.status < 500
    record = [r for r in lab.records() if r.get("userAgent") == "huge-body"][-1]
    # Past 1 MiB an unsigned body is not even parsed (config.RequestLimits.max_early_parse_bytes): no parameters.
    params = record["requestParameters"]
    assert (params is None or params["omitted"] is True) and record["userIdentity"] == {"type": "Unknown"}
    audit = lab.server.data_dir / "audit"
    assert max(p.stat().st_size for p in audit.glob("audit-*.log")) <= 64 * 1024


def test_verify_after_stop_and_a_changed_byte_fails(lab: Lab) -> None:
    lab.server.stop()
    done = lab.cli("verify", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"] and not any(p["kind"] == "unsealed" for p in report["problems"])
    audit = lab.server.data_dir / "audit"
    victim = sorted(audit.glob("audit-*.log"))[0]
    data = bytearray(victim.read_bytes())
    at = data.index(b'"eventName":"') + 13
    data[at] ^= 0x01
    victim.write_bytes(bytes(data))
    done = lab.cli("verify")
    assert done.returncode == 1 and f"changed in {victim.name} line 1" in done.stdout, done.stdout


def test_several_workers_each_keep_a_chain_and_all_verify(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--workers", "2", "--durability", "normal"]).start()
    try:
        ddb = server.client("dynamodb")
        for _ in range(40):  # new connections: the kernel spreads them over both processes
            server.client("dynamodb").list_tables()
        ddb.list_tables()
    finally:
        server.stop()
    audit = tmp_path / "data" / "audit"
    writers = {p.name.rsplit("-", 1)[0] for p in audit.glob("audit-*.log")}
    records = list(read_records(audit))
    assert sum(1 for r in records if r["eventName"] == "ListTables") == 41
    assert [r["eventTime"] for r in records] == sorted(r["eventTime"] for r in records), "merged in time order"
    done = subprocess.run([sys.executable, "-m", "perimeterdb", "audit", "verify", "--json", "--data-dir",
                           str(tmp_path / "data")], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"] and report["writers"] == len(writers) >= 1, report


def test_after_kill_9_verify_fails_until_the_server_starts_again(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "perimeterdb", "audit", "verify", "--data-dir",
                               str(tmp_path / "data")], capture_output=True, text=True, timeout=120)

    try:
        for _ in range(5):
            server.client("dynamodb").list_tables()
        server.kill()
        done = verify()
        assert done.returncode == 1 and "without a final digest" in done.stdout, done.stdout
        server.start()
        server.client("dynamodb").list_tables()  # the first record of the new run seals the old one
        done = verify()
        assert done.returncode == 0, done.stdout
    finally:
        server.stop()
    done = verify()
    assert done.returncode == 0 and "OK: 6 records" in done.stdout, done.stdout
