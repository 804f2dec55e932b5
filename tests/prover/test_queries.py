"""not-granted, public, no-new-access and who-can on small hand-made worlds (known answers both ways)."""

from __future__ import annotations

from typing import Any

import pytest

from perimeterdb.policy import PolicyKind
from perimeterdb.prover import (
    COUNTEREXAMPLE,
    HOLDS,
    Snapshot,
    Table,
    available_solvers,
    no_new_access,
    not_granted,
    public,
    who_can,
)
from tests.prover.worlds import DEV, PROD, TABLE, VPC, policy, seed

pytestmark = pytest.mark.skipif(
    set(available_solvers()) != {"z3", "cvc5"}, reason="z3-solver and cvc5 must both be installed"
)


def _identity(statements: list[dict[str, Any]], name: str) -> Any:
    return policy(PolicyKind.IDENTITY, {"Version": "2012-10-17", "Statement": statements}, name)


def _with_table_policy(snapshot: Snapshot, statements: list[dict[str, Any]]) -> Snapshot:
    doc = {"Version": "2012-10-17", "Statement": statements}
    table = Table(TABLE, PROD, "us-east-1", policy(PolicyKind.RESOURCE, doc, "orders-policy"))
    return Snapshot(
        snapshot.accounts,
        snapshot.principals,
        (table, *snapshot.tables[1:]),
        snapshot.endpoints,
        snapshot.sealed,
    )


def test_not_granted_dev_feature_team_cannot_read_prod_without_a_resource_policy() -> None:
    result = not_granted(
        seed(), ("dynamodb:GetItem",), (TABLE,), principal=f"arn:aws:iam::{DEV}:role/feature-team"
    )
    assert result.status == HOLDS


def test_not_granted_fails_once_the_table_policy_grants_dev_through_the_endpoint() -> None:
    snapshot = _with_table_policy(
        seed(),
        [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEV}:role/feature-team"},
                "Action": "dynamodb:GetItem",
                "Resource": TABLE,
            }
        ],
    )
    result = not_granted(
        snapshot, ("dynamodb:GetItem",), (TABLE,), principal=f"arn:aws:iam::{DEV}:role/feature-team"
    )
    assert result.status == COUNTEREXAMPLE
    ce = result.counterexample
    assert ce is not None and ce.response.allowed
    assert ce.principal.principal_arn == f"arn:aws:iam::{DEV}:role/feature-team"


def test_public_holds_then_a_wildcard_table_policy_makes_it_public() -> None:
    assert public(seed(), TABLE, any_principal=True).status == HOLDS
    snapshot = _with_table_policy(
        seed(), [{"Effect": "Allow", "Principal": "*", "Action": "dynamodb:GetItem", "Resource": TABLE}]
    )
    result = public(snapshot, TABLE, any_principal=True)
    assert result.status == COUNTEREXAMPLE
    ce = result.counterexample
    assert ce is not None
    assert ce.principal.type == "Anonymous" or ce.principal.account not in (PROD, DEV, "111111111111")


def test_public_holds_with_an_org_condition_on_the_wildcard_grant() -> None:
    snapshot = _with_table_policy(
        seed(),
        [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "dynamodb:GetItem",
                "Resource": TABLE,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abcdef1234"}},
            }
        ],
    )
    assert public(snapshot, TABLE, any_principal=True).status == HOLDS


def test_no_new_access_identity_policies() -> None:
    old = _identity(
        [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:*:*:table/orders"}],
        "old",
    )
    narrower = _identity(
        [
            {
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": "arn:aws:dynamodb:*:*:table/orders",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            }
        ],
        "narrower",
    )
    wider = _identity(
        [{"Effect": "Allow", "Action": "dynamodb:Get*", "Resource": "arn:aws:dynamodb:*:*:table/*"}], "wider"
    )
    assert no_new_access(old, narrower).status == HOLDS
    result = no_new_access(old, wider)
    assert result.status == COUNTEREXAMPLE
    ce = result.counterexample
    assert ce is not None
    assert ce.action.lower() != "dynamodb:getitem" or not ce.resource.endswith(":table/orders")


def test_who_can_lists_the_endpoint_and_the_exception() -> None:
    found, unknown = who_can(seed(), "dynamodb:GetItem", TABLE)
    assert unknown == []
    pairs = {(w.principal, w.origin.split(" ")[0]) for w in found}
    assert (f"arn:aws:sts::{PROD}:assumed-role/feature-team/session", "VPC") in pairs
    assert (f"arn:aws:sts::{PROD}:assumed-role/feature-team/session", "internet") not in pairs
    assert (f"arn:aws:sts::{PROD}:assumed-role/emergency/session", "internet") in pairs
    assert VPC
