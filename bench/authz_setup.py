"""Authorization fully on: the configuration of the ``perimeterdb-authz`` system, built through the APIs.

The target configuration (issue #7) is a role session in a prod account under an SCP, calling through a
VPC endpoint listener, with identity policies, on durable storage. Each piece is tried at run time and the
result says exactly what was on and what was missing:

1. the world file (``perimeterdb serve --world FILE`` with examples/private-tables.yaml): detected only;
2. Organizations: an organization, a member account ``prod`` with an SCP attached, entered through
   ``OrganizationAccountAccessRole``; otherwise the bootstrap account (no SCP applies to it);
3. IAM in the data account: a managed permissions boundary, a role ``bench-app`` with a 20-statement
   identity policy (19 that do not match, as in bench/policy_decision.py, then the allow);
4. a resource policy on every bench table (evaluated on every request);
5. STS AssumeRole: the role session whose temporary credentials sign the benchmark's requests;
6. a check that authorization is really on: an action the session may not do is denied.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from common import PROJECT_PYTHON, ROOT
from presign import Credentials
from systems import System, create_tables, seed
from workloads import table_specs

ACTIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "DescribeTable")
DATA_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:BatchWriteItem",
    "dynamodb:DescribeTable",
    "dynamodb:ConditionCheckItem",
]


@dataclass
class AuthzConfig:
    creds: Credentials
    account: str
    on: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def identity_policy(account: str, statements: int = 20) -> str:
    filler = []
    for i in range(statements - 1):
        stmt: dict[str, Any] = {
            "Sid": f"S{i}",
            "Effect": "Allow" if i % 5 else "Deny",
            "Action": f"dynamodb:{ACTIONS[i % len(ACTIONS)]}",
            "Resource": f"arn:aws:dynamodb:us-east-1:{account}:table/other-{i}",
        }
        if i % 3 == 0:
            stmt["Condition"] = {"StringEquals": {"aws:PrincipalTag/team": f"team{i}"}}
        filler.append(stmt)
    hit = {
        "Sid": "BenchTables",
        "Effect": "Allow",
        "Action": DATA_ACTIONS,
        "Resource": f"arn:aws:dynamodb:us-east-1:{account}:table/bench-*",
        "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
    }
    return _doc(*filler, hit)


def world_file_support(*, need_example: bool = True) -> str | None:
    """None when ``serve --world`` (and examples/private-tables.yaml) exist, else what is missing."""
    out = subprocess.run(
        [str(PROJECT_PYTHON), "-m", "perimeterdb.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    problems = []
    if "--world" not in out.stdout:
        problems.append("`perimeterdb serve` has no --world option")
    if need_example and not (ROOT / "examples" / "private-tables.yaml").exists():
        problems.append("examples/private-tables.yaml does not exist")
    return "; ".join(problems) or None


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return f"{response.get('Error', {}).get('Code', type(exc).__name__)}: {str(exc)[:160]}"


def _organization(system: System, admin: Credentials, config: AuthzConfig) -> Credentials | None:
    """A prod member account under an SCP; returns admin-like credentials inside it, or None."""
    org = system.client("organizations", admin)
    try:
        org.create_organization(FeatureSet="ALL")
    except Exception as exc:
        if "AlreadyInOrganization" not in _error_code(exc):
            config.missing.append(f"Organizations: CreateOrganization failed ({_error_code(exc)}), so no SCP")
            return None
    try:
        root = org.list_roots()["Roots"][0]["Id"]
        try:
            org.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
        except Exception as exc:
            if "PolicyTypeAlreadyEnabled" not in _error_code(exc):
                raise
        status = org.create_account(Email="prod@example.com", AccountName="prod")["CreateAccountStatus"]
        deadline = time.monotonic() + 20
        while status.get("State") == "IN_PROGRESS" and time.monotonic() < deadline:
            time.sleep(0.2)
            status = org.describe_create_account_status(CreateAccountRequestId=status["Id"])[
                "CreateAccountStatus"
            ]
        prod = status.get("AccountId")
        if not prod:
            config.missing.append(f"Organizations: CreateAccount did not finish ({status}), so no SCP")
            return None
        scp = org.create_policy(
            Name="bench-prod-guardrails",
            Description="deny outside us-east-1; deny table deletion",
            Type="SERVICE_CONTROL_POLICY",
            Content=_doc(
                {
                    "Sid": "Regions",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}},
                },
                {"Sid": "NoDelete", "Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"},
            ),
        )["Policy"]["PolicySummary"]["Id"]
        org.attach_policy(PolicyId=scp, TargetId=prod)
    except Exception as exc:
        config.missing.append(
            f"Organizations: setting up the prod account and its SCP failed ({_error_code(exc)})"
        )
        return None
    sts = system.client("sts", admin)
    try:
        got = sts.assume_role(
            RoleArn=f"arn:aws:iam::{prod}:role/OrganizationAccountAccessRole", RoleSessionName="bench-setup"
        )["Credentials"]
    except Exception as exc:
        config.missing.append(
            f"Organizations: prod account {prod} has an SCP but cannot be entered through "
            f"OrganizationAccountAccessRole ({_error_code(exc)}); the bootstrap account (not under an SCP) is used"
        )
        return None
    config.on.append(f"prod member account {prod} with an SCP (2 deny statements) under FullAWSAccess")
    config.account = prod
    return Credentials(got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"])


def configure(system: System) -> AuthzConfig:
    """Build the configuration, seed the tables as the account's administrator, return the session keys."""
    admin = system.creds
    account = system.client("sts", admin).get_caller_identity()["Account"]
    config = AuthzConfig(creds=admin, account=account)
    config.on.append("durable storage (durability=full: every acknowledged write is fsynced, group commit)")
    missing_world = world_file_support()
    if missing_world:
        config.missing.append(f"VPC endpoint listener: {missing_world}; requests arrive on a public listener")
    else:
        config.missing.append(
            "VPC endpoint listener: `serve --world` exists but the harness does not yet start from a world file"
        )
    setup = _organization(system, admin, config) or admin
    account = config.account
    iam = system.client("iam", setup)
    boundary = iam.create_policy(
        PolicyName="bench-boundary",
        PolicyDocument=_doc(
            {
                "Effect": "Allow",
                "Action": "dynamodb:*",
                "Resource": f"arn:aws:dynamodb:*:{account}:table/bench-*",
            }
        ),
    )["Policy"]["Arn"]
    trust = _doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
    )
    role = iam.create_role(
        RoleName="bench-app",
        AssumeRolePolicyDocument=trust,
        PermissionsBoundary=boundary,
        Tags=[{"Key": "team", "Value": "payments"}],
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="bench-app", PolicyName="bench-data", PolicyDocument=identity_policy(account)
    )
    config.on.append("role session (STS AssumeRole) of role bench-app with a 20-statement identity policy")
    config.on.append("a managed permissions boundary on the role")
    seed(system, system.client("dynamodb", setup))
    ddb = system.client("dynamodb", setup)
    with_policy = 0
    for spec in table_specs():
        arn = ddb.describe_table(TableName=spec["TableName"])["Table"]["TableArn"]
        try:
            ddb.put_resource_policy(
                ResourceArn=arn,
                Policy=_doc(
                    {
                        "Sid": "App",
                        "Effect": "Allow",
                        "Principal": {"AWS": role},
                        "Action": DATA_ACTIONS,
                        "Resource": [arn, f"{arn}/index/*"],
                    }
                ),
            )
            with_policy += 1
        except Exception as exc:
            config.missing.append(f"table resource policy: PutResourcePolicy failed ({_error_code(exc)})")
            break
    if with_policy:
        config.on.append("a resource policy on every table")
    deadline = time.monotonic() + 10
    while True:  # a new role may take a moment to become assumable on some servers; not expected here
        try:
            got = system.client("sts", setup).assume_role(
                RoleArn=role, RoleSessionName="bench", DurationSeconds=3600
            )["Credentials"]
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    config.creds = Credentials(got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"])
    session = system.client("dynamodb", config.creds)
    session.get_item(TableName="bench-kv", Key={"pk": {"S": "k00000"}})
    try:
        session.delete_table(TableName="bench-kv")
        config.missing.append("CHECK FAILED: the role session could delete a table; authorization is not on")
    except Exception as exc:
        if "AccessDenied" in _error_code(exc):
            config.on.append("checked: the session's DeleteTable is denied (AccessDeniedException)")
        else:
            config.missing.append(f"check: DeleteTable gave {_error_code(exc)} instead of AccessDenied")
    create_tables(system, ddb)  # no-op; keeps the tables active for the run
    return config
