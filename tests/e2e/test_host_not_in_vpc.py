"""The server's host is not inside any VPC: a connection to a VPC endpoint listener whose source is one of
the host's own addresses (loopback, an interface address, the endpoint address itself) is refused, even
when that address lies inside the VPC's CIDR, unless the world file sets ``allow_host_processes`` on the
VPC. Clients in other network namespaces inside the VPC's CIDR are still inside it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from perimeterdb.audit.log import read_records
from tests.support import netns
from tests.support.server import CLIENT_CONFIG, ServerProcess, free_port

APP = "222222222222"
VPC_CLOSED, VPCE_CLOSED = "vpc-0c1c2c3c4c5c60001", "vpce-0c1c2c3c4c5c60001"
VPC_OPEN, VPCE_OPEN = "vpc-0c1c2c3c4c5c60002", "vpce-0c1c2c3c4c5c60002"


def _key() -> dict[str, str]:
    return {"id": "AKIAPDB" + secrets.token_hex(7).upper()[:13], "secret": secrets.token_urlsafe(30)[:40]}


def _world(path: Path, key: dict[str, str], vpcs: dict[str, Any]) -> Path:
    world = {
        "version": 1,
        "accounts": {"app": {"id": APP, "name": "app", "email": "a@example.com", "users": {"svc": {
            "inline": {"ddb": {"Version": "2012-10-17",
                               "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}},
            "access_keys": [key]}}}},
        "network": {"vpcs": vpcs},
    }
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    return path


def _ddb(url: str, key: dict[str, str]) -> Any:
    return boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key["id"],
                        aws_secret_access_key=key["secret"], config=CLIENT_CONFIG)


@pytest.fixture(scope="module")
def loopback_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    base = tmp_path_factory.mktemp("host-vpc")
    key = _key()
    ports = {"closed": free_port(), "open": free_port()}
    vpcs = {
        "closed": {"id": VPC_CLOSED, "account": "app", "region": "us-east-1", "cidr_blocks": ["127.0.0.0/8"],
                   "endpoints": [{"id": VPCE_CLOSED, "service": "dynamodb", "listen": f"127.0.0.1:{ports['closed']}"}]},
        "open": {"id": VPC_OPEN, "account": "app", "region": "us-east-1", "cidr_blocks": ["127.0.0.0/8"],
                 "allow_host_processes": True,
                 "endpoints": [{"id": VPCE_OPEN, "service": "dynamodb", "listen": f"127.0.0.1:{ports['open']}"}]},
    }
    world = _world(base / "world.yaml", key, vpcs)
    server = ServerProcess(base / "data", extra_args=["--durability", "normal", "--world", str(world)]).start()
    yield server, {"key": key, "ports": ports}
    server.stop()


def test_a_process_on_the_host_is_not_inside_the_vpc(loopback_lab: Any) -> None:
    server, lab = loopback_lab
    closed = _ddb(f"http://127.0.0.1:{lab['ports']['closed']}", lab["key"])
    with pytest.raises(ClientError) as exc:
        closed.list_tables()
    response = exc.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert VPCE_CLOSED in response["Error"]["Message"]
    records = [r for r in read_records(server.data_dir / "audit") if r.get("vpcEndpointId") == VPCE_CLOSED]
    assert records and records[-1]["errorCode"] == "AccessDeniedException"
    assert "server's own host" in str(records[-1]["additionalEventData"])
    assert records[-1]["additionalEventData"]["hostProcess"] is True
    # The same address dialling another loopback address (127.0.0.0/8 is all the host's): still refused.
    log = server.log_path.read_text() if server.log_path else ""
    assert "host process refused" in log


def test_allow_host_processes_lets_them_in(loopback_lab: Any) -> None:
    server, lab = loopback_lab
    opened = _ddb(f"http://127.0.0.1:{lab['ports']['open']}", lab["key"])
    assert isinstance(opened.list_tables()["TableNames"], list)
    records = [r for r in read_records(server.data_dir / "audit") if r.get("vpcEndpointId") == VPCE_OPEN]
    assert records and "errorCode" not in records[-1]
    assert records[-1]["additionalEventData"]["vpcId"] == VPC_OPEN


def test_world_export_keeps_the_option(loopback_lab: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    server, _ = loopback_lab
    out = tmp_path / "exported.yaml"
    done = subprocess.run([sys.executable, "-m", "perimeterdb.cli", "world", "export", "--data-dir",
                           str(server.data_dir), "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    vpcs = yaml.safe_load(out.read_text())["network"]["vpcs"]
    flags = {v["id"]: v.get("allow_host_processes", False) for v in vpcs.values()}
    assert flags == {VPC_CLOSED: False, VPC_OPEN: True}


@pytest.mark.skipif(bool(netns.unavailable()), reason=str(netns.unavailable()))
def test_the_endpoint_address_itself_is_refused_but_a_namespace_inside_the_vpc_is_not(
    tmp_path: Path,
) -> None:
    subnet = (os.getpid() % 40) * 6 + 4  # test_guardrail_netns uses +1..+3
    host = netns.Host(f"pdb{os.getpid() % 10000}x", subnet)
    key = _key()
    port = free_port()
    server = None
    try:
        host.setup()
        vpcs = {"lab": {"id": VPC_CLOSED, "account": "app", "region": "us-east-1", "cidr_blocks": [host.cidr],
                        "endpoints": [{"id": VPCE_CLOSED, "service": "dynamodb",
                                       "listen": f"{host.gateway}:{port}"}]}}
        world = _world(tmp_path / "world.yaml", key, vpcs)
        server = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal", "--world", str(world)])
        server.start(timeout=30)
        url = f"http://{host.gateway}:{port}"
        # From this host: the source address is the endpoint's own (inside the CIDR), and it is refused.
        with pytest.raises(ClientError) as exc:
            _ddb(url, key).list_tables()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        # From a namespace inside the VPC's CIDR: inside the VPC.
        result, = host.run_client({"endpoint": url, "credentials": {"key": key["id"], "secret": key["secret"]},
                                   "calls": [{"service": "dynamodb", "op": "list_tables", "params": {}}]})
        assert result["ok"], result
        records = [r for r in read_records(server.data_dir / "audit") if r.get("vpcEndpointId") == VPCE_CLOSED]
        assert records[-1]["sourceIPAddress"] == host.address and "errorCode" not in records[-1]
    finally:
        if server is not None:
            server.stop()
        host.teardown()
