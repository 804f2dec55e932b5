"""Runs the data-driven expression corpus in tests/compliance/expressions/*.json (see its README)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from perimeterdb.dynamodb import expressions as ex
from perimeterdb.errors import ApiError

CORPUS = Path(__file__).resolve().parents[1] / "compliance" / "expressions"
_KWARG = {
    "condition": "condition",
    "filter": "filter",
    "key_condition": "key_condition",
    "update": "update",
    "projection": "projection",
}


def _cases() -> list[Any]:
    params = []
    names: set[str] = set()
    for file in sorted(CORPUS.glob("*.json")):
        for case in json.loads(file.read_text()):
            case_id = f"{file.stem}: {case['name']}"
            assert case_id not in names, f"duplicate case name {case_id}"
            names.add(case_id)
            params.append(pytest.param(case, id=case_id))
    return params


def _expand(text: str) -> str:
    return re.sub(r"REPEAT(\d+)", lambda m: "a" * int(m.group(1)), text)


def _run(case: dict[str, Any]) -> Any:
    kind = case["kind"]
    bound = ex.compile_request_expressions(
        **{_KWARG[kind]: _expand(case["expression"])},
        names=case.get("names"),
        values=case.get("values"),
    )
    item = case.get("item")
    if kind in ("condition", "filter"):
        node = bound.condition if kind == "condition" else bound.filter
        assert node is not None
        return ex.evaluate_condition(node, item)
    if kind == "update":
        assert bound.update is not None
        return ex.apply_update(bound.update, item).item
    if kind == "projection":
        assert bound.projection is not None
        return ex.project(bound.projection, item or {})
    assert bound.key_clauses is not None
    return [[c.name, c.operator, list(c.values)] for c in bound.key_clauses]


@pytest.mark.parametrize("case", _cases())
def test_corpus_case(case: dict[str, Any]) -> None:
    assert ("expect" in case) != ("error" in case), "a case has exactly one of expect / error"
    if "error" in case:
        with pytest.raises(ApiError) as raised:
            _run(case)
        assert raised.value.code == "ValidationException"
        assert raised.value.message == case["error"]
    else:
        assert _run(case) == case["expect"]


def test_corpus_is_not_empty() -> None:
    assert len(_cases()) >= 200
