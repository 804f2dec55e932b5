"""The guardrail from the real network: examples/private-tables.yaml served to hosts in network namespaces.

Topology (all in 10.77.0.0/16, made and deleted by this test; needs root and iproute2, else skipped):

- the server runs in the root namespace; it binds the prod VPC endpoint on the prod host's network, the dev
  VPC endpoint on the dev host's network, a public listener on the internet host's network, and 127.0.0.1;
- ``vpc``: a host inside the prod VPC's CIDR; ``other``: a host inside the dev VPC; ``inet``: a host
  outside every VPC, with a route to the prod endpoint's address (to try to reach it from outside).

boto3 runs in each namespace through ``ip netns exec`` (tests/support/netns_client.py).
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import netns
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.skipif(bool(netns.unavailable()), reason=str(netns.unavailable()))

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "private-tables.yaml"
PROD, DEV, MGMT, OUTSIDER = "222222222222", "333333333333", "111111111111", "444444444444"
SCP_DENY = "with an explicit deny in a service control policy"
STS_MISSING = "STS AssumeRole (issue #5) is needed for this case"
ITEM = {"pk": {"S": "k1"}, "v": {"S": "x"}}


def _key(tag: str) -> dict[str, str]:
    return {"id": f"AKIAPDBTEST{tag:0>9}"[:20], "secret": secrets.token_urlsafe(30)[:40]}


@dataclass
class Lab:
    server: ServerProcess
    vpc: netns.Host
    other: netns.Host
    inet: netns.Host
    urls: dict[str, str]
    keys: dict[str, dict[str, str]]
    mfa_seed: str
    alerts: list[bytes] = field(default_factory=list)

    def creds(self, who: str) -> dict[str, str]:
        return {"key": self.keys[who]["id"], "secret": self.keys[who]["secret"]}

    def run(self, host: netns.Host, url: str, who: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return host.run_client({"endpoint": self.urls[url], "credentials": self.creds(who), "calls": calls})

    def org(self) -> Any:
        key = self.keys["platform-admin"]
        return self.server.client("organizations", aws_access_key_id=key["id"], aws_secret_access_key=key["secret"])

    def audit_records(self) -> list[dict[str, Any]]:
        from perimeterdb.audit.log import read_records

        return list(read_records(self.server.data_dir / "audit"))


def _put(table: str = "orders", use: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"service": "dynamodb", "op": "put_item", "params": {"TableName": table, "Item": ITEM}}
    if use:
        call["use"] = use
    return call


def _assume(role_arn: str, save: str, **params: Any) -> dict[str, Any]:
    return {"service": "sts", "op": "assume_role", "save": save,
            "params": {"RoleArn": role_arn, "RoleSessionName": save, **params}}


def _world(lab_dir: Path, vpc: netns.Host, other: netns.Host, inet: netns.Host, ports: dict[str, int],
           keys: dict[str, dict[str, str]], seed: str, hook_port: int) -> Path:
    world = yaml.safe_load(EXAMPLE.read_text())
    accounts = world["accounts"]
    dynamodb_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    accounts["management"]["users"]["platform-admin"]["access_keys"] = [keys["platform-admin"]]
    accounts["management"]["tables"] = {"ledger": {"hash_key": {"name": "pk", "type": "S"}}}
    prod_users = accounts["prod"]["users"]
    prod_users["deployer"]["access_keys"] = [keys["deployer"]]
    prod_users["deployer"]["inline"]["dynamodb-all"] = dynamodb_all
    prod_users["oncall"]["access_keys"] = [keys["oncall"]]
    prod_users["oncall"]["mfa"] = {"name": "oncall", "seed_base32": seed}
    accounts["prod"]["tables"]["orders"]["resource_policy"] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDER}:root"},
                       "Action": "dynamodb:*", "Resource": f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders"}],
    }
    accounts["dev"]["users"] = {"engineer": {"inline": {"dynamodb-all": dynamodb_all}, "access_keys": [keys["engineer"]]}}
    accounts["outsider"] = {"id": OUTSIDER, "name": "outsider",
                            "users": {"app": {"inline": {"dynamodb-all": dynamodb_all}, "access_keys": [keys["outsider"]]}}}
    prod_vpc = world["network"]["vpcs"]["prod-vpc"]
    prod_vpc["cidr_blocks"] = [vpc.cidr]
    prod_vpc["endpoints"][0]["listen"] = f"{vpc.gateway}:{ports['prod']}"
    world["network"]["vpcs"]["dev-vpc"] = {
        "id": "vpc-0b1b2c3d4e5f60002", "account": "dev", "region": "us-east-1", "cidr_blocks": [other.cidr],
        "endpoints": [{"id": "vpce-0b1b2c3d4e5f60002", "service": "dynamodb",
                       "listen": f"{other.gateway}:{ports['dev']}"}],
    }
    world["network"]["public_listeners"] = [{"listen": f"{inet.gateway}:{ports['public']}"}]
    world["break_glass"]["webhook"] = f"http://127.0.0.1:{hook_port}/alerts"
    path = lab_dir / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    return path


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.received.append(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab_dir = tmp_path_factory.mktemp("guardrail")
    base = (os.getpid() % 40) * 6
    tag = f"pdb{os.getpid() % 10000}"
    vpc = netns.Host(f"{tag}v", base + 1)
    other = netns.Host(f"{tag}o", base + 2)
    inet = netns.Host(f"{tag}i", base + 3, routes=[f"10.77.{base + 1}.0/24"])
    hosts = [vpc, other, inet]
    received: list[bytes] = []
    handler = type("Hook", (_Hook,), {"received": received})
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    hook_thread = threading.Thread(target=hook.serve_forever, daemon=True)
    hook_thread.start()
    server = None
    try:
        for host in hosts:
            host.setup()
        ports = {"prod": free_port(), "dev": free_port(), "public": free_port()}
        keys = {who: _key(str(i)) for i, who in enumerate(["platform-admin", "deployer", "oncall", "engineer", "outsider"])}
        seed = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
        world = _world(lab_dir, vpc, other, inet, ports, keys, seed, hook.server_address[1])
        server = ServerProcess(lab_dir / "data", extra_args=["--world", str(world), "--durability", "normal"])
        server.start(timeout=30)
        urls = {
            "prod-endpoint": f"http://{vpc.gateway}:{ports['prod']}",
            "dev-endpoint": f"http://{other.gateway}:{ports['dev']}",
            "public": f"http://{inet.gateway}:{ports['public']}",
        }
        yield Lab(server, vpc, other, inet, urls, keys, seed, received)
    finally:
        if server is not None:
            server.stop()
        hook.shutdown()
        hook.server_close()
        for host in hosts:
            host.teardown()


def _alert(line: str) -> dict[str, Any]:
    """One alert of the alerts file (the outbox's file channel wraps it: {"id", "queuedAt", "alert"})."""
    entry = json.loads(line)
    return entry["alert"] if isinstance(entry.get("alert"), dict) else entry


def _deny(result: dict[str, Any], text: str = SCP_DENY) -> None:
    assert not result["ok"], f"expected a denial, got {result}"
    assert result["code"] == "AccessDeniedException", result
    assert text in (result["message"] or ""), result


def _ok(result: dict[str, Any], what: str = "") -> None:
    assert result["ok"], f"{what} expected success, got {result}"


def test_1_app_inside_vpc_is_allowed(lab: Lab) -> None:
    user, = lab.run(lab.vpc, "prod-endpoint", "deployer", [_put()])
    _ok(user, "deployer through the prod endpoint")
    assumed, put = lab.run(lab.vpc, "prod-endpoint", "deployer",
                           [_assume(f"arn:aws:iam::{PROD}:role/feature-team", "app"), _put(use="app")])
    assert assumed["ok"], f"{STS_MISSING}: {assumed}"
    _ok(put, "feature-team role through the prod endpoint")
    records = [r for r in lab.audit_records() if r.get("vpcEndpointId") == "vpce-0a1b2c3d4e5f60001"]
    assert records and records[-1]["sourceIPAddress"] == lab.vpc.address
    assert records[-1]["additionalEventData"]["vpcId"] == "vpc-0a1b2c3d4e5f60001"


def test_2_same_principal_from_internet_is_denied(lab: Lab) -> None:
    user, = lab.run(lab.inet, "public", "deployer", [_put()])
    _deny(user)
    assumed, put = lab.run(lab.inet, "public", "deployer",
                           [_assume(f"arn:aws:iam::{PROD}:role/feature-team", "app"), _put(use="app")])
    assert assumed["ok"], f"{STS_MISSING}: {assumed}"
    _deny(put)
    denied = [r for r in lab.audit_records() if r.get("errorCode") == "AccessDeniedException"
              and r["sourceIPAddress"] == lab.inet.address and r["eventName"] == "PutItem"]
    assert denied, "the denial is audited"
    sids = [d["sid"] for e in denied for x in e["additionalEventData"]["decisions"] for d in x["determining"]]
    assert "DenyDynamoDBOutsideVPC" in sids or denied[-1]["errorMessage"].find(SCP_DENY) >= 0


def test_3_through_another_vpcs_endpoint_is_denied(lab: Lab) -> None:
    result, = lab.run(lab.other, "dev-endpoint", "deployer", [_put()])
    _deny(result)


def test_4_endpoint_reached_from_outside_its_vpc_is_refused(lab: Lab) -> None:
    result, = lab.inet.run_client({"endpoint": lab.urls["prod-endpoint"], "credentials": lab.creds("deployer"),
                                   "calls": [_put()]})
    assert not result["ok"] and result["code"] == "AccessDeniedException" and result["status"] == 403, result
    refused = [r for r in lab.audit_records() if (r.get("additionalEventData") or {}).get("spoofingAttempt")]
    assert refused and refused[-1]["sourceIPAddress"] == lab.inet.address
    log = (lab.server.log_path or Path()).read_text()
    assert "SPOOFING ATTEMPT" in log


def test_5_break_glass_from_internet_with_mfa(lab: Lab) -> None:
    role = f"arn:aws:iam::{PROD}:role/emergency"
    assumed, put = lab.run(lab.inet, "public", "oncall", [
        _assume(role, "incident", SerialNumber=f"arn:aws:iam::{PROD}:mfa/oncall",
                TokenCode={"totp": lab.mfa_seed}, SourceIdentity="alice", DurationSeconds=900,
                Tags=[{"Key": "justification", "Value": "INC-42: orders table corrupted, restoring rows"}]),
        _put(use="incident"),
    ])
    assert assumed["ok"], f"{STS_MISSING} (with MFA): {assumed}"
    _ok(put, "break-glass session from the internet")
    flagged = [r for r in lab.audit_records() if r.get("breakGlass")]
    assert any(r["eventName"] == "AssumeRole" for r in flagged), "the assumption is audited as break-glass"
    assert any(r["eventName"] == "PutItem" for r in flagged), "requests in the session are flagged"
    # The file channel is written by the outbox's delivery loop, a moment after the request was answered.
    alerts_file = lab.server.data_dir / "audit" / "alerts.jsonl"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = alerts_file.read_text().splitlines() if alerts_file.exists() else []
        if any(_alert(a).get("what") == "PutItem" for a in lines):
            break
        time.sleep(0.1)
    assert any(_alert(a).get("what") == "PutItem" for a in lines), "the alerts file has the PutItem alert"
    while time.monotonic() < deadline and len(lab.alerts) < 2:
        time.sleep(0.1)
    assert len(lab.alerts) >= 2, "the webhook received the alerts"
    # Without MFA the break-glass role cannot be assumed.
    no_mfa, = lab.run(lab.inet, "public", "oncall", [_assume(role, "nomfa", SourceIdentity="INC-43")])
    assert not no_mfa["ok"], no_mfa
    # With MFA but without a justification it cannot either: a SourceIdentity is not a justification.
    time.sleep(max(0.0, 30.5 - time.time() % 30))  # a fresh TOTP step: each code is accepted once only
    no_reason, = lab.run(lab.inet, "public", "oncall", [
        _assume(role, "noreason", SerialNumber=f"arn:aws:iam::{PROD}:mfa/oncall", TokenCode={"totp": lab.mfa_seed},
                SourceIdentity="INC-43"),
    ])
    assert not no_reason["ok"], no_reason
    assert "requires a justification" in json.dumps(no_reason), no_reason


def test_6_management_account_from_internet(lab: Lab) -> None:
    result, = lab.run(lab.inet, "public", "platform-admin", [_put("ledger")])
    _ok(result, "management account from the internet")


def test_7_dev_account_from_internet(lab: Lab) -> None:
    result, = lab.run(lab.inet, "public", "engineer", [_put()])
    _ok(result, "dev account from the internet")


def test_8_create_table_from_internet_denied_in_prod(lab: Lab) -> None:
    create = {"service": "dynamodb", "op": "create_table", "params": {
        "TableName": "sneaky", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}
    result, = lab.run(lab.inet, "public", "deployer", [create])
    _deny(result)


def test_9_detaching_the_scp_allows_the_next_request(lab: Lab) -> None:
    org = lab.org()
    root = org.list_roots()["Roots"][0]["Id"]
    prod_ou = next(o["Id"] for o in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
                   if o["Name"] == "Prod")
    scp = next(p["Id"] for p in org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
               if p["Name"] == "DenyDynamoDBOutsideVPC")
    org.detach_policy(PolicyId=scp, TargetId=prod_ou)
    try:
        result, = lab.run(lab.inet, "public", "deployer", [_put()])
        _ok(result, "after DetachPolicy")
    finally:
        org.attach_policy(PolicyId=scp, TargetId=prod_ou)
    again, = lab.run(lab.inet, "public", "deployer", [_put()])
    _deny(again)


def test_10_rcp_denies_outsider_from_internet(lab: Lab) -> None:
    before, = lab.run(lab.inet, "public", "outsider", [_put(f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders")])
    _ok(before, "outsider via the table's resource policy, before the RCP")
    org = lab.org()
    root = org.list_roots()["Roots"][0]["Id"]
    prod_ou = next(o["Id"] for o in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
                   if o["Name"] == "Prod")
    org_id = org.describe_organization()["Organization"]["Id"]
    document = {"Version": "2012-10-17", "Statement": [{
        "Sid": "EnforceOrgIdentitiesOutsideVpc", "Effect": "Deny", "Principal": "*", "Action": "dynamodb:*",
        "Resource": "*",
        "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": org_id},
                      "StringNotEquals": {"aws:SourceVpc": "vpc-0a1b2c3d4e5f60001"},
                      "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}]}
    rcp = org.create_policy(Content=json.dumps(document), Description="outsiders only via the VPC",
                            Name="DenyOutsidersOutsideVpc", Type="RESOURCE_CONTROL_POLICY")["Policy"]["PolicySummary"]
    org.attach_policy(PolicyId=rcp["Id"], TargetId=prod_ou)
    try:
        after, = lab.run(lab.inet, "public", "outsider", [_put(f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders")])
        _deny(after, "with an explicit deny in a resource control policy")
        inside, = lab.run(lab.vpc, "prod-endpoint", "deployer", [_put()])
        _ok(inside, "members through the VPC are unaffected by the RCP")
    finally:
        org.detach_policy(PolicyId=rcp["Id"], TargetId=prod_ou)
        org.delete_policy(PolicyId=rcp["Id"])
