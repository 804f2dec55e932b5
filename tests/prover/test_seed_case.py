"""The case that must work (issue 14): the seed's perimeter SCP with its aws:PrincipalArn exception."""

from __future__ import annotations

import pytest

from perimeterdb.prover import COUNTEREXAMPLE, HOLDS, available_solvers, private
from tests.prover.worlds import OTHER_VPC, PROD, VPC, seed

pytestmark = pytest.mark.skipif(
    set(available_solvers()) != {"z3", "cvc5"}, reason="z3-solver and cvc5 must both be installed"
)


def test_as_deployed_the_emergency_role_is_the_only_way_in_and_it_is_excepted() -> None:
    result = private(seed(), "orders", VPC, except_=("emergency",))
    assert result.status == HOLDS


def test_as_deployed_without_the_exception_the_emergency_role_gets_in_from_the_internet() -> None:
    result = private(seed(), "orders", VPC)
    assert result.status == COUNTEREXAMPLE
    ce = result.counterexample
    assert ce is not None and ce.principal.principal_arn == f"arn:aws:iam::{PROD}:role/emergency"
    assert "aws:sourcevpc" not in ce.keys and ce.response.allowed and not ce.fresh


def test_any_principal_a_feature_team_creates_a_role_named_emergency() -> None:
    result = private(seed(), "orders", VPC, except_=("emergency",), any_principal=True)
    assert result.status == COUNTEREXAMPLE, result.reason
    ce = result.counterexample
    assert ce is not None and ce.fresh
    assert ce.principal.principal_arn.endswith(":role/emergency")
    assert ce.principal.account == PROD
    assert ce.created_by == (f"arn:aws:iam::{PROD}:role/feature-team",)
    assert ce.response.allowed  # replayed through decide


def test_any_principal_with_the_emergency_role_sealed_holds() -> None:
    result = private(
        seed(sealed=frozenset({"emergency"})), "orders", VPC, except_=("emergency",), any_principal=True
    )
    assert result.status == HOLDS, result.reason


def test_nobody_may_create_roles_then_no_new_emergency_role() -> None:
    snapshot = seed(feature_creates_roles=False)
    result = private(snapshot, "orders", VPC, except_=("emergency",), any_principal=True)
    assert result.status == HOLDS, result.reason


def test_scp_pointing_at_the_wrong_vpc_lets_requests_in_from_that_vpc() -> None:
    result = private(seed(scp_vpc=OTHER_VPC), "orders", VPC, except_=("emergency",))
    assert result.status == COUNTEREXAMPLE
    ce = result.counterexample
    assert ce is not None
    assert ce.keys["aws:sourcevpc"] == OTHER_VPC
    assert ce.keys["aws:sourcevpce"] == "vpce-0ffff00000000002"
