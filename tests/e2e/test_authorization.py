"""Authorization on the wire: IAM identities decide what DynamoDB does, with AWS's messages."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess


@pytest.fixture
def user_client(server: ServerProcess) -> Iterator[tuple[Any, Any, str]]:
    """A fresh IAM user with no policies, its DynamoDB client, and its name."""
    iam = server.client("iam")
    name = "u-" + uuid.uuid4().hex[:8]
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    client = server.client(
        "dynamodb", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    yield iam, client, name
    del arn


def test_user_without_policies_is_denied_with_aws_message(
    user_client: Any, hash_table: str, ddb: Any
) -> None:
    _iam, client, name = user_client
    table_arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    account = table_arn.split(":")[4]
    with pytest.raises(ClientError) as exc:
        client.get_item(TableName=hash_table, Key={"pk": {"S": "x"}})
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{account}:user/{name} is not authorized to perform: dynamodb:GetItem on resource: "
        f"{table_arn} because no identity-based policy allows the dynamodb:GetItem action"
    )


def test_inline_policy_takes_effect_on_the_next_request(user_client: Any, hash_table: str, ddb: Any) -> None:
    iam, client, name = user_client
    table_arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": table_arn},
            {
                "Sid": "OnlyOwnPartition",
                "Effect": "Deny",
                "Action": "dynamodb:PutItem",
                "Resource": table_arn,
                "Condition": {"ForAnyValue:StringNotEquals": {"dynamodb:LeadingKeys": ["${aws:username}"]}},
            },
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    client.get_item(TableName=hash_table, Key={"pk": {"S": "x"}})
    client.put_item(TableName=hash_table, Item={"pk": {"S": name}})
    with pytest.raises(ClientError) as exc:
        client.put_item(TableName=hash_table, Item={"pk": {"S": "someone-else"}})
    account = table_arn.split(":")[4]
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{account}:user/{name} is not authorized to perform: dynamodb:PutItem on resource: "
        f"{table_arn} with an explicit deny in an identity-based policy"
    )
    with pytest.raises(ClientError) as exc:
        client.delete_item(TableName=hash_table, Key={"pk": {"S": name}})
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    iam.delete_user_policy(UserName=name, PolicyName="p")
    with pytest.raises(ClientError) as exc:
        client.get_item(TableName=hash_table, Key={"pk": {"S": "x"}})
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"


def _get_item_policy(table_arn: str, condition: dict[str, Any]) -> dict[str, Any]:
    """An identity policy allowing GetItem on one table under one condition block."""
    statement = {
        "Effect": "Allow",
        "Action": "dynamodb:GetItem",
        "Resource": table_arn,
        "Condition": condition,
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_remembered_decisions_follow_the_keys_the_policy_reads(
    user_client: Any, hash_table: str, ddb: Any
) -> None:
    """The authorizer reuses a decision only while the condition keys it read are unchanged: the same
    principal, action and table alternate between allowed and denied as dynamodb:LeadingKeys changes."""
    iam, client, name = user_client
    table_arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    policy = _get_item_policy(
        table_arn, {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${aws:username}"]}}
    )
    iam.put_user_policy(UserName=name, PolicyName="own", PolicyDocument=json.dumps(policy))
    for _ in range(3):
        client.get_item(TableName=hash_table, Key={"pk": {"S": name}})
        with pytest.raises(ClientError) as exc:
            client.get_item(TableName=hash_table, Key={"pk": {"S": "other"}})
        assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    # A projection is not read by this policy, so it does not matter; the key still does.
    client.get_item(TableName=hash_table, Key={"pk": {"S": name}}, ProjectionExpression="pk")
    policy["Statement"][0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] = ["other"]
    iam.put_user_policy(UserName=name, PolicyName="own", PolicyDocument=json.dumps(policy))
    client.get_item(TableName=hash_table, Key={"pk": {"S": "other"}})
    with pytest.raises(ClientError):
        client.get_item(TableName=hash_table, Key={"pk": {"S": name}})


def test_x_forwarded_for_does_not_change_the_source_ip(user_client: Any, hash_table: str, ddb: Any) -> None:
    """The perimeter is made of the connection's real address: a client on the same host (the address
    uvicorn trusts by default for proxy headers) cannot claim another with X-Forwarded-For."""
    iam, client, name = user_client
    table_arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    policy = _get_item_policy(table_arn, {"IpAddress": {"aws:SourceIp": "10.77.9.9/32"}})
    iam.put_user_policy(UserName=name, PolicyName="from-afar", PolicyDocument=json.dumps(policy))

    def spoof(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = "10.77.9.9"
        request.headers["X-Real-IP"] = "10.77.9.9"

    client.meta.events.register("before-send.dynamodb.GetItem", spoof)
    with pytest.raises(ClientError) as exc:
        client.get_item(TableName=hash_table, Key={"pk": {"S": "x"}})
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"


def test_list_tables_is_authorized_on_star(user_client: Any) -> None:
    iam, client, name = user_client
    with pytest.raises(ClientError) as exc:
        client.list_tables()
    assert "dynamodb:ListTables on resource: *" in exc.value.response["Error"]["Message"]
    iam.put_user_policy(
        UserName=name,
        PolicyName="list",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "dynamodb:List*", "Resource": "*"}],
            }
        ),
    )
    assert "TableNames" in client.list_tables()


def test_deactivated_key_stops_working_at_once(server: ServerProcess) -> None:
    iam = server.client("iam")
    name = "k-" + uuid.uuid4().hex[:8]
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess")
    key = iam.create_access_key(UserName=name)["AccessKey"]
    client = server.client(
        "dynamodb", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    client.list_tables()
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        client.list_tables()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_simulate_cli_explains_a_denial(
    server: ServerProcess, user_client: Any, hash_table: str, ddb: Any
) -> None:
    import subprocess
    import sys

    _iam, _, name = user_client
    table_arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    account = table_arn.split(":")[4]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "perimeterdb.cli",
            "simulate",
            "--data-dir",
            str(server.data_dir),
            "--principal",
            f"arn:aws:iam::{account}:user/{name}",
            "--action",
            "dynamodb:GetItem",
            "--resource",
            table_arn,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(out.stdout)
    assert out.returncode == 1
    assert result["decision"] == "ImplicitDeny"
    assert result["message"].endswith("because no identity-based policy allows the dynamodb:GetItem action")
