"""Engine behaviours needed by AWS's data-perimeter policies (aws-samples/data-perimeter-policy-examples)."""

from __future__ import annotations

from datetime import UTC, datetime

from perimeterdb.policy import (
    Decision,
    NetworkOrigin,
    PolicyKind,
    PolicySet,
    PrincipalInfo,
    build_context,
    decide,
    parse_policy,
    standard_keys,
)
from tests.policy.conftest import ACCOUNT, TABLE, policy

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ci"
OIDC = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


def web_identity() -> PrincipalInfo:
    return PrincipalInfo(
        "repo:example/app",
        "repo:example/app",
        "",
        "WebIdentityUser",
        "repo:example/app",
        federated_provider=OIDC,
    )


def test_rcp_statement_without_principal_means_everyone() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "SourceVPCRegion", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    stmt = parse_policy(doc, PolicyKind.RCP).statements[0]
    assert stmt.principal is not None and stmt.principal.wildcard


def test_federated_wildcard_names_any_identity_provider() -> None:
    trust = policy(
        PolicyKind.TRUST,
        {
            "Sid": "T",
            "Effect": "Allow",
            "Principal": {"Federated": "*"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        },
    )
    ctx = build_context(web_identity(), "sts:AssumeRoleWithWebIdentity", ROLE, resource_account=ACCOUNT)
    response = decide(ctx, PolicySet(resource=trust))
    assert response.decision is Decision.ALLOW
    assert [r.sid for r in response.determining] == ["T"]


def test_web_identity_caller_needs_no_identity_policy_but_a_matching_provider() -> None:
    trust = policy(
        PolicyKind.TRUST,
        {
            "Sid": "T",
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/x"},
            "Action": "*",
        },
    )
    ctx = build_context(web_identity(), "sts:AssumeRoleWithWebIdentity", ROLE, resource_account=ACCOUNT)
    response = decide(ctx, PolicySet(resource=trust))
    assert response.decision is Decision.IMPLICIT_DENY and response.denied_by == "trust"


def test_aws_wildcard_deny_covers_web_identity_callers() -> None:
    # DP resource_based_policies README: the perimeter trust policy "prevents users from assuming a role
    # using Web Identity or OpenID Connect (OIDC) federated identity providers".
    trust = policy(
        PolicyKind.TRUST,
        {"Sid": "D", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRoleWithWebIdentity"},
        {
            "Sid": "T",
            "Effect": "Allow",
            "Principal": {"Federated": OIDC},
            "Action": "sts:AssumeRoleWithWebIdentity",
        },
    )
    ctx = build_context(web_identity(), "sts:AssumeRoleWithWebIdentity", ROLE, resource_account=ACCOUNT)
    assert decide(ctx, PolicySet(resource=trust)).decision is Decision.EXPLICIT_DENY


def test_service_wildcard_names_any_service_principal() -> None:
    rp = policy(
        PolicyKind.RESOURCE,
        {
            "Sid": "S",
            "Effect": "Allow",
            "Principal": {"Service": "*"},
            "Action": "dynamodb:*",
            "Resource": "*",
        },
    )
    svc = PrincipalInfo("backup.amazonaws.com", "backup.amazonaws.com", "", "Service", "backup.amazonaws.com")
    ctx = build_context(svc, "dynamodb:DescribeTable", TABLE, resource_account=ACCOUNT)
    assert decide(ctx, PolicySet(resource=rp)).decision is Decision.ALLOW


def test_service_principal_keys() -> None:
    svc = PrincipalInfo("backup.amazonaws.com", "backup.amazonaws.com", "", "Service", "backup.amazonaws.com")
    k = standard_keys(svc, origin=NetworkOrigin("52.94.0.1"), now=NOW, region="us-east-1")
    assert k["aws:PrincipalIsAWSService"] == "true"
    assert k["aws:PrincipalServiceName"] == "backup.amazonaws.com"
    assert "aws:PrincipalArn" not in k and "aws:PrincipalAccount" not in k and "aws:PrincipalOrgID" not in k


def test_sts_federated_user_carries_the_organization_id() -> None:
    fred = PrincipalInfo(
        f"arn:aws:sts::{ACCOUNT}:federated-user/fred",
        f"arn:aws:sts::{ACCOUNT}:federated-user/fred",
        ACCOUNT,
        "FederatedUser",
        f"{ACCOUNT}:fred",
        org_id="o-a1b2c3d4e5",
    )
    k = standard_keys(fred, origin=NetworkOrigin("203.0.113.1"), now=NOW, region="us-east-1")
    assert k["aws:PrincipalOrgID"] == "o-a1b2c3d4e5"


def test_web_identity_caller_has_no_iam_principal_keys() -> None:
    k = standard_keys(web_identity(), origin=NetworkOrigin("203.0.113.1"), now=NOW, region="us-east-1")
    assert "aws:PrincipalArn" not in k and "aws:PrincipalOrgID" not in k and "aws:PrincipalAccount" not in k
