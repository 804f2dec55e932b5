"""The AssumeRole decision: the role's trust policy and the caller's own policies, through ``decide``.

The trust policy is the resource policy of the request (kind TRUST), so the policy engine applies AWS's
rule: the trust policy must allow the caller explicitly; if it names the caller (user, role, session ARN
or ``*``) in the same account that is enough, if it names only the account, or the call is cross-account,
the caller's identity policies (and boundary and session policies) must allow ``sts:AssumeRole`` too.

SCPs are not applied here yet: the server's Authorizer takes no resource policy argument (see
docs/identity.md, "Open points").
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from perimeterdb import policy
from perimeterdb.auth.principal import Principal
from perimeterdb.iam import errors
from perimeterdb.iam.call import QueryCall
from perimeterdb.policy import CompiledPolicy, PolicyKind, PolicyRef, PolicySet
from perimeterdb.world.identities import Record, StoredPolicy

_compiled: dict[tuple[str, str, str], CompiledPolicy] = {}


def _compile(kind: PolicyKind, stored: StoredPolicy) -> CompiledPolicy:
    digest = hashlib.blake2b(stored.document.encode(), digest_size=16).hexdigest()
    key = (kind.value, stored.id, digest)
    found = _compiled.get(key)
    if found is None:
        arn = stored.id if stored.id.startswith("arn:") else None
        found = policy.compile_policy(
            policy.parse_policy(stored.document, kind), PolicyRef(kind.value, stored.id, None, arn)
        )
        if len(_compiled) > 10_000:
            _compiled.clear()
        _compiled[key] = found
    return found


def principal_info(p: Principal, now: datetime) -> policy.PrincipalInfo:
    return policy.PrincipalInfo(
        arn=p.arn,
        principal_arn=p.principal_arn,
        account=p.account,
        type=p.kind,
        userid=p.userid,
        username=p.username,
        tags=p.tags,
        mfa_present=p.mfa_authenticated,
        mfa_age_seconds=int(now.timestamp() - p.mfa_auth_time) if p.mfa_auth_time else None,
        token_issue_time=datetime.fromtimestamp(p.token_issue_time, UTC) if p.token_issue_time else None,
        source_identity=p.source_identity,
    )


def _engine_origin(origin: Any) -> policy.NetworkOrigin:
    if origin is None:
        return policy.NetworkOrigin(source_ip="127.0.0.1", secure_transport=False)
    return policy.NetworkOrigin(
        source_ip=origin.source_ip,
        secure_transport=bool(getattr(origin, "secure", False)),
        vpc_id=getattr(origin, "vpc_id", None),
        vpce_id=getattr(origin, "vpce_id", None),
        vpce_account=getattr(origin, "vpce_account", None),
    )


async def check_trust(
    call: QueryCall,
    role: Record,
    action: str,
    *,
    extra_keys: dict[str, object],
    request_tags: dict[str, str] | None,
    tag_keys: list[str] | None,
) -> None:
    """Raise AccessDenied unless the trust policy (and, where needed, the caller's policies) allow."""
    p = call.principal
    now = datetime.fromtimestamp(call.now, UTC)
    found = await call.store.policies_for(p)
    policies = PolicySet(
        identity=tuple(_compile(PolicyKind.IDENTITY, s) for s in found.identity),
        boundary=_compile(PolicyKind.BOUNDARY, found.boundary) if found.boundary is not None else None,
        session=tuple(_compile(PolicyKind.SESSION, s) for s in found.session)
        if found.session is not None
        else None,
        resource=_compile(PolicyKind.TRUST, StoredPolicy(role["arn"], role["trust"])),
    )
    info = principal_info(p, now)
    keys = policy.standard_keys(
        info,
        origin=_engine_origin(call.origin),
        now=now,
        region=call.region,
        resource_account=role["account"],
        request_tags=request_tags,
        tag_keys=tag_keys,
        extra=extra_keys,
    )
    ctx = policy.RequestContext(info, action, role["arn"], role["account"], keys)
    response = policy.decide(ctx, policies)
    if not response.allowed:
        raise errors.access_denied(policy.access_denied_message(ctx, response))
