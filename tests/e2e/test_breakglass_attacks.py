"""Red team on break-glass (issue 12): a feature team with iam:* and sts:* in the prod account, and an
anonymous client, attack the procedure built in tests/e2e/test_breakglass_netns.py's world.

The lab is that world (examples/private-tables.yaml, public listener in a network namespace, two workers)
plus ``team``: a user of the prod account whose inline policy allows iam:* and sts:* (teams manage their
own IAM), and ``emergency-nogroup``, an approval role whose approvers group does not exist yet.
Each test is one lead of the red-team brief; a hole found became a failing test first, then a fix.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from perimeterdb.auth import totp
from tests.e2e.test_breakglass_netns import (
    APPROVED,
    ONCALL,
    PROD,
    ROLE,
    WHY,
    Lab,
    _assume,
    _justify,
    _put,
    _world,
)
from tests.support import netns
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.skipif(bool(netns.unavailable()), reason=str(netns.unavailable()))

NOGROUP = f"arn:aws:iam::{PROD}:role/emergency-nogroup"
TARGET = "PerimeterDBBreakGlass_20261206."


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab_dir = tmp_path_factory.mktemp("bgattack")
    subnet = (os.getpid() % 40) * 6 + 5  # test_guardrail_netns uses +1..+3, test_host_not_in_vpc +4
    inet = netns.Host(f"pdbrt{os.getpid() % 10000}", subnet)
    server = None
    try:
        inet.setup()
        port = free_port()
        names = ["deployer", "lead", "team", *ONCALL]
        keys = {who: {"id": f"AKIAPDBRT{i:0>11}"[:20], "secret": secrets.token_urlsafe(30)[:40]}
                for i, who in enumerate(names)}
        seeds = {who: secrets.token_bytes(20) for who in ONCALL}
        path = _world(lab_dir, inet, port, keys, seeds)
        world = yaml.safe_load(path.read_text())
        prod = world["accounts"]["prod"]
        prod["users"]["team"] = {"access_keys": [keys["team"]], "inline": {"own-iam": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["iam:*", "sts:*"], "Resource": "*"}]}}}
        roles = prod["roles"]
        # The platform names who may break glass with `emergency`: those users are protected (lead 2).
        trust = roles["emergency"]["trust"]["Statement"][0]
        trust["Principal"] = {"AWS": [f"arn:aws:iam::{PROD}:user/{who}" for who in ONCALL]}
        roles["emergency-nogroup"] = {**roles["emergency-approved"], "break_glass": {
            **roles["emergency-approved"]["break_glass"], "approvers_group": "bg-nogroup"}}
        statement = world["organization"]["policies"]["DenyDynamoDBOutsideVPC"]["document"]["Statement"][0]
        exits = statement["Condition"].get("ArnNotLike") or statement["Condition"]["StringNotLike"]
        exits["aws:PrincipalArn"].append(NOGROUP.replace(PROD, "*"))
        path.write_text(yaml.safe_dump(world, sort_keys=False))
        server = ServerProcess(lab_dir / "data", extra_args=["--world", str(path), "--durability", "normal",
                                                              "--workers", "2"])
        server.start(timeout=40)
        yield Lab(server, inet, f"http://{inet.gateway}:{port}", keys, seeds)
    finally:
        if server is not None:
            server.stop()
        inet.teardown()


def _iam(op: str, use: str = "default", **params: Any) -> dict[str, Any]:
    return {"service": "iam", "op": op, "use": use, "params": params}


def _explicit_deny(result: dict[str, Any], action: str) -> None:
    assert not result["ok"], f"{action}: expected a refusal, got {result}"
    assert result["code"] == "AccessDenied", result
    assert f"perform: {action}" in result["message"] and "explicit deny" in result["message"], result


def _mfa_for(lab: Lab, who: str, user: str, device: str) -> tuple[list[dict[str, Any]], str]:
    """Create a virtual MFA device as ``who`` and try to enable it for ``user``; (results, seed)."""
    made, = lab.run(who, [_iam("create_virtual_mfa_device", VirtualMFADeviceName=device)])
    assert made["ok"], made
    seed = made["result"]["VirtualMFADevice"]["Base32StringSeed"]  # bytes, as str() through JSON: b'...'
    seed = seed[2:-1] if seed.startswith("b'") else seed
    raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    step = totp.time_step()
    enabled = lab.run(who, [_iam("enable_mfa_device", UserName=user, SerialNumber=f"arn:aws:iam::{PROD}:mfa/{device}",
                                 AuthenticationCode1=totp.hotp(raw, step - 1),
                                 AuthenticationCode2=totp.hotp(raw, step))])
    return enabled, seed


# --- lead 1: the approvers group and its members ------------------------------------------------------------


def test_team_cannot_join_create_or_empty_the_approvers_group(lab: Lab) -> None:
    results = lab.run("team", [
        _iam("create_user", UserName="shadow"),
        _iam("add_user_to_group", GroupName="bg-approvers", UserName="shadow"),
        _iam("add_user_to_group", GroupName="BG-Approvers", UserName="shadow"),
        _iam("create_group", GroupName="bg-nogroup"),
        _iam("create_group", GroupName="BG-NOGROUP", Path="/x/"),
        _iam("remove_user_from_group", GroupName="bg-approvers", UserName="lead"),
        _iam("delete_group", GroupName="bg-approvers"),
        _iam("put_group_policy", GroupName="bg-approvers", PolicyName="p",
             PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                 {"Effect": "Deny", "Action": "*", "Resource": "*"}]})),
        _iam("create_access_key", UserName="shadow"),  # an ordinary user: the team's own business
    ])
    assert results[0]["ok"], results[0]
    for result, action in zip(results[1:8], ["iam:AddUserToGroup", "iam:AddUserToGroup", "iam:CreateGroup",
                                             "iam:CreateGroup", "iam:RemoveUserFromGroup", "iam:DeleteGroup",
                                             "iam:PutGroupPolicy"], strict=True):
        _explicit_deny(result, action)
    assert results[8]["ok"], results[8]
    shadow = {"key": results[8]["result"]["AccessKey"]["AccessKeyId"],
              "secret": results[8]["result"]["AccessKey"]["SecretAccessKey"]}
    # The whole attack: the team asks, its second user approves. Refused: shadow is no approver.
    asked = lab.perimeterdb("team", "request", "--role-arn", APPROVED, "--justification", WHY, "--json")
    assert asked.returncode == 0, asked.stderr
    request_id = json.loads(asked.stdout)["Request"]["RequestId"]
    approved = lab.cli("shadow", *_perimeterdb_args(lab, "approve", request_id), creds=shadow)
    assert approved.returncode == 1 and "not a member of the approvers group" in approved.stderr, approved.stderr


def _perimeterdb_args(lab: Lab, *args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "perimeterdb.cli", "break-glass", *args, "--endpoint-url", lab.url]


def test_team_cannot_take_over_an_approver(lab: Lab) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    results = lab.run("team", [
        _iam("create_access_key", UserName="lead"),
        _iam("create_login_profile", UserName="lead", Password="Correct-Horse-9-battery"),
        _iam("put_user_policy", UserName="lead", PolicyName="p", PolicyDocument=policy),
        _iam("attach_user_policy", UserName="lead", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"),
        _iam("delete_user", UserName="lead"),
        _iam("tag_user", UserName="LEAD", Tags=[{"Key": "k", "Value": "v"}]),
        _iam("update_access_key", UserName="lead", AccessKeyId=lab.keys["lead"]["id"], Status="Inactive"),
    ])
    for result, action in zip(results, ["iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:PutUserPolicy",
                                        "iam:AttachUserPolicy", "iam:DeleteUser", "iam:TagUser",
                                        "iam:UpdateAccessKey"], strict=True):
        _explicit_deny(result, action)
    enabled, _seed = _mfa_for(lab, "team", "lead", "lead-by-team")
    _explicit_deny(enabled[0], "iam:EnableMFADevice")
    # The approver still works: the two-person rule holds.
    still, = lab.run("lead", [{"service": "sts", "op": "get_caller_identity"}])
    assert still["ok"] and still["result"]["Arn"].endswith(":user/lead"), still
    refusals = [r for r in lab.records() if r.get("errorCode") == "AccessDenied"
                and (r.get("userIdentity") or {}).get("userName") == "team" and r["eventName"] == "CreateAccessKey"]
    assert refusals, "the refusal is audited"


# --- lead 2: whoever may break the glass -----------------------------------------------------------------------


def test_team_cannot_hijack_the_on_call_users_mfa_or_keys(lab: Lab) -> None:
    results = lab.run("team", [
        _iam("deactivate_mfa_device", UserName="ops8", SerialNumber=lab.serial("ops8")),
        _iam("create_access_key", UserName="ops8"),
        _iam("create_login_profile", UserName="ops8", Password="Correct-Horse-9-battery"),
    ])
    for result, action in zip(results, ["iam:DeactivateMFADevice", "iam:CreateAccessKey",
                                        "iam:CreateLoginProfile"], strict=True):
        _explicit_deny(result, action)
    enabled, _seed = _mfa_for(lab, "team", "ops8", "ops8-by-team")
    assert not enabled[0]["ok"], enabled  # ops8 has its device: a second one would be a hijack too
    _explicit_deny(enabled[0], "iam:EnableMFADevice")


# --- lead 5 and 7: the approval API as an anonymous client and as a caller ------------------------------------------


def _signed(lab: Lab, who: str, op: str, body: bytes, *, token: str | None = None) -> tuple[int, dict[str, Any]]:
    creds = Credentials(lab.keys[who]["id"], lab.keys[who]["secret"], token)
    url = lab.server.endpoint + "/"
    request = AWSRequest("POST", url, data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + op})
    SigV4Auth(creds, "breakglass", "us-east-1").add_auth(request)
    raw = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(raw, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.parametrize("op, body", [
    ("RequestAccess", {"RoleArn": 7, "Justification": WHY}),
    ("RequestAccess", {"RoleArn": APPROVED, "Justification": ["x"]}),
    ("RequestAccess", {"RoleArn": APPROVED, "Justification": "x" * 100_000}),
    ("RequestAccess", {"RoleArn": APPROVED, "Justification": WHY, "Ticket": {"a": 1}}),
    ("RequestAccess", {"RoleArn": "arn:aws:iam::" + "9" * 3000 + ":role/x", "Justification": WHY}),
    ("RequestAccess", {"RoleArn": "arn:aws:iam::222222222222:role/\u0435mergency-approved", "Justification": WHY}),
    ("RequestAccess", {}),
    ("ApproveRequest", {"RequestId": None}),
    ("ApproveRequest", {"RequestId": "bgr-" + "0" * 20}),
    ("ApproveRequest", {"RequestId": "../../meta:x"}),
    ("ApproveRequest", {"RequestId": True, "Comment": 3}),
    ("DenyRequest", {"RequestId": "bgr-x", "Comment": "y" * 5000}),
    ("ListRequests", {"Status": 1}),
    ("ListRequests", {"Status": "pending", "RoleArn": ["x"]}),
    ("ListRequests", []),
])
def test_approval_api_bad_input_is_a_4xx(lab: Lab, op: str, body: Any) -> None:
    status, answer = _signed(lab, "team", op, json.dumps(body).encode())
    assert 400 <= status < 500, (status, answer)
    assert answer.get("__type"), answer


def test_approval_api_lists_only_the_callers_own_requests(lab: Lab) -> None:
    status, mine = _signed(lab, "ops5", "RequestAccess",
                           json.dumps({"RoleArn": APPROVED, "Justification": WHY}).encode())
    assert status == 200, mine
    request_id = mine["Request"]["RequestId"]
    assert len(request_id) >= 24  # bgr- and 80 random bits
    status, listed = _signed(lab, "team", "ListRequests", b"{}")
    assert status == 200 and request_id not in {r["RequestId"] for r in listed["Requests"]}, listed
    status, listed = _signed(lab, "lead", "ListRequests", b"{}")  # an approver sees it
    assert status == 200 and request_id in {r["RequestId"] for r in listed["Requests"]}, listed
    status, denied = _signed(lab, "lead", "DenyRequest", json.dumps({"RequestId": request_id}).encode())
    assert status == 200 and denied["Request"]["Status"] == "denied"
    status, again = _signed(lab, "lead", "ApproveRequest", json.dumps({"RequestId": request_id}).encode())
    assert status == 409 and again["__type"].endswith("ConflictException"), again


def test_a_consumed_grant_cannot_be_approved_again(lab: Lab) -> None:
    status, asked = _signed(lab, "ops2", "RequestAccess",
                            json.dumps({"RoleArn": APPROVED, "Justification": WHY}).encode())
    assert status == 200, asked
    request_id = asked["Request"]["RequestId"]
    status, approved = _signed(lab, "lead", "ApproveRequest", json.dumps({"RequestId": request_id}).encode())
    assert status == 200 and approved["Request"]["Status"] == "approved", approved
    code, = lab.codes("ops2")
    assumed, = lab.run("ops2", [_assume(APPROVED, "once", SerialNumber=lab.serial("ops2"), TokenCode=code,
                                        Tags=_justify())])
    assert assumed["ok"], assumed
    for op in ("ApproveRequest", "DenyRequest"):
        status, again = _signed(lab, "lead", op, json.dumps({"RequestId": request_id}).encode())
        assert status == 409 and again["__type"].endswith("ConflictException") and "consumed" in again["message"], again


def test_approval_api_with_a_break_glass_session_is_flagged(lab: Lab) -> None:
    code, = lab.codes("ops6")
    assumed, = lab.run("ops6", [_assume(ROLE, "api", SerialNumber=lab.serial("ops6"), TokenCode=code,
                                        Tags=_justify())])
    assert assumed["ok"], assumed
    c = assumed["result"]["Credentials"]
    lab.keys["ops6-session"] = {"id": c["AccessKeyId"], "secret": c["SecretAccessKey"]}
    status, _ = _signed(lab, "ops6-session", "ListRequests", b"{}", token=c["SessionToken"])
    assert status == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = [r for r in lab.records() if r["eventName"] == "ListRequests"
                   and (r.get("userIdentity") or {}).get("accessKeyId") == c["AccessKeyId"]]
        if records:
            break
        time.sleep(0.2)
    assert records and records[-1].get("breakGlass"), records


def test_put_from_internet_as_the_team_is_refused(lab: Lab) -> None:
    put, = lab.run("team", [_put("default")])
    assert not put["ok"] and put["code"] == "AccessDeniedException", put


def test_approval_api_alert_and_audit_carry_no_huge_attacker_fields(lab: Lab) -> None:
    marker = "HUGE" + secrets.token_hex(4)
    body = {"RoleArn": APPROVED, "Justification": marker + "x" * 300, "Junk": marker + "y" * 50_000,
            **{f"k{i}": marker for i in range(200)}}
    status, answer = _signed(lab, "team", "RequestAccess", json.dumps(body).encode())
    assert status == 400 and answer["__type"].endswith("ValidationException"), answer
    alerts = lab.alerts(lambda a: a.get("alert") == "break-glass-approval" and marker in json.dumps(a))
    assert alerts, "the refused call is alerted"
    assert all(len(json.dumps(a)) < 4096 for a in alerts), [len(json.dumps(a)) for a in alerts]
    records = [r for r in lab.records() if r["eventName"] == "RequestAccess" and marker in json.dumps(r)]
    assert records and all(len(json.dumps(r)) < 8192 for r in records), [len(json.dumps(r)) for r in records]


def test_refused_attempts_of_every_kind_are_alerted(lab: Lab) -> None:
    """Trust denied (the team is not named), no MFA, an MFA device that is not the caller's."""
    results = lab.run("team", [
        _assume(ROLE, "trust", Tags=_justify()),
        _assume(ROLE, "stolen-serial", SerialNumber=lab.serial("ops7"), TokenCode="123456", Tags=_justify()),
        _assume(APPROVED, "approval", Tags=_justify()),
    ])
    assert all(not r["ok"] and r["code"] == "AccessDenied" for r in results), results
    arn = f"arn:aws:iam::{PROD}:user/team"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        refused = lab.alerts(lambda a: a.get("alert") == "break-glass-assume-role" and a.get("who") == arn
                             and a.get("outcome") == "refused", timeout=1)
        if len({a["roleArn"] for a in refused}) == 2 and len(refused) >= 3:
            break
    assert len(refused) >= 3, refused


