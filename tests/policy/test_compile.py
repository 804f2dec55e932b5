from perimeterdb.policy import PolicyKind, PrincipalInfo
from perimeterdb.policy.compile import Grant
from tests.policy.conftest import policy


def test_candidates_are_memoised_per_action() -> None:
    p = policy(
        PolicyKind.IDENTITY,
        {"Effect": "Allow", "Action": "dynamodb:Get*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "dynamodb:GetItem", "Resource": "*"},
    )
    assert [s.ref.index for s in p.candidates("dynamodb:getitem")] == [0]
    assert [s.ref.index for s in p.candidates("dynamodb:putitem")] == [1]
    assert p.candidates("dynamodb:getitem") is p.candidates("dynamodb:getitem")


def test_principal_grants(alice: PrincipalInfo, session: PrincipalInfo) -> None:
    p = policy(
        PolicyKind.RESOURCE,
        {
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::111122223333:role/app", "111122223333"]},
            "Action": "*",
            "Resource": "*",
        },
    )
    principal = p.statements[0].principal
    assert principal is not None
    assert principal.grant(session) is Grant.ROLE
    assert principal.grant(alice) is Grant.ACCOUNT
