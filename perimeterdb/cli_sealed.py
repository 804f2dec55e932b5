"""``perimeterdb break-glass seal|unseal|list-sealed``: the platform's declarations of sealed roles.

These commands work on the data directory, so only whoever may open it (the platform operator: the
directory is the owner's alone, mode 0700) can use them; member accounts reach the server only through the
API, where the sealed names are protected (``iam/guardrail.py``).

- ``seal NAME [--path P] [--account ID]…``: reserve the role name (with its path) across the organization;
  each ``--account`` must already have the role, which becomes break-glass there (``break_glass: {}`` on its
  IAM record, existing settings kept).
- ``unseal NAME``: release the name and make the roles of that name ordinary again (a name the world file
  declares comes back on its next ``world apply``).
- ``list-sealed [--json]``: the sealed names, where each exists, the platform principals, any role that
  collides with a sealed name without being the declared one, and the holes in the stored SCPs and RCPs.

``add_sealed_parsers(subparsers)`` adds the three commands to the ``break-glass`` command group
(``cli_breakglass.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from perimeterdb.config import Settings


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default="perimeterdb-data", help="the server's data directory")
    p.add_argument("--key-file", help="the key file, if not DATA_DIR/secret.key")
    p.add_argument("--json", action="store_true", help="print JSON for machines")


def add_sealed_parsers(subparsers: Any) -> None:
    s = subparsers.add_parser("seal", help="reserve a break-glass role name across the organization")
    s.add_argument("role", help="the role name, optionally with its path (/ops/emergency)")
    s.add_argument("--path", help="the role's path (default /, or the one in ROLE)")
    s.add_argument(
        "--account", action="append", default=[], help="an account that has the role; repeatable"
    )
    _common(s)
    s.set_defaults(handler=run, sealed_command="seal")
    u = subparsers.add_parser("unseal", help="release a sealed role name")
    u.add_argument("role")
    _common(u)
    u.set_defaults(handler=run, sealed_command="unseal")
    v = subparsers.add_parser("list-sealed", help="the sealed roles, collisions and holes in the perimeter")
    _common(v)
    v.set_defaults(handler=run, sealed_command="list-sealed")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=Path(args.data_dir),
        durability="full",
        key_file=Path(args.key_file) if getattr(args, "key_file", None) else None,
    )


def run(args: argparse.Namespace) -> int:
    from perimeterdb.world.sealed import SealError

    data_dir = Path(args.data_dir)
    if not (data_dir / "perimeterdb.sqlite3").exists():
        print(f"perimeterdb: no perimeterdb data in {data_dir}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_run(_settings(args), args))
    except SealError as exc:
        print(f"perimeterdb: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for line in result.get("lines", []):
            print(line)
    return int(result.get("status", 0))


async def _run(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from perimeterdb.server.runtime import open_runtime
    from perimeterdb.world.sealed import SealError

    runtime = open_runtime(settings)
    try:
        if args.sealed_command == "list-sealed":
            return await list_sealed(runtime)
        parameters = {"roleName": args.role, "path": getattr(args, "path", None),
                      "accounts": list(getattr(args, "account", None) or [])}
        event = "SealBreakGlassRole" if args.sealed_command == "seal" else "UnsealBreakGlassRole"
        try:
            if args.sealed_command == "seal":
                result = await seal(runtime, args.role, args.path, args.account)
            else:
                result = await unseal(runtime, args.role)
        except SealError as exc:
            _audit(runtime, event, parameters, error=str(exc))
            raise
        _audit(runtime, event, parameters, outcome=result.get("sealed") or result.get("unsealed"))
        return result
    finally:
        runtime.close()


def _audit(rt: Any, event: str, parameters: dict[str, Any], *, outcome: Any = None, error: str | None = None) -> None:
    """Every seal and unseal is in the audit log, as the local operator's act (refusals too)."""
    from perimeterdb.audit.records import event_id, iso_now

    if getattr(rt, "audit", None) is None:
        return
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": iso_now(),
        "eventID": event_id(),
        "eventSource": "breakglass.perimeterdb",
        "eventName": event,
        "eventType": "AwsServiceEvent",
        "userIdentity": {"type": "LocalOperator", "invokedBy": f"perimeterdb break-glass {event[:-len('BreakGlassRole')].lower()}"},
        "requestParameters": parameters,
        "responseElements": {"role": outcome} if outcome is not None else None,
        "breakGlass": True,
    }
    if error is not None:
        record["errorCode"] = "SealError"
        record["errorMessage"] = error
    rt.audit.write(record)


