"""The world file: a declarative YAML description of regions, accounts, the organization, VPCs and their
endpoints, IAM entities, tables and break-glass settings (schema: ``world.schema.json``; guide:
docs/world-file.md).

``load_world(path)`` parses and validates it (jsonschema), and every error names the line and the field.
``apply_world(runtime, world)`` brings the stored state to what the file declares, idempotently, and
returns what changed (applying the same file twice reports nothing the second time). ``export_world``
writes the current state back in the same form (secrets only when asked).

Accounts are referred to by their alias (the key under ``accounts:``) or their 12-digit id. An account
without an ``id`` is matched by name, and created with a new id when there is none.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from perimeterdb.organizations.state import FULL_ACCESS, RCP, SCP, OrgState, new_document
from perimeterdb.policy import PolicyKind
from perimeterdb.world import breakglass, holes, regions, sealed, worldcheck
from perimeterdb.world.identities import ACCOUNTS, global_key
from perimeterdb.world.network import (
    Endpoint,
    ListenAddress,
    NetworkWorld,
    Tls,
    Vpc,
    load_network,
    save_network,
)
from perimeterdb.world.worldfile_iam import (
    AccountImporter,
    WorldError,
    apply_tables,
    checked,
    export_account,
)

__all__ = ["World", "WorldError", "apply_world", "export_world", "load_world", "world_holes"]

SCHEMA_PATH = Path(__file__).with_name("world.schema.json")


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())  # type: ignore[no-any-return]


@dataclass
class World:
    data: dict[str, Any]
    source: str = "<world>"
    _root: Any = field(default=None, repr=False)

    def where(self, *path: Any) -> str:
        """``file:line`` of the deepest node of ``path`` that exists."""
        node = self._root
        line = node.start_mark.line + 1 if node is not None else 1
        for part in path:
            child = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = node.value[part]
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return f"{self.source}:{line}"

    @property
    def default_region(self) -> str:
        return str((self.data.get("regions") or ["us-east-1"])[0])


def parse_world(text: str, source: str = "<world>") -> World:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise WorldError(f"{source}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:  # PyYAML composes recursively: nesting deeper than the stack is refused here
        raise WorldError(f"{source}:1: not valid YAML: nested too deeply") from None
    world = World(data if isinstance(data, dict) else {}, source, root)
    if not isinstance(data, dict):
        raise WorldError(f"{source}:1: the world file must be a mapping")
    if worldcheck.expanded_size(root) > worldcheck.MAX_EXPANDED_NODES:
        raise WorldError(f"{source}:1: YAML aliases expand to more than {worldcheck.MAX_EXPANDED_NODES:,} nodes")
    lines = worldcheck.duplicate_keys(root, source)
    validator = jsonschema.Draft202012Validator(schema())
    problems = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    for error in problems[:100]:
        path = list(error.absolute_path)
        name = ".".join(map(str, path)) or "(top level)"
        lines.append(f"{world.where(*path)}: {name}: {error.message}")
    try:
        lines += worldcheck.problems(world)
    except (KeyError, TypeError, AttributeError, ValueError):  # a shape the schema errors above already name
        if not problems:
            raise
    if lines:
        raise WorldError("\n".join(lines))
    return world


def load_world(path: Path) -> World:
    return parse_world(Path(path).read_text(), str(path))


# --- references -----------------------------------------------------------------------------------------


def world_holes(world: World, ids: dict[str, str] | None = None) -> list[holes.Hole]:
    """The holes in the perimeter the world file's SCPs and RCPs open (world/holes.py)."""
    roles, platform, mode = sealed.registry_from_world(world.data, ids or {})
    registry = sealed.Registry(tuple(roles), tuple(platform), mode)
    return holes.policy_holes(holes.world_policies(world.data), registry, holes.world_roles(world.data, ids))


