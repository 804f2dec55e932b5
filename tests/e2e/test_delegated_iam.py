"""The platform team's guardrail for delegated IAM: feature teams may create and edit roles only when the
approved permissions boundary is attached (iam:PermissionsBoundary), and sessions of those roles are then
limited by it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_roles_only_with_the_boundary(server: ServerProcess, hash_table: str, ddb: Any) -> None:
    admin = server.client("iam")
    suffix = uuid.uuid4().hex[:6]
    table_arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    account = table_arn.split(":")[4]
    fence = admin.create_policy(
        PolicyName=f"fence-{suffix}",
        PolicyDocument=_doc(
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "sts:AssumeRole"], "Resource": "*"}
        ),
    )["Policy"]["Arn"]
    team_roles = f"arn:aws:iam::{account}:role/team-*"
    admin.create_user(UserName=f"dev-{suffix}")
    admin.put_user_policy(
        UserName=f"dev-{suffix}",
        PolicyName="delegated",
        PolicyDocument=_doc(
            {
                "Effect": "Allow",
                "Action": ["iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"],
                "Resource": team_roles,
                "Condition": {"StringEquals": {"iam:PermissionsBoundary": fence}},
            },
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": team_roles},
        ),
    )
    key = admin.create_access_key(UserName=f"dev-{suffix}")["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    dev = server.client("iam", **creds)

    with pytest.raises(ClientError) as exc:
        dev.create_role(RoleName=f"team-a-{suffix}", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    role = f"team-b-{suffix}"
    dev.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST), PermissionsBoundary=fence)
    # Editing a role that carries the boundary is allowed; the role asks for far more than the boundary.
    dev.put_role_policy(
        RoleName=role,
        PolicyName="wide",
        PolicyDocument=_doc({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}),
    )
    with pytest.raises(ClientError) as exc:  # removing the boundary is not delegated
        dev.delete_role_permissions_boundary(RoleName=role)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"

    session = server.client("sts", **creds).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="dev-session"
    )["Credentials"]
    table = server.client(
        "dynamodb",
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )
    table.get_item(TableName=hash_table, Key={"pk": {"S": "x"}})  # inside identity policy and boundary
    with pytest.raises(ClientError) as exc:  # the role's policy allows it; the boundary does not
        table.put_item(TableName=hash_table, Item={"pk": {"S": "x"}})
    assert exc.value.response["Error"]["Message"].endswith(
        "because no permissions boundary allows the dynamodb:PutItem action"
    )
