"""The AssumeRole decision: the role's trust policy and the caller's own policies, through ``decide``.

The trust policy is the resource policy of the request (kind TRUST), so the policy engine applies AWS's
rule: the trust policy must allow the caller explicitly; if it names the caller (user, role, session ARN
or ``*``) in the same account that is enough, if it names only the account, or the call is cross-account,
the caller's identity policies (and boundary and session policies) must allow ``sts:AssumeRole`` too.

The server's Authorizer makes the decision, so SCPs and RCPs apply to AssumeRole as on AWS.
"""

from __future__ import annotations

from perimeterdb.errors import ApiError
from perimeterdb.iam import errors
from perimeterdb.iam.call import QueryCall
from perimeterdb.policy import PolicyKind
from perimeterdb.world.identities import Record


async def check_trust(
    call: QueryCall,
    role: Record,
    action: str,
    *,
    extra_keys: dict[str, object],
    request_tags: dict[str, str] | None,
    tag_keys: list[str] | None,
) -> None:
    """Raise AccessDenied unless the trust policy (and, where needed, the caller's policies) allow.

    The decision is the server's Authorizer's, with the trust policy as the request's resource policy, so
    SCPs, RCPs, the VPC endpoint policy and the organization keys apply to AssumeRole like to any call.
    """
    if call.authorizer is None:
        raise errors.access_denied("no authorizer")
    try:
        await call.authorizer.authorize(
            call.principal,
            action,
            role["arn"],
            call.origin,
            call.region,
            None,
            extra_keys=extra_keys,
            request_tags=request_tags,
            tag_keys=tag_keys,
            resource_policy=(PolicyKind.TRUST, role["arn"], role["trust"]),
        )
    except ApiError as denied:  # STS spells the code AccessDenied (HTTP 403)
        raise errors.access_denied(denied.message) from None