def platform_warnings(world: World) -> list[str]:
    """Platform roles that principals outside the management account could assume (world/holes.py)."""
    _roles, platform, _mode = sealed.registry_from_world(world.data, {})
    org = world.data.get("organization") or {}
    accounts = world.data.get("accounts") or {}
    management = None
    if org.get("management_account"):
        alias = _ref(world, org["management_account"], "organization", "management_account")
        management = str(accounts[alias].get("id") or alias)
    out: list[str] = []
    for alias, spec in accounts.items():
        account = str(spec.get("id") or alias)
        for name, role in (spec.get("roles") or {}).items():
            arn = f"arn:aws:iam::{account}:role{role.get('path', '/')}{name}"
            if any(_platform_match(p, arn) for p in platform):
                out += holes.platform_trust_problems(arn, role.get("trust") or {}, management)
    return out


def _platform_match(declared: str, arn: str) -> bool:
    account, path, name = sealed.parse_platform_principal(declared)
    parts = arn.split(":", 5)
    return parts[5] == f"role{path}{name}" and account in ("*", parts[4])


def holes_are_errors(world: World) -> bool:
    return ((world.data.get("break_glass") or {}).get("holes") or "warn") == "error"


def _ref(world: World, ref: str, *path: Any) -> str:
    """The alias of an account reference (alias or 12-digit id)."""
    accounts = world.data.get("accounts") or {}
    if ref in accounts:
        return ref
    for alias, spec in accounts.items():
        if spec.get("id") == ref:
            return str(alias)
    raise WorldError(f"{world.where(*path)}: {'.'.join(map(str, path))}: unknown account {ref!r}")


# --- apply ----------------------------------------------------------------------------------------------


async def _accounts(rt: Any, world: World, report: list[str]) -> dict[str, str]:
    """Create missing accounts; returns alias -> account id."""
    out: dict[str, str] = {}
    existing = {a["id"]: a for a in await rt.identities.list_accounts()}
    for alias, spec in (world.data.get("accounts") or {}).items():
        name = spec.get("name", alias)
        account = spec.get("id") or next((i for i, a in existing.items() if a.get("name") == name), None)
        record = existing.get(account) if account else None
        if record is None:
            account, rows = rt.identities.account_changes(name, world.default_region, account)
            rows = [(k, {**v, "email": spec.get("email") or f"{alias}@perimeterdb.local"}) for k, v in rows]
            await rt.identities.write([k for k, _ in rows], lambda _v, rows=rows: (rows, None))
            report.append(f"created account {alias} ({account})")
        elif record.get("name") != name or (spec.get("email") and record.get("email") != spec["email"]):
            updated = {**record, "name": name, "email": spec.get("email") or record.get("email")}
            key = global_key(ACCOUNTS, account)
            await rt.identities.write([key], lambda _v, k=key, u=updated: ([(k, u)], None))
            report.append(f"updated account {alias} ({account})")
        out[alias] = str(account)
    return out


