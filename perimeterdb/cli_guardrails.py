"""``perimeterdb guardrails``: the SCP that protects the sealed break-glass roles on real AWS.

The document is the one the server itself evaluates on every mutating IAM call (``world/sealed.py``,
``iam/guardrail.py``): deny every IAM action that creates, deletes or changes a sealed (or platform) role,
``arn:aws:iam::*:role/<path><name>`` in every account, and every change to a customer-managed policy
attached to one, unless ``aws:PrincipalArn`` is a platform principal. Attach it at the organization's root
(the management account is exempt from SCPs, as here). Each document is at most 5,120 characters; when the
statements do not fit in one, there are several, each a valid SCP.

    perimeterdb guardrails --data-dir DIR            # from a server's data
    perimeterdb guardrails --world world.yaml        # from a world file
    perimeterdb guardrails --world world.yaml --output-dir scp/   # one file per document

One thing AWS cannot express: IAM's ARN matching is case-sensitive, so the SCP cannot refuse ``EMERGENCY`` in
an account that has no ``emergency`` (perimeterdb refuses it). Such a role is not exempt from a perimeter
that names ``emergency`` exactly, so it is a lookalike, not a way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from perimeterdb.config import Settings
from perimeterdb.world.sealed import SCP_SIZE_LIMIT


def add_parser(commands: Any) -> None:
    p = commands.add_parser("guardrails", help="print the SCP that protects the sealed break-glass roles on AWS")
    p.add_argument("--data-dir", default="perimeterdb-data", help="a server's data directory")
    p.add_argument("--key-file", help="the key file, if not DATA_DIR/secret.key")
    p.add_argument("--world", help="a world file (instead of a data directory)")
    p.add_argument("--output-dir", help="write each document to DIR/sealed-break-glass-N.json")
    p.set_defaults(handler=run)


def world_guardrails(world: Any) -> list[dict[str, Any]]:
    """The guardrail documents a world file calls for."""
    from perimeterdb.iam import guardrail_people
    from perimeterdb.world.sealed import Registry, guardrail_documents, registry_from_world

    roles, platform, mode = registry_from_world(world.data, {})
    registry = Registry(tuple(roles), tuple(platform), mode)
    arns: set[str] = set()
    for alias, spec in (world.data.get("accounts") or {}).items():
        account = str(spec.get("id") or alias)
        policies = spec.get("policies") or {}
        for name, role in (spec.get("roles") or {}).items():
            if registry.protected(name) is None:
                continue
            for ref in [*(role.get("policies") or []), *([role["boundary"]] if role.get("boundary") else [])]:
                if ref.startswith("arn:aws:iam::aws:"):
                    continue  # AWS-managed: nobody can change it
                if ref.startswith("arn:"):
                    arns.add(ref)
                elif ref in policies:
                    arns.add(f"arn:aws:iam::{account}:policy{policies[ref].get('path', '/')}{ref}")
    groups, users = guardrail_people.world_people(world.data, registry)  # approvers and named on-call users
    return guardrail_people.deployable_documents(groups, users, registry.platform_principals,
                                                 guardrail_documents(registry, sorted(arns)))


async def stored_guardrails(rt: Any) -> list[dict[str, Any]]:
    """The guardrail documents for a data directory's registry and roles."""
    from perimeterdb.iam import guardrail_people
    from perimeterdb.world.sealed import guardrail_documents, load_registry

    registry = await load_registry(rt.engine)
    arns: set[str] = set()
    for account in await rt.identities.list_accounts():
        for role in (*registry.roles, *registry.platform_roles()):
            record = await rt.identities.get_role(account["id"], role.name)
            if record is None:
                continue
            for arn in [*record.get("attached", []), *([record["boundary"]] if record.get("boundary") else [])]:
                if not arn.startswith("arn:aws:iam::aws:"):
                    arns.add(arn)
    groups, users = await guardrail_people.stored_people(rt.identities, registry)
    return guardrail_people.deployable_documents(groups, users, registry.platform_principals,
                                                 guardrail_documents(registry, sorted(arns)))


async def _from_data(settings: Settings) -> list[dict[str, Any]]:
    from perimeterdb.server.runtime import open_runtime

    runtime = open_runtime(settings)
    try:
        return await stored_guardrails(runtime)
    finally:
        runtime.close()


def run(args: argparse.Namespace) -> int:
    from perimeterdb.world.sealed import SealError
    from perimeterdb.world.worldfile import WorldError, load_world

    try:
        if args.world:
            documents = world_guardrails(load_world(Path(args.world)))
        else:
            data_dir = Path(args.data_dir)
            if not (data_dir / "perimeterdb.sqlite3").exists():
                print(f"perimeterdb guardrails: no perimeterdb data in {data_dir}", file=sys.stderr)
                return 2
            key_file = Path(args.key_file) if args.key_file else None
            documents = asyncio.run(_from_data(Settings(data_dir=data_dir, durability="normal", key_file=key_file)))
    except (WorldError, SealError) as exc:
        print(f"perimeterdb guardrails: {exc}", file=sys.stderr)
        return 1
    if not documents:
        print("perimeterdb guardrails: no sealed break-glass roles: nothing to protect", file=sys.stderr)
        return 1
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for i, document in enumerate(documents, 1):
            path = out / f"sealed-break-glass-{i}.json"
            path.write_text(_text(document) + "\n")
            print(path)
        return 0
    if len(documents) == 1:
        print(_text(documents[0]))
    else:
        print(f"# {len(documents)} SCP documents: attach each", file=sys.stderr)
        print("[" + ",\n".join(_text(d) for d in documents) + "]")
    return 0


def _text(document: dict[str, Any]) -> str:
    """Indented when that still fits AWS's 5,120 characters (whitespace counts through the API)."""
    pretty = json.dumps(document, indent=2)
    return pretty if len(pretty) <= SCP_SIZE_LIMIT else json.dumps(document, separators=(",", ":"))
