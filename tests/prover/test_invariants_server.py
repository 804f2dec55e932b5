"""World invariants checked by the running server: `world apply` / `serve --world` store them, and
PutResourcePolicy, CreateTable's ResourcePolicy and Organizations SCP changes that would break one are refused
with the counterexample (a real server, driven with boto3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from perimeterdb.cli import main
from perimeterdb.prover import available_solvers
from tests.prover.test_cli_prove import SEED, TABLE
from tests.support.server import CLIENT_CONFIG, ServerProcess, free_port

pytestmark = pytest.mark.skipif(
    set(available_solvers()) != {"z3", "cvc5"}, reason="z3-solver and cvc5 must both be installed"
)

DEPLOYER = ("AKIAPRODDEPLOYER0001", "prod-deployer-secret-0123456789abcdefghij")
ADMIN = ("AKIAMANAGEMENTADMIN1", "management-admin-secret-0123456789abcdefg")
INVARIANT = {"private": {"table": "prod/orders", "vpc": "prod-vpc", "except": ["emergency"]}}


def _world(tmp_path: Path, endpoint_port: int, change: Any = None) -> Path:
    """The seed world, its endpoint on loopback (loopback in the VPC, host processes allowed), fixed keys, and a
    `private` invariant on prod's table."""
    world = yaml.safe_load(SEED.read_text())
    vpc = world["network"]["vpcs"]["prod-vpc"]
    vpc["allow_host_processes"] = True
    vpc["cidr_blocks"] = ["10.77.1.0/24", "127.0.0.0/8"]  # the test's client, on loopback, is inside
    vpc["endpoints"][0]["listen"] = f"127.0.0.1:{endpoint_port}"
    prod = world["accounts"]["prod"]["users"]["deployer"]
    prod["access_keys"] = [{"id": DEPLOYER[0], "secret": DEPLOYER[1]}]
    prod["inline"]["tables"] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}],
    }
    world["accounts"]["management"]["users"]["platform-admin"]["access_keys"] = [{"id": ADMIN[0], "secret": ADMIN[1]}]
    world["invariants"] = [INVARIANT]
    if change is not None:
        change(world)
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(world))
    return path


def _client(service: str, url: str, keys: tuple[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        config=CLIENT_CONFIG,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    tmp = tmp_path_factory.mktemp("invariants-server")
    endpoint_port = free_port()
    world = _world(tmp, endpoint_port)
    proc = ServerProcess(tmp / "data", extra_args=["--world", str(world)]).start(timeout=60)
    try:
        yield proc, f"http://127.0.0.1:{endpoint_port}"
    finally:
        proc.stop()


def _policy(principal: str, sid: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "dynamodb:GetItem",
                 "Resource": TABLE}
            ],
        }
    )


def test_world_apply_stores_the_resolved_invariants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from perimeterdb.config import Settings
    from perimeterdb.prover_invariants import Invariant, load
    from perimeterdb.storage.sqlite import SQLiteEngine

    data = tmp_path / "data"
    assert main(["world", "apply", str(_world(tmp_path, free_port())), "--data-dir", str(data)]) == 0
    assert "updated invariants (1 stored" in capsys.readouterr().out
    engine = SQLiteEngine(Settings(data_dir=data).database_path, durability="normal")
    try:
        stored = asyncio.run(load(engine))
    finally:
        engine.close()
    assert stored == (Invariant("private", TABLE, "vpc-0a1b2c3d4e5f60001", ("emergency",)),)


def test_put_resource_policy_that_lets_an_outside_principal_in_is_refused(server: tuple[ServerProcess, str]) -> None:
    _, endpoint = server
    ddb = _client("dynamodb", endpoint, DEPLOYER)
    harmless = _policy("arn:aws:iam::222222222222:root", "SameAccount")
    revision = ddb.put_resource_policy(ResourceArn=TABLE, Policy=harmless)["RevisionId"]
    # The dev account is in the organization but under no SCP: its feature-team (dynamodb:*) could read
    # prod's table from anywhere once the table's policy names the dev account.
    with pytest.raises(ClientError) as refused:
        ddb.put_resource_policy(ResourceArn=TABLE, Policy=_policy("arn:aws:iam::333333333333:root", "Dev"))
    error = refused.value.response["Error"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationException"
    assert f"invariant private: {TABLE} only from vpc-0a1b2c3d4e5f60001 does not hold" in error["Message"]
    assert "333333333333" in error["Message"] and "is allowed dynamodb:" in error["Message"]
    current = ddb.get_resource_policy(ResourceArn=TABLE)
    assert (current["Policy"], current["RevisionId"]) == (harmless, revision)  # the old policy stays


def test_create_table_with_a_policy_that_breaks_an_invariant_is_refused(server: tuple[ServerProcess, str]) -> None:
    _, endpoint = server
    ddb = _client("dynamodb", endpoint, DEPLOYER)
    ddb.delete_table(TableName="orders")
    schema: dict[str, Any] = {
        "TableName": "orders",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    with pytest.raises(ClientError) as refused:
        ddb.create_table(**schema, ResourcePolicy=_policy("arn:aws:iam::333333333333:root", "Dev"))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "does not hold" in refused.value.response["Error"]["Message"]
    assert "orders" not in ddb.list_tables()["TableNames"]
    ddb.create_table(**schema, ResourcePolicy=_policy("arn:aws:iam::222222222222:root", "SameAccount"))
    assert "orders" in ddb.list_tables()["TableNames"]


def _ids(org: Any) -> tuple[str, str, str]:
    root = org.list_roots()["Roots"][0]["Id"]
    units = {u["Name"]: u["Id"] for u in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]}
    scps = {p["Name"]: p["Id"] for p in org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]}
    return units["Prod"], units["Dev"], scps["DenyDynamoDBOutsideVPC"]


