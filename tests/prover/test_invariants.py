"""`invariants:` in the world file: `world apply` proves them first and refuses a world that breaks one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from perimeterdb.cli import main
from perimeterdb.prover import available_solvers
from tests.prover.test_cli_prove import SEED, _feature_team_creates_roles, _unsealed

pytestmark = pytest.mark.skipif(
    set(available_solvers()) != {"z3", "cvc5"}, reason="z3-solver and cvc5 must both be installed"
)

INVARIANTS = [
    {"private": {"table": "prod/orders", "vpc": "prod-vpc", "except": ["emergency"]}},
    {"public": {"table": "prod/orders"}},
]


def _world(tmp_path: Path, change: Any = None) -> str:
    world = yaml.safe_load(SEED.read_text())
    if change is not None:
        change(world)
    world["invariants"] = INVARIANTS
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(world))
    return str(path)


def test_apply_proves_the_invariants_then_applies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert (
        main(["world", "apply", _world(tmp_path, _feature_team_creates_roles), "--data-dir", str(data)]) == 0
    )
    assert (data / "perimeterdb.sqlite3").exists()
    capsys.readouterr()


def test_apply_refuses_a_world_that_breaks_an_invariant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["world", "apply", _world(tmp_path, _unsealed), "--data-dir", str(data)]) == 1
    err = capsys.readouterr().err
    assert "invariant private: arn:aws:dynamodb:us-east-1:222222222222:table/orders only from" in err
    assert "does not hold" in err and "/emergency" in err and "role/feature-team" in err
    assert "not applied" in err
    assert not (data / "perimeterdb.sqlite3").exists()  # nothing was changed


def test_invariants_are_validated_by_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = yaml.safe_load(SEED.read_text())
    world["invariants"] = [{"private": {"table": "prod/orders"}}]  # no vpc
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(world))
    assert main(["world", "validate", str(path)]) == 1
    capsys.readouterr()