def _org_document(world: World, ids: dict[str, str], current: OrgState | None) -> dict[str, Any]:
    org = world.data["organization"]
    accounts = world.data.get("accounts") or {}
    management = ids[_ref(world, org["management_account"])]
    email = accounts[_ref(world, org["management_account"])].get("email") or f"{management}@perimeterdb.local"
    keep = current is not None and current.management == management
    doc = new_document(management, email, org.get("feature_set", "ALL"), current.org_id if keep else None)
    if keep:
        doc["root"]["id"] = current.root_id  # type: ignore[union-attr]
        doc["accounts"][management]["parent"] = current.root_id  # type: ignore[union-attr]
    root_id = doc["root"]["id"]
    old = current.doc if keep else None  # type: ignore[union-attr]
    # Policies: world names keep their ids.
    by_name = {(p["name"], p["type"]): pid for pid, p in (old or {}).get("policies", {}).items()}
    names: dict[str, str] = {"FullAWSAccess": FULL_ACCESS[SCP][0], "RCPFullAWSAccess": FULL_ACCESS[RCP][0]}
    for name, spec in (org.get("policies") or {}).items():
        kind = PolicyKind.SCP if spec["type"] == SCP else PolicyKind.RCP
        content = checked(spec["document"], kind, world.where, "organization", "policies", name, "document")
        if len(content) > 5120:
            raise WorldError(f"{world.where('organization', 'policies', name)}: policy {name} exceeds 5,120 characters")
        digest = hashlib.sha256(f"{root_id}/{spec['type']}/{name}".encode()).hexdigest()[:12]
        pid = by_name.get((name, spec["type"])) or f"p-{digest}"
        names[name] = pid
        doc["policies"][pid] = {"id": pid, "name": name, "description": spec.get("description", ""),
                                "type": spec["type"], "content": content, "aws_managed": False}
    state = OrgState(doc)
    for policy_type in org.get("policy_types", [SCP, RCP]):
        state.doc["root"]["policy_types"][policy_type] = "ENABLED"
    old_ous = {(o["parent"], o["name"]): oid for oid, o in (old or {}).get("ous", {}).items()}

    def place(spec: dict[str, Any], target: str) -> None:
        attached: list[str] = []
        for policy_type, (pid, *_r) in FULL_ACCESS.items():
            if state.enabled(policy_type) and (spec.get("full_access", True) or policy_type == RCP):
                attached.append(pid)
        for name in spec.get("policies") or []:
            if names[name] not in attached:
                attached.append(names[name])
        state.doc["attachments"][target] = attached

    def unit(spec: dict[str, Any], parent: str) -> None:
        ou_id = old_ous.get((parent, spec["name"]))
        ou_id = state.create_ou(parent, spec["name"], ou_id)
        place(spec, ou_id)
        for ref in spec.get("accounts") or []:
            _add(ref, ou_id)
        for child in spec.get("units") or []:
            unit(child, ou_id)

    def _add(ref: str, parent: str) -> None:
        alias = _ref(world, ref)
        account = ids[alias]
        if account == management:
            state.doc["accounts"][account]["parent"] = parent
            return
        spec = accounts[alias]
        state.add_account(account, spec.get("name", alias), spec.get("email") or f"{alias}@perimeterdb.local", parent)
        previous = (old or {}).get("accounts", {}).get(account)
        if previous:
            state.doc["accounts"][account]["joined"] = previous["joined"]

    root_spec = org.get("root") or {}
    place(root_spec, root_id)
    place({}, management)
    for ref in root_spec.get("accounts") or []:
        _add(ref, root_id)
    for spec in org.get("units") or []:
        unit(spec, root_id)
    # Accounts placed nowhere in the tree are not members (the management account is always one).
    for account in state.doc["accounts"]:
        if account not in state.doc["attachments"]:
            place({}, account)
    if old:
        state.doc["accounts"][management]["joined"] = old["accounts"].get(management, {}).get("joined")
        state.doc["create_requests"] = old.get("create_requests", {})
        for account, record in old["accounts"].items():  # accounts created through the API stay
            if account not in state.doc["accounts"]:
                record = {**record, "parent": record["parent"] if record["parent"] in state.doc["ous"] else root_id}
                state.doc["accounts"][account] = record
                place({}, account)
    state.doc["delegated_admins"] = [ids[_ref(world, r)] for r in org.get("delegated_admins") or []]
    return state.doc


def _comparable(doc: dict[str, Any]) -> str:
    trimmed = {k: v for k, v in doc.items() if k != "create_requests"}
    trimmed["accounts"] = {a: {k: v for k, v in r.items() if k != "joined"} for a, r in doc["accounts"].items()}
    return json.dumps(trimmed, sort_keys=True)


