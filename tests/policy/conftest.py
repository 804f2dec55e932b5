from __future__ import annotations

from typing import Any

import pytest

from perimeterdb.policy import PolicyKind, PrincipalInfo, load_policy

ACCOUNT = "111122223333"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"


@pytest.fixture
def alice() -> PrincipalInfo:
    arn = f"arn:aws:iam::{ACCOUNT}:user/alice"
    return PrincipalInfo(arn, arn, ACCOUNT, "User", "AIDAALICEALICEALICE1", "alice", (("team", "payments"),))


@pytest.fixture
def session() -> PrincipalInfo:
    return PrincipalInfo(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1",
        f"arn:aws:iam::{ACCOUNT}:role/app",
        ACCOUNT,
        "AssumedRole",
        "AROAAPPAPPAPPAPPAPP1:s1",
    )


def policy(kind: PolicyKind, *statements: dict[str, Any], pid: str = "p", arn: str | None = None) -> Any:
    from perimeterdb.policy import PolicyRef

    doc = {"Version": "2012-10-17", "Statement": list(statements)}
    return load_policy(doc, kind, PolicyRef(kind.value, pid, pid, arn))
