"""The break-glass procedure from the real network, and the attacks on it (issue 12).

examples/private-tables.yaml, served by two worker processes, with three break-glass roles in prod:
``emergency`` (no approval), ``emergency-approved`` (``approval: required``, approvers group
``bg-approvers``) and ``emergency-fallback`` (``approval: emergency-allowed``). Clients run in network
namespaces (10.77.0.0/16, made and deleted here; root and iproute2 needed, else skipped): ``inet`` is a host
outside every VPC that reaches the server's public listener. boto3 (tests/support/netns_client.py), the AWS
CLI and the ``perimeterdb break-glass`` CLI run inside it.

Each on-call user has an own virtual MFA device: a code is accepted once per device, so tests do not wait
for one another's TOTP steps.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from perimeterdb.auth import totp
from tests.support import netns
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.skipif(bool(netns.unavailable()), reason=str(netns.unavailable()))

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "private-tables.yaml"
PROD = "222222222222"
ROLE = f"arn:aws:iam::{PROD}:role/emergency"
APPROVED = f"arn:aws:iam::{PROD}:role/emergency-approved"
FALLBACK = f"arn:aws:iam::{PROD}:role/emergency-fallback"
FEATURE = f"arn:aws:iam::{PROD}:role/feature-team"
ONCALL = ["oncall", "ops2", "ops3", "ops4", "ops5", "ops6", "ops7", "ops8"]
ITEM = {"pk": {"S": "bg"}, "v": {"S": "x"}}
WHY = "INC-7: orders table returns 500s, restoring from the export"


def _justify(text: str = WHY, **more: str) -> list[dict[str, str]]:
    return [{"Key": "justification", "Value": text}] + [{"Key": k, "Value": v} for k, v in more.items()]


@dataclass
class Lab:
    server: ServerProcess
    inet: netns.Host
    url: str
    keys: dict[str, dict[str, str]]
    seeds: dict[str, bytes]

    def creds(self, who: str) -> dict[str, str]:
        return {"key": self.keys[who]["id"], "secret": self.keys[who]["secret"]}

    def run(self, who: str | dict[str, str], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        creds = self.creds(who) if isinstance(who, str) else who
        return self.inet.run_client({"endpoint": self.url, "credentials": creds, "calls": calls})

    def codes(self, who: str, count: int = 1) -> list[str]:
        """``count`` consecutive unused codes (steps now-1, now, now+1 at most), with time left to use them."""
        assert count <= 3
        if 30 - time.time() % 30 < 12:  # too close to the next step: wait for it
            time.sleep(30 - time.time() % 30 + 0.5)
        step = totp.time_step()
        return [totp.hotp(self.seeds[who], s) for s in range(step - 1, step - 1 + count)]

    def serial(self, who: str) -> str:
        return f"arn:aws:iam::{PROD}:mfa/{who}"

    def records(self) -> list[dict[str, Any]]:
        from perimeterdb.audit.log import read_records

        return list(read_records(self.server.data_dir / "audit"))

    def alerts(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> list[dict[str, Any]]:
        """The alerts (as queued, from the alerts file the outbox writes) that match, waiting for one."""
        path = self.server.data_dir / "audit" / "alerts.jsonl"
        deadline = time.monotonic() + timeout
        while True:
            found = []
            if path.exists():
                for line in path.read_text().splitlines():
                    entry = json.loads(line)
                    alert = entry["alert"] if isinstance(entry.get("alert"), dict) else entry
                    if wanted(alert):
                        found.append(alert)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def cli(self, who: str, *args: str, creds: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """A command inside the inet namespace, signed with ``who``'s credentials (environment variables)."""
        c = creds or self.creds(who)
        env = {**os.environ, "PYTHONPATH": str(REPO), "AWS_ACCESS_KEY_ID": c["key"],
               "AWS_SECRET_ACCESS_KEY": c["secret"], "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "*", "no_proxy": "*",
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        env.pop("AWS_SESSION_TOKEN", None)
        if c.get("token"):
            env["AWS_SESSION_TOKEN"] = c["token"]
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "AWS_PROFILE"):
            env.pop(var, None)
        return subprocess.run(["ip", "netns", "exec", self.inet.name, *args], capture_output=True, text=True,
                              timeout=60, env=env)

    def perimeterdb(self, who: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli(who, sys.executable, "-m", "perimeterdb.cli", "break-glass", *args,
                        "--endpoint-url", self.url)


def _assume(role: str, save: str, **params: Any) -> dict[str, Any]:
    return {"service": "sts", "op": "assume_role", "save": save,
            "params": {"RoleArn": role, "RoleSessionName": save, **params}}


def _put(use: str) -> dict[str, Any]:
    return {"service": "dynamodb", "op": "put_item", "use": use, "params": {"TableName": "orders", "Item": ITEM}}


def _whoami(use: str) -> dict[str, Any]:
    return {"service": "sts", "op": "get_caller_identity", "use": use}


def _world(lab_dir: Path, inet: netns.Host, port: int, keys: dict[str, dict[str, str]],
           seeds: dict[str, bytes]) -> Path:
    world = yaml.safe_load(EXAMPLE.read_text())
    prod = world["accounts"]["prod"]
    world["network"]["vpcs"]["prod-vpc"]["endpoints"] = []  # only the internet matters here
    world["network"]["public_listeners"] = [{"listen": f"{inet.gateway}:{port}"}]
    may_assume = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
        "Resource": [f"arn:aws:iam::{PROD}:role/emergency*"]}]}
    users = prod["users"]
    users["deployer"]["access_keys"] = [keys["deployer"]]
    for who in ONCALL:
        seed = base64.b32encode(seeds[who]).decode()
        users[who] = {"mfa": {"name": who, "seed_base32": seed}, "inline": {"break-the-glass": may_assume},
                      "access_keys": [keys[who]]}
    users["lead"] = {"groups": ["bg-approvers"], "access_keys": [keys["lead"]]}
    prod["groups"] = {"bg-approvers": {}}
    roles = prod["roles"]
    roles["emergency"]["break_glass"] = {"max_session_seconds": 3600}
    for name, approval in (("emergency-approved", "required"), ("emergency-fallback", "emergency-allowed")):
        roles[name] = {**roles["emergency"], "break_glass": {
            "max_session_seconds": 1800, "approval": approval, "approvers_group": "bg-approvers",
            "grant_seconds": 600}}
    statement = world["organization"]["policies"]["DenyDynamoDBOutsideVPC"]["document"]["Statement"][0]
    exits = statement["Condition"].get("ArnNotLike") or statement["Condition"]["StringNotLike"]  # either operator
    exits["aws:PrincipalArn"] = [
        "arn:aws:iam::*:role/emergency", "arn:aws:iam::*:role/emergency-approved",
        "arn:aws:iam::*:role/emergency-fallback"]
    path = lab_dir / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab_dir = tmp_path_factory.mktemp("breakglass")
    base = 120 + (os.getpid() % 40) * 3
    inet = netns.Host(f"pdbbg{os.getpid() % 10000}", base)
    server = None
    try:
        inet.setup()
        port = free_port()
        names = ["deployer", "lead", *ONCALL]
        keys = {who: {"id": f"AKIAPDBBG{i:0>11}"[:20], "secret": secrets.token_urlsafe(30)[:40]}
                for i, who in enumerate(names)}
        seeds = {who: secrets.token_bytes(20) for who in ONCALL}
        world = _world(lab_dir, inet, port, keys, seeds)
        server = ServerProcess(lab_dir / "data", extra_args=["--world", str(world), "--durability", "normal",
                                                              "--workers", "2"])
        server.start(timeout=40)
        yield Lab(server, inet, f"http://{inet.gateway}:{port}", keys, seeds)
    finally:
        if server is not None:
            server.stop()
        inet.teardown()


