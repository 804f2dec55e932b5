"""Where a request came from, derived from the connection it arrived on.

The origin is a value: the peer address (ASGI ``scope["client"]``), the local address it dialled
(``scope["server"]``), whether TLS was used and, when the local address is a VPC endpoint's listener, the
endpoint, its VPC and its policy. The policy context takes its network keys from it:

- through an endpoint listener, from an address inside the endpoint's VPC CIDRs: ``aws:SourceVpce``,
  ``aws:SourceVpc``, ``aws:VpcSourceIp`` (and ``aws:VpceAccount``/``aws:VpceOrgID``/``aws:VpceOrgPaths``),
  no ``aws:SourceIp``; the endpoint policy applies (``vpce_policy``);
- through an endpoint listener from any other address: ``refused`` is set. The request never reaches an
  operation: the pipeline answers 403 AccessDeniedException and logs a spoofing attempt;
- through an endpoint listener from an address of the server's own host (any local interface address,
  loopback, the endpoint address itself: ``server/host_addresses.py``): refused as well, even when the
  address lies inside the VPC's CIDRs, because the host is not inside any VPC -- unless the world file
  sets ``allow_host_processes: true`` on that VPC;
- through any other (public) listener: ``aws:SourceIp`` only.

The endpoint owner's organization (``vpce_org_id``/``vpce_org_paths``) is taken when the resolver is
built, at server start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from perimeterdb.server.host_addresses import HostAddresses
from perimeterdb.world.network import NetworkWorld

log = logging.getLogger("perimeterdb.network")


@dataclass(frozen=True, slots=True)
class NetworkOrigin:
    source_ip: str
    local_ip: str
    local_port: int
    secure: bool = False
    vpc_id: str | None = None
    vpce_id: str | None = None
    vpce_account: str | None = None
    vpce_policy: str | None = None  # the endpoint policy document (JSON text), None = allow everything
    vpce_org_id: str | None = None
    vpce_org_paths: tuple[str, ...] = ()
    vpc_region: str | None = None
    refused: str | None = None  # why the connection may not be served (endpoint reached from outside)
    host_process: bool = False  # refused because the source is an address of the server's own host

    @property
    def via_endpoint(self) -> bool:
        return self.vpce_id is not None


def _addresses(scope: dict[str, Any]) -> tuple[str, str, int, bool]:
    client = scope.get("client") or ("0.0.0.0", 0)
    server = scope.get("server") or ("0.0.0.0", 0)
    source = str(client[0])
    if source.startswith("::ffff:"):
        source = source[len("::ffff:") :]
    return source, str(server[0]), int(server[1] or 0), scope.get("scheme") == "https"


class OriginResolver:
    """``scope -> NetworkOrigin`` for a configured network world (use as ``PerimeterApp.origin_for``)."""

    def __init__(
        self,
        world: NetworkWorld,
        org_of: dict[str, tuple[str, tuple[str, ...]]] | None = None,
        host: HostAddresses | None = None,
    ) -> None:
        self.world = world
        self.org_of = org_of or {}  # account -> (org id, org paths), for aws:VpceOrgID / VpceOrgPaths
        self._known: dict[tuple[str, str, int, bool], NetworkOrigin] = {}
        # The host's own addresses matter only where there are endpoints to refuse them on.
        self.host = host if host is not None else (HostAddresses() if world.endpoints else None)
        self._host_version = self.host.version if self.host is not None else 0

    def __call__(self, scope: dict) -> NetworkOrigin:  # type: ignore[type-arg]
        # The origin depends only on the addresses, so an accepted one is remembered (a refused one is
        # resolved, and logged, every time). The world's network is fixed for the life of the process.
        addresses = _addresses(scope)
        if self.host is not None:  # the host's addresses changed: what was inside a VPC may be no more
            self.host.maybe_refresh()
            if self.host.version != self._host_version:
                self._host_version = self.host.version
                self._known.clear()
        known = self._known.get(addresses)
        if known is not None:
            return known
        origin = self._resolve(*addresses)
        if origin.refused is None:
            if len(self._known) > 4096:
                self._known.clear()
            self._known[addresses] = origin
        return origin

    def _resolve(self, source: str, local: str, port: int, secure: bool) -> NetworkOrigin:
        endpoint = self.world.endpoint_at(local, port) if self.world.endpoints else None
        if endpoint is None:
            return NetworkOrigin(source_ip=source, local_ip=local, local_port=port, secure=secure)
        vpc = self.world.vpc(endpoint.vpc_id)
        if vpc is None or not vpc.contains(source):
            reason = (
                f"connection to VPC endpoint {endpoint.id} ({local}:{port}) from {source}, "
                f"which is outside {endpoint.vpc_id} {list(vpc.cidr_blocks) if vpc else []}"
            )
            log.warning("SPOOFING ATTEMPT refused: %s", reason)
            return self._refused(source, local, port, secure, endpoint.id, endpoint.vpc_id, reason)
        if not vpc.allow_host_processes and self.host is not None and source in self.host:
            reason = (
                f"connection to VPC endpoint {endpoint.id} ({local}:{port}) from {source}, an address of the "
                f"server's own host, which is not inside {vpc.id} (the VPC does not set allow_host_processes)"
            )
            log.warning("host process refused: %s", reason)
            return self._refused(source, local, port, secure, endpoint.id, endpoint.vpc_id, reason, host=True)
        org_id, org_paths = self.org_of.get(vpc.account, (None, ()))
        return NetworkOrigin(
            source_ip=source,
            local_ip=local,
            local_port=port,
            secure=secure,
            vpc_id=vpc.id,
            vpce_id=endpoint.id,
            vpce_account=vpc.account,
            vpce_policy=endpoint.policy,
            vpce_org_id=org_id,
            vpce_org_paths=org_paths,
            vpc_region=vpc.region,
        )

    @staticmethod
    def _refused(
        source: str,
        local: str,
        port: int,
        secure: bool,
        vpce_id: str,
        vpc_id: str,
        reason: str,
        *,
        host: bool = False,
    ) -> NetworkOrigin:
        return NetworkOrigin(
            source_ip=source,
            local_ip=local,
            local_port=port,
            secure=secure,
            vpce_id=vpce_id,
            vpc_id=vpc_id,
            refused=reason,
            host_process=host,
        )


async def refuse(rt: Any, req: Any, request_id: str) -> Any:
    """The answer to a request on an endpoint listener from outside the endpoint's VPC: 403, audited."""
    from perimeterdb import errors
    from perimeterdb.server import wire

    origin = req.origin
    error = errors.access_denied(
        f"The request was refused: VPC endpoint {origin.vpce_id} only accepts connections from inside "
        f"{origin.vpc_id}, and this one came from {origin.source_ip}."
    )
    error.status = 403
    audit = getattr(rt, "audit", None)
    if audit is not None:
        target = req.header("x-amz-target") or ""
        await audit.record(
            event_source="network",
            event_name=target.partition(".")[2] or "Request",
            region=getattr(rt.settings, "default_region", "us-east-1"),
            request_id=request_id,
            principal=None,
            origin=origin,
            request_parameters=None,
            error=error,
            user_agent=req.header("user-agent"),
            extra={"spoofingAttempt": True, "refused": origin.refused, "hostProcess": origin.host_process},
        )
    return wire.json_error(error, request_id, content_type="application/x-amz-json-1.0")


def public_origins() -> OriginResolver:
    """The resolver when no VPC endpoints are configured: every listener is public. It still remembers
    one origin per address: the authorizer remembers decisions per origin object."""
    return OriginResolver(NetworkWorld())
