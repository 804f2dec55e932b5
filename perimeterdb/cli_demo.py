"""``perimeterdb demo private-tables [--dir DIR]``: the seed scenario on loopback, without root.

Writes ``DIR/world.yaml`` (a prod and a dev account in an organization, an SCP that allows DynamoDB in prod
only through the prod VPC's endpoint, a break-glass role), ``DIR/credentials`` and ``DIR/config`` (AWS CLI
profiles: one per user with generated keys, one per role through ``source_profile``; both files 0600) and
prints the commands that show "denied outside, allowed inside" with the AWS CLI (docs/getting-started.md).

Loopback is the network: the VPC is 127.0.0.0/8 and its endpoint listens on 127.0.1.1:8001, the public
listener on 127.0.0.1:8000. Linux gives every connection to a 127.x address the source 127.0.0.1, and the AWS
CLI cannot choose a source address, so the VPC's CIDR must hold 127.0.0.1: what makes a request "inside" is
the listener it reaches (the endpoint), not the client's address. The VPC sets ``allow_host_processes``, as
processes on the server's own host are otherwise never inside a VPC (server/host_addresses.py).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import string
import sys
from pathlib import Path
from typing import Any

import yaml

from perimeterdb.world.network import ListenAddress

PROD, DEV, MANAGEMENT = "222222222222", "333333333333", "111111111111"
VPC, VPCE = "vpc-0a1b2c3d4e5f60001", "vpce-0a1b2c3d4e5f60001"
REGION = "us-east-1"
USERS = {"admin": MANAGEMENT, "alice": PROD, "oncall": PROD, "bob": DEV}


def add_parser(commands: Any) -> None:
    demo = commands.add_parser("demo", help="write a ready-to-run demo world and print how to use it")
    sub = demo.add_subparsers(dest="demo_command", required=True)
    p = sub.add_parser("private-tables", help="prod tables reachable only through a VPC endpoint, on loopback")
    p.add_argument("--dir", default="perimeterdb-demo", help="where to write it (default ./perimeterdb-demo)")
    p.add_argument("--public", default="127.0.0.1:8000", help="the public listener (default 127.0.0.1:8000)")
    p.add_argument("--endpoint", default="127.0.1.1:8001", help="the VPC endpoint's listener (127.0.1.1:8001)")
    p.add_argument("--force", action="store_true", help="overwrite an existing demo in DIR")
    demo.set_defaults(handler=run)


def _key_id() -> str:
    return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))


def _secret() -> str:
    return secrets.token_urlsafe(30)[:40]


def _allow(action: str | list[str], resource: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


def _trust(account: str, *, mfa: bool = False) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                 "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]}
    if mfa:
        statement["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def build_world(keys: dict[str, tuple[str, str]], seed: str, public: str, endpoint: str) -> dict[str, Any]:
    def user(name: str, **extra: Any) -> dict[str, Any]:
        key_id, secret = keys[name]
        return {"access_keys": [{"id": key_id, "secret": secret}], **extra}

    def feature_team(account: str) -> dict[str, Any]:
        return {"description": "the application's role", "trust": _trust(account),
                "inline": {"dynamodb-all": _allow("dynamodb:*", "*")}}

    return {
        "version": 1,
        "regions": [REGION],
        "accounts": {
            "management": {"id": MANAGEMENT, "email": "platform@example.com", "users": {
                "admin": user("admin", policies=["arn:aws:iam::aws:policy/AdministratorAccess"])}},
            "prod": {
                "id": PROD, "email": "prod@example.com",
                "users": {
                    "alice": user("alice", inline={"assume-feature-team": _allow(
                        "sts:AssumeRole", f"arn:aws:iam::{PROD}:role/feature-team")}),
                    "oncall": user("oncall", mfa={"name": "oncall", "seed_base32": seed},
                                   inline={"break-the-glass": _allow(
                                       ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                                       f"arn:aws:iam::{PROD}:role/emergency")}),
                },
                "roles": {
                    "feature-team": feature_team(PROD),
                    "emergency": {
                        "description": "break-glass: from anywhere, with a fresh MFA code and a justification",
                        "break_glass": {"max_session_seconds": 3600},
                        "trust": _trust(PROD, mfa=True),
                        "policies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
                    },
                },
                "tables": {"orders": {"hash_key": {"name": "pk", "type": "S"}}},
            },
            "dev": {
                "id": DEV, "email": "dev@example.com",
                "users": {"bob": user("bob", inline={"assume-feature-team": _allow(
                    "sts:AssumeRole", f"arn:aws:iam::{DEV}:role/feature-team")})},
                "roles": {"feature-team": feature_team(DEV)},
                "tables": {"orders": {"hash_key": {"name": "pk", "type": "S"}}},
            },
        },
        "organization": {
            "management_account": "management",
            "policy_types": ["SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"],
            "policies": {"DenyDynamoDBOutsideVPC": {
                "type": "SERVICE_CONTROL_POLICY",
                "description": "DynamoDB only through the prod VPC, except for the break-glass role",
                "document": {"Version": "2012-10-17", "Statement": [{
                    "Sid": "DenyDynamoDBOutsideVPC", "Effect": "Deny", "Action": "dynamodb:*", "Resource": "*",
                    "Condition": {"StringNotEquals": {"aws:SourceVpc": VPC},
                                  "ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/emergency"}}}]},
            }},
            "units": [{"name": "Prod", "policies": ["DenyDynamoDBOutsideVPC"], "accounts": ["prod"]},
                      {"name": "Dev", "accounts": ["dev"]}],
        },
        "network": {
            "vpcs": {"prod-vpc": {
                "id": VPC, "account": "prod", "region": REGION,
                "cidr_blocks": ["127.0.0.0/8"],
                "allow_host_processes": True,
                "endpoints": [{"id": VPCE, "service": "dynamodb", "listen": endpoint}],
            }},
            "public_listeners": [{"listen": public}],
        },
        "break_glass": {"max_session_seconds": 3600, "alerts_file": "audit/alerts.jsonl"},
    }


HEADER = """\
# The perimeterdb demo world (written by `perimeterdb demo private-tables`): docs/getting-started.md.
# It holds access key secrets and an MFA seed: keep it private (0600), and never reuse these keys.
#
# The network is loopback. Linux gives every connection to a 127.x address the source address 127.0.0.1,
# and the AWS CLI cannot pick another one, so the prod VPC is 127.0.0.0/8: a request is "inside" when it
# arrives on the endpoint's listener ({endpoint}), "outside" on the public one ({public}).
# allow_host_processes: processes on the server's own host are never inside a VPC unless the VPC says so;
# here the host *is* the VPC's network, so it must.
"""


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def write_demo(directory: Path, public: str, endpoint: str) -> dict[str, Any]:
    """Write world.yaml, credentials and config into ``directory``; returns what the walk-through needs."""
    if not directory.exists():  # an existing directory (even ".") keeps its mode; the files are 0600
        directory.mkdir(parents=True, mode=0o700)
    keys = {name: (_key_id(), _secret()) for name in USERS}
    seed = base64.b32encode(secrets.token_bytes(20)).decode()
    world = build_world(keys, seed, public, endpoint)
    header = HEADER.format(endpoint=endpoint, public=public)
    _write_private(directory / "world.yaml", header + yaml.safe_dump(world, sort_keys=False))
    public_url = f"http://{public}"
    credentials = "".join(f"[{name}]\naws_access_key_id = {k}\naws_secret_access_key = {s}\n\n"
                          for name, (k, s) in keys.items())
    _write_private(directory / "credentials", credentials)
    config = "".join(f"[profile {name}]\nregion = {REGION}\nendpoint_url = {public_url}\n\n" for name in USERS)
    # The AWS CLI caches assumed-role credentials by role and session name (~/.aws/cli/cache): a session
    # name of its own per demo keeps a new demo from reusing an older demo's (then unknown) session.
    session = f"demo-{secrets.token_hex(4)}"
    for role, account, source in (("prod-feature-team", PROD, "alice"), ("dev-feature-team", DEV, "bob")):
        config += (f"[profile {role}]\nregion = {REGION}\nendpoint_url = {public_url}\n"
                   f"role_arn = arn:aws:iam::{account}:role/feature-team\nsource_profile = {source}\n"
                   f"role_session_name = {session}-{source}\n\n")
    _write_private(directory / "config", config)
    return {"seed": seed, "public": public_url, "endpoint": f"http://{endpoint}", "dir": directory}


def walkthrough(info: dict[str, Any]) -> str:
    d = info["dir"]
    key = "--key '{\"pk\": {\"S\": \"order-1\"}}'"
    item = "--item '{\"pk\": {\"S\": \"order-1\"}, \"total\": {\"N\": \"42\"}}'"
    return f"""\
