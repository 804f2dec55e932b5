"""Every 5xx or crash found by the issue-13 campaign (fuzzing, probing, kill -9, linearizability), as a
regression test that drives the real server (or the real CLI) wherever the input arrives from outside.

Found so far (see docs/reliability.md for how):
- a policy document nested deeper than Python's recursion limit gave 500 on IAM CreatePolicy, DynamoDB
  PutResourcePolicy and CreateTable's ResourcePolicy (json.loads raised RecursionError);
- a world file nested as deep crashed ``perimeterdb world validate`` with a traceback (yaml raised
  RecursionError, not YAMLError).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from perimeterdb.policy import PolicyKind, PolicyParseError, parse_policy
from perimeterdb.world.worldfile import WorldError, parse_world
from tests.support.server import ServerProcess

DEPTH = 3050  # past the server's raised recursion limit, and still inside IAM's 6144-character quota


def _deep_policy(depth: int = DEPTH) -> str:
    return '{"Version":"2012-10-17","Statement":' + "[" * depth + "]" * depth + "}"


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_deeply_nested_managed_policy_is_malformed_not_a_500(server: ServerProcess) -> None:
    iam = server.client("iam")
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName="deep-nesting", PolicyDocument=_deep_policy())
    assert _code(exc) == (400, "MalformedPolicyDocument")


def test_deeply_nested_resource_policy_is_a_validation_error_not_a_500(ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    for depth in (DEPTH, 9000):
        with pytest.raises(ClientError) as exc:
            ddb.put_resource_policy(ResourceArn=arn, Policy=_deep_policy(depth))
        assert _code(exc) == (400, "ValidationException")
        assert "invalid Json" in exc.value.response["Error"]["Message"]


def test_deeply_nested_resource_policy_at_create_table_is_a_validation_error(ddb: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName="deep-nesting-table",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            ResourcePolicy=_deep_policy(),
        )
    assert _code(exc) == (400, "ValidationException")
    assert "deep-nesting-table" not in ddb.list_tables()["TableNames"]


def test_deeply_nested_organizations_policy_is_malformed_not_a_500(server: ServerProcess) -> None:
    org = server.client("organizations")
    try:
        org.create_organization(FeatureSet="ALL")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "AlreadyInOrganizationException"
    with pytest.raises(ClientError) as exc:
        org.create_policy(
            Name="deep-nesting", Description="", Type="SERVICE_CONTROL_POLICY", Content=_deep_policy(2500)
        )
    assert _code(exc) == (400, "MalformedPolicyDocumentException")


@pytest.mark.parametrize("depth", [1000, 20000])
def test_policy_parser_refuses_deep_nesting_with_its_own_error(depth: int) -> None:
    with pytest.raises(PolicyParseError):
        parse_policy(_deep_policy(depth), PolicyKind.IDENTITY)


@pytest.mark.parametrize(
    "text",
    ["[" * 5000 + "]" * 5000, "version: 1\naccounts: " + "{a: " * 3000 + "1" + "}" * 3000, "- " * 3000 + "x"],
)
def test_deeply_nested_world_file_is_a_world_error(text: str) -> None:
    with pytest.raises(WorldError):
        parse_world(text, "deep.yaml")


def test_world_validate_reports_a_deep_world_file_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\naccounts: " + "[" * 5000 + "]" * 5000 + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "perimeterdb.cli", "world", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "deep.yaml" in result.stdout + result.stderr


def _nested(levels: int) -> dict[str, Any]:
    """A value ``levels`` deep as DynamoDB counts: ``{"S": "x"}`` is one level, each map around it one more."""
    value: dict[str, Any] = {"S": "x"}
    for _ in range(levels - 1):
        value = {"M": {"a": value}}
    return value


def test_an_update_cannot_nest_an_item_past_32_levels(ddb: Any, hash_table: str) -> None:
    """Found by probing: SET into a nested path added its value's levels to the path's, so repeated updates
    built items of any depth, until encoding one failed with a 500 (orjson's recursion limit)."""
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "deep"}, "m": _nested(31)})
    path = "m" + ".a" * 30  # the innermost map member: level 31

    def set_at(levels: int) -> Any:
        return ddb.update_item(
            TableName=hash_table,
            Key={"pk": {"S": "deep"}},
            UpdateExpression=f"SET {path} = :v",
            ExpressionAttributeValues={":v": _nested(levels)},
        )

    set_at(2)  # 30 levels of path + 2 = 32: DynamoDB's limit, accepted
    with pytest.raises(ClientError) as exc:
        set_at(3)  # 33
    assert _code(exc) == (400, "ValidationException")
    assert exc.value.response["Error"]["Message"] == (
        "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond "
        "supported limit"
    )
    for levels in (3, 30, 32):  # an attacker repeating the update gets the same answer, never a 500
        with pytest.raises(ClientError) as exc:
            set_at(levels)
        assert _code(exc)[0] == 400
    item = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "deep"}}, ConsistentRead=True)["Item"]
    depth, value = 1, item["m"]
    while "M" in value:
        value, depth = value["M"]["a"], depth + 1
    assert depth == 32


