"""Fixtures and helpers for the IAM and STS end-to-end tests (imported by test_iam.py and test_sts.py)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from perimeterdb.auth import totp
from tests.support.server import CLIENT_CONFIG, ServerProcess


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def client(server: ServerProcess, service: str, creds: dict[str, str], region: str = "us-east-1") -> Any:
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=CLIENT_CONFIG,
    )


def error_of(excinfo: pytest.ExceptionInfo[Any]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


@dataclass
class Person:
    """An IAM user with an access key, and clients signed as that user."""

    name: str
    arn: str
    creds: dict[str, str]
    server: ServerProcess

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return client(self.server, service, self.creds, region)


@pytest.fixture(scope="module")
def iam(server: ServerProcess) -> Any:
    return server.client("iam")


@pytest.fixture(scope="module")
def sts(server: ServerProcess) -> Any:
    return server.client("sts")


@pytest.fixture
def make_user(server: ServerProcess, iam: Any) -> Iterator[Any]:
    """``make_user(policy=None, path="/")`` -> Person; the user is torn down after the test."""
    made: list[Person] = []

    def make(policy: str | None = None, path: str = "/") -> Person:
        name = unique("u")
        arn = iam.create_user(UserName=name, Path=path)["User"]["Arn"]
        if policy is not None:
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        person = Person(
            name, arn, {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}, server
        )
        made.append(person)
        return person

    yield make
    for person in made:
        _delete_user(iam, person.name)


def _delete_user(iam: Any, name: str) -> None:
    try:
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy_name in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy_name)
        for attached in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            iam.detach_user_policy(UserName=name, PolicyArn=attached["PolicyArn"])
        for group in iam.list_groups_for_user(UserName=name)["Groups"]:
            iam.remove_user_from_group(UserName=name, GroupName=group["GroupName"])
        for device in iam.list_mfa_devices(UserName=name)["MFADevices"]:
            iam.deactivate_mfa_device(UserName=name, SerialNumber=device["SerialNumber"])
        try:
            iam.delete_login_profile(UserName=name)
        except iam.exceptions.NoSuchEntityException:
            pass
        iam.delete_user(UserName=name)
    except iam.exceptions.NoSuchEntityException:
        pass


@pytest.fixture
def make_role(iam: Any) -> Iterator[Any]:
    """``make_role(trust_statements, policy=None, **create_kwargs)`` -> the role; deleted afterwards."""
    made: list[str] = []

    def make(*statements: dict[str, Any], policy: str | None = None, **kwargs: Any) -> dict[str, Any]:
        name = unique("r")
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(*statements), **kwargs)["Role"]
        if policy is not None:
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy)
        made.append(name)
        return dict(role)

    yield make
    for name in made:
        try:
            for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
            for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
            iam.delete_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            pass


def enable_virtual_mfa(iam: Any, user: str) -> tuple[str, bytes]:
    """Create and enable a virtual MFA device for ``user``; returns (serial, seed)."""
    import base64

    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=unique("mfa"))["VirtualMFADevice"]
    seed = base64.b32decode(device["Base32StringSeed"])
    now = time.time() - totp.STEP_SECONDS  # two consecutive codes, both already issued
    iam.enable_mfa_device(
        UserName=user,
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1=totp.totp(seed, now - totp.STEP_SECONDS),
        AuthenticationCode2=totp.totp(seed, now),
    )
    return device["SerialNumber"], seed


def expire_session(server: ServerProcess, access_key_id: str) -> None:
    """Move a stored session's expiry into the past (the test's way to let an hour pass)."""
    conn = sqlite3.connect(server.data_dir / "perimeterdb.sqlite3", timeout=10)
    try:
        row = conn.execute(
            "SELECT val FROM rows WHERE space=? AND hk=?", ("meta:sts-sessions", access_key_id.encode())
        ).fetchone()
        record = json.loads(row[0])
        record["expires"] = time.time() - 5
        conn.execute(
            "UPDATE rows SET val=? WHERE space=? AND hk=?",
            (json.dumps(record).encode(), "meta:sts-sessions", access_key_id.encode()),
        )
        conn.commit()
    finally:
        conn.close()


def post_form(
    endpoint: str,
    body: bytes,
    key: str,
    secret: str,
    *,
    service: str = "iam",
    region: str = "us-east-1",
    token: str | None = None,
) -> tuple[int, bytes]:
    """A raw, SigV4-signed Query-protocol POST; returns (status, XML body)."""
    import urllib3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(key, secret, token), service, region).add_auth(request)
    response = urllib3.PoolManager().request(
        "POST", endpoint + "/", body=body, headers=dict(request.headers.items()), retries=False
    )
    return response.status, response.data
