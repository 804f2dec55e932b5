"""Policies are validated by the engine wherever they are stored; a stored policy that cannot be compiled
fails closed (AccessDenied naming it, audited, never a 500); an administrator can always remove it.

A "broken" stored policy is simulated the only way one can exist now: written straight into the storage
while the server is stopped (an old row, or one written around the API), then the server is restarted.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from perimeterdb.audit.log import read_records
from tests.support.server import CLIENT_CONFIG, ServerProcess

MGMT, TEAM = "111111111111", "222222222222"
BAD_CONDITION = {"NoSuchOperator": {"aws:SourceIp": "10.0.0.0/8"}}
INVALID = "One or more parameter values were invalid: Invalid policy document: "


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _bad_resource_policy(arn: str) -> str:
    return _doc(
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "dynamodb:*", "Resource": arn,
         "Condition": BAD_CONDITION}
    )


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def _audit(server: ServerProcess) -> list[dict[str, Any]]:
    return list(read_records(server.data_dir / "audit"))


def _rewrite(server: ServerProcess, space: str, hk: bytes, change: Any) -> None:
    """Stop the server, change one stored row with ``change(value) -> value``, start it again."""
    server.stop()
    conn = sqlite3.connect(server.data_dir / "perimeterdb.sqlite3", timeout=10)
    try:
        (raw,) = conn.execute("SELECT val FROM rows WHERE space=? AND hk=?", (space, hk)).fetchone()
        value = change(json.loads(raw))
        conn.execute("UPDATE rows SET val=? WHERE space=? AND hk=?", (json.dumps(value).encode(), space, hk))
        conn.commit()
    finally:
        conn.close()
    server.start()


def _store_table_policy(server: ServerProcess, account: str, table: str, document: str) -> None:
    def change(description: dict[str, Any]) -> dict[str, Any]:
        description["_resource_policy"] = {"Policy": document, "RevisionId": "1700000000000"}
        return description

    _rewrite(server, "meta:tables", f"{account}/us-east-1/{table}".encode(), change)


# --- one server, one account ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("broken") / "data", extra_args=["--durability", "normal"])
    proc.start()
    yield proc
    proc.stop()


def _client(server: ServerProcess, key: str, secret: str, service: str = "dynamodb") -> Any:
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=CLIENT_CONFIG)


def _table(ddb: Any, name: str) -> str:
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    return str(ddb.describe_table(TableName=name)["Table"]["TableArn"])


def test_put_resource_policy_and_create_table_refuse_what_the_engine_cannot_compile(solo: ServerProcess) -> None:
    ddb = solo.client()
    arn = _table(ddb, "validated")
    with pytest.raises(ClientError) as exc:
        ddb.put_resource_policy(ResourceArn=arn, Policy=_bad_resource_policy(arn))
    code, status, message = _error(exc)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith(INVALID) and "Invalid Condition type : NoSuchOperator" in message
    with pytest.raises(ClientError) as exc:
        ddb.get_resource_policy(ResourceArn=arn)
    assert _error(exc)[0] == "PolicyNotFoundException", "nothing was stored"
    bad_action = _doc({"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "GetItem",
                       "Resource": arn})
    with pytest.raises(ClientError) as exc:
        ddb.put_resource_policy(ResourceArn=arn, Policy=bad_action)
    assert _error(exc)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as exc:
        ddb.create_table(TableName="never-made", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST", ResourcePolicy=_bad_resource_policy(arn))
    code, status, message = _error(exc)
    assert (code, status) == ("ValidationException", 400) and "NoSuchOperator" in message
    assert "never-made" not in ddb.list_tables()["TableNames"]
    # The table is still usable (the bug made it answer 500 to everything from then on).
    ddb.put_item(TableName="validated", Item={"pk": {"S": "a"}})


def test_a_broken_table_policy_denies_names_itself_and_the_admin_removes_it(solo: ServerProcess) -> None:
    ddb, iam = solo.client(), solo.client("iam")
    account = solo.client("sts").get_caller_identity()["Account"]
    arn = _table(ddb, "bricked")
    ddb.put_item(TableName="bricked", Item={"pk": {"S": "a"}})
    # A feature team that may read and write items, and nothing else.
    iam.create_user(UserName="team")
    iam.put_user_policy(UserName="team", PolicyName="items", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DescribeTable"],
         "Resource": "*"}))
    key = iam.create_access_key(UserName="team")["AccessKey"]
    team = _client(solo, key["AccessKeyId"], key["SecretAccessKey"])

    _store_table_policy(solo, account, "bricked", _bad_resource_policy(arn))
    admin_arn = f"arn:aws:iam::{account}:user/admin"
    for caller, who in ((ddb, admin_arn), (team, f"arn:aws:iam::{account}:user/team")):
        with pytest.raises(ClientError) as exc:
            caller.get_item(TableName="bricked", Key={"pk": {"S": "a"}})
        assert _error(exc) == (
            "AccessDeniedException", 400,
            f"User: {who} is not authorized to perform: dynamodb:GetItem on resource: {arn} "
            "with an explicit deny in a resource-based policy",
        )
    denied = [r for r in _audit(solo) if r["eventName"] == "GetItem" and r.get("errorCode") == "AccessDeniedException"]
    decision = denied[-1]["additionalEventData"]["decisions"][0]
    assert decision["decision"] == "ExplicitDeny" and decision["deniedBy"] == "resource"
    assert decision["determining"][0]["policyId"] == arn and decision["determining"][0]["sid"] == "BrokenPolicy"
    assert any("cannot be compiled" in e and "NoSuchOperator" in e for e in decision["errors"])

    # The feature team may not use the repair rule: its identity policies do not allow the removal.
    for call in (lambda: team.delete_resource_policy(ResourceArn=arn), lambda: team.delete_table(TableName="bricked")):
        with pytest.raises(ClientError) as exc:
            call()
        assert _error(exc)[:2] == ("AccessDeniedException", 400)
    # The administrator (identity policy allows it) removes the broken policy; the table works again.
    ddb.delete_resource_policy(ResourceArn=arn)
    assert ddb.get_item(TableName="bricked", Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}
    assert team.get_item(TableName="bricked", Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}


def test_the_admin_deletes_a_table_whose_policy_is_broken(solo: ServerProcess) -> None:
    ddb = solo.client()
    account = solo.client("sts").get_caller_identity()["Account"]
    arn = _table(ddb, "bricked-too")
    _store_table_policy(solo, account, "bricked-too", _bad_resource_policy(arn))
    with pytest.raises(ClientError) as exc:
        ddb.describe_table(TableName="bricked-too")
    assert _error(exc)[:2] == ("AccessDeniedException", 400)
    ddb.delete_table(TableName="bricked-too")
    assert "bricked-too" not in ddb.list_tables()["TableNames"]


def test_a_broken_identity_policy_denies_its_principal_until_an_administrator_fixes_it(solo: ServerProcess) -> None:
    iam = solo.client("iam")
    account = solo.client("sts").get_caller_identity()["Account"]
    iam.create_user(UserName="broken-id")
    iam.put_user_policy(UserName="broken-id", PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*"}))
    key = iam.create_access_key(UserName="broken-id")["AccessKey"]
    user = _client(solo, key["AccessKeyId"], key["SecretAccessKey"])
    assert isinstance(user.list_tables()["TableNames"], list)
    bad = _doc({"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*", "Condition": BAD_CONDITION})
    with pytest.raises(ClientError) as exc:
        iam.put_user_policy(UserName="broken-id", PolicyName="p", PolicyDocument=bad)
    assert _error(exc)[:2] == ("MalformedPolicyDocument", 400)

    def change(record: dict[str, Any]) -> dict[str, Any]:
        record["inline"]["p"] = bad
        return record

    _rewrite(solo, "meta:iam-users", b"broken-id", change)
    with pytest.raises(ClientError) as exc:
        user.list_tables()
    code, status, message = _error(exc)
    assert (code, status) == ("AccessDeniedException", 400)
    assert message.startswith(f"User: arn:aws:iam::{account}:user/broken-id is not authorized to perform: "
                              "dynamodb:ListTables")
    assert "with an explicit deny in an identity-based policy" in message
    iam.delete_user_policy(UserName="broken-id", PolicyName="p")  # the administrator is not affected
    iam.put_user_policy(UserName="broken-id", PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*"}))
    assert isinstance(user.list_tables()["TableNames"], list)


# --- an organization: a broken SCP ---------------------------------------------------------------------


def _key() -> dict[str, str]:
    return {"id": "AKIAPDB" + secrets.token_hex(7).upper()[:13], "secret": secrets.token_urlsafe(30)[:40]}


@pytest.fixture(scope="module")
def org_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, dict[str, str]]]]:
    base: Path = tmp_path_factory.mktemp("broken-org")
    keys = {"admin": _key(), "dev": _key()}
    dynamodb_all = {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    world = {
        "version": 1,
        "accounts": {
            "management": {"id": MGMT, "name": "management", "email": "m@example.com", "users": {
                "platform-admin": {"policies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
                                   "access_keys": [keys["admin"]]}}},
            "team": {"id": TEAM, "name": "team", "email": "t@example.com", "users": {
                "dev": {"inline": {"dynamodb-all": dynamodb_all}, "access_keys": [keys["dev"]]}}},
        },
        "organization": {
            "management_account": "management",
            "policy_types": ["SERVICE_CONTROL_POLICY"],
            "policies": {"Guard": {"type": "SERVICE_CONTROL_POLICY", "description": "guard", "document": {
                "Version": "2012-10-17",
                "Statement": [{"Sid": "NoDelete", "Effect": "Deny", "Action": "dynamodb:DeleteTable",
                               "Resource": "*"}]}}},
            "units": [{"name": "Teams", "policies": ["Guard"], "accounts": ["team"]}],
        },
    }
    path = base / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    proc = ServerProcess(base / "data", extra_args=["--durability", "normal", "--world", str(path)]).start()
    proc.extra_args = ["--durability", "normal"]  # later restarts keep what the test wrote into storage
    yield proc, keys
    proc.stop()


def test_organizations_refuses_an_scp_it_cannot_compile(org_lab: Any) -> None:
    server, keys = org_lab
    org = _client(server, keys["admin"]["id"], keys["admin"]["secret"], "organizations")
    bad = _doc({"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*", "Condition": BAD_CONDITION})
    with pytest.raises(ClientError) as exc:
        org.create_policy(Content=bad, Description="d", Name="Bad", Type="SERVICE_CONTROL_POLICY")
    code, status, message = _error(exc)
    assert (code, status) == ("MalformedPolicyDocumentException", 400) and "NoSuchOperator" in message
    guard = next(p for p in org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"] if p["Name"] == "Guard")
    with pytest.raises(ClientError) as exc:
        org.update_policy(PolicyId=guard["Id"], Content=bad)
    assert _error(exc)[:2] == ("MalformedPolicyDocumentException", 400)


def test_a_broken_scp_denies_its_accounts_and_the_management_account_repairs_it(org_lab: Any) -> None:
    server, keys = org_lab
    org = _client(server, keys["admin"]["id"], keys["admin"]["secret"], "organizations")
    dev = _client(server, keys["dev"]["id"], keys["dev"]["secret"])
    assert isinstance(dev.list_tables()["TableNames"], list)
    guard = next(p for p in org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"] if p["Name"] == "Guard")
    broken = _doc({"Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*",
                   "Condition": BAD_CONDITION})

    def change(doc: dict[str, Any]) -> dict[str, Any]:
        doc["policies"][guard["Id"]]["content"] = broken
        return doc

    _rewrite(server, "meta:org", b"state", change)
    with pytest.raises(ClientError) as exc:
        dev.list_tables()
    code, status, message = _error(exc)
    assert (code, status) == ("AccessDeniedException", 400)
    assert message.startswith(
        f"User: arn:aws:iam::{TEAM}:user/dev is not authorized to perform: dynamodb:ListTables on resource: "
    )
    assert message.endswith(f" with an explicit deny in a service control policy: {guard['Arn']}")
    record = [r for r in _audit(server) if r["eventName"] == "ListTables" and r.get("errorCode")][-1]
    decision = record["additionalEventData"]["decisions"][0]
    assert decision["deniedBy"] == "scp" and decision["determining"][0]["policyId"] == guard["Id"]
    assert decision["determining"][0]["sid"] == "BrokenPolicy" and "cannot be compiled" in decision["errors"][0]

    # The management account is not subject to SCPs: it can read, fix, detach and delete the broken policy.
    described = org.describe_policy(PolicyId=guard["Id"])["Policy"]
    assert described["Content"] == broken
    fixed = _doc({"Sid": "NoDelete", "Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"})
    org.update_policy(PolicyId=guard["Id"], Content=fixed)
    assert isinstance(dev.list_tables()["TableNames"], list)
    _rewrite(server, "meta:org", b"state", change)
    target = org.list_targets_for_policy(PolicyId=guard["Id"])["Targets"][0]["TargetId"]
    org.detach_policy(PolicyId=guard["Id"], TargetId=target)
    org.delete_policy(PolicyId=guard["Id"])
    assert isinstance(dev.list_tables()["TableNames"], list)