def _attached(org: Any, target: str) -> set[str]:
    found = org.list_policies_for_target(TargetId=target, Filter="SERVICE_CONTROL_POLICY")["Policies"]
    return {p["Id"] for p in found}


def test_scp_detach_that_would_open_the_table_is_refused(server: tuple[ServerProcess, str]) -> None:
    proc, _ = server
    org = _client("organizations", proc.endpoint, ADMIN)
    prod_ou, _, scp = _ids(org)
    with pytest.raises(ClientError) as refused:
        org.detach_policy(PolicyId=scp, TargetId=prod_ou)
    error = refused.value.response["Error"]
    assert error["Code"] == "ConstraintViolationException"
    assert f"invariant private: {TABLE} only from vpc-0a1b2c3d4e5f60001 does not hold" in error["Message"]
    assert "222222222222" in error["Message"]
    assert scp in _attached(org, prod_ou)  # still attached
    # Weakening the SCP's content is the same change by another route.
    document = json.loads(org.describe_policy(PolicyId=scp)["Policy"]["Content"])
    document["Statement"][0]["Action"] = "dynamodb:DeleteTable"
    with pytest.raises(ClientError) as refused:
        org.update_policy(PolicyId=scp, Content=json.dumps(document))
    assert refused.value.response["Error"]["Code"] == "ConstraintViolationException"
    assert json.loads(org.describe_policy(PolicyId=scp)["Policy"]["Content"])["Statement"][0]["Action"] == "dynamodb:*"


def test_scp_changes_that_keep_the_invariant_are_accepted(server: tuple[ServerProcess, str]) -> None:
    proc, _ = server
    org = _client("organizations", proc.endpoint, ADMIN)
    _, dev_ou, _ = _ids(org)
    content = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"}]}
    )
    policy = org.create_policy(Name="NoDeletes", Description="", Type="SERVICE_CONTROL_POLICY", Content=content)
    policy_id = policy["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=policy_id, TargetId=dev_ou)
    assert policy_id in _attached(org, dev_ou)
    org.detach_policy(PolicyId=policy_id, TargetId=dev_ou)
    assert policy_id not in _attached(org, dev_ou)


def _perimeter_in_the_table_policy(world: dict[str, Any]) -> None:
    """No SCP on Prod: the table's own resource policy keeps it private (a Deny outside the VPC)."""
    world["organization"]["units"][0]["policies"] = []
    scp = world["organization"]["policies"]["DenyDynamoDBOutsideVPC"]["document"]["Statement"][0]
    deny = {**scp, "Principal": "*", "Resource": TABLE}
    world["accounts"]["prod"]["tables"]["orders"]["resource_policy"] = {"Version": "2012-10-17", "Statement": [deny]}


def test_delete_resource_policy_that_keeps_the_table_private_is_refused(tmp_path: Path) -> None:
    endpoint_port = free_port()
    world = _world(tmp_path, endpoint_port, _perimeter_in_the_table_policy)
    assert main(["world", "validate", str(world)]) == 0  # the invariant holds in this world
    proc = ServerProcess(tmp_path / "data", extra_args=["--world", str(world)]).start(timeout=60)
    try:
        ddb = _client("dynamodb", f"http://127.0.0.1:{endpoint_port}", DEPLOYER)
        before = ddb.get_resource_policy(ResourceArn=TABLE)
        with pytest.raises(ClientError) as refused:
            ddb.delete_resource_policy(ResourceArn=TABLE)
        error = refused.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert "does not hold" in error["Message"] and "222222222222" in error["Message"]
        assert ddb.get_resource_policy(ResourceArn=TABLE) == {**before, "ResponseMetadata": ANY}
    finally:
        proc.stop()


def test_an_invariant_the_prover_cannot_answer_refuses(tmp_path: Path) -> None:
    """Fail closed: a question the prover cannot ask (here: a table not in the world) is not a proof."""
    from perimeterdb.prover import Snapshot
    from perimeterdb.prover_invariants import Invariant, prove

    missing = "arn:aws:dynamodb:us-east-1:222222222222:table/missing"
    (violation,) = prove(Snapshot(), (Invariant("public", missing),), timeout=5)
    assert violation.status == "unknown" and "could not answer" in violation.detail


def test_serve_refuses_a_world_that_breaks_its_invariants(tmp_path: Path) -> None:
    def open_scp(world: dict[str, Any]) -> None:
        world["organization"]["units"][0]["policies"] = []

    world = _world(tmp_path, free_port(), open_scp)
    with pytest.raises(RuntimeError, match="does not hold"):
        ServerProcess(tmp_path / "data", extra_args=["--world", str(world)]).start(timeout=60)
