import pytest

from perimeterdb.policy import PolicyKind, PolicyParseError, parse_policy


def test_parse_json_text_and_values() -> None:
    p = parse_policy(
        '{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow","Action":"dynamodb:GetItem",'
        '"Resource":"*","Condition":{"NumericLessThan":{"k":5},"Bool":{"b":true}}}}',
        PolicyKind.IDENTITY,
    )
    (stmt,) = p.statements
    assert stmt.sid == "A" and stmt.actions == ("dynamodb:GetItem",)
    assert [c.values for c in stmt.conditions] == [("5",), ("true",)]


def test_error_names_path_and_message() -> None:
    with pytest.raises(PolicyParseError) as info:
        parse_policy(
            {"Statement": [{"Effect": "Allow", "Action": "x:y", "Resource": "*", "Condition": {"Nope": {}}}]},
            PolicyKind.IDENTITY,
        )
    assert info.value.path == "Statement[0].Condition.Nope"
    assert "Invalid Condition type" in info.value.message


def test_syntax_error() -> None:
    with pytest.raises(PolicyParseError):
        parse_policy("{not json", PolicyKind.IDENTITY)
