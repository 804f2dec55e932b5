"""`perimeterdb simulate` with --via-endpoint/--from-ip (the origin derived by the server's resolver, the
endpoint policy applied), --session-policy, several actions in one call, and warnings for unknown actions
and condition keys (issue 18: a misspelt action was allowed; the endpoint policy was never applied)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from perimeterdb.cli_demo import build_world

ROOT = Path(__file__).resolve().parents[2]
TABLE = "arn:aws:dynamodb:us-east-1:222222222222:table/orders"
ROLE = "arn:aws:iam::222222222222:role/feature-team"
VPCE = "vpce-0a1b2c3d4e5f60001"
READ_ONLY_ENDPOINT = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": ["dynamodb:GetItem", "dynamodb:Query"], "Resource": "*"}]}


def _world(tmp_path: Path) -> Path:
    keys = {name: (f"AKIA{name.upper():A<16}", "s" * 40) for name in ("admin", "alice", "oncall", "bob")}
    world = build_world(keys, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "127.0.0.1:8000", "10.77.1.1:8001")
    world["network"]["vpcs"]["prod-vpc"]["cidr_blocks"] = ["10.77.1.0/24"]
    world["network"]["vpcs"]["prod-vpc"]["allow_host_processes"] = False
    world["network"]["vpcs"]["prod-vpc"]["endpoints"][0]["policy"] = READ_ONLY_ENDPOINT
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(world))
    return path


def _simulate(world: Path, *args: str) -> tuple[int, object, str]:
    done = subprocess.run([sys.executable, "-m", "perimeterdb", "simulate", "--world", str(world), "--principal",
                           ROLE, "--resource", TABLE, "--json", *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode, json.loads(done.stdout) if done.stdout else None, done.stderr


def test_via_endpoint_applies_the_endpoint_policy_and_the_vpc(tmp_path: Path) -> None:
    world = _world(tmp_path)
    code, results, _ = _simulate(world, "--via-endpoint", VPCE, "--action", "dynamodb:GetItem,dynamodb:PutItem")
    assert isinstance(results, list) and code == 1
    get, put = results
    assert get["decision"] == "Allow"  # inside the VPC: the SCP's aws:SourceVpc condition holds
    assert put["decision"] == "ImplicitDeny"  # the endpoint policy allows reads only
    assert "because no VPC endpoint policy allows the dynamodb:PutItem action" in put["message"]
    # the same request from the internet: the SCP denies both
    code, results, _ = _simulate(world, "--from-ip", "203.0.113.9", "--action", "dynamodb:GetItem")
    assert code == 1 and results["decision"] == "ExplicitDeny"
    assert results["determining"][0]["sid"] == "DenyDynamoDBOutsideVPC"
    # through the endpoint but from outside its VPC: the server refuses the connection
    code, results, _ = _simulate(world, "--via-endpoint", VPCE, "--from-ip", "10.77.2.5", "--action",
                                 "dynamodb:GetItem")
    assert code == 1 and results["decision"] == "Refused" and "outside vpc-0a1b2c3d4e5f60001" in results["message"]
    code, results, stderr = _simulate(world, "--via-endpoint", "vpce-00000000deadbeef", "--action", "dynamodb:GetItem")
    assert code == 2 and "no VPC endpoint vpce-00000000deadbeef" in stderr


def test_session_policy_and_warnings(tmp_path: Path) -> None:
    world = _world(tmp_path)
    only_get = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]})
    code, results, _ = _simulate(world, "--via-endpoint", VPCE, "--session-policy", only_get,
                                 "--action", "dynamodb:GetItem", "--action", "dynamodb:Query")
    assert [r["decision"] for r in results] == ["Allow", "ImplicitDeny"]  # type: ignore[union-attr]
    assert "session policy" in results[1]["message"]  # type: ignore[index]
    code, _, stderr = _simulate(world, "--session-policy", '{"Statement": [{"Effect": "Alow"}]}',
                                "--action", "dynamodb:GetItem")
    assert code == 2 and "invalid session policy" in stderr
    code, results, stderr = _simulate(world, "--via-endpoint", VPCE, "--action", "dynamodb:GetIten",
                                      "--context", "aws:SorceIp=1.2.3.4")
    assert "dynamodb:GetIten is not an action of dynamodb (did you mean dynamodb:GetItem?)" in stderr
    assert "aws:SorceIp is not a condition key" in stderr
    assert results["warnings"] == ["dynamodb:GetIten is not an action of dynamodb (did you mean dynamodb:GetItem?)"]