def _network(world: World, ids: dict[str, str]) -> NetworkWorld:
    spec = world.data.get("network") or {}
    vpcs, endpoints = [], []
    for alias, v in (spec.get("vpcs") or {}).items():
        vpcs.append(Vpc(v["id"], ids[_ref(world, v["account"])], v.get("region", world.default_region),
                        tuple(v["cidr_blocks"]), alias, bool(v.get("allow_host_processes", False))))
        for i, e in enumerate(v.get("endpoints") or []):
            policy = (checked(e["policy"], PolicyKind.VPCE, world.where, "network", "vpcs", alias, "endpoints", i,
                              "policy") if e.get("policy") else None)
            tls = Tls(e["tls"]["cert"], e["tls"]["key"]) if e.get("tls") else None
            endpoints.append(Endpoint(e["id"], v["id"], e.get("service", "dynamodb"),
                                      ListenAddress.parse(e["listen"], tls), policy))
    public = tuple(
        ListenAddress.parse(p["listen"], Tls(p["tls"]["cert"], p["tls"]["key"]) if p.get("tls") else None)
        for p in spec.get("public_listeners") or []
    )
    seen: dict[tuple[str, int], str] = {}
    for address in [e.listen for e in endpoints] + list(public):
        key = (address.host, address.port)
        if key in seen:
            raise WorldError(f"{world.where('network')}: network: listener {address} is declared twice")
        seen[key] = str(address)
    return NetworkWorld(tuple(vpcs), tuple(endpoints), public)


async def apply_world(rt: Any, world: World) -> list[str]:
    """Bring the stored state to the world file's; returns one line per change (empty: nothing changed)."""
    report: list[str] = []
    if holes_are_errors(world):  # break_glass: {holes: error}: refuse before changing anything
        found = world_holes(world)
        if found:
            raise WorldError("\n".join(f"{world.where('organization', 'policies', h.policy)}: {h.describe()}"
                                        for h in found))
    ids = await _accounts(rt, world, report)
    for alias, spec in (world.data.get("accounts") or {}).items():
        importer = AccountImporter(rt.identities, ids[alias], spec, world.where, ("accounts", alias))
        report += await importer.apply()
        if spec.get("tables"):
            report += await apply_tables(rt, ids[alias], spec["tables"], world.default_region, world.where,
                                         ("accounts", alias, "tables"))
    if world.data.get("organization"):
        current = await rt.organizations.load()
        doc = _org_document(world, ids, current)
        if current is None or _comparable(current.doc) != _comparable(doc):
            await rt.organizations.replace(doc)
            report.append(f"{'updated' if current else 'created'} organization {doc['org']['id']}")
    network = _network(world, ids)
    if network.to_json() != (await load_network(rt.engine)).to_json() and await save_network(rt.engine, network):
        report.append(f"network: {len(network.vpcs)} VPC(s), {len(network.endpoints)} endpoint(s)")
    if world.data.get("regions") and await regions.save_regions(rt.engine, world.data["regions"]):
        report.append(f"regions: {', '.join(world.data['regions'])} (requests signed for others are refused)")
    glass = world.data.get("break_glass")
    if glass is not None and await breakglass.save_settings(rt.engine, glass):
        report.append("break-glass settings updated")
    roles, platform, mode = sealed.registry_from_world(world.data, ids)
    registry = (await sealed.load_registry(rt.engine)).with_world(roles, platform, mode)
    if await sealed.save_registry(rt.engine, registry):
        names = ", ".join(f"{r.path}{r.name}" for r in registry.roles) or "none"
        report.append(f"sealed break-glass roles: {names}")
    return report


# --- export ---------------------------------------------------------------------------------------------


