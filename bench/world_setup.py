"""Authorization fully on through a world file (``perimeterdb serve --world``), when the build has it.

The bench world: a management account and a ``prod`` member account in an OU under an SCP; in prod, a VPC
(CIDR 127.0.0.0/8, so loopback clients are inside it) with a DynamoDB endpoint whose listener is the port
the benchmark calls, an endpoint policy, the role ``bench-app`` (20-statement identity policy, permissions
boundary), a caller user with a fixed access key allowed only to assume the role, and the bench tables
with resource policies. The harness then assumes the role and signs every request with the session keys.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from authz_setup import DATA_ACTIONS, identity_policy
from common import ROOT
from workloads import table_specs

MANAGEMENT = "111122223333"
PROD = "222233334444"
VPCE = "vpce-0bec40000000001"
VPC = "vpc-0bec40000000001"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def caller_key() -> tuple[str, str]:
    return "AKIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)


def world(endpoint_port: int, key: tuple[str, str]) -> dict[str, Any]:
    role_arn = f"arn:aws:iam::{PROD}:role/bench-app"
    tables: dict[str, Any] = {}
    for spec in table_specs():
        types = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
        entry: dict[str, Any] = {}
        for k in spec["KeySchema"]:
            field = "hash_key" if k["KeyType"] == "HASH" else "range_key"
            entry[field] = {"name": k["AttributeName"], "type": types[k["AttributeName"]]}
        arn = f"arn:aws:dynamodb:us-east-1:{PROD}:table/{spec['TableName']}"
        entry["resource_policy"] = _doc(
            {
                "Sid": "App",
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": DATA_ACTIONS,
                "Resource": [arn, f"{arn}/index/*"],
            }
        )
        tables[spec["TableName"]] = entry
    return {
        "version": 1,
        "regions": ["us-east-1"],
        "accounts": {
            "mgmt": {"id": MANAGEMENT, "name": "management", "email": "mgmt@example.com"},
            "prod": {
                "id": PROD,
                "name": "prod",
                "email": "prod@example.com",
                "policies": {
                    "bench-boundary": {
                        "document": _doc(
                            {"Effect": "Allow", "Action": ["dynamodb:*", "sts:AssumeRole"], "Resource": "*"}
                        )
                    }
                },
                "users": {
                    "bench-caller": {
                        "access_keys": [{"id": key[0], "secret": key[1], "status": "Active"}],
                        "inline": {
                            "assume": _doc(
                                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}
                            )
                        },
                    }
                },
                "roles": {
                    "bench-app": {
                        "trust": _doc(
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{PROD}:user/bench-caller"},
                                "Action": "sts:AssumeRole",
                            }
                        ),
                        "inline": {"bench-data": json.loads(identity_policy(PROD))},
                        "boundary": "bench-boundary",
                        "tags": {"team": "payments"},
                    }
                },
                "tables": tables,
            },
        },
        "organization": {
            "management_account": "mgmt",
            "policies": {
                "prod-guardrails": {
                    "type": "SERVICE_CONTROL_POLICY",
                    "description": "deny outside us-east-1; deny table deletion",
                    "document": _doc(
                        {
                            "Sid": "Regions",
                            "Effect": "Deny",
                            "Action": "*",
                            "Resource": "*",
                            "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}},
                        },
                        {
                            "Sid": "NoDelete",
                            "Effect": "Deny",
                            "Action": "dynamodb:DeleteTable",
                            "Resource": "*",
                        },
                    ),
                }
            },
            "root": {"accounts": ["mgmt"]},
            "units": [{"name": "prod", "policies": ["prod-guardrails"], "accounts": ["prod"]}],
        },
        "network": {
            "vpcs": {
                "bench": {
                    "id": VPC,
                    "account": "prod",
                    "region": "us-east-1",
                    "cidr_blocks": ["127.0.0.0/8"],
                    # The load generator runs on the server's host, which is never inside a VPC unless
                    # the VPC says so (docs/world-file.md).
                    "allow_host_processes": True,
                    "endpoints": [
                        {
                            "id": VPCE,
                            "service": "dynamodb",
                            "listen": f"127.0.0.1:{endpoint_port}",
                            "policy": _doc(
                                {
                                    "Effect": "Allow",
                                    "Principal": "*",
                                    "Action": "dynamodb:*",
                                    "Resource": "*",
                                    "Condition": {"StringEquals": {"aws:PrincipalAccount": PROD}},
                                }
                            ),
                        }
                    ],
                }
            }
        },
    }


def write_world(path: Path, endpoint_port: int, key: tuple[str, str]) -> Path:
    path.write_text(json.dumps(world(endpoint_port, key), indent=1))  # JSON is YAML
    return path


def start(
    work: Path, name: str, label: str, extra_args: list[str] | None = None
) -> tuple[Any, tuple[str, str]]:
    """Start perimeterdb from the bench world; the returned System's port is the VPC endpoint's listener."""
    from common import free_port, wait_for_port
    from systems import start_perimeterdb

    endpoint_port = free_port()
    key = caller_key()
    (work / name).mkdir(parents=True, exist_ok=True)
    path = write_world(work / name / "world.yaml", endpoint_port, key)
    system = start_perimeterdb(work, name, label, ["--world", str(path), *(extra_args or [])])
    try:
        wait_for_port(endpoint_port, system.process, timeout=30)
    except Exception:
        system.stop()
        raise
    system.public_port = system.port
    system.port = endpoint_port
    return system, key


def configure(system: Any, key: tuple[str, str]) -> Any:
    """Assume the role through the endpoint, seed the tables as the role session, check the perimeter."""
    from authz_setup import AuthzConfig, _error_code
    from presign import Credentials
    from systems import seed

    caller = Credentials(key[0], key[1])
    # STS through the public listener: the endpoint is DynamoDB's (its policy allows dynamodb:* only).
    got = system.client("sts", caller, port=system.public_port).assume_role(
        RoleArn=f"arn:aws:iam::{PROD}:role/bench-app", RoleSessionName="bench", DurationSeconds=3600
    )["Credentials"]
    session = Credentials(got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"])
    config = AuthzConfig(creds=session, account=PROD)
    config.on += [
        "world file (`perimeterdb serve --world`, written by bench/world_setup.py"
        + (
            ""
            if (ROOT / "examples" / "private-tables.yaml").exists()
            else "; examples/private-tables.yaml is absent"
        )
        + ")",
        f"prod member account {PROD} in OU prod under an SCP (2 deny statements) beside FullAWSAccess",
        f"requests through VPC endpoint {VPCE} (its own listener; VPC CIDR 127.0.0.0/8) with an endpoint policy",
        "role session (STS AssumeRole) of role bench-app: 20-statement identity policy, permissions boundary",
        "a resource policy on every table",
        "durable storage (durability=full: every acknowledged write is fsynced, group commit)",
    ]
    seed(system, system.client("dynamodb", session), create=False)
    ddb = system.client("dynamodb", session)
    try:
        ddb.delete_table(TableName="bench-kv")
        config.missing.append("CHECK FAILED: the role session could delete a table; authorization is not on")
    except Exception as exc:
        if "AccessDenied" in _error_code(exc):
            config.on.append("checked: the session's DeleteTable is denied (AccessDeniedException)")
        else:
            config.missing.append(f"check: DeleteTable gave {_error_code(exc)} instead of AccessDenied")
    try:
        system.client("dynamodb").get_item(TableName="bench-kv", Key={"pk": {"S": "k00000"}})
        config.missing.append(
            "check: the bootstrap admin was let through the endpoint (endpoint policy not applied?)"
        )
    except Exception as exc:
        if "AccessDenied" in _error_code(exc) or "ResourceNotFound" in _error_code(exc):
            config.on.append(
                f"checked: another account's admin through the endpoint is refused "
                f"({_error_code(exc).split(':', 1)[0]})"
            )
        else:
            config.missing.append(f"check: admin through the endpoint gave {_error_code(exc)}")
    return config
