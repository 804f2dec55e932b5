"""Sealed break-glass roles against the real server (boto3 and the AWS CLI, over loopback).

The world is examples/private-tables.yaml plus a second prod account (prod2) and, in both prod accounts, a
feature team's administrator (``team-admin``) with ``iam:*`` on its own account: the attacker. The SCP of the
Prod OU exempts ``arn:aws:iam::*:role/emergency`` from the VPC perimeter. Each way of forging, laundering or
changing that exit must fail with IAM's AccessDenied "with an explicit deny in a service control policy";
the platform (the management account's administrator, through the declared ``platform`` role of each
account) can still manage it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from perimeterdb import policy
from perimeterdb.policy import PolicyKind, PolicyRef, PolicySet
from tests.support.server import ServerProcess

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "private-tables.yaml"
MGMT, PROD, PROD2 = "111111111111", "222222222222", "444444444444"
SCP_DENY = "with an explicit deny in a service control policy"
EMERGENCY = f"arn:aws:iam::{PROD}:role/emergency"
EXTRA = f"arn:aws:iam::{PROD}:policy/emergency-extra"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"}, "Action": "sts:AssumeRole"}]})
DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]})


def _key(tag: str) -> dict[str, str]:
    return {"id": f"AKIAPDBSEAL{tag.upper():0>9}"[:20], "secret": secrets.token_urlsafe(30)[:40]}


def _admin_of(account: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:*", "Resource": [f"arn:aws:iam::{account}:*"]},
        {"Effect": "Allow", "Action": ["iam:List*", "iam:Get*"], "Resource": "*"}]}


def _platform_role() -> dict[str, Any]:
    return {
        "description": "the platform's way into the account (as OrganizationAccountAccessRole on AWS)",
        "trust": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MGMT}:root"}, "Action": "sts:AssumeRole"}]},
        "policies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
    }


def _world(directory: Path, keys: dict[str, dict[str, str]]) -> Path:
    world = yaml.safe_load(EXAMPLE.read_text())
    accounts = world["accounts"]
    accounts["management"]["users"]["platform-admin"]["access_keys"] = [keys["platform"]]
    prod = accounts["prod"]
    prod["users"]["team-admin"] = {"inline": {"iam-admin": _admin_of(PROD)}, "access_keys": [keys["team"]]}
    prod["policies"] = {"emergency-extra": {"document": json.loads(DOC)}, "team-policy": {"document": json.loads(DOC)}}
    prod["roles"]["emergency"]["policies"].append("emergency-extra")
    prod["roles"]["platform"] = _platform_role()
    accounts["prod2"] = {
        "id": PROD2, "name": "prod2", "email": "prod2@example.com",
        "users": {"team-admin": {"inline": {"iam-admin": _admin_of(PROD2)}, "access_keys": [keys["team2"]]}},
        "roles": {"platform": _platform_role()},
    }
    world["organization"]["units"][0]["accounts"].append("prod2")
    world["break_glass"]["platform_principals"] = ["arn:aws:iam::*:role/platform"]
    world["break_glass"].pop("alerts_file", None)
    del world["network"]  # IAM is the subject here: no endpoint listener on the VPC's address
    path = directory / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    return path


class Lab:
    def __init__(self, server: ServerProcess, keys: dict[str, dict[str, str]], world: Path) -> None:
        self.server, self.keys, self.world = server, keys, world

    def client(self, who: str, service: str = "iam") -> Any:
        key = self.keys[who]
        return self.server.client(service, aws_access_key_id=key["id"], aws_secret_access_key=key["secret"])

    def platform(self, account: str) -> Any:
        """The platform's session in a member account: platform-admin (management) -> role/platform."""
        creds = self.client("platform", "sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/platform", RoleSessionName="platform-change"
        )["Credentials"]
        return self.server.client("iam", aws_access_key_id=creds["AccessKeyId"],
                                  aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "perimeterdb", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("sealed")
    keys = {name: _key(name) for name in ("platform", "team", "team2")}
    world = _world(directory, keys)
    server = ServerProcess(directory / "data", extra_args=["--world", str(world)]).start()
    try:
        yield Lab(server, keys, world)
    finally:
        server.stop()


def denied(call: Callable[..., Any], **params: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**params)
    error = exc.value.response["Error"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, error
    assert error["Code"] == "AccessDenied", error
    assert SCP_DENY in error["Message"], error
    return str(error["Message"])


def test_delete_and_recreate_the_emergency_role_fails(lab: Lab) -> None:
    team = lab.client("team")
    # Taking the role apart first (as DeleteRole requires) is refused at the first step.
    denied(team.detach_role_policy, RoleName="emergency", PolicyArn=EXTRA)
    denied(team.detach_role_policy, RoleName="emergency", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    message = denied(team.delete_role, RoleName="emergency")
    assert message == (f"User: arn:aws:iam::{PROD}:user/team-admin is not authorized to perform: iam:DeleteRole "
                       f"on resource: {EMERGENCY} {SCP_DENY}")
    denied(team.create_role, RoleName="emergency", AssumeRolePolicyDocument=TRUST)
    role = team.get_role(RoleName="emergency")["Role"]  # still the declared role
    assert role["Arn"] == EMERGENCY and "MultiFactorAuthPresent" in json.dumps(role["AssumeRolePolicyDocument"])


def test_creating_the_name_in_a_second_prod_account_fails(lab: Lab) -> None:
    team2 = lab.client("team2")
    for name, path in (("emergency", "/"), ("Emergency", "/"), ("EMERGENCY", "/"), ("emergency", "/ops/")):
        message = denied(team2.create_role, RoleName=name, Path=path, AssumeRolePolicyDocument=TRUST)
        assert f"on resource: arn:aws:iam::{PROD2}:role{path}{name} " in message
    with pytest.raises(ClientError) as exc:
        team2.get_role(RoleName="emergency")
    assert exc.value.response["Error"]["Code"] == "NoSuchEntity"
    # Nor can the team make itself a role the SCPs do not apply to (a service-linked role's path).
    with pytest.raises(ClientError) as exc:
        team2.create_role(RoleName="escape", Path="/aws-service-role/dynamodb.amazonaws.com/", AssumeRolePolicyDocument=TRUST)
    assert exc.value.response["Error"]["Code"] == "InvalidInput"
    assert exc.value.response["Error"]["Message"] == (
        "Path prefix '/aws-service-role/' can only be used for AWS Service linked Roles")
    # An ordinary role next to it is the team's to make: the guardrail is about the sealed names only.
    name = f"emergency-{uuid.uuid4().hex[:6]}"
    team2.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    team2.delete_role(RoleName=name)


def test_lookalikes_in_the_same_account_are_refused_before_iam_answers(lab: Lab) -> None:
    team = lab.client("team")
    for name in ("Emergency", "EMERGENCY", "eMeRgEnCy"):
        denied(team.create_role, RoleName=name, AssumeRolePolicyDocument=TRUST)  # not EntityAlreadyExists
        denied(team.update_assume_role_policy, RoleName=name, PolicyDocument=TRUST)
        denied(team.delete_role, RoleName=name)


def test_every_change_to_the_sealed_role_fails(lab: Lab) -> None:
    team = lab.client("team")
    changes: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (team.update_assume_role_policy, {"PolicyDocument": TRUST}),
        (team.put_role_policy, {"PolicyName": "more", "PolicyDocument": DOC}),
        (team.delete_role_policy, {"PolicyName": "more"}),
        (team.attach_role_policy, {"PolicyArn": f"arn:aws:iam::{PROD}:policy/team-policy"}),
        (team.put_role_permissions_boundary, {"PermissionsBoundary": f"arn:aws:iam::{PROD}:policy/team-policy"}),
        (team.delete_role_permissions_boundary, {}),
        (team.tag_role, {"Tags": [{"Key": "owner", "Value": "feature-team"}]}),
        (team.untag_role, {"TagKeys": ["owner"]}),
        (team.update_role, {"MaxSessionDuration": 43200}),
        (team.delete_role, {}),
    ]
    for call, params in changes:
        denied(call, RoleName="emergency", **params)
    # The customer-managed policy attached to it is sealed with it.
    denied(team.create_policy_version, PolicyArn=EXTRA, PolicyDocument=DOC, SetAsDefault=True)
    denied(team.set_default_policy_version, PolicyArn=EXTRA, VersionId="v1")
    denied(team.delete_policy, PolicyArn=EXTRA)
    # A policy attached to nothing sealed is the team's to change.
    other = f"arn:aws:iam::{PROD}:policy/team-policy"
    version = team.create_policy_version(PolicyArn=other, PolicyDocument=DOC, SetAsDefault=False)["PolicyVersion"]
    team.delete_policy_version(PolicyArn=other, VersionId=version["VersionId"])
    # And the platform role, which could otherwise be made the team's own way in.
    denied(team.update_assume_role_policy, RoleName="platform", PolicyDocument=TRUST)
    denied(lab.client("team2").put_role_policy, RoleName="platform", PolicyName="x", PolicyDocument=DOC)
    role = team.get_role(RoleName="emergency")["Role"]
    assert role["MaxSessionDuration"] == 3600 and "Tags" not in role and "PermissionsBoundary" not in role


def test_refusals_are_audited_with_the_reason(lab: Lab) -> None:
    denied(lab.client("team").tag_role, RoleName="emergency", Tags=[{"Key": "audit", "Value": "me"}])
    from perimeterdb.audit.log import read_records

    records = list(read_records(lab.server.data_dir / "audit"))
    tagged = [r for r in records if r.get("eventName") == "TagRole" and r.get("errorCode") == "AccessDenied"]
    assert tagged and SCP_DENY in tagged[-1]["errorMessage"]
    assert tagged[-1]["userIdentity"]["arn"] == f"arn:aws:iam::{PROD}:user/team-admin"
    (decision,) = tagged[-1]["additionalEventData"]["decisions"]  # why: the guardrail's statement
    assert decision["decision"] == "ExplicitDeny" and decision["resource"] == EMERGENCY
    assert [(d["kind"], d["sid"]) for d in decision["determining"]] == [("guardrail", "ProtectSealedBreakGlassRoles")]


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_aws_cli_create_role_in_the_second_account_is_refused(lab: Lab) -> None:
    key = lab.keys["team2"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key["id"], "AWS_SECRET_ACCESS_KEY": key["secret"],
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
           "AWS_MAX_ATTEMPTS": "1"}
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        ["aws", "iam", "create-role", "--role-name", "emergency", "--assume-role-policy-document", TRUST,
         "--endpoint-url", lab.server.endpoint],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode != 0
    assert "AccessDenied" in done.stderr and SCP_DENY in done.stderr, done.stderr


def test_the_platform_can_still_manage_sealed_roles(lab: Lab) -> None:
    iam = lab.platform(PROD)
    iam.tag_role(RoleName="emergency", Tags=[{"Key": "reviewed", "Value": "yes"}])
    iam.untag_role(RoleName="emergency", TagKeys=["reviewed"])
    iam.put_role_policy(RoleName="emergency", PolicyName="platform-note", PolicyDocument=DOC)
    iam.delete_role_policy(RoleName="emergency", PolicyName="platform-note")
    version = iam.create_policy_version(PolicyArn=EXTRA, PolicyDocument=DOC, SetAsDefault=False)["PolicyVersion"]
    iam.delete_policy_version(PolicyArn=EXTRA, VersionId=version["VersionId"])
    # ... and create the declared role where the platform wants it, then remove it again.
    iam2 = lab.platform(PROD2)
    iam2.create_role(RoleName="emergency", AssumeRolePolicyDocument=TRUST)
    # Until it is declared there, it is an ordinary role the SCP's exception matches: a hole, reported.
    data = str(lab.server.data_dir)
    listed = json.loads(lab.cli("break-glass", "list-sealed", "--data-dir", data, "--json").stdout)
    stray = f"arn:aws:iam::{PROD2}:role/emergency"
    assert {r["name"]: r for r in listed["sealed"]}["emergency"]["collisions"] == [stray]
    assert [h["policy"] for h in listed["holes"]] == ["DenyDynamoDBOutsideVPC"] and stray in listed["holes"][0]["reason"]
    done = lab.cli("break-glass", "seal", "emergency", "--account", PROD2, "--data-dir", data)
    assert done.returncode == 0, done.stderr
    listed = json.loads(lab.cli("break-glass", "list-sealed", "--data-dir", data, "--json").stdout)
    assert {r["name"]: r for r in listed["sealed"]}["emergency"]["accounts"] == [PROD, PROD2]
    assert listed["holes"] == []
    denied(lab.client("team2").delete_role, RoleName="emergency")
    iam2.delete_role(RoleName="emergency")
    # The management account's own principals are exempt, as from any SCP.
    lab.client("platform").create_role(RoleName="emergency", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MGMT}:root"}, "Action": "sts:AssumeRole"}]}))
    lab.client("platform").delete_role(RoleName="emergency")


def test_cli_seal_takes_effect_on_the_running_server_and_unseal_releases(lab: Lab) -> None:
    data = str(lab.server.data_dir)
    name = f"incident-{uuid.uuid4().hex[:6]}"
    done = lab.cli("break-glass", "seal", name, "--data-dir", data)
    assert done.returncode == 0, done.stderr
    team2 = lab.client("team2")
    denied(team2.create_role, RoleName=name.upper(), AssumeRolePolicyDocument=TRUST)
    listed = lab.cli("break-glass", "list-sealed", "--data-dir", data, "--json")
    assert listed.returncode == 0, listed.stderr
    result = json.loads(listed.stdout)
    by_name = {r["name"]: r for r in result["sealed"]}
    assert PROD in by_name["emergency"]["accounts"] and by_name["emergency"]["collisions"] == []
    assert by_name[name]["source"] == "cli"
    assert result["platform_principals"] == ["arn:aws:iam::*:role/platform"] and result["holes"] == []
    assert result["platform_warnings"] == []  # the platform roles trust the management account only
    assert lab.cli("break-glass", "unseal", name, "--data-dir", data).returncode == 0
    team2.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    team2.delete_role(RoleName=name)
    bad = lab.cli("break-glass", "seal", "Emergency", "--data-dir", data)
    assert bad.returncode == 1 and "collides" in bad.stderr
    from perimeterdb.audit.log import read_records

    acts = [(r["eventName"], r["requestParameters"]["roleName"], r.get("errorCode"))
            for r in read_records(lab.server.data_dir / "audit") if r.get("eventSource") == "breakglass.perimeterdb"
            and r.get("eventName", "").endswith("BreakGlassRole")]
    # Each CLI run writes its own audit file, and records of one second from several writers have no order
    # among them: check that each act is there, not their order.
    for act in [("SealBreakGlassRole", name, None), ("UnsealBreakGlassRole", name, None),
                ("SealBreakGlassRole", "Emergency", "SealError")]:
        assert act in acts, (act, acts)


def test_printed_guardrails_are_a_valid_scp_that_denies_the_same_calls(lab: Lab) -> None:
    done = lab.cli("guardrails", "--data-dir", str(lab.server.data_dir))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert len(done.stdout.strip()) <= 5120
    scp = policy.load_policy(json.dumps(document), PolicyKind.SCP, PolicyRef("scp", "p-sealed"))
    assert EXTRA in json.dumps(document)
    from_world = lab.cli("guardrails", "--world", str(lab.world))
    assert from_world.returncode == 0 and json.loads(from_world.stdout) == document
    full = policy.load_policy('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
                              PolicyKind.SCP, PolicyRef("scp", "p-FullAWSAccess"))
    admin = policy.load_policy(json.dumps(_admin_of(PROD2) | {}), PolicyKind.IDENTITY, PolicyRef("identity", "admin"))
    admin_prod = policy.load_policy(json.dumps(_admin_of(PROD)), PolicyKind.IDENTITY, PolicyRef("identity", "admin"))

    def decide(principal_arn: str, account: str, action: str, resource: str) -> policy.Response:
        who = policy.PrincipalInfo(arn=principal_arn, principal_arn=principal_arn, account=account, type="User",
                                   userid="AIDAX")
        ctx = policy.build_context(who, action, resource, resource_account=account,
                                   keys={"aws:PrincipalArn": principal_arn})
        identity = (admin_prod,) if account == PROD else (admin,)
        return policy.decide(ctx, PolicySet(identity=identity, scp_levels=((full, scp),), principal_in_org=True))

    team = f"arn:aws:iam::{PROD}:user/team-admin"
    for action in ("iam:DeleteRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:AttachRolePolicy",
                   "iam:PutRolePermissionsBoundary", "iam:TagRole", "iam:CreateRole"):
        assert decide(team, PROD, action, EMERGENCY).decision is policy.Decision.EXPLICIT_DENY, action
    assert decide(team, PROD, "iam:CreatePolicyVersion", EXTRA).decision is policy.Decision.EXPLICIT_DENY
    team2 = f"arn:aws:iam::{PROD2}:user/team-admin"
    assert decide(team2, PROD2, "iam:CreateRole", f"arn:aws:iam::{PROD2}:role/emergency").denied_by == "scp"
    assert decide(team, PROD, "iam:CreateRole", f"arn:aws:iam::{PROD}:role/feature-x").allowed
    platform = f"arn:aws:iam::{PROD}:role/platform"
    ctx = policy.build_context(
        policy.PrincipalInfo(arn=f"arn:aws:sts::{PROD}:assumed-role/platform/s", principal_arn=platform,
                             account=PROD, type="AssumedRole", userid="AROAX:s"),
        "iam:DeleteRole", EMERGENCY, resource_account=PROD, keys={"aws:PrincipalArn": platform})
    assert policy.decide(ctx, PolicySet(identity=(admin_prod,), scp_levels=((full, scp),), principal_in_org=True)).allowed


def test_holes_on_validate_and_in_simulate(lab: Lab, tmp_path: Path) -> None:
    world = yaml.safe_load(lab.world.read_text())
    statement = world["organization"]["policies"]["DenyDynamoDBOutsideVPC"]["document"]["Statement"][0]
    exits = statement["Condition"].get("ArnNotLike") or statement["Condition"]["StringNotLike"]  # either operator
    exits["aws:PrincipalArn"] = "arn:aws:iam::*:role/emergency*"
    world["accounts"]["prod"]["roles"]["emergency-2"] = world["accounts"]["prod"]["roles"]["feature-team"]
    widened = tmp_path / "widened.yaml"
    widened.write_text(yaml.safe_dump(world, sort_keys=False))
    done = lab.cli("world", "validate", str(widened))
    assert done.returncode == 0 and "hole in the perimeter" in done.stderr and "emergency-2" in done.stderr
    simulated = lab.cli("simulate", "--world", str(widened), "--json", "--principal", f"arn:aws:iam::{PROD}:role/emergency-2",
                        "--action", "dynamodb:GetItem", "--resource", f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders")
    result = json.loads(simulated.stdout)
    assert result["decision"] == "Allow"
    assert result["perimeter_exception"]["hole"] is True
    assert result["perimeter_exception"]["statements"][0]["sid"] == "DenyDynamoDBOutsideVPC"
    world["break_glass"]["holes"] = "error"
    widened.write_text(yaml.safe_dump(world, sort_keys=False))
    assert lab.cli("world", "validate", str(widened)).returncode == 1
    refused = lab.cli("world", "apply", str(widened), "--data-dir", str(tmp_path / "data"))
    assert refused.returncode == 1 and "hole in the perimeter" in refused.stderr
    assert not (tmp_path / "data" / "perimeterdb.sqlite3").exists() or "created" not in refused.stdout
    # The declared world: the exception names only the sealed role, so it is no hole.
    sealed = lab.cli("simulate", "--world", str(lab.world), "--json", "--principal", EMERGENCY,
                     "--action", "dynamodb:GetItem", "--resource", f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders")
    assert json.loads(sealed.stdout)["perimeter_exception"] == {
        "principal_arn": EMERGENCY, "sealed_break_glass": True, "hole": False,
        "statements": json.loads(sealed.stdout)["perimeter_exception"]["statements"]}


def test_simulate_explains_the_guardrail_as_the_server_decides(lab: Lab) -> None:
    def simulate(resource: str) -> dict[str, Any]:
        done = lab.cli("simulate", "--data-dir", str(lab.server.data_dir), "--json", "--principal",
                       f"arn:aws:iam::{PROD}:user/team-admin", "--action", "iam:DeleteRole", "--resource", resource)
        return dict(json.loads(done.stdout))

    result = simulate(f"arn:aws:iam::{PROD}:role/EMERGENCY")
    assert result["decision"] == "ExplicitDeny"
    assert [(s["kind"], s["sid"]) for s in result["determining"]] == [("guardrail", "ProtectSealedBreakGlassRoles")]
    assert result["message"].endswith(f"on resource: arn:aws:iam::{PROD}:role/EMERGENCY {SCP_DENY}")
    assert simulate(f"arn:aws:iam::{PROD}:role/feature-team")["decision"] == "Allow"
