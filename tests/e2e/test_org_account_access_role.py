"""CreateAccount makes OrganizationAccountAccessRole in the new account, as AWS Organizations does: full
administrative permissions, assumable from the management account only (issue 18: accounts made with
CreateAccount had no role, so nobody could get in)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.server import CLIENT_CONFIG, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("orgrole") / "data"
    proc = ServerProcess(data_dir, extra_args=["--durability", "normal"]).start()
    yield proc
    proc.stop()


def _created(org: Any, **params: Any) -> str:
    request = org.create_account(**params)["CreateAccountStatus"]["Id"]
    status = org.describe_create_account_status(CreateAccountRequestId=request)["CreateAccountStatus"]
    assert status["State"] == "SUCCEEDED", status
    return str(status["AccountId"])


def _client(server: ServerProcess, service: str, credentials: dict[str, str]) -> Any:
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", config=CLIENT_CONFIG,
                        aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def test_create_account_makes_the_access_role(server: ServerProcess) -> None:
    org = server.client("organizations")
    management = org.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
    member = _created(org, Email="team@example.com", AccountName="team")
    sts = server.client("sts")
    assumed = sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole",
                              RoleSessionName="admin")["Credentials"]
    iam = _client(server, "iam", assumed)
    role = iam.get_role(RoleName="OrganizationAccountAccessRole")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole"
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(urllib.parse.unquote(trust)) if isinstance(trust, str) else trust
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{management}:root"},
                                   "Action": "sts:AssumeRole"}]
    attached = iam.list_attached_role_policies(RoleName="OrganizationAccountAccessRole")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == ["arn:aws:iam::aws:policy/AdministratorAccess"]
    # full administrative permissions in the member account
    ddb = _client(server, "dynamodb", assumed)
    ddb.create_table(TableName="team-table", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    assert _client(server, "sts", assumed).get_caller_identity()["Account"] == member
    iam.create_user(UserName="team-admin")  # the team can now be given its own people


def test_custom_role_name_and_no_access_from_other_accounts(server: ServerProcess) -> None:
    org = server.client("organizations")
    member = _created(org, Email="other@example.com", AccountName="other", RoleName="OrgAdmin")
    sts = server.client("sts")
    assumed = sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/OrgAdmin", RoleSessionName="aa")["Credentials"]
    with pytest.raises(ClientError) as exc:  # only the given name is created
        sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole", RoleSessionName="aa")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    # A principal of another member account (even an administrator there) cannot assume it: the trust
    # names the management account only.
    team = _created(org, Email="third@example.com", AccountName="third")
    third = _client(server, "sts", sts.assume_role(
        RoleArn=f"arn:aws:iam::{team}:role/OrganizationAccountAccessRole", RoleSessionName="bb")["Credentials"])
    with pytest.raises(ClientError) as exc:
        third.assume_role(RoleArn=f"arn:aws:iam::{member}:role/OrgAdmin", RoleSessionName="cc")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert assumed["AccessKeyId"].startswith("ASIA")


def test_a_sealed_break_glass_name_is_refused_as_role_name(tmp_path: Path) -> None:
    key_id, secret = "AKIAMANAGEMENT000001", "m" * 40
    world = tmp_path / "world.yaml"
    world.write_text(
        "version: 1\naccounts:\n  management:\n    id: '111111111111'\n    users:\n      boss:\n"
        f"        access_keys: [{{id: {key_id}, secret: {secret}}}]\n"
        "        policies: [arn:aws:iam::aws:policy/AdministratorAccess]\n"
        "  prod:\n    id: '222222222222'\n    roles:\n      emergency:\n"
        "        break_glass: {max_session_seconds: 3600}\n"
        "        trust: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: {AWS: "
        "'arn:aws:iam::222222222222:root'}, Action: 'sts:AssumeRole', Condition: {Bool: "
        "{'aws:MultiFactorAuthPresent': 'true'}}}]}\n"
        "organization:\n  management_account: management\n  root: {accounts: [prod]}\n"
        "break_glass: {sealed_roles: [emergency]}\n")
    proc = ServerProcess(tmp_path / "data", extra_args=["--world", str(world), "--durability", "normal"]).start()
    try:
        org = proc.client("organizations", aws_access_key_id=key_id, aws_secret_access_key=secret)
        for name in ("emergency", "Emergency"):
            with pytest.raises(ClientError) as exc:
                org.create_account(Email=f"{name}@example.com", AccountName=name, RoleName=name)
            assert exc.value.response["Error"]["Code"] == "InvalidInputException"
            assert "reserved" in exc.value.response["Error"]["Message"]
        assert _created(org, Email="ok@example.com", AccountName="ok")  # the default name still works
        accounts = [a["Name"] for a in org.list_accounts()["Accounts"]]
        assert "emergency" not in accounts and "Emergency" not in accounts
    finally:
        proc.stop()
