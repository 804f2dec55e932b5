"""Every check ``world apply`` makes on a world file, made without a data directory, each problem collected
(not the first one only): duplicate YAML keys, references between sections, every policy document through
the policy engine (as the authorizer will compile it), CIDR blocks, listen addresses, break-glass sealing.

``problems(world)`` returns one ``file:line: field: message`` line per problem; ``duplicate_keys(root)``
the mapping keys a YAML document repeats (PyYAML silently keeps the last one). The schema itself is checked
by ``worldfile.parse_world`` before these run.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable
from typing import Any

import yaml

from perimeterdb.policy import PolicyKind
from perimeterdb.world import sealed
from perimeterdb.world.managed_policies import managed_policy
from perimeterdb.world.worldfile_iam import WorldError, checked

Where = Callable[..., str]
BUILTIN_ORG_POLICIES = ("FullAWSAccess", "RCPFullAWSAccess")
MAX_ORG_POLICY = 5120


def duplicate_keys(root: Any, source: str) -> list[str]:
    """``file:line: key: duplicate key`` for every key a mapping of the composed YAML tree repeats."""
    out: list[str] = []
    stack = [(root, "")]
    seen_nodes: set[int] = set()  # an alias is the same node: each is walked once (no alias bomb)
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                name = str(key.value)
                line = key.start_mark.line + 1
                if name in seen:
                    where = f"{path}.{name}" if path else name
                    out.append(f"{source}:{line}: {where}: duplicate key (first at line {seen[name]}); "
                               "YAML would silently keep only the last one")
                else:
                    seen[name] = line
                stack.append((value, f"{path}.{name}" if path else name))
        elif isinstance(node, yaml.SequenceNode):
            stack += [(child, f"{path}.{i}") for i, child in enumerate(node.value)]
    return sorted(out, key=lambda s: int(s.split(":")[1]) if s.split(":")[1].isdigit() else 0)


MAX_EXPANDED_NODES = 1_000_000


def expanded_size(root: Any) -> int:
    """How many nodes the YAML tree has once every alias is expanded (as JSON, a policy document, is):
    aliases of aliases grow it exponentially (a "billion laughs" file), so it is counted with memoization
    before anything expands it."""
    sizes: dict[int, int] = {}
    order: list[Any] = []
    stack = [root]
    while stack:  # post-order without recursion (nesting may be deep)
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = -1
        order.append(node)
        if isinstance(node, yaml.MappingNode):
            stack += [v for pair in node.value for v in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(node.value)
    for node in reversed(order):
        children = ([v for pair in node.value for v in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        sizes[id(node)] = min(1 + sum(max(sizes[id(c)], 1) for c in children), 10 * MAX_EXPANDED_NODES)
    return sizes.get(id(root), 0)


class _Checker:
    def __init__(self, world: Any) -> None:
        self.world = world
        self.data: dict[str, Any] = world.data
        self.where: Where = world.where
        self.out: list[str] = []
        self.accounts: dict[str, Any] = self.data.get("accounts") or {}
        self.regions: list[str] = list(self.data.get("regions") or [])

    def fail(self, message: str, *path: Any) -> None:
        self.out.append(f"{self.where(*path)}: {'.'.join(map(str, path)) or '(top level)'}: {message}")

    def ref(self, ref: str, *path: Any) -> str | None:
        if ref in self.accounts:
            return ref
        for alias, spec in self.accounts.items():
            if spec.get("id") == ref:
                return str(alias)
        self.fail(f"unknown account {ref!r}", *path)
        return None

    def document(self, document: Any, kind: PolicyKind, *path: Any) -> str | None:
        try:
            return checked(document, kind, self.where, *path)
        except WorldError as exc:
            self.out.append(str(exc))
            return None

    def region(self, region: str | None, *path: Any) -> None:
        if region is not None and self.regions and region not in self.regions:
            self.fail(f"region {region!r} is not in the world's regions ({', '.join(self.regions)})", *path)

    # --- sections ------------------------------------------------------------------------------------

    def run(self) -> list[str]:
        ids: dict[str, str] = {}
        for alias, spec in self.accounts.items():
            if spec.get("id"):
                if spec["id"] in ids:
                    self.fail(f"account id {spec['id']} is also the id of account {ids[spec['id']]}",
                              "accounts", alias, "id")
                ids.setdefault(spec["id"], alias)
            self.account(alias, spec)
        self.organization()
        self.network()
        try:
            sealed.registry_from_world(self.data, {})
        except sealed.SealError as exc:
            self.fail(str(exc), "break_glass")
        return self.out

    def account(self, alias: str, spec: dict[str, Any]) -> None:
        base = ("accounts", alias)
        declared = spec.get("policies") or {}
        for name, policy in declared.items():
            self.document(policy["document"], PolicyKind.IDENTITY, *base, "policies", name, "document")
        groups = {g.lower() for g in spec.get("groups") or {}}
        keys: dict[str, str] = {}
        for kind in ("users", "groups", "roles"):
            for name, entity in (spec.get(kind) or {}).items():
                path = (*base, kind, name)
                for pname, doc in (entity.get("inline") or {}).items():
                    self.document(doc, PolicyKind.IDENTITY, *path, "inline", pname)
                for i, ref in enumerate(entity.get("policies") or []):
                    self.policy_ref(alias, spec, ref, *path, "policies", i)
                if entity.get("boundary"):
                    self.policy_ref(alias, spec, entity["boundary"], *path, "boundary")
                if kind == "roles":
                    self.document(entity["trust"], PolicyKind.TRUST, *path, "trust")
                if kind == "users":
                    for i, group in enumerate(entity.get("groups") or []):
                        if group.lower() not in groups:
                            self.fail(f"unknown group {group!r} (declare it under accounts.{alias}.groups)",
                                      *path, "groups", i)
                    for i, key in enumerate(entity.get("access_keys") or []):
                        if key["id"] in keys:
                            self.fail(f"access key {key['id']} is also declared for {keys[key['id']]}",
                                      *path, "access_keys", i, "id")
                        keys.setdefault(key["id"], f"{alias}/{name}")
                    seed = (entity.get("mfa") or {}).get("seed_base32")
                    if seed:
                        try:
                            base64.b32decode(seed + "=" * (-len(seed) % 8))
                        except (binascii.Error, ValueError):
                            self.fail("not a base32 seed", *path, "mfa", "seed_base32")
        for name, table in (spec.get("tables") or {}).items():
            self.region(table.get("region"), *base, "tables", name, "region")
            if table.get("resource_policy"):
                self.document(table["resource_policy"], PolicyKind.RESOURCE, *base, "tables", name, "resource_policy")
            if table.get("range_key") and table["range_key"]["name"] == table["hash_key"]["name"]:
                self.fail("the range key cannot have the hash key's name", *base, "tables", name, "range_key")

    def policy_ref(self, alias: str, spec: dict[str, Any], ref: str, *path: Any) -> None:
        if ref.startswith("arn:"):
            parts = ref.split(":", 5)
            if managed_policy(ref) is not None:
                return
            if len(parts) < 6 or parts[2] != "iam" or not parts[5].startswith("policy/"):
                self.fail(f"not a policy ARN: {ref}", *path)
            elif parts[4] == "aws":
                self.fail(f"no AWS managed policy {ref} (docs/world-file.md lists them)", *path)
            return
        if ref not in (spec.get("policies") or {}):
            self.fail(f"no policy named {ref!r} is declared in account {alias}", *path)

    def organization(self) -> None:
        org = self.data.get("organization")
        if not org:
            return
        self.ref(org["management_account"], "organization", "management_account")
        policies = org.get("policies") or {}
        for name, spec in policies.items():
            kind = PolicyKind.SCP if spec["type"] == "SERVICE_CONTROL_POLICY" else PolicyKind.RCP
            path = ("organization", "policies", name, "document")
            text = self.document(spec["document"], kind, *path)
            if text is not None and len(text) > MAX_ORG_POLICY:
                self.fail(f"policy {name} exceeds 5,120 characters", *path)
        placed: dict[str, str] = {}

        def node(spec: dict[str, Any], path: tuple[Any, ...], depth: int) -> None:
            if depth > 5:
                self.fail("OUs nest at most 5 levels", *path)
                return
            for i, ref in enumerate(spec.get("accounts") or []):
                alias = self.ref(ref, *path, "accounts", i)
                if alias is None:
                    continue
                if alias in placed:
                    self.fail(f"account {ref} is placed twice (also in {placed[alias]})", *path, "accounts", i)
                placed.setdefault(alias, ".".join(map(str, path)))
            for i, name in enumerate(spec.get("policies") or []):
                if name not in policies and name not in BUILTIN_ORG_POLICIES:
                    self.fail(f"no organization policy named {name!r}", *path, "policies", i)
            for i, unit in enumerate(spec.get("units") or []):
                node(unit, (*path, "units", i), depth + 1)

        node(org.get("root") or {}, ("organization", "root"), 0)
        for i, unit in enumerate(org.get("units") or []):
            node(unit, ("organization", "units", i), 1)
        for i, ref in enumerate(org.get("delegated_admins") or []):
            self.ref(ref, "organization", "delegated_admins", i)

    def network(self) -> None:
        spec = self.data.get("network") or {}
        listeners: dict[tuple[str, int], str] = {}
        vpc_ids: dict[str, str] = {}
        endpoint_ids: dict[str, str] = {}

        def listen(text: str, *path: Any) -> None:
            host, _, port = str(text).rpartition(":")
            host = host.strip("[]") or "0.0.0.0"
            try:
                ipaddress.ip_address(host)
            except ValueError:
                self.fail(f"{host!r} is not an IP address: give the address to listen on (e.g. 127.0.0.1:8001)",
                          *path)
                return
            if not 1 <= int(port) <= 65535:
                self.fail(f"port {port} is outside 1-65535", *path)
                return
            key = (str(ipaddress.ip_address(host)), int(port))
            if key in listeners:
                self.fail(f"listener {text} is also declared at {listeners[key]}", *path)
            listeners.setdefault(key, ".".join(map(str, path)))

        for alias, vpc in (spec.get("vpcs") or {}).items():
            base = ("network", "vpcs", alias)
            self.ref(vpc["account"], *base, "account")
            self.region(vpc.get("region"), *base, "region")
            if vpc["id"] in vpc_ids:
                self.fail(f"VPC id {vpc['id']} is also used by {vpc_ids[vpc['id']]}", *base, "id")
            vpc_ids.setdefault(vpc["id"], alias)
            for i, block in enumerate(vpc["cidr_blocks"]):
                try:
                    network = ipaddress.ip_network(block, strict=False)
                except ValueError as exc:
                    self.fail(f"not a CIDR block: {exc}", *base, "cidr_blocks", i)
                    continue
                try:
                    ipaddress.ip_network(block)
                except ValueError:
                    self.fail(f"{block} has host bits set: write {network.with_prefixlen}", *base, "cidr_blocks", i)
            for i, endpoint in enumerate(vpc.get("endpoints") or []):
                path = (*base, "endpoints", i)
                if endpoint["id"] in endpoint_ids:
                    self.fail(f"endpoint id {endpoint['id']} is also used in {endpoint_ids[endpoint['id']]}",
                              *path, "id")
                endpoint_ids.setdefault(endpoint["id"], ".".join(map(str, path)))
                listen(endpoint["listen"], *path, "listen")
                if endpoint.get("policy"):
                    self.document(endpoint["policy"], PolicyKind.VPCE, *path, "policy")
        for i, public in enumerate(spec.get("public_listeners") or []):
            listen(public["listen"], "network", "public_listeners", i, "listen")


def problems(world: Any) -> list[str]:
    """Every problem of a schema-valid world file, in file order."""
    found = _Checker(world).run()

    def line(text: str) -> int:
        parts = text.split(":", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    return sorted(dict.fromkeys(found), key=line)
