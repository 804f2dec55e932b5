from perimeterdb.policy import (
    ContextKeys,
    Decision,
    PolicyKind,
    PolicySet,
    PrincipalInfo,
    RequestContext,
    decide,
)
from tests.policy.conftest import ACCOUNT, TABLE, policy

ALLOW = {"Sid": "A", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}


def ctx(p: PrincipalInfo, action: str = "dynamodb:GetItem", keys: dict | None = None) -> RequestContext:
    return RequestContext(p, action, TABLE, ACCOUNT, ContextKeys(keys or {}))


def test_allow_names_the_granting_statement(alice: PrincipalInfo) -> None:
    r = decide(ctx(alice), PolicySet(identity=(policy(PolicyKind.IDENTITY, ALLOW, pid="p1"),)))
    assert r.decision is Decision.ALLOW
    assert [(s.policy_id, s.sid) for s in r.determining] == [("p1", "A")]


def test_fail_closed_deny(alice: PrincipalInfo) -> None:
    deny = policy(
        PolicyKind.IDENTITY,
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"NumericLessThan": {"k": "1"}}},
        pid="d",
    )
    r = decide(ctx(alice, keys={"k": "oops"}), PolicySet(identity=(policy(PolicyKind.IDENTITY, ALLOW), deny)))
    assert r.decision is Decision.EXPLICIT_DENY and r.errors


def test_decide_is_pure(alice: PrincipalInfo) -> None:
    ps = PolicySet(identity=(policy(PolicyKind.IDENTITY, ALLOW),))
    assert decide(ctx(alice), ps) == decide(ctx(alice), ps)