Wrote {d}/world.yaml, {d}/credentials and {d}/config (all 0600; the keys were generated just now).

1. Start the server (one terminal):
     perimeterdb serve --data-dir {d}/data --world {d}/world.yaml --listen {info['public'][7:]}

2. In another terminal, point the AWS CLI at the demo's profiles:
     export AWS_SHARED_CREDENTIALS_FILE={d}/credentials AWS_CONFIG_FILE={d}/config

3. prod's feature team, from outside the VPC (the public listener): denied by the organization's SCP
     aws dynamodb put-item --profile prod-feature-team --endpoint-url {info['public']} --table-name orders {item}
   -> AccessDeniedException ... with an explicit deny in a service control policy

4. the same role through the VPC endpoint: allowed
     aws dynamodb put-item --profile prod-feature-team --endpoint-url {info['endpoint']} --table-name orders {item}
     aws dynamodb get-item --profile prod-feature-team --endpoint-url {info['endpoint']} --table-name orders {key}

5. dev has no such guardrail: its feature team is allowed from outside
     aws dynamodb put-item --profile dev-feature-team --endpoint-url {info['public']} --table-name orders {item}

6. Break glass (docs/break-glass.md): the on-call user, with an MFA code and a justification, from outside
     CODE=$(perimeterdb break-glass totp --seed {info['seed']})
     aws sts assume-role --profile oncall --role-arn arn:aws:iam::{PROD}:role/emergency \\
       --role-session-name inc-1 --serial-number arn:aws:iam::{PROD}:mfa/oncall --token-code $CODE \\
       --source-identity oncall --duration-seconds 900 \\
       --tags '[{{"Key":"justification","Value":"INC-1: the demo"}}]'
   (the MFA seed above is also in {d}/world.yaml: seed_base32)
"""


def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir).absolute()
    for text, what in ((args.public, "--public"), (args.endpoint, "--endpoint")):
        try:
            ListenAddress.parse(text)
        except ValueError as exc:
            print(f"perimeterdb demo: {what}: {exc}", file=sys.stderr)
            return 2
    if (directory / "world.yaml").exists() and not args.force:
        print(f"perimeterdb demo: {directory}/world.yaml exists: use --force to write a new demo (new keys)",
              file=sys.stderr)
        return 2
    print(walkthrough(write_demo(directory, args.public, args.endpoint)), end="")
    return 0
