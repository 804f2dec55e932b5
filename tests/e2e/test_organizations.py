"""The Organizations API through boto3 against a real server of its own (the org is server-wide state)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess

DENY_ALL_DDB = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}]}
)


@pytest.fixture(scope="module")
def org_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("orgs") / "data"
    proc = ServerProcess(data_dir, extra_args=["--durability", "normal"]).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def org(org_server: ServerProcess) -> Any:
    return org_server.client("organizations")


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_lifecycle(org: Any, org_server: ServerProcess) -> None:
    with pytest.raises(ClientError) as exc:
        org.describe_organization()
    assert _code(exc) == "AWSOrganizationsNotInUseException"

    created = org.create_organization(FeatureSet="ALL")["Organization"]
    assert created["Id"].startswith("o-")
    with pytest.raises(ClientError) as exc:
        org.create_organization(FeatureSet="ALL")
    assert _code(exc) == "AlreadyInOrganizationException"
    described = org.describe_organization()["Organization"]
    assert described["MasterAccountId"] == created["MasterAccountId"]

    root = org.list_roots()["Roots"][0]
    assert root["Id"].startswith("r-") and root["PolicyTypes"] == []
    enabled = org.enable_policy_type(RootId=root["Id"], PolicyType="SERVICE_CONTROL_POLICY")["Root"]
    assert {"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"} in enabled["PolicyTypes"]
    org.enable_policy_type(RootId=root["Id"], PolicyType="RESOURCE_CONTROL_POLICY")
    with pytest.raises(ClientError) as exc:
        org.enable_policy_type(RootId=root["Id"], PolicyType="SERVICE_CONTROL_POLICY")
    assert _code(exc) == "PolicyTypeAlreadyEnabledException"
    on_root = org.list_policies_for_target(TargetId=root["Id"], Filter="SERVICE_CONTROL_POLICY")["Policies"]
    assert [p["Id"] for p in on_root] == ["p-FullAWSAccess"]
    assert on_root[0]["AwsManaged"] is True
    rcps = org.list_policies_for_target(TargetId=root["Id"], Filter="RESOURCE_CONTROL_POLICY")["Policies"]
    assert [p["Name"] for p in rcps] == ["RCPFullAWSAccess"]

    # OUs nest five levels deep, not six.
    parent = root["Id"]
    chain = []
    for level in range(5):
        ou = org.create_organizational_unit(ParentId=parent, Name=f"L{level}")["OrganizationalUnit"]
        chain.append(ou["Id"])
        parent = ou["Id"]
    with pytest.raises(ClientError) as exc:
        org.create_organizational_unit(ParentId=parent, Name="too-deep")
    assert _code(exc) == "ConstraintViolationException"
    assert exc.value.response["Reason"] == "OU_DEPTH_LIMIT_EXCEEDED"
    assert org.list_parents(ChildId=chain[1])["Parents"] == [{"Id": chain[0], "Type": "ORGANIZATIONAL_UNIT"}]
    children = org.list_children(ParentId=root["Id"], ChildType="ORGANIZATIONAL_UNIT")["Children"]
    assert {"Id": chain[0], "Type": "ORGANIZATIONAL_UNIT"} in children
    ous = org.list_organizational_units_for_parent(ParentId=chain[0])["OrganizationalUnits"]
    assert [o["Id"] for o in ous] == [chain[1]]

    # Accounts: created for real, placed at the root, movable.
    status = org.create_account(Email="dev@example.com", AccountName="dev")["CreateAccountStatus"]
    described_status = org.describe_create_account_status(CreateAccountRequestId=status["Id"])
    status = described_status["CreateAccountStatus"]
    assert status["State"] == "SUCCEEDED"
    account = status["AccountId"]
    assert account in [a["Id"] for a in org.list_accounts()["Accounts"]]
    org.move_account(AccountId=account, SourceParentId=root["Id"], DestinationParentId=chain[1])
    assert org.list_parents(ChildId=account)["Parents"][0]["Id"] == chain[1]
    paths = org.describe_account(AccountId=account)["Account"]["Paths"]
    assert paths == [f"{created['Id']}/{root['Id']}/{chain[0]}/{chain[1]}/{account}/"]
    with pytest.raises(ClientError) as exc:
        org.move_account(AccountId=account, SourceParentId=root["Id"], DestinationParentId=chain[0])
    assert _code(exc) == "AccountNotFoundException"
    dup = org.create_account(Email="dev@example.com", AccountName="dev2")["CreateAccountStatus"]
    failed = org.describe_create_account_status(CreateAccountRequestId=dup["Id"])["CreateAccountStatus"]
    assert failed["State"] == "FAILED" and failed["FailureReason"] == "EMAIL_ALREADY_EXISTS"

    # Policies.
    with pytest.raises(ClientError) as exc:
        org.create_policy(Content="x" * 5121, Description="d", Name="big", Type="SERVICE_CONTROL_POLICY")
    assert exc.value.response["Reason"] == "POLICY_CONTENT_LIMIT_EXCEEDED"
    with pytest.raises(ClientError) as exc:
        org.create_policy(Content='{"Statement": 3}', Description="d", Name="bad", Type="SERVICE_CONTROL_POLICY")
    assert _code(exc) == "MalformedPolicyDocumentException"
    policy = org.create_policy(
        Content=DENY_ALL_DDB, Description="no ddb", Name="NoDDB", Type="SERVICE_CONTROL_POLICY"
    )["Policy"]["PolicySummary"]
    assert policy["Arn"].endswith(f"/{created['Id']}/service_control_policy/{policy['Id']}")
    with pytest.raises(ClientError) as exc:
        org.create_policy(Content=DENY_ALL_DDB, Description="d", Name="NoDDB", Type="SERVICE_CONTROL_POLICY")
    assert _code(exc) == "DuplicatePolicyException"
    org.attach_policy(PolicyId=policy["Id"], TargetId=account)
    with pytest.raises(ClientError) as exc:
        org.attach_policy(PolicyId=policy["Id"], TargetId=account)
    assert _code(exc) == "DuplicatePolicyAttachmentException"
    targets = org.list_targets_for_policy(PolicyId=policy["Id"])["Targets"]
    assert targets == [
        {"TargetId": account, "Arn": targets[0]["Arn"], "Name": "dev", "Type": "ACCOUNT"}
    ]
    with pytest.raises(ClientError) as exc:
        org.delete_policy(PolicyId=policy["Id"])
    assert _code(exc) == "PolicyInUseException"
    org.detach_policy(PolicyId="p-FullAWSAccess", TargetId=account)
    with pytest.raises(ClientError) as exc:
        org.detach_policy(PolicyId=policy["Id"], TargetId=account)
    assert _code(exc) == "ConstraintViolationException"
    assert exc.value.response["Reason"] == "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"
    with pytest.raises(ClientError) as exc:
        org.detach_policy(PolicyId="p-RCPFullAWSAccess", TargetId=account)
    assert _code(exc) == "ConstraintViolationException"
    org.attach_policy(PolicyId="p-FullAWSAccess", TargetId=account)
    org.detach_policy(PolicyId=policy["Id"], TargetId=account)
    updated = org.update_policy(PolicyId=policy["Id"], Name="NoDynamo")["Policy"]
    assert updated["PolicySummary"]["Name"] == "NoDynamo" and updated["Content"] == DENY_ALL_DDB
    assert org.describe_policy(PolicyId=policy["Id"])["Policy"]["PolicySummary"]["Name"] == "NoDynamo"
    listed = org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
    assert {p["Id"] for p in listed} == {"p-FullAWSAccess", policy["Id"]}
    org.delete_policy(PolicyId=policy["Id"])
    with pytest.raises(ClientError) as exc:
        org.describe_policy(PolicyId=policy["Id"])
    assert _code(exc) == "PolicyNotFoundException"

    # Pagination.
    page = org.list_accounts(MaxResults=1)
    assert len(page["Accounts"]) == 1 and page["NextToken"]
    rest = org.list_accounts(NextToken=page["NextToken"])
    assert len(page["Accounts"]) + len(rest["Accounts"]) == 2

    # Disabling a policy type detaches its policies everywhere.
    org.disable_policy_type(RootId=root["Id"], PolicyType="RESOURCE_CONTROL_POLICY")
    with pytest.raises(ClientError) as exc:
        org.list_policies_for_target(TargetId=root["Id"], Filter="TAG_POLICY")
    assert _code(exc) == "PolicyTypeNotAvailableForOrganizationException"


def test_unknown_operation(org_server: ServerProcess) -> None:
    import urllib.request

    request = urllib.request.Request(
        org_server.endpoint + "/",
        data=b"{}",
        method="POST",
        headers={
            "x-amz-target": "AWSOrganizationsV20161128.Nope",
            "content-type": "application/x-amz-json-1.1",
        },
    )
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as err:
        body = json.loads(err.read())
        assert body["__type"].endswith("#UnknownOperationException")
    else:
        raise AssertionError("expected an error")
