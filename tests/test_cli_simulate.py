"""`perimeterdb simulate` on the shipped private-tables world: the guardrail, decided offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = "arn:aws:dynamodb:us-east-1:222222222222:table/orders"
VPC = [
    "--context",
    "aws:SourceVpce=vpce-0a1b2c3d4e5f60001",
    "--context",
    "aws:SourceVpc=vpc-0a1b2c3d4e5f60001",
]


def _simulate(principal: str, *extra: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "perimeterdb.cli",
            "simulate",
            "--world",
            str(ROOT / "examples/private-tables.yaml"),
            "--principal",
            principal,
            "--action",
            "dynamodb:GetItem",
            "--resource",
            TABLE,
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout)


def test_feature_team_from_the_internet_is_denied_by_the_scp() -> None:
    code, result = _simulate("arn:aws:iam::222222222222:role/feature-team")
    assert code == 1
    assert result["decision"] == "ExplicitDeny"
    assert result["determining"][0]["kind"] == "scp"  # type: ignore[index]
    assert result["determining"][0]["sid"] == "DenyDynamoDBOutsideVPC"  # type: ignore[index]
    assert "with an explicit deny in a service control policy" in str(result["message"])


def test_feature_team_through_the_prod_endpoint_is_allowed() -> None:
    code, result = _simulate("arn:aws:iam::222222222222:role/feature-team", *VPC)
    assert code == 0 and result["decision"] == "Allow"


def test_emergency_role_is_exempt_from_the_scp() -> None:
    code, result = _simulate("arn:aws:iam::222222222222:role/emergency")
    assert code == 0 and result["decision"] == "Allow"
