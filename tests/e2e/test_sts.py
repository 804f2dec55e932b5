# ruff: noqa: F811  (fixtures imported from conftest_identity are redefined as test parameters)
"""STS against the real server: a user creates a role, another principal assumes it (with MFA, ExternalId and
session tags), the session calls DynamoDB; expired, forged and deactivated credentials fail."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from perimeterdb.auth import totp
from tests.e2e.conftest_identity import (  # noqa: F401  (fixtures)
    allow,
    client,
    doc,
    enable_virtual_mfa,
    error_of,
    expire_session,
    iam,
    make_role,
    make_user,
    post_form,
    sts,
    unique,
)


def trust(principal: str, *actions: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": list(actions) or "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return statement


def test_caller_identity_needs_no_permission(make_user: Any) -> None:
    nobody = make_user()
    who = nobody.client("sts").get_caller_identity()
    assert who["Arn"] == nobody.arn and who["UserId"].startswith("AIDA") and len(who["Account"]) == 12


def test_a_user_creates_a_role_another_assumes_it_and_calls_dynamodb(
    server: Any, make_user: Any, make_role: Any
) -> None:
    account = server.client("sts").get_caller_identity()["Account"]
    creator = make_user(doc(allow(["iam:CreateRole", "iam:PutRolePolicy", "iam:GetRole"])))
    worker = make_user()
    role_name = unique("r")
    creator_iam = creator.client("iam")
    role = creator_iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=doc(
            trust(
                worker.arn,
                "sts:AssumeRole",
                "sts:TagSession",
                condition={"StringEquals": {"sts:ExternalId": "ext-123"}},
            )
        ),
        Tags=[{"Key": "project", "Value": "blue"}],
    )["Role"]
    creator_iam.put_role_policy(
        RoleName=role_name,
        PolicyName="ddb",
        PolicyDocument=doc(allow(["dynamodb:ListTables", "dynamodb:DescribeTable"])),
    )
    worker_sts = worker.client("sts")
    with pytest.raises(ClientError) as exc:
        worker_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="sess", ExternalId="wrong-id")
    code, status, message = error_of(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith(
        f"User: {worker.arn} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}"
    )
    out = worker_sts.assume_role(
        RoleArn=role["Arn"],
        RoleSessionName="job-1",
        ExternalId="ext-123",
        Tags=[{"Key": "tenant", "Value": "t1"}],
    )
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{account}:assumed-role/{role_name}/job-1"
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:job-1"
    left = (creds["Expiration"] - dt.datetime.now(dt.UTC)).total_seconds()
    assert 3500 < left <= 3600
    session_sts = client(server, "sts", creds)
    assert session_sts.get_caller_identity()["Arn"] == out["AssumedRoleUser"]["Arn"]
    ddb = client(server, "dynamodb", creds)
    assert "TableNames" in ddb.list_tables()
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=unique("t"),
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    code, _, message = error_of(exc)
    assert code == "AccessDeniedException"
    assert out["AssumedRoleUser"]["Arn"] in message


def test_trust_naming_the_account_needs_an_identity_policy_too(
    server: Any, make_user: Any, make_role: Any
) -> None:
    account = server.client("sts").get_caller_identity()["Account"]
    role = make_role(trust(f"arn:aws:iam::{account}:root"))
    without = make_user()
    with pytest.raises(ClientError) as exc:
        without.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="sess")
    assert error_of(exc)[0] == "AccessDenied"
    with_policy = make_user(doc(allow("sts:AssumeRole", role["Arn"])))
    with_policy.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="sess")


def test_mfa_condition(server: Any, iam: Any, make_user: Any, make_role: Any) -> None:
    alice = make_user()
    role = make_role(trust(alice.arn, condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    alice_sts = alice.client("sts")
    with pytest.raises(ClientError) as exc:
        alice_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="sess")
    assert error_of(exc)[0] == "AccessDenied"
    serial, seed = enable_virtual_mfa(iam, alice.name)
    with pytest.raises(ClientError) as exc:
        alice_sts.assume_role(
            RoleArn=role["Arn"], RoleSessionName="sess", SerialNumber=serial, TokenCode="000000"
        )
    assert error_of(exc)[:2] == ("AccessDenied", 403)
    code = totp.totp(seed, time.time() + totp.STEP_SECONDS)  # next step: unused by enable_virtual_mfa
    out = alice_sts.assume_role(
        RoleArn=role["Arn"], RoleSessionName="sess", SerialNumber=serial, TokenCode=code
    )
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    with pytest.raises(ClientError) as exc:  # a code works once
        alice_sts.assume_role(
            RoleArn=role["Arn"], RoleSessionName="sess", SerialNumber=serial, TokenCode=code
        )
    assert error_of(exc)[0] == "AccessDenied"


def test_session_tags_need_tag_session(make_user: Any, make_role: Any) -> None:
    alice = make_user()
    role = make_role(trust(alice.arn, "sts:AssumeRole"))
    with pytest.raises(ClientError) as exc:
        alice.client("sts").assume_role(
            RoleArn=role["Arn"], RoleSessionName="sess", Tags=[{"Key": "a", "Value": "b"}]
        )
    code, _, message = error_of(exc)
    assert code == "AccessDenied" and "sts:TagSession" in message


def test_source_identity_needs_set_source_identity(make_user: Any, make_role: Any) -> None:
    alice = make_user()
    plain = make_role(trust(alice.arn, "sts:AssumeRole"))
    with pytest.raises(ClientError) as exc:
        alice.client("sts").assume_role(RoleArn=plain["Arn"], RoleSessionName="sess", SourceIdentity="alice")
    assert "sts:SetSourceIdentity" in error_of(exc)[2]
    able = make_role(trust(alice.arn, "sts:AssumeRole", "sts:SetSourceIdentity"))
    out = alice.client("sts").assume_role(RoleArn=able["Arn"], RoleSessionName="sess", SourceIdentity="alice")
    assert out["SourceIdentity"] == "alice"


def test_transitive_tags_must_be_requested_tags(make_user: Any, make_role: Any) -> None:
    alice = make_user()
    role = make_role(trust(alice.arn, "sts:AssumeRole", "sts:TagSession"))
    with pytest.raises(ClientError) as exc:
        alice.client("sts").assume_role(
            RoleArn=role["Arn"],
            RoleSessionName="sess",
            Tags=[{"Key": "a", "Value": "b"}],
            TransitiveTagKeys=["c"],
        )
    assert error_of(exc)[:2] == ("InvalidParameterValue", 400)


def test_duration_limits_and_role_chaining(server: Any, iam: Any, make_user: Any, make_role: Any) -> None:
    alice = make_user()
    first = make_role(trust(alice.arn), MaxSessionDuration=7200, policy=doc(allow("sts:AssumeRole")))
    alice_sts = alice.client("sts")
    with pytest.raises(ClientError) as exc:
        alice_sts.assume_role(RoleArn=first["Arn"], RoleSessionName="sess", DurationSeconds=7201)
    assert error_of(exc)[:2] == ("ValidationError", 400)
    out = alice_sts.assume_role(RoleArn=first["Arn"], RoleSessionName="sess", DurationSeconds=7200)
    session_arn = out["AssumedRoleUser"]["Arn"]
    second = make_role(trust(session_arn), MaxSessionDuration=7200)
    chained = client(server, "sts", out["Credentials"])
    with pytest.raises(ClientError) as exc:
        chained.assume_role(RoleArn=second["Arn"], RoleSessionName="chain", DurationSeconds=3601)
    code, status, message = error_of(exc)
    assert (code, status) == ("ValidationError", 400) and "role chaining" in message
    again = chained.assume_role(RoleArn=second["Arn"], RoleSessionName="chain")
    assert again["AssumedRoleUser"]["Arn"].endswith(f"/{second['RoleName']}/chain")


def test_session_policy_limits(server: Any, make_user: Any, make_role: Any) -> None:
    from urllib.parse import urlencode

    alice = make_user()
    role = make_role(trust(alice.arn))
    big = doc(allow(["dynamodb:" + "x" * 2100]))
    body = urlencode(
        {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": role["Arn"],
            "RoleSessionName": "sess",
            "Policy": big,
        }
    ).encode()
    status, payload = post_form(
        server.endpoint, body, alice.creds["AccessKeyId"], alice.creds["SecretAccessKey"], service="sts"
    )
    assert status == 400 and b"<Code>ValidationError</Code>" in payload
    assert b"Member must have length less than or equal to 2048" in payload
    with pytest.raises(ClientError) as exc:
        alice.client("sts").assume_role(
            RoleArn=role["Arn"], RoleSessionName="sess", Policy='{"Statement": 1}'
        )
    assert error_of(exc)[:2] == ("MalformedPolicyDocument", 400)
    arns = [{"arn": f"arn:aws:iam::aws:policy/P{i}"} for i in range(11)]
    with pytest.raises(ClientError) as exc:
        alice.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="sess", PolicyArns=arns)
    assert error_of(exc)[:2] == ("ValidationError", 400)


def test_session_policy_narrows_the_role(server: Any, make_user: Any, make_role: Any) -> None:
    alice = make_user()
    role = make_role(trust(alice.arn), policy=doc(allow("dynamodb:*")))
    narrowed = alice.client("sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="sess", Policy=doc(allow("dynamodb:DescribeTable"))
    )
    with pytest.raises(ClientError) as exc:
        client(server, "dynamodb", narrowed["Credentials"]).list_tables()
    assert error_of(exc)[0] == "AccessDeniedException"
    assert "session policy" in error_of(exc)[2]


def test_bad_role_arns(make_user: Any, server: Any) -> None:
    alice = make_user()
    with pytest.raises(ClientError) as exc:
        alice.client("sts").assume_role(
            RoleArn="arn:aws:dynamodb:us-east-1:123456789012:table/x", RoleSessionName="sess"
        )
    assert error_of(exc)[:2] == ("ValidationError", 400)
    account = server.client("sts").get_caller_identity()["Account"]
    missing = f"arn:aws:iam::{account}:role/{unique('nope')}"
    with pytest.raises(ClientError) as exc:
        alice.client("sts").assume_role(RoleArn=missing, RoleSessionName="sess")
    assert error_of(exc)[:2] == ("AccessDenied", 403)


# --- the credential lifecycle ---------------------------------------------------------------------------------


def _session(make_user: Any, make_role: Any) -> tuple[Any, dict[str, str]]:
    alice = make_user()
    role = make_role(trust(alice.arn), policy=doc(allow("dynamodb:ListTables")))
    return alice, alice.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="sess")["Credentials"]


def test_forged_and_altered_tokens_are_refused(server: Any, make_user: Any, make_role: Any) -> None:
    _, creds = _session(make_user, make_role)
    token = creds["SessionToken"]
    altered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    for bad in (
        {**creds, "SessionToken": altered},
        {**creds, "SessionToken": "forged"},
        {k: v for k, v in creds.items() if k != "SessionToken"},
    ):
        with pytest.raises(ClientError) as exc:
            client(server, "sts", bad).get_caller_identity()
        assert error_of(exc)[:2] == ("InvalidClientTokenId", 403)
        with pytest.raises(ClientError) as exc:
            client(server, "dynamodb", bad).list_tables()
        assert error_of(exc)[0] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as exc:
        client(server, "sts", {**creds, "SecretAccessKey": "x" * 40}).get_caller_identity()
    assert error_of(exc)[:2] == ("SignatureDoesNotMatch", 403)


def test_expired_session_is_refused(server: Any, iam: Any, make_user: Any, make_role: Any) -> None:
    _, creds = _session(make_user, make_role)
    client(server, "dynamodb", creds).list_tables()
    expire_session(server, creds["AccessKeyId"])
    iam.create_group(GroupName=(group := unique("g")))  # any IAM write drops the server's credential cache
    iam.delete_group(GroupName=group)
    with pytest.raises(ClientError) as exc:
        client(server, "sts", creds).get_caller_identity()
    assert error_of(exc) == ("ExpiredToken", 403, "The security token included in the request is expired")
    with pytest.raises(ClientError) as exc:
        client(server, "dynamodb", creds).list_tables()
    assert error_of(exc)[:2] == ("ExpiredTokenException", 400)


def test_role_policy_changes_reach_live_sessions(
    server: Any, iam: Any, make_user: Any, make_role: Any
) -> None:
    alice = make_user()
    role = make_role(trust(alice.arn), policy=doc(allow("dynamodb:ListTables")))
    creds = alice.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="sess")["Credentials"]
    ddb = client(server, "dynamodb", creds)
    ddb.list_tables()
    iam.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="p",
        PolicyDocument=doc({"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}),
    )
    with pytest.raises(ClientError) as exc:
        ddb.list_tables()
    assert error_of(exc)[0] == "AccessDeniedException"


# --- GetSessionToken ---------------------------------------------------------------------------------------------


def test_get_session_token(server: Any, iam: Any, make_user: Any) -> None:
    alice = make_user(doc(allow(["iam:GetUser", "dynamodb:ListTables"])))
    out = alice.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    left = (out["Expiration"] - dt.datetime.now(dt.UTC)).total_seconds()
    assert 850 < left <= 900
    assert client(server, "sts", out).get_caller_identity()["Arn"] == alice.arn
    client(server, "dynamodb", out).list_tables()
    with pytest.raises(ClientError) as exc:  # IAM refuses GetSessionToken credentials without MFA
        client(server, "iam", out).get_user()
    assert error_of(exc)[0] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as exc:
        client(server, "sts", out).get_session_token()
    assert error_of(exc)[0] == "AccessDenied"
    serial, seed = enable_virtual_mfa(iam, alice.name)
    code = totp.totp(seed, time.time() + totp.STEP_SECONDS)
    with_mfa = alice.client("sts").get_session_token(SerialNumber=serial, TokenCode=code)["Credentials"]
    left = (with_mfa["Expiration"] - dt.datetime.now(dt.UTC)).total_seconds()
    assert 43100 < left <= 43200
    assert client(server, "iam", with_mfa).get_user()["User"]["Arn"] == alice.arn


def test_get_session_token_duration_bounds(make_user: Any) -> None:
    alice = make_user()
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        alice.client("sts").get_session_token(DurationSeconds=899)


def test_sts_answers_in_any_region(server: Any, make_user: Any) -> None:
    alice = make_user()
    assert alice.client("sts", region="eu-west-1").get_caller_identity()["Arn"] == alice.arn


def test_sts_unknown_action(server: Any) -> None:
    status, body = post_form(
        server.endpoint, b"Action=GetFederationTokens&Version=2011-06-15", *server.admin_keys(), service="sts"
    )
    assert status == 400 and b"<Code>InvalidAction</Code>" in body
    assert json.dumps  # keep json imported for readers of the payloads above


def test_presigned_get_caller_identity(server: Any) -> None:
    """The presigned-URL form that identity brokers (Vault, EKS) use: GET with the signature in the query."""
    import urllib.request

    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    key, secret = server.admin_keys()
    request = AWSRequest(method="GET", url=server.endpoint + "/?Action=GetCallerIdentity&Version=2011-06-15")
    SigV4QueryAuth(Credentials(key, secret), "sts", "us-east-1", expires=60).add_auth(request)
    with urllib.request.urlopen(request.url, timeout=10) as response:
        body = response.read().decode()
    assert "<GetCallerIdentityResult>" in body and ":user/admin</Arn>" in body
