"""The case that must work (issue 14): the seed's perimeter SCP with its aws:PrincipalArn exception."""

from __future__ import annotations

import pytest

from perimeterdb.prover import COUNTEREXAMPLE, HOLDS, available_solvers, private
from tests.prover.worlds import OTHER_VPC, PROD, TABLE, VPC, seed

pytestmark = pytest.mark.skipif(
    set(available_solvers()) != {"z3", "cvc5"}, reason="z3-solver and cvc5 must both be installed"
)


def test_as_deployed_the_emergency_role_is_the_only_way_in_and_it_is_excepted() -> None:
    result = private(seed(), TABLE, VPC, except_=("emergency",))
    assert result.status == HOLDS


def test_as_deployed_without_the_exception_the_emergency_role_gets_in_from_the_internet() -> None:
    result = private(seed(), TABLE, VPC)
    assert result.status == COUNTEREXAMPLE
    ce = result.counterexample
    assert ce is not None and ce.principal.principal_arn == f"arn:aws:iam::{PROD}:role/emergency"
    assert "aws:sourcevpc" not in ce.keys and ce.response.allowed and not ce.fresh


def test_any_principal_a_feature_team_creates_a_role_named_emergency() -> None:
    result = private(seed(), TABLE, VPC, except_=("emergency",), any_principal=True)
    assert result.status == COUNTEREXAMPLE, result.reason
    ce = result.counterexample
    assert ce is not None and ce.fresh
    assert ce.principal.principal_arn.endswith(":role/emergency")
    assert ce.principal.account == PROD
    assert ce.created_by == (f"arn:aws:iam::{PROD}:role/feature-team",)
    assert ce.response.allowed  # replayed through decide


def test_any_principal_with_the_emergency_role_sealed_holds() -> None:
    result = private(
        seed(sealed=frozenset({"emergency"})), TABLE, VPC, except_=("emergency",), any_principal=True
    )
    assert result.status == HOLDS, result.reason


def test_nobody_may_create_roles_then_no_new_emergency_role() -> None:
    snapshot = seed(feature_creates_roles=False)
    result = private(snapshot, TABLE, VPC, except_=("emergency",), any_principal=True)
    assert result.status == HOLDS, result.reason


def test_scp_pointing_at_the_wrong_vpc_lets_requests_in_from_that_vpc() -> None:
    result = private(seed(scp_vpc=OTHER_VPC), TABLE, VPC, except_=("emergency",))
    assert result.status == COUNTEREXAMPLE
    ce = result.counterexample
    assert ce is not None
    assert ce.keys["aws:sourcevpc"] == OTHER_VPC
    assert ce.keys["aws:sourcevpce"] == "vpce-0ffff00000000002"


def test_stringlike_exception_lets_a_new_user_in_through_its_path_even_when_sealed() -> None:
    """StringNotLike "arn:aws:iam::*:role/emergency" (the seed's exception): `*` crosses colons, so a *user*
    with path "/x:role/" named emergency matches it. Sealing reserves role names only."""
    from dataclasses import replace

    from perimeterdb.policy import PolicyKind
    from tests.prover.worlds import policy

    snapshot = seed(sealed=frozenset({"emergency"}))
    create_users = policy(
        PolicyKind.IDENTITY,
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iam:CreateUser", "Resource": f"arn:aws:iam::{PROD}:user/*"}
            ],
        },
        "create-users",
    )
    team = snapshot.principals[0]
    principals = (replace(team, identity=(*team.identity, create_users)), *snapshot.principals[1:])
    result = private(
        replace(snapshot, principals=principals), TABLE, VPC, except_=("emergency",), any_principal=True
    )
    assert result.status == COUNTEREXAMPLE, result.reason
    ce = result.counterexample
    assert ce is not None and ce.principal.type == "User"
    assert ":user/" in ce.principal.arn and ce.principal.arn.endswith(":role/emergency")
    assert ce.created_by == (f"arn:aws:iam::{PROD}:role/feature-team",)


def test_a_disagreement_with_the_evaluator_is_reported_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay is the safety net: break the encoding on purpose (everything allowed) and the answer is
    UNKNOWN naming an encoding bug, never a counterexample the evaluator does not confirm."""
    import importlib

    check_module = importlib.import_module("perimeterdb.prover.check")
    monkeypatch.setattr(check_module, "allowed", lambda req, space: "true")
    result = private(seed(), TABLE, VPC, except_=("emergency",), in_process=True)
    assert result.status == "unknown"
    assert result.reason.startswith("encoding bug")
