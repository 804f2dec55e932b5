"""``perimeterdb world …`` and the world-related parts of ``perimeterdb serve``.

- ``perimeterdb world validate FILE``: check a world file (schema and references), print the problems;
- ``perimeterdb world apply FILE --data-dir D``: apply it to a data dir (idempotent), print what changed;
- ``perimeterdb world export --data-dir D [--include-secrets] [-o FILE]``: the current state as a world file;
- ``perimeterdb serve --world FILE``: apply at start, then bind every endpoint and public listener of the
  stored network in addition to ``--listen``, and derive each request's origin from the listener it used.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from perimeterdb.config import Listener, Settings

log = logging.getLogger("perimeterdb.world")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", metavar="FILE", help="apply this world file at start (idempotent)")


def add_parser(commands: Any) -> None:
    world = commands.add_parser("world", help="apply, validate or export a world file")
    sub = world.add_subparsers(dest="world_command", required=True)
    v = sub.add_parser("validate", help="check a world file: every problem apply would refuse, with file:line")
    v.add_argument("file")
    a = sub.add_parser("apply", help="apply a world file to a data dir (all of it or nothing)")
    a.add_argument("file")
    a.add_argument("--data-dir", default="perimeterdb-data")
    a.add_argument("--key-file")
    a.add_argument("--dry-run", action="store_true", help="show the changes (as `world plan`), write nothing")
    p = sub.add_parser("plan", help="show what apply would change (+ create, ~ change, = left alone)")
    p.add_argument("file")
    p.add_argument("--data-dir", default="perimeterdb-data")
    p.add_argument("--key-file")
    e = sub.add_parser("export", help="write the current state as a world file")
    e.add_argument("--data-dir", default="perimeterdb-data")
    e.add_argument("--key-file")
    e.add_argument("--include-secrets", action="store_true", help="include access key secrets and MFA seeds")
    e.add_argument("-o", "--output", help="write to this file (default: standard output)")
    world.set_defaults(handler=run)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=Path(args.data_dir),
        durability="normal",
        key_file=Path(args.key_file) if getattr(args, "key_file", None) else None,
    )


def run(args: argparse.Namespace) -> int:
    from perimeterdb.world.worldfile import WorldError, holes_are_errors, load_world

    try:
        if args.world_command == "validate":
            world = load_world(Path(args.file))
            if _report_holes(world) and holes_are_errors(world):
                print(f"{args.file}: holes in the perimeter (break_glass: {{holes: error}})", file=sys.stderr)
                return 1
            from perimeterdb.prover_invariants import refuse  # what apply proves before any change

            if world.data.get("invariants") and refuse(Path(args.file)):
                return 1
            print(f"{args.file}: valid")
            return 0
        if args.world_command == "plan" or (args.world_command == "apply" and args.dry_run):
            world = load_world(Path(args.file))
            _report_holes(world)
            for line in asyncio.run(_plan(_settings(args), world)):
                print(line)
            return 0
        if args.world_command == "apply":
            world = load_world(Path(args.file))
            if not holes_are_errors(world):
                _report_holes(world)
            from perimeterdb.prover_invariants import refuse  # invariants: proved before any change

            if refuse(Path(args.file)):
                return 1
            for line in asyncio.run(_apply(_settings(args), world)) or ["nothing to change"]:
                print(line)
            return 0
        if args.world_command == "export":
            data = asyncio.run(_export(_settings(args), args.include_secrets))
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
            if args.output:
                Path(args.output).write_text(text)
            else:
                sys.stdout.write(text)
            return 0
    except WorldError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 2


def _report_holes(world: Any) -> int:
    """Print each hole in the perimeter the world file opens (world/holes.py) as a warning; how many."""
    from perimeterdb.world.worldfile import platform_warnings, world_holes

    found = world_holes(world)
    for hole in found:
        print(f"{world.where('organization', 'policies', hole.policy)}: warning: {hole.describe()}", file=sys.stderr)
    for warning in platform_warnings(world):
        print(f"{world.where('break_glass', 'platform_principals')}: warning: {warning}", file=sys.stderr)
    return len(found)


def apply_world_file(world_file: Path, data_dir: Path) -> list[str]:
    """Validate and apply a world file to a data directory (the simulator's scratch world)."""
    from perimeterdb.world.worldfile import load_world

    world = load_world(world_file)
    return asyncio.run(_apply(Settings(data_dir=data_dir, durability="normal"), world))


async def _apply(settings: Settings, world: Any) -> list[str]:
    from perimeterdb.server.runtime import open_runtime
    from perimeterdb.world.staging import StagingConflict
    from perimeterdb.world.worldfile import WorldError, apply_world

    runtime = open_runtime(settings)
    try:
        staged = staged_runtime(runtime)
        try:
            report = await apply_world(staged, world)
            from perimeterdb.prover_invariants import stage  # the server checks them (meta:invariants)

            stored = await stage(staged.engine, world.data)
            report = [*report, stored] if stored else report
            await staged.engine.commit()  # one atomic write: all of the world file or nothing
        except StagingConflict as exc:
            raise WorldError(f"{world.source}: not applied: {exc} (nothing was written; run it again)") from None
        return report
    finally:
        runtime.close()


async def _plan(settings: Settings, world: Any) -> list[str]:
    """What apply would change, computed by applying to a staging engine that is never committed."""
    import tempfile

    from perimeterdb.server.runtime import open_runtime

    if not settings.database_path.exists():  # plan against an empty world, and leave no data dir behind
        with tempfile.TemporaryDirectory(prefix="perimeterdb-plan-") as scratch:
            return await _plan_on(open_runtime(dataclasses.replace(settings, data_dir=Path(scratch), key_file=None)),
                                  world)
    return await _plan_on(open_runtime(settings), world)


async def _plan_on(runtime: Any, world: Any) -> list[str]:
    from perimeterdb.world.worldfile import apply_world

    try:
        staged = staged_runtime(runtime)
        changes = await apply_world(staged, world)
        lines = [_plan_line(c) for c in changes]
        lines += await _left_alone(runtime, world)
        ups = sum(c.startswith("created") for c in changes)
        lines.append(f"Plan: {ups} to create, {len(changes) - ups} to change, nothing removed "
                     f"(apply never deletes; = marks what the file does not mention). Nothing was written.")
        return lines
    finally:
        runtime.close()


def _plan_line(change: str) -> str:
    for word, mark in (("created ", "+ "), ("updated ", "~ ")):
        if change.startswith(word):
            return mark + change[len(word):]
    return "~ " + change


async def _left_alone(runtime: Any, world: Any) -> list[str]:
    from perimeterdb.world.identities import ROLES, USERS

    accounts = world.data.get("accounts") or {}
    declared_ids = {str(a["id"]) for a in accounts.values() if a.get("id")}
    declared_names = {str(a.get("name", alias)) for alias, a in accounts.items()}
    out: list[str] = []
    for record in await runtime.identities.list_accounts():
        spec = next((a for alias, a in accounts.items()
                     if str(a.get("id", "")) == record["id"] or a.get("name", alias) == record.get("name")), None)
        if record["id"] not in declared_ids and record.get("name") not in declared_names:
            out.append(f"= account {record.get('name')} ({record['id']}) is not in the file: left alone")
            continue
        for space, kind in ((USERS, "users"), (ROLES, "roles")):
            for entity in await runtime.identities.list(space, record["id"]):
                if entity["name"] not in ((spec or {}).get(kind) or {}):
                    out.append(f"= {entity['arn']} is not in the file: left alone")
    return out


def staged_runtime(runtime: Any) -> Any:
    """The runtime's stores over a staging engine (world/staging.py): apply writes nothing until commit."""
    from perimeterdb.dynamodb.catalog import Catalog
    from perimeterdb.organizations.store import OrgStore
    from perimeterdb.world.identities import IdentityStore
    from perimeterdb.world.staging import StagingEngine

    engine = StagingEngine(runtime.engine)
    return SimpleNamespace(settings=runtime.settings, engine=engine, identities=IdentityStore(engine, runtime.identities.box),
                           catalog=Catalog(engine), organizations=OrgStore(engine))


async def _export(settings: Settings, include_secrets: bool) -> dict[str, Any]:
    from perimeterdb.server.runtime import open_runtime
    from perimeterdb.world.worldfile import export_world

    runtime = open_runtime(settings)
    try:
        return await export_world(runtime, include_secrets=include_secrets)
    finally:
        runtime.close()


# --- serve ----------------------------------------------------------------------------------------------


def prepare_serve(settings: Settings) -> Settings:
    """Apply ``--world`` (exits on an invalid file) and add the stored network's listeners."""
    from perimeterdb.world.network import load_network
    from perimeterdb.world.worldfile import WorldError, load_world

    if settings.world_file is not None:
        try:
            world = load_world(settings.world_file)
        except WorldError as exc:
            print(str(exc), file=sys.stderr)
            raise SystemExit(2) from None  # a start-up failure (cli_startup.py)
        from perimeterdb.world.worldfile import world_holes

        for hole in world_holes(world):
            log.warning("world: %s", hole.describe())
        from perimeterdb.prover_invariants import refuse  # as world apply: proved before any change

        if world.data.get("invariants") and refuse(settings.world_file):
            raise SystemExit(2)  # a start-up failure (cli_startup.py)
        try:
            changes = asyncio.run(_apply(settings, world))
        except WorldError as exc:
            print(str(exc), file=sys.stderr)
            raise SystemExit(2) from None  # a start-up failure (cli_startup.py)
        for line in changes:
            log.info("world: %s", line)
        log.info("world %s applied: %d change(s)", settings.world_file, len(changes))
    network = asyncio.run(_with_engine(settings, load_network))
    from perimeterdb.cli_startup import LISTENER_ROLES

    for e in network.endpoints:
        LISTENER_ROLES[(e.listen.host, e.listen.port)] = f"VPC endpoint {e.id} of {e.vpc_id}, stored by a world apply"
    for p in network.public_listeners:
        LISTENER_ROLES.setdefault((p.host, p.port), "public listener, stored by a world apply")
    listeners = list(settings.listeners)
    for address in network.listeners():
        tls = (address.tls.cert, address.tls.key) if address.tls is not None else None
        listener = Listener(address.host, address.port, tls)
        if listener not in listeners:
            listeners.append(listener)
    return dataclasses.replace(settings, listeners=tuple(listeners))


async def _with_engine(settings: Settings, fn: Any) -> Any:
    from perimeterdb.storage.sqlite import SQLiteEngine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = SQLiteEngine(settings.database_path, durability=settings.durability)
    try:
        return await fn(engine)
    finally:
        engine.close()


def configure_app(app: Any, runtime: Any) -> None:
    """Give the app the network world's origin resolver (when any endpoint is configured)."""
    asyncio.run(_configure(app, runtime))


async def _configure(app: Any, runtime: Any) -> None:
    from perimeterdb.server.network import OriginResolver
    from perimeterdb.world.network import load_network

    network = await load_network(runtime.engine)
    if not network.endpoints:
        return
    org_of: dict[str, tuple[str, tuple[str, ...]]] = {}
    view = getattr(runtime.authorizer, "organizations", None)
    for vpc in network.vpcs:
        placement = await view.placement(vpc.account) if view is not None else None
        if placement is not None:
            org_of[vpc.account] = (placement.org_id, placement.org_paths)
    app.origin_for = OriginResolver(network, org_of)
    for e in network.endpoints:
        log.info("VPC endpoint %s (%s) listening on %s", e.id, e.vpc_id, e.listen)