async def seal(rt: Any, role: str, path: str | None, accounts: list[str]) -> dict[str, Any]:
    from perimeterdb.world.identities import ROLES, account_key
    from perimeterdb.world.sealed import SealedRole, SealError, load_registry, save_registry, split_role

    found_path, name = split_role(role)
    if path is not None:
        found_path, _ = split_role(path.rstrip("/") + "/" + name)
    lines = []
    for account in accounts:
        record = await rt.identities.get_role(account, name)
        if record is None:
            raise SealError(f"account {account} has no role named {name}")
        if record["name"] != name or record["path"] != found_path:
            raise SealError(
                f"account {account}'s role is {record['path']}{record['name']}, not {found_path}{name}"
            )
        if record.get("break_glass") is None:
            key = account_key(ROLES, account, name)

            def decide(values: list[Any], key: Any = key, account: str = account) -> tuple[list[Any], None]:
                current = values[0]
                if current is None:
                    raise SealError(f"account {account} has no role named {name}")
                return [(key, {**current, "break_glass": current.get("break_glass") or {}})], None

            await rt.identities.write([key], decide)
            lines.append(f"role {record['arn']} is now break-glass")
    registry = (await load_registry(rt.engine)).sealed(SealedRole(name, found_path, tuple(accounts), "cli"))
    await save_registry(rt.engine, registry)
    sealed_role = registry.find(name)
    assert sealed_role is not None
    lines.insert(0, f"sealed {found_path}{name} across the organization")
    return {"sealed": sealed_role.to_json(), "lines": lines}


async def unseal(rt: Any, role: str) -> dict[str, Any]:
    from perimeterdb.world.identities import ROLES, account_key
    from perimeterdb.world.sealed import SealError, load_registry, save_registry, split_role

    _, name = split_role(role)
    registry = await load_registry(rt.engine)
    found = registry.find(name)
    if found is None:
        raise SealError(f"no sealed role named {name}")
    lines = [f"unsealed {found.path}{found.name}"]
    for account in found.accounts:
        key = account_key(ROLES, account, name)

        def decide(values: list[Any], key: Any = key) -> tuple[list[Any], bool]:
            current = values[0]
            if current is None or current.get("break_glass") is None:
                return [], False
            return [(key, {k: v for k, v in current.items() if k != "break_glass"})], True

        if await rt.identities.write([key], decide):
            lines.append(f"role {found.arn(account)} is an ordinary role again")
    await save_registry(rt.engine, registry.unsealed(name))
    if found.source == "world":
        lines.append("note: the world file declares it; the next `world apply` seals it again")
    return {"unsealed": found.to_json(), "lines": lines}


async def existing_roles(rt: Any) -> list[Any]:
    """Every role of every account, as the hole finder sees them."""
    from perimeterdb.world.holes import ExistingRole
    from perimeterdb.world.identities import ROLES

    out = []
    for account in await rt.identities.list_accounts():
        for record in await rt.identities.list(ROLES, account["id"]):
            out.append(ExistingRole(record["arn"], record.get("break_glass") is not None))
    return out


async def stored_policies(rt: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """The organization's own SCPs and RCPs (not the AWS-managed FullAWSAccess ones)."""
    state = await rt.organizations.load()
    if state is None:
        return []
    return [
        (p["name"], p["type"], json.loads(p["content"]))
        for p in state.doc["policies"].values()
        if not p.get("aws_managed")
    ]


async def stored_holes(rt: Any) -> list[Any]:
    from perimeterdb.world.holes import policy_holes
    from perimeterdb.world.sealed import load_registry

    registry = await load_registry(rt.engine)
    return policy_holes(await stored_policies(rt), registry, await existing_roles(rt))


async def list_sealed(rt: Any) -> dict[str, Any]:
    from perimeterdb.world.sealed import load_registry

    registry = await load_registry(rt.engine)
    roles = await existing_roles(rt)
    sealed = []
    lines = []
    for role in registry.roles:
        same_name = [r for r in roles if r.arn.rsplit("/", 1)[-1].lower() == role.key]
        strays = [r.arn for r in same_name if not (r.break_glass and registry.is_sealed_arn(r.arn))]
        sealed.append({**role.to_json(), "collisions": strays})
        where = ", ".join(role.accounts) or "no account yet"
        lines.append(f"{role.path}{role.name}  (sealed by {role.source}; break-glass role in: {where})")
        for arn in strays:
            lines.append(f"  warning: {arn} has the sealed name but is not the declared break-glass role")
    if not registry.roles:
        lines.append("no sealed roles")
    for arn in registry.platform_principals:
        lines.append(f"platform principal: {arn}")
    found = await stored_holes(rt)
    for hole in found:
        lines.append(f"warning: {hole.describe()}")
    trust = await platform_trust(rt, registry)
    lines += [f"warning: {w}" for w in trust]
    return {
        "sealed": sealed,
        "platform_principals": list(registry.platform_principals),
        "platform_warnings": trust,
        "holes_mode": registry.holes,
        "holes": [h.to_json() for h in found],
        "lines": lines,
    }


async def platform_trust(rt: Any, registry: Any) -> list[str]:
    """Platform roles whose trust policy lets in principals outside the management account."""
    from perimeterdb.world.holes import platform_trust_problems

    state = await rt.organizations.load()
    management = state.management if state is not None else None
    out: list[str] = []
    for account in await rt.identities.list_accounts():
        for role in registry.platform_roles():
            if role.accounts and account["id"] not in role.accounts:
                continue
            record = await rt.identities.get_role(account["id"], role.name)
            if record is not None and record["path"] == role.path and record["name"] == role.name:
                out += platform_trust_problems(record["arn"], json.loads(record["trust"]), management)
    return out
