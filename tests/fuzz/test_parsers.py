"""Property tests of every parser an attacker's bytes reach: each raises only its documented error type.

The strategies and the targets live in fuzz/ and are shared with the coverage-guided atheris drivers, so a
failure here and a crash there are the same finding (see docs/reliability.md).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import strategies as fs
from fuzz import targets


@given(fs.expression_inputs())
def test_expressions_raise_only_validation_errors(case: dict[str, Any]) -> None:
    targets.expression_case(**case)


@given(fs.deep_conditions, st.sampled_from(["condition", "filter", "key_condition"]))
def test_deeply_nested_conditions_raise_only_validation_errors(text: str, param: str) -> None:
    targets.expression_case(**{param: text}, values={":v": {"S": "x"}, ":w": {"N": "1"}})


@given(fs.attribute_values)
def test_attribute_values_raise_only_client_errors(value: Any) -> None:
    targets.value_case(value)


@given(fs.deep_values)
def test_deeply_nested_attribute_values_raise_only_client_errors(value: Any) -> None:
    targets.value_case(value)


@given(fs.request_bodies())
def test_request_shapes_raise_only_client_errors(case: tuple[str, Any]) -> None:
    targets.request_case(*case)


@given(fs.sigv4_inputs())
def test_sigv4_raises_only_client_errors(case: dict[str, Any]) -> None:
    targets.sigv4_case(**case)


@given(fs.policy_documents())
def test_policies_parse_or_raise_policy_parse_error_and_parsed_ones_decide(
    case: tuple[Any, int, Any],
) -> None:
    targets.policy_case(*case)


@given(fs.world_texts())
def test_world_file_raises_only_world_error(text: str) -> None:
    targets.world_case(text)


def test_the_expression_strategy_reaches_evaluation() -> None:
    """Guard against a strategy that only ever produces refused input (which would test nothing)."""
    stages: list[str] = []

    @settings(max_examples=120)
    @given(fs.expression_inputs())
    def run(case: dict[str, Any]) -> None:
        stages.append(targets.expression_case(**case))

    run()
    assert stages.count("bound") >= 6, {s: stages.count(s) for s in set(stages)}
    assert stages.count("refused") >= 6