# --- lead 3: sealing gaps ------------------------------------------------------------------------------------


def test_sealing_gaps_paths_lookalikes_new_accounts(lab: Lab) -> None:
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                 "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"}}]})
    results = lab.run("team", [
        _iam("create_role", RoleName="emergency", Path="/x/", AssumeRolePolicyDocument=trust),
        _iam("update_role", RoleName="emergency", MaxSessionDuration=43200),
        _iam("create_role", RoleName="\u0435mergency", AssumeRolePolicyDocument=trust),  # Cyrillic e
        _iam("create_role", RoleName="emergency ", AssumeRolePolicyDocument=trust),
        _iam("create_role", RoleName="emergency\u200b", AssumeRolePolicyDocument=trust),
        {"service": "organizations", "op": "create_account",
         "params": {"Email": "x@example.com", "AccountName": "mine"}},
        _iam("create_service_linked_role", AWSServiceName="dynamodb.amazonaws.com", CustomSuffix="emergency"),
    ])
    assert not results[6]["ok"] and results[6].get("status", 400) < 500, results[6]  # not implemented: no role
    _explicit_deny(results[0], "iam:CreateRole")
    _explicit_deny(results[1], "iam:UpdateRole")
    for bad in results[2:5]:  # IAM names are ASCII [\w+=,.@-]+: a 400, never a role
        assert not bad["ok"] and bad["code"] == "ValidationError", bad
    assert not results[5]["ok"] and results[5]["code"] == "AccessDeniedException", results[5]
    listed, = lab.run("team", [_iam("list_roles")])
    names = [r["RoleName"] for r in listed["result"]["Roles"]]
    assert not [n for n in names if n.lower().startswith(("emergency ", "\u0435", "emergency\u200b"))], names