async def export_world(rt: Any, *, include_secrets: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"version": 1, "regions": [rt.settings.default_region]}
    accounts: dict[str, Any] = {}
    alias_of: dict[str, str] = {}
    for record in await rt.identities.list_accounts():
        alias = str(record.get("name") or record["id"])
        if alias in accounts:
            alias = f"{alias}-{record['id']}"
        alias_of[record["id"]] = alias
        spec: dict[str, Any] = {"id": record["id"], "name": record.get("name") or alias}
        if record.get("email"):
            spec["email"] = record["email"]
        spec.update(await export_account(rt.identities, record["id"], include_secrets))
        tables = {}
        for table in await rt.catalog.all_tables():
            if table.account != record["id"]:
                continue
            t: dict[str, Any] = {"region": table.region}
            types = table.attribute_types
            for k in table.key_schema:
                t["hash_key" if k["KeyType"] == "HASH" else "range_key"] = {
                    "name": k["AttributeName"], "type": types[k["AttributeName"]]}
            policy = (table.description.get("_resource_policy") or {}).get("Policy")
            if policy:
                t["resource_policy"] = json.loads(policy)
            if table.description.get("_tags"):
                t["tags"] = {x["Key"]: x["Value"] for x in table.description["_tags"]}
            tables[table.name] = t
        if tables:
            spec["tables"] = tables
        accounts[alias] = spec
    out["accounts"] = accounts
    state = await rt.organizations.load()
    if state is not None:
        out["organization"] = _export_org(state, alias_of)
    network = await load_network(rt.engine)
    if network.vpcs or network.public_listeners:
        out["network"] = _export_network(network, alias_of)
    glass = await breakglass.load_settings(rt.engine)
    registry = await sealed.load_registry(rt.engine)
    by_cli = [f"{r.path}{r.name}" if r.path != "/" else r.name for r in registry.roles if r.source == "cli"]
    if by_cli:  # sealed with `perimeterdb break-glass seal`: declared in the file from now on
        glass = {**glass, "sealed_roles": sorted(set(glass.get("sealed_roles") or []) | set(by_cli))}
    if glass:
        out["break_glass"] = glass
    return out


def _export_org(state: OrgState, alias_of: dict[str, str]) -> dict[str, Any]:
    doc = state.doc
    names = {pid: p["name"] for pid, p in doc["policies"].items()}

    def node(target: str) -> dict[str, Any]:
        ids = state.attached(target)
        spec: dict[str, Any] = {}
        custom = [names[p] for p in ids if not doc["policies"][p].get("aws_managed")]
        if custom:
            spec["policies"] = custom
        if state.enabled(SCP) and FULL_ACCESS[SCP][0] not in ids:
            spec["full_access"] = False
        accounts = [alias_of.get(a, a) for a in state.children(target, "ACCOUNT") if a != state.management]
        if accounts:
            spec["accounts"] = accounts
        return spec

    def unit(ou_id: str) -> dict[str, Any]:
        spec = {"name": doc["ous"][ou_id]["name"], **node(ou_id)}
        children = [unit(c) for c in state.children(ou_id, "ORGANIZATIONAL_UNIT")]
        if children:
            spec["units"] = children
        return spec

    out: dict[str, Any] = {
        "management_account": alias_of.get(state.management, state.management),
        "feature_set": doc["org"]["feature_set"],
        "policy_types": [t for t in (SCP, RCP) if state.enabled(t)],
        "policies": {
            p["name"]: {"type": p["type"], "description": p["description"], "document": json.loads(p["content"])}
            for p in doc["policies"].values() if not p.get("aws_managed")
        },
        "root": node(state.root_id),
        "units": [unit(o) for o in state.children(state.root_id, "ORGANIZATIONAL_UNIT")],
    }
    if doc.get("delegated_admins"):
        out["delegated_admins"] = [alias_of.get(a, a) for a in doc["delegated_admins"]]
    return out


def _export_network(network: NetworkWorld, alias_of: dict[str, str]) -> dict[str, Any]:
    def listen(a: ListenAddress) -> dict[str, Any]:
        d: dict[str, Any] = {"listen": str(a)}
        if a.tls:
            d["tls"] = {"cert": a.tls.cert, "key": a.tls.key}
        return d

    vpcs = {}
    for v in network.vpcs:
        endpoints = []
        for e in network.endpoints:
            if e.vpc_id == v.id:
                d = {"id": e.id, "service": e.service, **listen(e.listen)}
                if e.policy:
                    d["policy"] = json.loads(e.policy)
                endpoints.append(d)
        vpcs[v.name or v.id] = {"id": v.id, "account": alias_of.get(v.account, v.account), "region": v.region,
                                "cidr_blocks": list(v.cidr_blocks), "endpoints": endpoints,
                                **({"allow_host_processes": True} if v.allow_host_processes else {})}
    out: dict[str, Any] = {"vpcs": vpcs}
    if network.public_listeners:
        out["public_listeners"] = [listen(a) for a in network.public_listeners]
    return out
