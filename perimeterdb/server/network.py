"""Where a request came from, derived from the connection it arrived on.

The origin is a value: the peer address, the listener address it dialled, whether TLS was used and, once
VPC endpoints are configured, the endpoint and VPC of that listener. The policy context takes its network
keys (``aws:SourceIp`` or ``aws:SourceVpc``/``aws:SourceVpce``/``aws:VpcSourceIp``) from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NetworkOrigin:
    source_ip: str
    local_ip: str
    local_port: int
    secure: bool = False
    vpc_id: str | None = None
    vpce_id: str | None = None
    vpce_account: str | None = None

    @property
    def via_endpoint(self) -> bool:
        return self.vpce_id is not None


def origin_from_scope(scope: dict) -> NetworkOrigin:  # type: ignore[type-arg]
    client = scope.get("client") or ("0.0.0.0", 0)
    server = scope.get("server") or ("0.0.0.0", 0)
    return NetworkOrigin(
        source_ip=str(client[0]),
        local_ip=str(server[0]),
        local_port=int(server[1] or 0),
        secure=scope.get("scheme") == "https",
    )
