"""PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy: validation, revisions, messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _policy(arn: str, action: str = "dynamodb:GetItem", principal: Any = None) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": principal or {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": action,
                    "Resource": arn,
                }
            ],
        }
    )


def _err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_put_get_delete_with_revisions(ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    with pytest.raises(ClientError) as exc:
        ddb.get_resource_policy(ResourceArn=arn)
    assert _err(exc) == (
        "PolicyNotFoundException",
        f"Resource-based policy not found for the provided ResourceArn: {arn}",
    )
    rev1 = ddb.put_resource_policy(ResourceArn=arn, Policy=_policy(arn), ExpectedRevisionId="NO_POLICY")[
        "RevisionId"
    ]
    assert ddb.put_resource_policy(ResourceArn=arn, Policy=_policy(arn))["RevisionId"] == rev1
    got = ddb.get_resource_policy(ResourceArn=arn)
    assert got == {"Policy": _policy(arn), "RevisionId": rev1, "ResponseMetadata": got["ResponseMetadata"]}
    rev2 = ddb.put_resource_policy(
        ResourceArn=arn, Policy=_policy(arn, "dynamodb:PutItem"), ExpectedRevisionId=rev1
    )["RevisionId"]
    assert int(rev2) > int(rev1)
    with pytest.raises(ClientError) as exc:
        ddb.put_resource_policy(ResourceArn=arn, Policy=_policy(arn), ExpectedRevisionId=rev1)
    assert _err(exc) == (
        "PolicyNotFoundException",
        "Resource-based policy not found for the provided ResourceArn: Requested update for policy with revision id "
        f"{rev1}, but the policy associated to target table {hash_table} has revision id {rev2}.",
    )
    with pytest.raises(ClientError) as exc:
        ddb.put_resource_policy(ResourceArn=arn, Policy=_policy(arn), ExpectedRevisionId="NO_POLICY")
    assert _err(exc)[0] == "PolicyNotFoundException"
    ddb.delete_resource_policy(ResourceArn=arn, ExpectedRevisionId=rev2)
    with pytest.raises(ClientError) as exc:
        ddb.delete_resource_policy(ResourceArn=arn)
    assert _err(exc)[0] == "PolicyNotFoundException"


def test_policy_validation(ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    invalid = "One or more parameter values were invalid: "
    cases = [
        ("{not json", invalid + "Invalid policy document: This policy contains invalid Json"),
        (
            json.dumps({"Version": "2012-10-17", "Statement": []}),
            invalid + "Invalid policy document: Could not parse the policy: Statement is empty!",
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "dynamodb:*"}
                    ]
                }
            ),
            invalid + "Invalid policy document: Missing required field Resource",
        ),
        (
            _policy(arn, principal="*"),
            "Resource-based policy grants unbounded access in one or more elements. Please revise the policy to "
            "ensure least-privilege form of access",
        ),
        (_policy(arn, action="x" * 21000), invalid + "Maximum policy size of 20480 bytes exceeded"),
    ]
    for text, message in cases:
        with pytest.raises(ClientError) as exc:
            ddb.put_resource_policy(ResourceArn=arn, Policy=text)
        assert _err(exc) == ("ValidationException", message)


def test_resource_arn_errors(ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    cases = [
        (
            hash_table,
            "ValidationException",
            f"One or more parameter values were invalid: ARNs must start with 'arn:': {hash_table}",
        ),
        (
            arn + "x",
            "ResourceNotFoundException",
            f"Requested resource not found: Table: {hash_table}x not found",
        ),
        (
            arn.replace("us-east-1", "eu-west-1"),
            "ValidationException",
            f"One or more parameter values were invalid: Invalid resource Arn: {arn.replace('us-east-1', 'eu-west-1')}",
        ),
    ]
    for resource, code, message in cases:
        with pytest.raises(ClientError) as exc:
            ddb.get_resource_policy(ResourceArn=resource)
        assert _err(exc) == (code, message)