def _refused(result: dict[str, Any], text: str, code: str = "AccessDenied") -> None:
    assert not result["ok"], f"expected a refusal, got {result}"
    assert result["code"] == code, result
    assert text in (result["message"] or ""), result


def _assume_alerts(lab: Lab, who: str, outcome: str) -> list[dict[str, Any]]:
    arn = f"arn:aws:iam::{PROD}:user/{who}"
    return lab.alerts(lambda a: a.get("alert") == "break-glass-assume-role" and a.get("who") == arn
                      and a.get("outcome") == outcome)


def test_1_normal_procedure_with_the_aws_cli_then_replay(lab: Lab) -> None:
    code, = lab.codes("oncall")
    args = ["aws", "sts", "assume-role", "--endpoint-url", lab.url, "--output", "json", "--role-arn", ROLE,
            "--role-session-name", "inc-7", "--serial-number", lab.serial("oncall"), "--token-code", code,
            "--source-identity", "alice", "--duration-seconds", "900",
            "--tags", json.dumps(_justify(ticket="INC-7"))]  # JSON: the shorthand splits values at commas
    done = lab.cli("oncall", *args)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    creds = answer["Credentials"]
    assert answer["SourceIdentity"] == "alice"
    session = {"key": creds["AccessKeyId"], "secret": creds["SecretAccessKey"], "token": creds["SessionToken"]}
    put, = lab.run(session, [{"service": "dynamodb", "op": "put_item",
                              "params": {"TableName": "orders", "Item": ITEM}}])
    assert put["ok"], put
    granted = _assume_alerts(lab, "oncall", "granted")
    assert granted and granted[-1]["justification"] == WHY and granted[-1]["ticket"] == "INC-7"
    assert granted[-1]["sourceIdentity"] == "alice" and granted[-1]["sessionId"] == creds["AccessKeyId"]
    flagged = [r for r in lab.records() if r.get("breakGlass") and r["eventName"] == "PutItem"
               and (r.get("userIdentity") or {}).get("accessKeyId") == creds["AccessKeyId"]]
    assert flagged, "requests of the session are flagged break-glass"
    # The same code again: refused as AWS refuses a used code, and alerted.
    again, = lab.run("oncall", [_assume(ROLE, "replay", SerialNumber=lab.serial("oncall"), TokenCode=code,
                                        Tags=_justify())])
    _refused(again, "MultiFactorAuthentication failed with invalid MFA one time pass code.")
    refused = _assume_alerts(lab, "oncall", "refused")
    assert refused and "MultiFactorAuthentication failed" in refused[-1]["errorMessage"]
    denied = [r for r in lab.records() if r["eventName"] == "AssumeRole" and r.get("errorCode") == "AccessDenied"
              and (r.get("userIdentity") or {}).get("userName") == "oncall"]
    assert denied and denied[-1].get("breakGlass"), "the refused attempt is audited as break-glass"


