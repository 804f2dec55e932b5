"""Small hand-made worlds for the prover tests (known answers in both directions)."""

from __future__ import annotations

from typing import Any

from perimeterdb.policy import PolicyKind, PolicyRef, PrincipalInfo, compile_policy, parse_policy
from perimeterdb.prover import Account, Endpoint, Principal, Snapshot, Table

PROD = "222222222222"
DEV = "333333333333"
MGMT = "111111111111"
ORG = "o-abcdef1234"
VPC = "vpc-0a1b2c3d4e5f60001"
OTHER_VPC = "vpc-0ffff00000000002"
TABLE = f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders"


def policy(kind: PolicyKind, doc: dict[str, Any], name: str = "p") -> Any:
    return compile_policy(parse_policy(doc, kind), PolicyRef(kind.value, name, name))


def allow_all(kind: PolicyKind = PolicyKind.IDENTITY, name: str = "allow-all") -> Any:
    stmt: dict[str, Any] = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    if kind in (PolicyKind.RCP,):
        stmt["Principal"] = "*"
    return policy(kind, {"Version": "2012-10-17", "Statement": [stmt]}, name)


def perimeter_scp(vpc: str = VPC, exception: str = "arn:aws:iam::*:role/emergency") -> Any:
    return policy(
        PolicyKind.SCP,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyDynamoDBOutsideVPC",
                    "Effect": "Deny",
                    "Action": "dynamodb:*",
                    "Resource": "*",
                    "Condition": {
                        "StringNotEquals": {"aws:SourceVpc": vpc},
                        "StringNotLike": {"aws:PrincipalArn": exception},
                    },
                }
            ],
        },
        "DenyDynamoDBOutsideVPC",
    )


def role(account: str, name: str, *policies: Any, tags: tuple[tuple[str, str], ...] = ()) -> Principal:
    info = PrincipalInfo(
        arn=f"arn:aws:sts::{account}:assumed-role/{name}/session",
        principal_arn=f"arn:aws:iam::{account}:role/{name}",
        account=account,
        type="AssumedRole",
        userid=f"AROAEXAMPLE{name.upper()}:session",
        tags=tags,
        org_id=ORG,
        org_paths=(f"{ORG}/r-root/ou-prod/",),
    )
    return Principal(info, tuple(policies))


def seed(
    *,
    scp_vpc: str = VPC,
    sealed: frozenset[str] = frozenset(),
    with_emergency: bool = True,
    feature_creates_roles: bool = True,
) -> Snapshot:
    """The seed's world (examples/private-tables.yaml) reduced to what decides access to prod's table."""
    scp = perimeter_scp(scp_vpc)
    full = allow_all(PolicyKind.SCP, "FullAWSAccess")
    rcp_full = allow_all(PolicyKind.RCP, "RCPFullAWSAccess")
    accounts = {
        MGMT: Account(MGMT, ORG, (f"{ORG}/r-root/",), True, ((full,), (full,)), ((rcp_full,), (rcp_full,))),
        PROD: Account(
            PROD,
            ORG,
            (f"{ORG}/r-root/ou-prod/",),
            False,
            ((full,), (full, scp), (full,)),
            ((rcp_full,), (rcp_full,), (rcp_full,)),
        ),
        DEV: Account(
            DEV,
            ORG,
            (f"{ORG}/r-root/ou-dev/",),
            False,
            ((full,), (full,), (full,)),
            ((rcp_full,), (rcp_full,), (rcp_full,)),
        ),
    }
    dynamodb_all = policy(
        PolicyKind.IDENTITY,
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}],
        },
        "dynamodb-all",
    )
    feature = [dynamodb_all, create_roles_policy()] if feature_creates_roles else [dynamodb_all]
    principals = [role(PROD, "feature-team", *feature), role(DEV, "feature-team", dynamodb_all)]
    if with_emergency:
        principals.append(role(PROD, "emergency", allow_all()))
    return Snapshot(
        accounts=accounts,
        principals=tuple(principals),
        tables=(
            Table(TABLE, PROD, "us-east-1"),
            Table(f"arn:aws:dynamodb:us-east-1:{DEV}:table/orders", DEV, "us-east-1"),
        ),
        endpoints=(
            Endpoint("vpce-0a1b2c3d4e5f60001", VPC, PROD, ("10.77.1.0/24",)),
            Endpoint("vpce-0ffff00000000002", OTHER_VPC, DEV, ("10.77.2.0/24",)),
        ),
        sealed=sealed,
    )


def create_roles_policy(account: str = PROD) -> Any:
    """Feature teams may create roles in their account (and users only with allow_users)."""
    return policy(
        PolicyKind.IDENTITY,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CreateRoles",
                    "Effect": "Allow",
                    "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
                    "Resource": f"arn:aws:iam::{account}:role/*",
                }
            ],
        },
        "create-roles",
    )