def test_a_transaction_update_cannot_nest_an_item_past_32_levels(ddb: Any, hash_table: str) -> None:
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "deep-tx"}, "m": _nested(31)})
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": hash_table,
                        "Key": {"pk": {"S": "deep-tx"}},
                        "UpdateExpression": "SET " + "m" + ".a" * 30 + " = :v",
                        "ExpressionAttributeValues": {":v": _nested(5)},
                    }
                }
            ]
        )
    assert _code(exc) == (400, "TransactionCanceledException")
    assert exc.value.response["CancellationReasons"][0]["Code"] == "ValidationError"


REDOS_PATTERN = "*a" * 14 + "*b"  # read as a backtracking regex: C(n, 14) ways to place the a's


def _user_client(server: ServerProcess, name: str, statement: dict[str, Any]) -> Any:
    import json

    from botocore.config import Config

    iam = server.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return server.client(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=20),
    )


def test_a_wildcard_condition_cannot_freeze_the_server(server: ServerProcess, hash_table: str) -> None:
    """Found by probing: StringLike patterns were matched as backtracking regexes, so ``*a*a*...*b`` against
    a caller-chosen partition key of a's took hours, holding the server's event loop (every tenant)."""
    ddb = _user_client(
        server,
        "redos-condition",
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": "*",
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [REDOS_PATTERN]}},
        },
    )
    with pytest.raises(ClientError) as exc:  # answered (denied: no b), within the client's 20 s timeout
        ddb.get_item(TableName=hash_table, Key={"pk": {"S": "a" * 1000}})
    assert _code(exc) == (400, "AccessDeniedException")
    ddb.get_item(TableName=hash_table, Key={"pk": {"S": "a" * 999 + "b"}})  # the pattern still matches


def test_a_wildcard_resource_cannot_freeze_the_server(server: ServerProcess) -> None:
    ddb = _user_client(
        server,
        "redos-resource",
        {
            "Effect": "Allow",
            "Action": "dynamodb:DescribeTable",
            "Resource": f"arn:aws:dynamodb:*:*:table/{REDOS_PATTERN}",
        },
    )
    with pytest.raises(ClientError) as exc:
        ddb.describe_table(TableName="a" * 255)
    assert _code(exc) == (400, "AccessDeniedException")
    with pytest.raises(ClientError) as exc:  # allowed by the pattern, so the table's absence shows
        ddb.describe_table(TableName="a" * 254 + "b")
    assert _code(exc) == (400, "ResourceNotFoundException")


def test_a_long_invalid_number_is_refused_in_linear_time(server: ServerProcess, hash_table: str) -> None:
    """Found by probing: the number syntax check split a run of digits every possible way before failing,
    quadratic in its length: one 20,000-digit invalid number held the server for 32 s, a 1 MB body for
    days. Bounded by the client's 20 s read timeout (the old check took minutes for these)."""
    from botocore.config import Config

    ddb = server.client(config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=20))
    bad = {"N": "1" * 100_000 + "x"}
    for call in (
        lambda: ddb.get_item(TableName=hash_table, Key={"pk": {"S": "k"}, "n": bad}),
        lambda: ddb.put_item(TableName=hash_table, Item={"pk": {"S": "k"}, "n": bad}),
        lambda: ddb.scan(
            TableName=hash_table, FilterExpression="n = :n", ExpressionAttributeValues={":n": bad}
        ),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == (400, "ValidationException")
        assert "cannot be converted to a numeric value" in exc.value.response["Error"]["Message"]


@pytest.mark.parametrize("expires", ["9" * 5000, "\u00b2"])
def test_a_presigned_request_with_a_strange_expiry_is_refused_not_a_500(
    server: ServerProcess, expires: str
) -> None:
    """Found by probing (anonymous): X-Amz-Expires passed str.isdigit(), true for 5,000 digits (past int()'s
    4,300-digit limit) and for '²' (not a number int() reads), so int() raised and the answer was a 500."""
    import datetime as dt
    from urllib.parse import quote

    import urllib3

    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    query = (
        "Action=ListUsers&Version=2010-05-08&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential=AKIAEXAMPLEEXAMPLE12%2F{now[:8]}%2Fus-east-1%2Fiam%2Faws4_request"
        f"&X-Amz-Date={now}&X-Amz-SignedHeaders=host&X-Amz-Signature={'0' * 64}&X-Amz-Expires={quote(expires)}"
    )
    response = urllib3.PoolManager().request("GET", f"{server.endpoint}/?{query}", retries=False)
    assert response.status == 400, response.data[:500]
    assert b"<Code>IncompleteSignature</Code>" in response.data, response.data[:500]