def test_2_get_session_token_mfa_is_not_a_fresh_code(lab: Lab) -> None:
    code, = lab.codes("ops3")
    gst, assumed = lab.run("ops3", [
        {"service": "sts", "op": "get_session_token", "save": "mfa",
         "params": {"SerialNumber": lab.serial("ops3"), "TokenCode": code}},
        {**_assume(ROLE, "via-gst", Tags=_justify()), "use": "mfa"},
    ])
    assert gst["ok"], gst
    _refused(assumed, "fresh MFA code")
    no_mfa, = lab.run("ops3", [_assume(ROLE, "no-mfa", Tags=_justify())])
    _refused(no_mfa, "is not authorized to perform: sts:AssumeRole")  # the trust policy requires MFA
    refused = _assume_alerts(lab, "ops3", "refused")
    assert len(refused) >= 2 and any("fresh MFA code" in a["errorMessage"] for a in refused)


def test_3_blank_or_overlong_justification(lab: Lab) -> None:
    first, second = lab.codes("ops4", 2)
    blank, no_tag = lab.run("ops4", [
        _assume(ROLE, "blank", SerialNumber=lab.serial("ops4"), TokenCode=first, Tags=_justify(" \t ")),
        _assume(ROLE, "source-only", SerialNumber=lab.serial("ops4"), TokenCode=second, SourceIdentity="INC-8"),
    ])
    _refused(blank, "requires a justification")
    _refused(no_tag, "requires a justification")
    assert len(_assume_alerts(lab, "ops4", "refused")) >= 2
    long, = lab.run("ops4", [_assume(ROLE, "long", Tags=_justify("x" * 257))])
    assert not long["ok"] and long["code"] == "ValidationError", long  # AWS's tag-value limit: 256
    flagged = lab.alerts(lambda a: a.get("what") == "AssumeRole" and a.get("errorCode") == "ValidationError"
                         and "ops4" in str(a.get("who")))
    assert flagged, "a malformed attempt on a break-glass role is alerted too"


def test_4_non_ascii_token_code_is_a_validation_error(lab: Lab) -> None:
    result, = lab.run("ops4", [_assume(ROLE, "digits", SerialNumber=lab.serial("ops4"), TokenCode="\u0660\u0661\u0662\u0663\u0664\u0665",
                                       Tags=_justify())])
    assert not result["ok"] and result["code"] == "ValidationError" and result["status"] == 400, result
    assert "tokenCode" in result["message"]


