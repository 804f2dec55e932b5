"""``perimeterdb prove`` on world files: the seed world and variants of it (known answers both ways)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from perimeterdb.cli import main
from perimeterdb.prover import available_solvers

pytestmark = pytest.mark.skipif(
    set(available_solvers()) != {"z3", "cvc5"}, reason="z3-solver and cvc5 must both be installed"
)

SEED = Path(__file__).resolve().parents[2] / "examples" / "private-tables.yaml"
TABLE = "arn:aws:dynamodb:us-east-1:222222222222:table/orders"
VPC = "vpc-0a1b2c3d4e5f60001"


def _world(tmp_path: Path, name: str, change: Any = None) -> str:
    world = yaml.safe_load(SEED.read_text())
    world = copy.deepcopy(world)
    if change is not None:
        change(world)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(world))
    return str(path)


def _feature_team_creates_roles(world: dict[str, Any]) -> None:
    """The permission the issue asks for: feature teams may create roles in the prod account."""
    inline = world["accounts"]["prod"]["roles"]["feature-team"]["inline"]
    inline["create-roles"] = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
                "Resource": "arn:aws:iam::222222222222:role/*",
            }
        ],
    }


def _unsealed(world: dict[str, Any]) -> None:
    _feature_team_creates_roles(world)
    del world["accounts"]["prod"]["roles"]["emergency"]["break_glass"]


def _prove(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["prove", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


def test_seed_world_private_holds_and_without_the_exception_the_emergency_role_gets_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = _world(tmp_path, "seed")
    code, out = _prove(
        capsys,
        "private",
        "--table",
        TABLE,
        "--vpc",
        VPC,
        "--except",
        "emergency",
        "--any-principal",
        "--world",
        world,
    )
    assert (code, out["result"]) == (0, "holds")
    code, out = _prove(capsys, "private", "--table", TABLE, "--vpc", VPC, "--world", world)
    assert (code, out["result"]) == (1, "counterexample")
    ce = out["counterexample"]
    assert ce["principal"]["principal_arn"] == "arn:aws:iam::222222222222:role/emergency"
    assert ce["principal"]["exists"] is True and ce["decision"] == "Allow"
    assert "aws:sourcevpc" not in ce["context"]


def test_unsealed_emergency_role_and_feature_teams_creating_roles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = _world(tmp_path, "unsealed", _unsealed)
    code, out = _prove(
        capsys,
        "private",
        "--table",
        TABLE,
        "--vpc",
        VPC,
        "--except",
        "emergency",
        "--any-principal",
        "--world",
        world,
    )
    assert (code, out["result"]) == (1, "counterexample")
    ce = out["counterexample"]
    assert ce["principal"]["exists"] is False
    assert ce["principal"]["principal_arn"].startswith("arn:aws:iam::222222222222:role/")
    assert ce["principal"]["principal_arn"].endswith("/emergency")
    assert "arn:aws:iam::222222222222:role/feature-team" in ce["created_by"]
    # As deployed (only the principals that exist), the excepted role is the only way in: holds.
    code, out = _prove(
        capsys, "private", "--table", TABLE, "--vpc", VPC, "--except", "emergency", "--world", world
    )
    assert (code, out["result"]) == (0, "holds")


def test_sealed_emergency_role_holds_even_when_feature_teams_create_roles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = _world(tmp_path, "sealed", _feature_team_creates_roles)
    code, out = _prove(
        capsys,
        "private",
        "--table",
        TABLE,
        "--vpc",
        VPC,
        "--except",
        "emergency",
        "--any-principal",
        "--world",
        world,
    )
    assert (code, out["result"]) == (0, "holds"), out


def test_scp_pointing_at_another_vpc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The SCP names the dev VPC: a request through the dev VPC's endpoint reaches prod's table."""

    def wrong_vpc(world: dict[str, Any]) -> None:
        doc = world["organization"]["policies"]["DenyDynamoDBOutsideVPC"]["document"]
        doc["Statement"][0]["Condition"]["StringNotEquals"]["aws:SourceVpc"] = "vpc-0a1b2c3d4e5f60002"
        world["network"]["vpcs"]["dev-vpc"] = {
            "id": "vpc-0a1b2c3d4e5f60002",
            "account": "dev",
            "region": "us-east-1",
            "cidr_blocks": ["10.77.2.0/24"],
            "endpoints": [
                {"id": "vpce-0a1b2c3d4e5f60002", "service": "dynamodb", "listen": "10.77.2.1:8001"}
            ],
        }

    world = _world(tmp_path, "wrong-vpc", wrong_vpc)
    code, out = _prove(
        capsys, "private", "--table", TABLE, "--vpc", VPC, "--except", "emergency", "--world", world
    )
    assert (code, out["result"]) == (1, "counterexample")
    ce = out["counterexample"]
    assert ce["context"]["aws:sourcevpc"] == "vpc-0a1b2c3d4e5f60002"
    assert ce["principal"]["principal_arn"] == "arn:aws:iam::222222222222:role/feature-team"


def test_public_and_who_can(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = _world(tmp_path, "seed")
    code, out = _prove(capsys, "public", "--table", TABLE, "--any-principal", "--world", world)
    assert (code, out["result"]) == (0, "holds")
    code = main(
        ["prove", "who-can", "--action", "dynamodb:GetItem", "--resource", TABLE, "--world", world, "--json"]
    )
    listed = json.loads(capsys.readouterr().out)["allowed"]
    assert code == 0
    who = {(w["principal"], w["origin"].split(" ")[0]) for w in listed}
    assert ("arn:aws:sts::222222222222:assumed-role/feature-team/session", "VPC") in who
    assert ("arn:aws:sts::222222222222:assumed-role/feature-team/session", "internet") not in who
    assert ("arn:aws:sts::222222222222:assumed-role/emergency/session", "internet") in who


def test_usage_errors_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = _world(tmp_path, "seed")
    with pytest.raises(SystemExit) as exc:
        main(["prove", "private", "--table", "orders"])
    assert exc.value.code == 3
    assert main(["prove", "private", "--table", "nope", "--vpc", VPC, "--world", world]) == 3
    # prod and dev both have a table named orders: the name alone is ambiguous
    assert main(["prove", "private", "--table", "orders", "--vpc", VPC, "--world", world]) == 3
    assert main(["prove", "public", "--table", "orders", "--world", str(tmp_path / "missing.yaml")]) == 3
    capsys.readouterr()
