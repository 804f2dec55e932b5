"""The network part of the world: VPCs, their VPC endpoints (each with the listener the server binds for
it) and the public listeners. Values, plus their one storage row.

A VPC is ``vpc-…`` in an account and a region with one or more CIDR blocks. An endpoint is ``vpce-…`` in a
VPC, for a service (``dynamodb``), with an optional endpoint policy (a JSON document; absent means AWS's
default "allow everything" policy) and the address ``HOST:PORT`` the server listens on for it. A request
that arrives on an endpoint's listener from an address inside its VPC's CIDRs is "through the endpoint";
from anywhere else it is refused (see ``server/network.py``). The server's own host is not inside any VPC:
a connection from one of its addresses is refused too, unless the VPC says ``allow_host_processes``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import orjson

from perimeterdb.storage.engine import Decision, Put, RowKey, StorageEngine

ROW = RowKey("meta:network", b"", b"world", b"")


@dataclass(frozen=True, slots=True)
class Tls:
    cert: str
    key: str


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int
    tls: Tls | None = None

    @classmethod
    def parse(cls, text: str, tls: Tls | None = None) -> ListenAddress:
        host, sep, port = str(text).rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"a listener is HOST:PORT, not {text!r}")
        return cls(host.strip("[]") or "0.0.0.0", int(port), tls)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def matches(self, host: str, port: int) -> bool:
        if port != self.port:
            return False
        return self.host in ("0.0.0.0", "::") or ipaddress.ip_address(host) == ipaddress.ip_address(self.host)


@dataclass(frozen=True, slots=True)
class Vpc:
    id: str
    account: str
    region: str
    cidr_blocks: tuple[str, ...]
    name: str | None = None
    allow_host_processes: bool = False  # processes on the server's host count as inside this VPC

    def contains(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in ipaddress.ip_network(block, strict=False) for block in self.cidr_blocks)


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    vpc_id: str
    service: str
    listen: ListenAddress
    policy: str | None = None  # the endpoint policy document (JSON text); None = allow everything


@dataclass(frozen=True, slots=True)
class NetworkWorld:
    vpcs: tuple[Vpc, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    public_listeners: tuple[ListenAddress, ...] = ()
    _vpc_index: dict[str, Vpc] = field(default_factory=dict, compare=False, repr=False)

    def vpc(self, vpc_id: str) -> Vpc | None:
        if not self._vpc_index and self.vpcs:
            self._vpc_index.update({v.id: v for v in self.vpcs})
        return self._vpc_index.get(vpc_id)

    def endpoint_at(self, host: str, port: int) -> Endpoint | None:
        exact = [e for e in self.endpoints if e.listen.matches(host, port) and e.listen.host == host]
        if exact:
            return exact[0]
        for e in self.endpoints:
            if e.listen.matches(host, port):
                return e
        return None

    def listeners(self) -> list[ListenAddress]:
        """Every address to bind besides ``--listen``: each endpoint's, then the public ones."""
        return [e.listen for e in self.endpoints] + list(self.public_listeners)

    # --- JSON ----------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        def listen(a: ListenAddress) -> dict[str, Any]:
            out: dict[str, Any] = {"listen": str(a)}
            if a.tls:
                out["tls"] = {"cert": a.tls.cert, "key": a.tls.key}
            return out

        return {
            "vpcs": [
                {"id": v.id, "account": v.account, "region": v.region, "cidr_blocks": list(v.cidr_blocks),
                 "name": v.name, **({"allow_host_processes": True} if v.allow_host_processes else {})}
                for v in self.vpcs
            ],
            "endpoints": [
                {"id": e.id, "vpc": e.vpc_id, "service": e.service, "policy": e.policy, **listen(e.listen)}
                for e in self.endpoints
            ],
            "public_listeners": [listen(a) for a in self.public_listeners],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkWorld:
        def tls(d: dict[str, Any]) -> Tls | None:
            t = d.get("tls")
            return Tls(t["cert"], t["key"]) if t else None

        vpcs = tuple(
            Vpc(v["id"], v["account"], v["region"], tuple(v["cidr_blocks"]), v.get("name"),
                bool(v.get("allow_host_processes", False)))
            for v in data.get("vpcs", [])
        )
        endpoints = tuple(
            Endpoint(e["id"], e["vpc"], e.get("service", "dynamodb"), ListenAddress.parse(e["listen"], tls(e)),
                     e.get("policy"))
            for e in data.get("endpoints", [])
        )
        public = tuple(ListenAddress.parse(p["listen"], tls(p)) for p in data.get("public_listeners", []))
        return cls(vpcs, endpoints, public)


async def load_network(engine: StorageEngine) -> NetworkWorld:
    raw = await engine.get(ROW)
    return NetworkWorld.from_json(orjson.loads(raw)) if raw is not None else NetworkWorld()


async def save_network(engine: StorageEngine, world: NetworkWorld) -> bool:
    """Store the network world; True when it changed."""
    value = orjson.dumps(world.to_json(), option=orjson.OPT_SORT_KEYS)

    def decide(values: list[bytes | None]) -> Decision:
        if values[0] == value:
            return Decision((), False)
        return Decision([Put(ROW, value)], True)

    return bool(await engine.atomic([ROW], decide))