def test_5_one_code_concurrently_across_two_workers(lab: Lab) -> None:
    code, = lab.codes("ops5")
    attempt = [_assume(ROLE, "race", SerialNumber=lab.serial("ops5"), TokenCode=code, Tags=_justify())]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = [r[0] for r in pool.map(lambda _: lab.run("ops5", attempt), range(6))]
    assert sum(1 for r in results if r["ok"]) == 1, results
    for r in results:
        if not r["ok"]:
            _refused(r, "MultiFactorAuthentication failed")


def test_6_approval_required(lab: Lab) -> None:
    first, second, third = lab.codes("ops2", 3)
    unapproved, = lab.run("ops2", [_assume(APPROVED, "early", SerialNumber=lab.serial("ops2"), TokenCode=first,
                                           Tags=_justify())])
    _refused(unapproved, "requires an approved request")
    asked = lab.perimeterdb("ops2", "request", "--role-arn", APPROVED, "--justification", WHY, "--json")
    assert asked.returncode == 0, asked.stderr
    request_id = json.loads(asked.stdout)["Request"]["RequestId"]
    own = lab.perimeterdb("ops2", "approve", request_id)
    assert own.returncode == 1 and "AccessDeniedException" in own.stderr and "own" in own.stderr
    outsider = lab.perimeterdb("deployer", "approve", request_id)
    assert outsider.returncode == 1 and "not a member of the approvers group" in outsider.stderr
    approved = lab.perimeterdb("lead", "approve", request_id, "--comment", "go", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["Request"]["Status"] == "approved"
    granted, used_up = lab.run("ops2", [
        _assume(APPROVED, "approved", SerialNumber=lab.serial("ops2"), TokenCode=second, Tags=_justify()),
        _assume(APPROVED, "twice", SerialNumber=lab.serial("ops2"), TokenCode=third, Tags=_justify()),
    ])
    assert granted["ok"], granted
    _refused(used_up, "requires an approved request")  # one approval opens one session
    alert = _assume_alerts(lab, "ops2", "granted")[-1]
    assert alert["approval"] == request_id and alert["reviewRequired"] is False
    listed = lab.perimeterdb("ops2", "requests", "--json")
    assert json.loads(listed.stdout)["Requests"][-1]["Status"] == "consumed"
    audited = {r["eventName"] for r in lab.records() if r.get("eventSource") == "breakglass.perimeterdb"}
    assert {"RequestAccess", "ApproveRequest"} <= audited


def test_7_emergency_without_approval_requires_review(lab: Lab) -> None:
    code, = lab.codes("ops6")
    assumed, put = lab.run("ops6", [
        _assume(FALLBACK, "fallback", SerialNumber=lab.serial("ops6"), TokenCode=code, Tags=_justify()),
        _put("fallback"),
    ])
    assert assumed["ok"] and put["ok"], (assumed, put)
    alert = _assume_alerts(lab, "ops6", "granted")[-1]
    assert alert["reviewRequired"] is True and alert["emergency"] is True
    listed = subprocess.run([sys.executable, "-m", "perimeterdb.cli", "break-glass", "sessions", "--data-dir",
                             str(lab.server.data_dir), "--json"], capture_output=True, text=True, timeout=60)
    sessions = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = [s for s in sessions if s["id"] == assumed["result"]["Credentials"]["AccessKeyId"]]
    assert mine and mine[0]["reviewRequired"] is True


def test_8_chaining_out_of_a_break_glass_session(lab: Lab) -> None:
    code, = lab.codes("ops7")
    origin, chained, who, put = lab.run("ops7", [
        _assume(ROLE, "origin", SerialNumber=lab.serial("ops7"), TokenCode=code, Tags=_justify(),
                DurationSeconds=900),
        {**_assume(FEATURE, "laundered", DurationSeconds=3600), "use": "origin"},
        _whoami("laundered"),
        _put("laundered"),
    ])
    assert origin["ok"] and chained["ok"] and who["ok"], (origin, chained, who)
    origin_expiry = origin["result"]["Credentials"]["Expiration"]
    assert chained["result"]["Credentials"]["Expiration"] <= origin_expiry  # no later than its origin
    assert not put["ok"] and put["code"] == "AccessDeniedException"  # the SCP still holds for feature-team
    derived_key = chained["result"]["Credentials"]["AccessKeyId"]
    alert = lab.alerts(lambda a: a.get("sessionId") == derived_key and a.get("outcome") == "granted")
    assert alert and alert[-1]["originSessionId"] == origin["result"]["Credentials"]["AccessKeyId"]
    assert alert[-1]["derivedFrom"].endswith("/emergency/origin")
    flagged = [r for r in lab.records() if (r.get("userIdentity") or {}).get("accessKeyId") == derived_key]
    assert flagged and all(r.get("breakGlass") for r in flagged)


def _revoke(lab: Lab, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "perimeterdb.cli", "break-glass", "revoke", *args,
                           "--data-dir", str(lab.server.data_dir), "--json"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return started


def test_9_keys_made_in_a_session_and_revocation_on_every_worker(lab: Lab) -> None:
    code, = lab.codes("ops8")
    origin, user, key = lab.run("ops8", [
        _assume(ROLE, "maker", SerialNumber=lab.serial("ops8"), TokenCode=code, Tags=_justify()),
        {"service": "iam", "op": "create_user", "use": "maker", "params": {"UserName": "ghost"}},
        {"service": "iam", "op": "create_access_key", "use": "maker", "params": {"UserName": "ghost"}},
    ])
    assert origin["ok"] and user["ok"] and key["ok"], (origin, user, key)
    origin_id = origin["result"]["Credentials"]["AccessKeyId"]
    made = key["result"]["AccessKey"]
    ghost = {"key": made["AccessKeyId"], "secret": made["SecretAccessKey"]}
    gst, whoami = lab.run(ghost, [{"service": "sts", "op": "get_session_token", "save": "g",
                                   "params": {"DurationSeconds": 129600}}, _whoami("g")])
    assert gst["ok"] and whoami["ok"], (gst, whoami)
    assert gst["result"]["Credentials"]["Expiration"] <= origin["result"]["Credentials"]["Expiration"]
    ghost_records = [r for r in lab.records() if (r.get("userIdentity") or {}).get("accessKeyId")
                     in (made["AccessKeyId"], gst["result"]["Credentials"]["AccessKeyId"])]
    assert ghost_records and all(r.get("breakGlass") for r in ghost_records), "the made key is break-glass"

    import asyncio

    from perimeterdb.breakglass.lineage import created_during
    from perimeterdb.storage.sqlite import SQLiteEngine

    engine = SQLiteEngine(lab.server.data_dir / "perimeterdb.sqlite3", durability="normal")
    try:
        created = asyncio.run(created_during(engine, origin_id))
    finally:
        engine.close()
    assert {(c["kind"], c["name"]) for c in created} >= {("user", "ghost"), ("access-key", made["AccessKeyId"])}

    session = {"key": origin_id, "secret": origin["result"]["Credentials"]["SecretAccessKey"],
               "token": origin["result"]["Credentials"]["SessionToken"]}
    gst_creds = gst["result"]["Credentials"]
    derived = {"key": gst_creds["AccessKeyId"], "secret": gst_creds["SecretAccessKey"],
               "token": gst_creds["SessionToken"]}
    everyone = [session, ghost, derived]
    # Warm both workers' credential caches: fresh clients, fresh connections.
    with ThreadPoolExecutor(max_workers=6) as pool:
        warm = list(pool.map(lambda c: lab.run(c, [_whoami("default")])[0], everyone * 2))
    assert all(r["ok"] for r in warm), warm
    started = _revoke(lab, origin_id, "--reason", "drill")
    with ThreadPoolExecutor(max_workers=6) as pool:
        after = list(pool.map(lambda c: lab.run(c, [_whoami("default")])[0], everyone * 2))
    denied_within = time.monotonic() - started
    assert all(not r["ok"] and r["code"] == "InvalidClientTokenId" for r in after), after
    put, = lab.run(session, [{"service": "dynamodb", "op": "put_item",
                              "params": {"TableName": "orders", "Item": ITEM}}])
    assert not put["ok"] and put["code"] == "UnrecognizedClientException", put
    revoked = [r for r in lab.records() if r["eventName"] == "RevokeBreakGlassSessions"]
    assert revoked and {x["id"] for x in revoked[-1]["additionalEventData"]["revoked"]} >= {
        origin_id, made["AccessKeyId"], gst_creds["AccessKeyId"]}
    print(f"revoke -> all denied (12 requests, 2 workers): {denied_within:.2f} s")
