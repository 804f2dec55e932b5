import pytest

from perimeterdb.policy.ast import ConditionClause, SetQualifier
from perimeterdb.policy.conditions import OPERATORS, CompiledCondition, ConditionError, canonical_operator


def cond(op: str, key: str, *values: str) -> CompiledCondition:
    parsed = canonical_operator(op)
    assert parsed is not None
    base, qualifier, if_exists = parsed
    return CompiledCondition(ConditionClause(op, base, qualifier, if_exists, key, values), variables=True)


def get(d: dict) -> object:
    return lambda k: d.get(k)


def test_registry_has_every_operator() -> None:
    assert len(OPERATORS) == 27
    assert canonical_operator("forallvalues:stringlikeifexists") == (
        "StringLike",
        SetQualifier.FOR_ALL_VALUES,
        True,
    )
    assert canonical_operator("NullIfExists") is None
    assert canonical_operator("Foo") is None


def test_negated_nor_and_absent() -> None:
    c = cond("StringNotEquals", "k", "a", "b")
    assert c.evaluate(get({"k": "c"}))
    assert not c.evaluate(get({"k": "b"}))
    assert c.evaluate(get({}))


def test_set_operators() -> None:
    assert cond("ForAllValues:StringEquals", "k", "a").evaluate(get({}))
    assert not cond("ForAnyValue:StringEquals", "k", "a").evaluate(get({"k": ()}))
    assert cond("ForAnyValue:StringNotEquals", "k", "a").evaluate(get({"k": ("a", "b")}))
    assert not cond("ForAllValues:StringNotEquals", "k", "a").evaluate(get({"k": ("a", "b")}))


def test_errors_raise() -> None:
    with pytest.raises(ConditionError):
        cond("NumericEquals", "k", "1").evaluate(get({"k": "x"}))
    with pytest.raises(ConditionError):
        cond("IpAddress", "k", "300.0.0.0/8").evaluate(get({"k": "10.0.0.1"}))


def test_variables_in_values() -> None:
    c = cond("StringEquals", "owner", "${aws:username}")
    assert c.evaluate(get({"owner": "alice", "aws:username": "alice"}))
    assert not c.evaluate(get({"owner": "alice"}))
    assert cond("StringNotEquals", "owner", "${aws:username}").evaluate(get({"owner": "alice"}))