# --- lead 4: lineage -------------------------------------------------------------------------------------------


def _review(lab: Lab, session_id: str) -> dict[str, Any]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "perimeterdb.cli", "break-glass", "review", session_id, "--json",
                           "--data-dir", str(lab.server.data_dir)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    sessions = json.loads(done.stdout)["sessions"]
    assert len(sessions) == 1, sessions
    return sessions[0]  # type: ignore[no-any-return]


def test_everything_derived_from_a_session_is_break_glass_and_listed(lab: Lab) -> None:
    code, = lab.codes("ops3")
    trust_team = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{PROD}:user/team"}}]})
    grant = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    results = lab.run("ops3", [
        _assume(ROLE, "lineage", SerialNumber=lab.serial("ops3"), TokenCode=code, Tags=_justify(),
                DurationSeconds=900),
        _iam("update_assume_role_policy", "lineage", RoleName="feature-team", PolicyDocument=trust_team),
        _iam("put_user_policy", "lineage", UserName="deployer", PolicyName="more", PolicyDocument=grant),
        _iam("create_user", "lineage", UserName="bgmade"),
        _iam("create_access_key", "lineage", UserName="bgmade"),
    ])
    assert all(r["ok"] for r in results), results
    session = results[0]["result"]["Credentials"]
    key = results[4]["result"]["AccessKey"]
    made = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    gst, whoami = lab.run(made, [{"service": "sts", "op": "get_session_token", "save": "gst",
                                  "params": {"DurationSeconds": 129600}},
                                 {"service": "sts", "op": "get_caller_identity", "use": "gst"}])
    assert gst["ok"] and whoami["ok"], (gst, whoami)
    from datetime import datetime

    def when(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    assert when(gst["result"]["Credentials"]["Expiration"]) <= when(session["Expiration"]) + 1
    # The team uses the trust change with its own, ordinary credentials: the perimeter still holds.
    chained, put = lab.run("team", [_assume(f"arn:aws:iam::{PROD}:role/feature-team", "ft"), _put("ft")])
    assert chained["ok"] and not put["ok"] and put["code"] == "AccessDeniedException", (chained, put)
    deadline = time.monotonic() + 15
    while True:
        review = _review(lab, session["AccessKeyId"])
        actions = {r["action"] for r in review["changes"]}
        wanted = {"iam:UpdateAssumeRolePolicy", "iam:PutUserPolicy", "iam:CreateUser", "iam:CreateAccessKey"}
        if wanted <= actions or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert wanted <= actions, actions
    created = {(c["kind"], c["name"]) for c in review["created"]}
    assert ("user", "bgmade") in created, created
    flagged = [r for r in lab.records() if r["eventName"] == "GetCallerIdentity"
               and (r.get("userIdentity") or {}).get("accessKeyId") == gst["result"]["Credentials"]["AccessKeyId"]]
    assert flagged and flagged[-1].get("breakGlass"), flagged


# --- lead 5: quiet use -------------------------------------------------------------------------------------------


def test_no_quiet_requests_on_other_services_or_listeners(lab: Lab) -> None:
    import boto3
    from botocore.config import Config

    code, = lab.codes("ops4")
    assumed, = lab.run("ops4", [_assume(ROLE, "quiet", SerialNumber=lab.serial("ops4"), TokenCode=code,
                                        Tags=_justify())])
    assert assumed["ok"], assumed
    c = assumed["result"]["Credentials"]
    session = {"key": c["AccessKeyId"], "secret": c["SecretAccessKey"], "token": c["SessionToken"]}
    results = lab.run(session, [
        _iam("list_users"),
        {"service": "organizations", "op": "describe_organization"},
        {"service": "dynamodb", "op": "list_tables"},
    ])
    assert results[0]["ok"] and results[2]["ok"], results
    # The loopback listener too (another listener than the public one the session came through).
    ddb = boto3.client("dynamodb", endpoint_url=lab.server.endpoint, region_name="us-east-1",
                       aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                       aws_session_token=c["SessionToken"], config=Config(retries={"max_attempts": 1}))
    ddb.describe_table(TableName="orders")
    wanted = {"ListUsers", "DescribeOrganization", "ListTables", "DescribeTable"}
    deadline = time.monotonic() + 15
    while True:
        mine = [r for r in lab.records() if (r.get("userIdentity") or {}).get("accessKeyId") == c["AccessKeyId"]]
        if wanted <= {r["eventName"] for r in mine} or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert wanted <= {r["eventName"] for r in mine}, [r["eventName"] for r in mine]
    assert all(r.get("breakGlass") for r in mine if r["eventName"] in wanted), mine
    alerted = lab.alerts(lambda a: a.get("what") == "DescribeTable" and c["AccessKeyId"] in json.dumps(a))
    assert alerted, "a request of the session on the loopback listener is alerted"


def test_guardrails_for_aws_protect_the_approvers_and_named_users(lab: Lab) -> None:
    import subprocess
    import sys

    from perimeterdb import policy
    from perimeterdb.policy import PolicyKind

    world = lab.server.data_dir.parent / "world.yaml"
    for source in (["--data-dir", str(lab.server.data_dir)], ["--world", str(world)]):
        done = subprocess.run([sys.executable, "-m", "perimeterdb.cli", "guardrails", *source],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        documents = printed if isinstance(printed, list) else [printed]
        statements = {}
        for document in documents:
            assert len(json.dumps(document, separators=(",", ":"))) <= 5120
            policy.load_policy(document, PolicyKind.SCP)  # a valid SCP
            statements.update({s["Sid"]: s for s in document["Statement"]})
        assert statements["ProtectBreakGlassApproverGroups"]["Resource"] == [
            "arn:aws:iam::*:group/bg-approvers", "arn:aws:iam::*:group/bg-nogroup"], source
        users = statements["ProtectBreakGlassPeople"]["Resource"]
        assert f"arn:aws:iam::{PROD}:user/lead" in users and f"arn:aws:iam::{PROD}:user/ops8" in users, source
        assert f"arn:aws:iam::{PROD}:user/team" not in users
        assert "iam:CreateAccessKey" in statements["ProtectBreakGlassPeople"]["Action"]


# --- lead 6: revocation races (last: it revokes every session of the lab) ---------------------------------------


def test_revoke_all_while_chained_sessions_are_minted(lab: Lab) -> None:
    import subprocess
    import sys
    import threading

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    code, = lab.codes("oncall")
    assumed, = lab.run("oncall", [_assume(ROLE, "race", SerialNumber=lab.serial("oncall"), TokenCode=code,
                                          Tags=_justify())])
    assert assumed["ok"], assumed
    c = assumed["result"]["Credentials"]
    config = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10)

    def client(service: str, key: str, secret: str, token: str) -> Any:
        return boto3.client(service, endpoint_url=lab.server.endpoint, region_name="us-east-1", config=config,
                            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)

    sts = client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    # A role of its own to chain into (feature-team's trust was changed by the lineage test).
    client("iam", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).create_role(
        RoleName="race-target", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"}}]}))
    minted: list[dict[str, str]] = []
    stop = threading.Event()

    def mint() -> None:
        deadline = time.monotonic() + 20
        for i in range(200):  # bounded in count and time
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                got = sts.assume_role(RoleArn=f"arn:aws:iam::{PROD}:role/race-target", RoleSessionName=f"c{i}")
            except ClientError:
                return  # the origin is revoked: no more chained sessions
            minted.append(got["Credentials"])

    worker = threading.Thread(target=mint)
    worker.start()
    while len(minted) < 3 and worker.is_alive():
        time.sleep(0.05)
    revoked = subprocess.run([sys.executable, "-m", "perimeterdb.cli", "break-glass", "revoke", "--all",
                              "--data-dir", str(lab.server.data_dir), "--reason", "red team"],
                             capture_output=True, text=True, timeout=60)
    stop.set()
    worker.join(timeout=30)
    assert revoked.returncode == 0, revoked.stderr
    assert len(minted) >= 3
    for creds in [c, *minted]:
        whoami = client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        with pytest.raises(ClientError) as refused:
            whoami.get_caller_identity()
        assert refused.value.response["Error"]["Code"] in ("InvalidClientTokenId", "ExpiredToken"), refused.value


def test_anonymous_or_forged_requests_queue_no_alerts(lab: Lab) -> None:
    """An anonymous client (no signature, or a forged one with a real key id) cannot fill the alert outbox."""
    import urllib.parse

    marker = "ANON" + secrets.token_hex(8)
    path = lab.server.data_dir / "audit" / "alerts.jsonl"

    def count() -> int:  # alerts that carry this test's marker
        return sum(marker in line for line in path.read_text().splitlines()) if path.exists() else 0

    assume = urllib.parse.urlencode({"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": ROLE,
                                     "RoleSessionName": "x", "Tags.member.1.Key": "justification",
                                     "Tags.member.1.Value": marker}).encode()
    forged = {"Authorization": f"AWS4-HMAC-SHA256 Credential={lab.keys['oncall']['id']}/20261206/us-east-1/sts/"
                               "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
              "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}
    statuses = []
    for i in range(40):  # bounded: 40 requests
        headers = {"Content-Type": "application/x-www-form-urlencoded", **(forged if i % 2 else {})}
        request = urllib.request.Request(lab.server.endpoint + "/", data=assume, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
        body = json.dumps({"RoleArn": APPROVED, "Justification": marker}).encode()
        request = urllib.request.Request(lab.server.endpoint + "/", data=body, method="POST", headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + "RequestAccess",
            **(forged if i % 2 else {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    assert all(400 <= s < 500 for s in statuses), statuses
    time.sleep(2)  # give a (wrongly) queued alert the time to reach the file
    assert count() == 0


def test_using_a_revoked_session_is_flagged_and_alerted(lab: Lab) -> None:
    """A revoked break-glass session used again (stolen, or not handed back) is refused as before, and its
    holder, proven by the signature, is audited as break-glass and alerted (it was an anonymous failure)."""
    import subprocess
    import sys

    code, = lab.codes("ops7")
    assumed, made = lab.run("ops7", [_assume(ROLE, "stolen", SerialNumber=lab.serial("ops7"), TokenCode=code,
                                             Tags=_justify()),
                                     _iam("create_access_key", "stolen", UserName="deployer")])
    assert assumed["ok"] and made["ok"], (assumed, made)
    c = assumed["result"]["Credentials"]
    derived = {"key": made["result"]["AccessKey"]["AccessKeyId"], "secret": made["result"]["AccessKey"]["SecretAccessKey"]}
    done = subprocess.run([sys.executable, "-m", "perimeterdb.cli", "break-glass", "revoke", c["AccessKeyId"],
                           "--data-dir", str(lab.server.data_dir)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    session = {"key": c["AccessKeyId"], "secret": c["SecretAccessKey"], "token": c["SessionToken"]}
    forged = {**session, "secret": "x" * 40}  # the key id alone (no secret) proves nothing: stays anonymous
    used, whoami, guessed = lab.run(session, [_put("default"), {"service": "sts", "op": "get_caller_identity"},
                                              {**_put("forged"), "use": "forged"}])
    assert not used["ok"] and used["code"] == "UnrecognizedClientException", used
    assert not whoami["ok"] and whoami["code"] == "InvalidClientTokenId", whoami
    assert not guessed["ok"] and guessed["code"] == "NoCredentials"  # (saved credentials only; see below)
    forged_put, = lab.run(forged, [_put("default")])
    assert not forged_put["ok"] and forged_put["code"] == "UnrecognizedClientException", forged_put
    deadline = time.monotonic() + 10
    while True:
        records = [r for r in lab.records() if c["AccessKeyId"] in json.dumps(r.get("userIdentity") or {})
                   and r.get("errorCode")]
        if {"PutItem", "GetCallerIdentity"} <= {r["eventName"] for r in records} or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert {r["eventName"]: r.get("breakGlass") for r in records} == {"PutItem": True, "GetCallerIdentity": True}
    assert len([r for r in records if r["eventName"] == "PutItem"]) == 1, "the forged one is not attributed"
    alerted = lab.alerts(lambda a: a.get("accessKeyId") == c["AccessKeyId"] and a.get("errorCode") is not None)
    assert {a["what"] for a in alerted} >= {"PutItem", "GetCallerIdentity"}, alerted
    # A key made during the session is revoked with it, and its later use is attributed and flagged too.
    key_used, = lab.run(derived, [{"service": "sts", "op": "get_caller_identity"}])
    assert not key_used["ok"] and key_used["code"] == "InvalidClientTokenId", key_used
    deadline = time.monotonic() + 10
    while True:
        records = [r for r in lab.records() if derived["key"] in json.dumps(r.get("userIdentity") or {})
                   and r.get("errorCode") == "InvalidClientTokenId"]
        if records or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert records and records[-1].get("breakGlass"), records
