"""Microseconds per ``decide`` call with 20 and 200 identity-policy statements.

Run: .venv/bin/python bench/policy_decision.py
The principal, context and compiled policies are built once (as the server caches them); each
iteration is one full decision: SCP chain (FullAWSAccess at root/OU/account), identity policies with
conditions, a permissions boundary, and an allow found in the last statements.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from perimeterdb.policy import (
    NetworkOrigin,
    PolicyKind,
    PolicyRef,
    PolicySet,
    PrincipalInfo,
    RequestContext,
    compile_policy,
    decide,
    parse_policy,
    standard_keys,
)

ACCOUNT = "111122223333"
ACTIONS = ["GetItem", "PutItem", "Query", "Scan", "UpdateItem", "DeleteItem", "BatchGetItem", "DescribeTable"]


def identity_policy(n: int) -> dict:
    statements = []
    for i in range(n - 1):
        action = ACTIONS[i % len(ACTIONS)]
        stmt: dict = {
            "Sid": f"S{i}",
            "Effect": "Allow" if i % 5 else "Deny",
            "Action": f"dynamodb:{action}",
            "Resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t{i}",
        }
        if i % 3 == 0:
            stmt["Condition"] = {"StringEquals": {"aws:PrincipalTag/team": f"team{i}"}}
        statements.append(stmt)
    statements.append(
        {
            "Sid": "Hit",
            "Effect": "Allow",
            "Action": ["dynamodb:Get*", "dynamodb:Query"],
            "Resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders*",
            "Condition": {
                "StringEquals": {"aws:PrincipalTag/team": "payments"},
                "Bool": {"aws:SecureTransport": "true"},
                "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]},
            },
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def compiled(doc: dict, kind: PolicyKind, pid: str):
    return compile_policy(parse_policy(doc, kind), PolicyRef(kind.value, pid))


def bench(n: int, iterations: int = 20000) -> float:
    full = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    scp_deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "dynamodb:*",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}},
            }
        ],
    }
    policies = PolicySet(
        identity=(compiled(identity_policy(n), PolicyKind.IDENTITY, "p-identity"),),
        boundary=compiled(full, PolicyKind.BOUNDARY, "p-boundary"),
        scp_levels=(
            (compiled(full, PolicyKind.SCP, "p-full"), compiled(scp_deny, PolicyKind.SCP, "p-region")),
            (compiled(full, PolicyKind.SCP, "p-full"),),
            (compiled(full, PolicyKind.SCP, "p-full"),),
        ),
        principal_in_org=True,
        resource_in_org=True,
        same_organization=True,
    )
    principal = PrincipalInfo(
        arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        account=ACCOUNT,
        type="User",
        userid="AIDAEXAMPLEEXAMPLE01",
        username="alice",
        tags=(("team", "payments"),),
    )
    keys = standard_keys(
        principal,
        origin=NetworkOrigin(source_ip="10.1.2.3"),
        now=datetime.now(UTC),
        region="us-east-1",
        resource_account=ACCOUNT,
    )
    ctx = RequestContext(
        principal, "dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders", ACCOUNT, keys
    )
    assert decide(ctx, policies).allowed
    for _ in range(1000):
        decide(ctx, policies)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(iterations):
            decide(ctx, policies)
        best = min(best, (time.perf_counter() - start) / iterations * 1e6)
    return best


def main() -> None:
    for n in (20, 200):
        print(f"{n:4d} statements: {bench(n):6.2f} us/decision (best of 5 runs)")


if __name__ == "__main__":
    main()
