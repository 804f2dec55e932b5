"""A world as the prover sees it: a data directory (or a world file applied to a scratch copy) read into a
``perimeterdb.prover.Snapshot``. This is the one place that knows both the storage and the prover, so
that ``perimeterdb.prover`` stays pure.

What is read: every account and its place in the organization (SCP and RCP levels, compiled as the
authorizer compiles them); every IAM user and role with its identity policies (groups included) and
permissions boundary, a role as a session of it; every table with its resource policy and tags; every VPC
endpoint with its VPC's CIDR blocks and its endpoint policy; the sealed break-glass role names.
Account root users are not principals here (perimeterdb issues them no credentials).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from perimeterdb.config import Settings
from perimeterdb.policy import CompiledPolicy, PolicyKind, PrincipalInfo
from perimeterdb.prover import Account, Endpoint, Principal, Snapshot, Table

__all__ = ["load_snapshot", "runtime_over", "snapshot_from_data_dir", "snapshot_from_world_file", "snapshot_of"]


def load_snapshot(*, data_dir: Path | None = None, world_file: Path | None = None) -> Snapshot:
    if world_file is not None:
        return snapshot_from_world_file(world_file)
    assert data_dir is not None
    return asyncio.run(snapshot_from_data_dir(data_dir))


def snapshot_from_world_file(world_file: Path) -> Snapshot:
    from perimeterdb.cli_world import apply_world_file

    with tempfile.TemporaryDirectory(prefix="perimeterdb-prove-") as scratch:
        data_dir = Path(scratch) / "data"
        apply_world_file(world_file, data_dir)
        return asyncio.run(snapshot_from_data_dir(data_dir))


async def snapshot_from_data_dir(data_dir: Path) -> Snapshot:
    from perimeterdb.server.runtime import open_runtime

    runtime = open_runtime(Settings(data_dir=data_dir, durability="normal"))
    try:
        return await _read(runtime)
    finally:
        runtime.close()


def runtime_over(engine: Any, box: Any = None) -> Any:
    """What ``snapshot_of`` reads, over any storage engine (the running server's, or a staging engine
    holding a proposed change): fresh stores and a fresh authorizer, so no cache of the server is involved.
    ``box`` (the secret box) is not needed to read policies; it may be None."""
    from types import SimpleNamespace

    from perimeterdb.authz import Authorizer
    from perimeterdb.dynamodb.catalog import Catalog
    from perimeterdb.organizations.store import OrgStore
    from perimeterdb.organizations.view import OrganizationView
    from perimeterdb.world.identities import IdentityStore

    identities = IdentityStore(engine, box)
    catalog = Catalog(engine)
    authorizer = Authorizer(identities, catalog, OrganizationView(OrgStore(engine)))
    return SimpleNamespace(engine=engine, identities=identities, catalog=catalog, authorizer=authorizer)


async def snapshot_of(runtime: Any) -> Snapshot:
    """The snapshot of a runtime (or of ``runtime_over(engine)``)."""
    return await _read(runtime)


def _compile(runtime: Any, kind: PolicyKind, policy_id: str, document: str) -> CompiledPolicy:
    compiled: CompiledPolicy = runtime.authorizer.compiled(kind, policy_id, document)
    return compiled


async def _read(runtime: Any) -> Snapshot:
    from perimeterdb.world.identities import ROLES, USERS
    from perimeterdb.world.network import load_network

    identities = runtime.identities
    view = runtime.authorizer.organizations
    accounts: dict[str, Account] = {}
    for record in await identities.list_accounts():
        account_id = str(record.get("id") or record.get("account_id") or record.get("account"))
        place = await view.placement(account_id) if view is not None else None
        accounts[account_id] = Account(
            account_id,
            place.org_id if place else None,
            tuple(place.org_paths) if place else (),
            bool(place and place.is_management),
            tuple(place.scp_levels) if place else (),
            tuple(place.rcp_levels) if place else (),
        )
    principals: list[Principal] = []
    for account_id, account in accounts.items():
        for user in await identities.list(USERS, account_id):
            principals.append(await _principal(runtime, account, user, "User"))
        for role in await identities.list(ROLES, account_id):
            principals.append(await _principal(runtime, account, role, "AssumedRole"))
    tables = []
    for table in await runtime.catalog.all_tables():
        stored = table.description.get("_resource_policy")
        policy = _compile(runtime, PolicyKind.RESOURCE, table.arn, stored["Policy"]) if stored else None
        tags = tuple((t["Key"], t["Value"]) for t in table.description.get("_tags") or [])
        tables.append(Table(table.arn, table.account, table.region, policy, tags))
    network = await load_network(runtime.engine)
    endpoints = []
    for e in network.endpoints:
        vpc = network.vpc(e.vpc_id)
        policy = _compile(runtime, PolicyKind.VPCE, e.id, e.policy) if e.policy else None
        endpoints.append(
            Endpoint(
                e.id, e.vpc_id, vpc.account if vpc else "", tuple(vpc.cidr_blocks) if vpc else (), policy
            )
        )
    return Snapshot(
        accounts=accounts,
        principals=tuple(principals),
        tables=tuple(tables),
        endpoints=tuple(endpoints),
        sealed=await _sealed(runtime),
    )


async def _sealed(runtime: Any) -> frozenset[str]:
    try:
        from perimeterdb.world.sealed import load_registry
    except ImportError:  # an older tree without sealed roles
        return frozenset()
    registry = await load_registry(runtime.engine)
    return frozenset(r.name for r in registry.roles)


async def _principal(runtime: Any, account: Account, record: dict[str, Any], kind: str) -> Principal:
    from perimeterdb.auth.principal import Principal as AuthPrincipal

    tags = tuple((t["Key"], t["Value"]) for t in record.get("tags", []))
    name = record.get("name") or record["arn"].rsplit("/", 1)[-1]
    if kind == "User":
        auth = AuthPrincipal(
            record["arn"], record["arn"], account.id, "User", record["user_id"], username=name, tags=tags
        )
        info = PrincipalInfo(
            record["arn"],
            record["arn"],
            account.id,
            "User",
            record["user_id"],
            username=name,
            tags=tags,
            org_id=account.org_id,
            org_paths=account.org_paths,
        )
    else:
        session = "session"
        arn = f"arn:aws:sts::{account.id}:assumed-role/{name}/{session}"
        auth = AuthPrincipal(
            arn=arn,
            principal_arn=record["arn"],
            account=account.id,
            kind="AssumedRole",
            userid=f"{record['role_id']}:{session}",
            role_name=name,
            session_name=session,
            tags=tags,
        )
        info = PrincipalInfo(
            arn,
            record["arn"],
            account.id,
            "AssumedRole",
            f"{record['role_id']}:{session}",
            tags=tags,
            org_id=account.org_id,
            org_paths=account.org_paths,
            is_service_linked_role=record["arn"].split(":", 5)[-1].startswith("role/aws-service-role/"),
        )
    found = await runtime.identities.policies_for(auth)
    identity = tuple(_compile(runtime, PolicyKind.IDENTITY, s.id, s.document) for s in found.identity)
    boundary = (
        _compile(runtime, PolicyKind.BOUNDARY, found.boundary.id, found.boundary.document)
        if found.boundary is not None
        else None
    )
    return Principal(info, identity, boundary, None)
