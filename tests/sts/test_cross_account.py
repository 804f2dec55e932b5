"""AssumeRole across accounts: the trust policy AND the caller's identity policy must allow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perimeterdb.auth.principal import Principal
from perimeterdb.errors import ApiError
from perimeterdb.iam import entities, roles, users
from perimeterdb.sts import assume_role
from perimeterdb.world.identities import IdentityStore
from tests.sts.conftest import call, root, run


def _user(store: IdentityStore, account: str, name: str, policy: dict[str, Any] | None = None) -> Principal:
    async def go() -> None:
        await users.create_user(call(store, root(account), {"UserName": name}))
        if policy is not None:
            await entities.OPERATIONS["PutUserPolicy"](
                call(
                    store,
                    root(account),
                    {"UserName": name, "PolicyName": "p", "PolicyDocument": json.dumps(policy)},
                )
            )

    run(go())
    user = run(store.get_user(account, name))
    return Principal(
        arn=user["arn"],
        principal_arn=user["arn"],
        account=account,
        kind="User",
        userid=user["user_id"],
        username=name,
    )


def _role(store: IdentityStore, account: str, name: str, trusted: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}],
    }
    out = run(
        roles.create_role(
            call(store, root(account), {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(trust)})
        )
    )
    return str(out["Role"]["Arn"])


def test_cross_account_needs_trust_and_identity_policy(store: IdentityStore) -> None:
    a = run(store.create_account("a", "us-east-1", "111111111111"))
    b = run(store.create_account("b", "us-east-1", "222222222222"))
    role_arn = _role(store, b, "shared", f"arn:aws:iam::{a}:root")
    plain = _user(store, a, "plain")
    with pytest.raises(ApiError) as exc:
        run(assume_role.assume_role(call(store, plain, {"RoleArn": role_arn, "RoleSessionName": "x1"})))
    assert exc.value.code == "AccessDenied" and "identity-based policy" in exc.value.message
    allowed = _user(
        store,
        a,
        "allowed",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}],
        },
    )
    out = run(assume_role.assume_role(call(store, allowed, {"RoleArn": role_arn, "RoleSessionName": "x1"})))
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{b}:assumed-role/shared/x1"


def test_cross_account_trust_naming_the_user_still_needs_identity_policy(store: IdentityStore) -> None:
    a = run(store.create_account("a", "us-east-1", "111111111111"))
    b = run(store.create_account("b", "us-east-1", "222222222222"))
    plain = _user(store, a, "plain")
    role_arn = _role(store, b, "named", plain.arn)
    with pytest.raises(ApiError):
        run(assume_role.assume_role(call(store, plain, {"RoleArn": role_arn, "RoleSessionName": "x1"})))


def test_trust_in_another_account_does_not_trust_strangers(store: IdentityStore) -> None:
    a = run(store.create_account("a", "us-east-1", "111111111111"))
    b = run(store.create_account("b", "us-east-1", "222222222222"))
    c = run(store.create_account("c", "us-east-1", "333333333333"))
    role_arn = _role(store, b, "only-a", f"arn:aws:iam::{a}:root")
    stranger = _user(
        store,
        c,
        "s",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
        },
    )
    with pytest.raises(ApiError) as exc:
        run(assume_role.assume_role(call(store, stranger, {"RoleArn": role_arn, "RoleSessionName": "x1"})))
    assert "role trust policy" in exc.value.message
