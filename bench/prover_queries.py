"""Prover query times on realistic policy sets (up to 200 statements across all policy types), and on the
seed world.

Run: .venv/bin/python bench/prover_queries.py [--worlds 40] [--seed 7] [--timeout 10]

Each random world has 3 accounts in an organization (management, prod, dev), SCPs at the root and prod OU
(data-perimeter shapes: deny outside the VPC with PrincipalArn exceptions, deny outside the organization,
region deny, MFA for deletes), RCPs, a table resource policy, an endpoint policy, and 4-12 principals with
identity policies (tag-based access with ${aws:PrincipalTag/...}, IP and time conditions ...), scaled so
that the statements in force total 50-200. On each world it asks `private`, `public` and `not-granted`,
as deployed and for any principal, through the portfolio (child processes, as the CLI does). It prints
the distribution of answer times, the share answered within 1 s, the UNKNOWN count, and the seed-world
query times (examples/private-tables.yaml, loaded once).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perimeterdb.policy import PolicyKind, PolicyRef, PrincipalInfo, compile_policy, parse_policy
from perimeterdb.prover import Account, Endpoint, Principal, Snapshot, Table, not_granted, private, public

MGMT, PROD, DEV = "111111111111", "222222222222", "333333333333"
ORG = "o-bench00001"
VPC, VPCE = "vpc-0bench000000001", "vpce-0bench00000001"
TABLE = f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders"
TEAMS = ["payments", "search", "ledger", "growth", "platform"]


def _compile(kind: PolicyKind, statements: list[dict[str, Any]], name: str) -> Any:
    doc = {"Version": "2012-10-17", "Statement": statements}
    return compile_policy(parse_policy(doc, kind), PolicyRef(kind.value, name, name))


def _scp_statements(rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "Sid": "DenyOutsideVpc",
            "Effect": "Deny",
            "Action": "dynamodb:*",
            "Resource": "*",
            "Condition": {
                "StringNotEqualsIfExists": {"aws:SourceVpc": VPC},
                "ArnNotLike": {
                    "aws:PrincipalArn": [
                        f"arn:aws:iam::*:role/{rng.choice(['emergency', 'breakglass'])}",
                        "arn:aws:iam::*:role/aws-service-role/*",
                    ]
                },
                "BoolIfExists": {"aws:ViaAWSService": "false"},
            },
        },
        {
            "Sid": "DenyRegions",
            "Effect": "Deny",
            "NotAction": ["iam:*", "sts:*", "organizations:*"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}},
        },
        {
            "Sid": "MfaForDeletes",
            "Effect": "Deny",
            "Action": ["dynamodb:DeleteTable", "dynamodb:DeleteBackup"],
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
    ]
    for i in range(rng.randint(2, 10)):
        team = rng.choice(TEAMS)
        out.append(
            {
                "Sid": f"Tag{i}",
                "Effect": "Deny",
                "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
                "Resource": f"arn:aws:dynamodb:*:*:table/{team}-*",
                "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": team}},
            }
        )
    return out


def _rcp_statements(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"Sid": "RCPFullAWSAccess", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {
            "Sid": "EnforceOrgIdentities",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "dynamodb:*",
            "Resource": "*",
            "Condition": {
                "StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG},
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
            },
        },
        {
            "Sid": "EnforceTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "dynamodb:*",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:SecureTransport": "false"}},
        },
    ][: rng.randint(2, 3)]


def _identity_statements(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        shape = rng.random()
        if shape < 0.3:
            out.append(
                {
                    "Sid": f"Team{i}",
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"],
                    "Resource": "arn:aws:dynamodb:*:*:table/${aws:PrincipalTag/team}-*",
                }
            )
        elif shape < 0.5:
            out.append(
                {
                    "Sid": f"Read{i}",
                    "Effect": "Allow",
                    "Action": "dynamodb:Get*",
                    "Resource": f"arn:aws:dynamodb:us-east-1:{PROD}:table/{rng.choice(['orders', 'orders*', 'ledger'])}",
                    "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}},
                }
            )
        elif shape < 0.65:
            out.append(
                {
                    "Sid": f"Window{i}",
                    "Effect": "Allow",
                    "Action": "dynamodb:Scan",
                    "Resource": "*",
                    "Condition": {
                        "DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"},
                        "DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"},
                    },
                }
            )
        elif shape < 0.8:
            out.append(
                {
                    "Sid": f"DenyAttrs{i}",
                    "Effect": "Deny",
                    "Action": "dynamodb:GetItem",
                    "Resource": "*",
                    "Condition": {"ForAnyValue:StringEquals": {"dynamodb:Attributes": ["ssn", "card"]}},
                }
            )
        elif shape < 0.9:
            out.append(
                {
                    "Sid": f"Mfa{i}",
                    "Effect": "Allow",
                    "Action": "dynamodb:*",
                    "Resource": TABLE,
                    "Condition": {
                        "Bool": {"aws:MultiFactorAuthPresent": "true"},
                        "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"},
                    },
                }
            )
        else:
            out.append(
                {
                    "Sid": f"Create{i}",
                    "Effect": "Allow",
                    "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
                    "Resource": f"arn:aws:iam::{PROD}:role/{rng.choice(['app-*', '*'])}",
                }
            )
    return out


def random_world(rng: random.Random) -> tuple[Snapshot, int]:
    budget = rng.randint(50, 200)
    scp = _compile(PolicyKind.SCP, _scp_statements(rng), "perimeter")
    full = _compile(PolicyKind.SCP, [{"Effect": "Allow", "Action": "*", "Resource": "*"}], "FullAWSAccess")
    rcp = _compile(PolicyKind.RCP, _rcp_statements(rng), "rcp")
    resource = _compile(
        PolicyKind.RESOURCE,
        [
            {
                "Sid": "Readers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEV}:role/reader"},
                "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                "Resource": TABLE,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
            },
            {
                "Sid": "DenyNonVpce",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "dynamodb:PutItem",
                "Resource": TABLE,
                "Condition": {"StringNotEquals": {"aws:SourceVpce": VPCE}},
            },
        ],
        "orders-policy",
    )
    vpce = _compile(
        PolicyKind.VPCE,
        [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "dynamodb:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
            }
        ],
        "vpce-policy",
    )
    used = len(scp.statements) + len(rcp.statements) + 2 + 1 + 1
    accounts = {
        MGMT: Account(MGMT, ORG, (f"{ORG}/r-root/",), True, ((full,), (full,)), ((rcp,), (rcp,))),
        PROD: Account(
            PROD,
            ORG,
            (f"{ORG}/r-root/ou-prod/",),
            False,
            ((full,), (full, scp), (full,)),
            ((rcp,), (rcp,), (rcp,)),
        ),
        DEV: Account(
            DEV, ORG, (f"{ORG}/r-root/ou-dev/",), False, ((full,), (full,), (full,)), ((rcp,), (rcp,), (rcp,))
        ),
    }
    principals = []
    count = rng.randint(4, 12)
    per = max(1, (budget - used) // count)
    for i in range(count):
        account = rng.choice([PROD, PROD, DEV])
        name = rng.choice(["app", "reader", "emergency", "ci", "analyst"]) + (
            f"-{i}" if rng.random() < 0.6 else ""
        )
        team = rng.choice(TEAMS)
        info = PrincipalInfo(
            f"arn:aws:sts::{account}:assumed-role/{name}/s",
            f"arn:aws:iam::{account}:role/{name}",
            account,
            "AssumedRole",
            f"AROABENCH{i:08d}:s",
            tags=(("team", team),),
            org_id=ORG,
            org_paths=(f"{ORG}/r-root/ou-prod/",),
        )
        policy = _compile(PolicyKind.IDENTITY, _identity_statements(rng, per), f"id-{i}")
        principals.append(Principal(info, (policy,)))
        used += per
    snapshot = Snapshot(
        accounts=accounts,
        principals=tuple(principals),
        tables=(Table(TABLE, PROD, "us-east-1", resource, (("team", "payments"),)),),
        endpoints=(Endpoint(VPCE, VPC, PROD, ("10.77.1.0/24",), vpce),),
        sealed=frozenset({"emergency"}) if rng.random() < 0.5 else frozenset(),
    )
    return snapshot, used


SEED_TABLE = f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders"


def _seed_times(timeout: float) -> list[tuple[str, str, float]]:
    from perimeterdb.prover_world import load_snapshot

    root = Path(__file__).resolve().parents[1]
    snap = load_snapshot(world_file=root / "examples" / "private-tables.yaml")
    out = []
    for label, call in [
        (
            "private --except emergency (as deployed)",
            lambda: private(
                snap, SEED_TABLE, "vpc-0a1b2c3d4e5f60001", except_=("emergency",), timeout=timeout
            ),
        ),
        (
            "private --except emergency --any-principal",
            lambda: private(
                snap,
                SEED_TABLE,
                "vpc-0a1b2c3d4e5f60001",
                except_=("emergency",),
                any_principal=True,
                timeout=timeout,
            ),
        ),
        (
            "private (no exception: counterexample)",
            lambda: private(snap, SEED_TABLE, "vpc-0a1b2c3d4e5f60001", timeout=timeout),
        ),
        (
            "public --any-principal",
            lambda: public(
                snap, f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders", any_principal=True, timeout=timeout
            ),
        ),
    ]:
        start = time.perf_counter()
        result = call()
        out.append((label, result.status, time.perf_counter() - start))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worlds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    times: list[float] = []
    statuses: dict[str, int] = {}
    sizes = []
    unknown_reasons = []
    for _ in range(args.worlds):
        snapshot, size = random_world(rng)
        sizes.append(size)
        for any_principal in (False, True):
            for label, call in [
                (
                    "private",
                    lambda snapshot=snapshot, any_principal=any_principal: private(
                        snapshot,
                        "orders",
                        VPC,
                        except_=("emergency",),
                        any_principal=any_principal,
                        timeout=args.timeout,
                    ),
                ),
                (
                    "public",
                    lambda snapshot=snapshot, any_principal=any_principal: public(
                        snapshot, "orders", any_principal=any_principal, timeout=args.timeout
                    ),
                ),
                (
                    "not-granted",
                    lambda snapshot=snapshot, any_principal=any_principal: not_granted(
                        snapshot,
                        ("dynamodb:DeleteTable",),
                        (TABLE,),
                        any_principal=any_principal,
                        timeout=args.timeout,
                    ),
                ),
            ]:
                start = time.perf_counter()
                result = call()
                elapsed = time.perf_counter() - start
                times.append(elapsed)
                statuses[result.status] = statuses.get(result.status, 0) + 1
                if result.status == "unknown":
                    unknown_reasons.append(f"{label}: {result.reason[:160]}")
    times.sort()
    n = len(times)
    print(
        f"worlds: {args.worlds}; statements in force per world: {min(sizes)}-{max(sizes)} "
        f"(mean {statistics.mean(sizes):.0f})"
    )
    print(f"queries: {n}; answers: {statuses}")
    print(
        f"time per query: median {times[n // 2] * 1e3:.0f} ms, p90 {times[int(n * 0.9)] * 1e3:.0f} ms, "
        f"p99 {times[min(n - 1, int(n * 0.99))] * 1e3:.0f} ms, max {times[-1] * 1e3:.0f} ms"
    )
    print(f"answered within 1 s: {sum(t <= 1.0 for t in times) / n * 100:.1f} %")
    for reason in unknown_reasons[:10]:
        print(f"  UNKNOWN {reason}")
    print("seed world (examples/private-tables.yaml, loaded once):")
    for label, status, seconds in _seed_times(args.timeout):
        print(f"  {label}: {status} in {seconds * 1e3:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
