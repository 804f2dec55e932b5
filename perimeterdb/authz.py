"""Authorization of one (action, resource) pair for an authenticated principal.

This is where the server meets the policy engine (``perimeterdb.policy``): it gathers the policies that
apply to the principal and the resource, builds the request context and asks for a decision.
"""

from __future__ import annotations

from typing import Any

from perimeterdb.auth.principal import Principal
from perimeterdb.server.network import NetworkOrigin


class Authorizer:
    """Until the policy engine is wired in, every principal is the bootstrap administrator: allow."""

    async def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str,
        origin: NetworkOrigin,
        region: str,
        call: Any = None,
    ) -> None:
        return None
