"""Break-glass alerts and review against a real server, with boto3: the alert reaches a local webhook (signed),
survives a kill -9 of the server, and the review lists what the session did, created and left behind.

Loopback only: the SCP's VPC condition is not what is tested here (tests/e2e/test_guardrail_netns.py is).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from perimeterdb.audit.log import read_records
from perimeterdb.auth import totp
from perimeterdb.breakglass import channels
from tests.breakglass.receiver import Receiver, receiver
from tests.support.server import CLIENT_CONFIG, ServerProcess, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "private-tables.yaml"
PROD = "222222222222"
ROLE = f"arn:aws:iam::{PROD}:role/emergency"
JUSTIFICATION = "INC-42: the orders table is corrupt, restoring it from the export"


@dataclass
class Lab:
    server: ServerProcess
    key: dict[str, str]
    seed: str
    secret_file: Path

    def client(self, service: str, creds: dict[str, Any] | None = None) -> Any:
        if creds is None:
            kw = {"aws_access_key_id": self.key["id"], "aws_secret_access_key": self.key["secret"]}
        else:
            kw = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                  "aws_session_token": creds["SessionToken"]}
        return boto3.client(service, endpoint_url=self.server.endpoint, region_name="us-east-1",
                            config=CLIENT_CONFIG, **kw)

    def break_glass(self, name: str = "incident") -> dict[str, Any]:
        code = totp.totp(base64.b32decode(self.seed + "=" * (-len(self.seed) % 8)))
        return self.client("sts").assume_role(
            RoleArn=ROLE, RoleSessionName=name, SerialNumber=f"arn:aws:iam::{PROD}:mfa/oncall", TokenCode=code,
            SourceIdentity="alice", DurationSeconds=900,
            Tags=[{"Key": "justification", "Value": JUSTIFICATION}, {"Key": "ticket", "Value": "INC-42"}],
        )["Credentials"]


def _world(directory: Path, key: dict[str, str], seed: str, hook_url: str) -> Path:
    world = yaml.safe_load(EXAMPLE.read_text())
    for section in ("network", "organization"):
        world.pop(section, None)
    world["accounts"] = {"prod": world["accounts"]["prod"]}
    world["accounts"]["prod"].pop("tables", None)
    oncall = world["accounts"]["prod"]["users"]["oncall"]
    oncall["access_keys"] = [key]
    oncall["mfa"] = {"name": "oncall", "seed_base32": seed}
    world["break_glass"] = {
        "max_session_seconds": 3600,
        "alerts": {"webhook": {"url": hook_url, "secret_file": "hook.secret"}, "lease_seconds": 3,
                   "max_backoff_seconds": 1},
    }
    path = directory / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    return path


def _start(directory: Path, hook_url: str, *extra: str) -> Lab:
    key = {"id": f"AKIAPDBREVIEW{secrets.randbelow(10**7):07d}", "secret": secrets.token_urlsafe(30)[:40]}
    seed = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
    world = _world(directory, key, seed, hook_url)
    server = ServerProcess(directory / "data", extra_args=["--world", str(world), "--durability", "normal", *extra])
    server.start(timeout=30)
    return Lab(server, key, seed, directory / "data" / "hook.secret")


_CLI = ["-m", "perimeterdb.cli", "break-glass"]


def _cli(lab: Lab, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *_CLI, *args, "--data-dir", str(lab.server.data_dir)],
                          capture_output=True, text=True, timeout=60, check=check)


def _alerts(hook: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in hook.accepted()]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Receiver]]:
    with receiver() as hook:
        lab = _start(tmp_path_factory.mktemp("bgreview"), hook.url)
        try:
            yield lab, hook
        finally:
            lab.server.stop()


def test_session_is_alerted_reviewed_and_signed_off(lab: tuple[Lab, Receiver]) -> None:
    lab_, hook = lab
    creds = lab_.break_glass()
    session_id = creds["AccessKeyId"]
    ddb, iam = lab_.client("dynamodb", creds), lab_.client("iam", creds)
    ddb.create_table(TableName="restored", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="restored", Item={"pk": {"S": "a"}})
    ddb.get_item(TableName="restored", Key={"pk": {"S": "a"}})
    with pytest.raises(ClientError):
        ddb.get_item(TableName="no-such-table", Key={"pk": {"S": "a"}})
    iam.create_user(UserName="restorer")
    iam.create_user(UserName="temporary")
    iam.delete_user(UserName="temporary")
    # A key made during the session, and a GetSessionToken session of that key: both belong to the session.
    made = iam.create_access_key(UserName="restorer")["AccessKey"]
    key_sts = boto3.client("sts", endpoint_url=lab_.server.endpoint, region_name="us-east-1", config=CLIENT_CONFIG,
                           aws_access_key_id=made["AccessKeyId"], aws_secret_access_key=made["SecretAccessKey"])
    token = key_sts.get_session_token()["Credentials"]
    with pytest.raises(ClientError):  # restorer has no policy: denied, and still the session's request
        lab_.client("dynamodb", token).list_tables()
    # Grants left behind are listed too: a policy attachment, a group membership.
    iam.attach_user_policy(UserName="restorer", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.create_group(GroupName="restorers")
    iam.add_user_to_group(GroupName="restorers", UserName="restorer")

    # The grant's alert reached the webhook, signed, with the session's facts.
    assert hook.wait_for(lambda: any(a["alert"].get("sessionId") == session_id for a in _alerts(hook)))
    grant = next(r for r in hook.accepted() if json.loads(r.body)["alert"].get("sessionId") == session_id)
    secret = lab_.secret_file.read_bytes().strip()
    assert channels.verify_signature(secret, grant.body, grant.headers["x-perimeterdb-signature"])
    assert json.loads(grant.body)["alert"]["justification"] == JUSTIFICATION
    assert hook.wait_for(lambda: any(a["alert"].get("what") == "DeleteUser" for a in _alerts(hook)))

    review = json.loads(_cli(lab_, "review", session_id, "--json").stdout)["sessions"]
    assert len(review) == 1
    s = review[0]
    assert s["sessionId"] == session_id and s["roleArn"] == ROLE
    assert s["who"]["principal"] == f"arn:aws:iam::{PROD}:user/oncall" and s["who"]["sourceIdentity"] == "alice"
    assert s["who"]["sourceIPAddress"] == "127.0.0.1"
    assert s["why"] == {"justification": JUSTIFICATION, "ticket": "INC-42"}
    assert s["durationSeconds"] == 900 and s["state"] == "active" and s["expires"]
    actions = [r["action"] for r in s["requests"]]
    for expected in ("dynamodb:CreateTable", "dynamodb:PutItem", "dynamodb:GetItem", "iam:CreateUser",
                     "iam:DeleteUser"):
        assert expected in actions, (expected, actions)
    failed = [r for r in s["requests"] if r["errorCode"] == "ResourceNotFoundException"]
    assert failed and failed[0]["decision"] == "Error"
    put = next(r for r in s["requests"] if r["action"] == "dynamodb:PutItem")
    assert put["decision"] == "Allow" and any("table/restored" in x for x in put["resources"])
    changes = {r["action"] for r in s["changes"]}
    assert {"dynamodb:CreateTable", "dynamodb:PutItem", "iam:CreateUser", "iam:DeleteUser"} <= changes
    assert "dynamodb:GetItem" not in changes
    by_key = {(r["accessKeyId"], r["action"]): r for r in s["requests"]}
    assert (made["AccessKeyId"], "sts:GetSessionToken") in by_key, "requests signed with a key made in the session"
    derived = by_key.get((token["AccessKeyId"], "dynamodb:ListTables"))
    assert derived is not None and derived["decision"] == "Deny", "requests of a session derived from that key"
    assert token["AccessKeyId"] in s["derivedSessions"]
    created = {(c["kind"], c["name"]): c["stillExists"] for c in s["created"]}
    assert created[("table", "restored")] is True and created[("user", "restorer")] is True
    assert created[("user", "temporary")] is False
    assert created[("access-key", made["AccessKeyId"])] is True
    assert created[("user-policy-attachment", "arn:aws:iam::aws:policy/AdministratorAccess")] is True
    assert created[("group", "restorers")] is True and created[("group-membership", "restorers")] is True
    assert {(c["kind"], c["name"]) for c in s["stillExisting"]} >= {("table", "restored"), ("user", "restorer")}
    assert ("user", "temporary") not in {(c["kind"], c["name"]) for c in s["stillExisting"]}
    text = _cli(lab_, "review", session_id).stdout
    assert session_id in text and JUSTIFICATION in text and "NOT REVIEWED" in text

    unreviewed = json.loads(_cli(lab_, "unreviewed", "--json").stdout)["unreviewed"]
    assert session_id in [u["sessionId"] for u in unreviewed]

    refused = _cli(lab_, "signoff", session_id, "--reviewer", "alice", "--note", "fine", check=False)
    assert refused.returncode == 1 and "cannot sign it off" in refused.stderr, "who used it cannot review it"
    blank = _cli(lab_, "signoff", session_id, "--reviewer", "bob", "--note", "  ", check=False)
    assert blank.returncode == 1 and "--note" in blank.stderr
    done = json.loads(_cli(lab_, "signoff", session_id, "--reviewer", "bob", "--note", "restore verified",
                           "--json").stdout)
    assert done["reviewer"] == "bob"
    unreviewed = json.loads(_cli(lab_, "unreviewed", "--json").stdout)["unreviewed"]
    assert session_id not in [u["sessionId"] for u in unreviewed]
    records = list(read_records(lab_.server.data_dir / "audit"))
    signoffs = [r for r in records if r["eventName"] == "BreakGlassSignOff"]
    assert signoffs and signoffs[-1]["additionalEventData"]["sessionId"] == session_id
    assert signoffs[-1]["userIdentity"]["userName"] == "bob" and signoffs[-1]["eventID"] == done["eventID"]

    # A request after the sign-off makes the session unreviewed again.
    time.sleep(1.1)
    ddb.get_item(TableName="restored", Key={"pk": {"S": "a"}})
    assert hook.wait_for(lambda: sum(a["alert"].get("what") == "GetItem" for a in _alerts(hook)) >= 2)
    unreviewed = json.loads(_cli(lab_, "unreviewed", "--json").stdout)["unreviewed"]
    assert session_id in [u["sessionId"] for u in unreviewed]
    assert "no undelivered" in _cli(lab_, "alerts").stdout


def test_refused_attempts_are_listed(lab: tuple[Lab, Receiver]) -> None:
    lab_, hook = lab
    with pytest.raises(ClientError) as refused:  # no MFA code
        lab_.client("sts").assume_role(RoleArn=ROLE, RoleSessionName="nomfa",
                                       Tags=[{"Key": "justification", "Value": "just looking"}])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert hook.wait_for(lambda: any(a["alert"].get("outcome") == "refused" for a in _alerts(hook)))
    listing = json.loads(_cli(lab_, "review", "--json").stdout)
    [attempt] = [a for a in listing["refusedAttempts"] if a["justification"] == "just looking"]
    assert attempt["roleArn"] == ROLE and attempt["errorCode"] == "AccessDenied"
    assert attempt["principalArn"] == f"arn:aws:iam::{PROD}:user/oncall" and attempt["sourceIPAddress"] == "127.0.0.1"
    assert "refused break-glass attempt" in _cli(lab_, "review").stdout


def test_unknown_session_and_missing_data(lab: tuple[Lab, Receiver], tmp_path: Path) -> None:
    lab_, _ = lab
    missing = _cli(lab_, "review", "ASIANOSUCHSESSION", check=False)
    assert missing.returncode == 1 and "no break-glass session" in missing.stderr
    nothing = subprocess.run([sys.executable, *_CLI, "unreviewed", "--data-dir", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=60)
    assert nothing.returncode == 1 and "no perimeterdb data" in nothing.stderr


def test_kill_9_after_assume_role_still_delivers_the_alert(tmp_path: Path) -> None:
    port = free_port()  # the receiver is down while the server runs: nothing can be delivered before the crash
    lab = _start(tmp_path, f"http://127.0.0.1:{port}/hooks/pdb")
    try:
        creds = lab.break_glass("crash")
        lab.server.kill()  # kill -9, right after the credentials came back
        with receiver(port) as hook:
            lab.server.start(timeout=30)
            got = hook.wait_for(
                lambda: any(a["alert"].get("sessionId") == creds["AccessKeyId"] for a in _alerts(hook)),
                timeout=30,
            )
            log = (lab.server.log_path or Path()).read_text()[-3000:]
            assert got, ("the alert queued before the credentials were returned is delivered after restart",
                         [(r.status, r.body[:300]) for r in hook.received], log)
            grant = next(r for r in hook.accepted()
                         if json.loads(r.body)["alert"].get("sessionId") == creds["AccessKeyId"])
            secret = lab.secret_file.read_bytes().strip()
            assert channels.verify_signature(secret, grant.body, grant.headers["x-perimeterdb-signature"])
            assert json.loads(grant.body)["alert"]["outcome"] == "granted"
    finally:
        lab.server.stop()


def test_two_workers_deliver_every_alert_once_and_never_together(tmp_path: Path) -> None:
    with receiver(delay=0.05) as hook:
        lab = _start(tmp_path, hook.url, "--workers", "2")
        try:
            creds = lab.break_glass("workers")
            for n in range(30):  # a client (a connection) each: the kernel spreads them over both workers
                with pytest.raises(ClientError):
                    lab.client("dynamodb", creds).get_item(TableName=f"none-{n}", Key={"pk": {"S": "a"}})
            expected = 31  # the grant and one alert per request
            assert hook.wait_for(lambda: len({a["id"] for a in _alerts(hook)}) >= expected, timeout=60)
            time.sleep(2.5)  # both processes polled the outbox again
            ids = [a["id"] for a in _alerts(hook)]
            assert not hook.overlaps, f"an alert was delivered by two processes at once: {hook.overlaps}"
            assert len(ids) == len(set(ids)) == expected, "each alert once (the lease holds while delivering)"
            assert "no undelivered" in _cli(lab, "alerts").stdout
        finally:
            lab.server.stop()
