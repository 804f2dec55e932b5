"""The sealed break-glass guardrail, enforced on every mutating IAM call whatever the SCPs say.

``QueryCall.authorize`` runs ``check`` before the ordinary authorization of each IAM action. When the
action creates, deletes or changes a role whose name is sealed (``world/sealed.py``; in any letter case and
under any path), or changes a customer-managed policy attached to such a role in the caller's account, the
request is decided by the policy engine against the guardrail documents, evaluated as an SCP level of their
own (next to an allow-all, as FullAWSAccess stands next to a deny-list SCP). So, exactly as for an SCP:

- principals of the management account and service-linked roles are not subject to it;
- the platform principals are the statements' ``ArnNotLike aws:PrincipalArn`` exception;
- every other principal of every account (root included) gets IAM's AccessDenied, "with an explicit deny
  in a service control policy", and the decision names its determining statement (kind ``guardrail``,
  sid ``ProtectSealedBreakGlassRoles``).

IAM role names are unique regardless of case, so a name that differs only in case (or path) is evaluated
as the sealed role it collides with; the message shows the resource the caller asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from perimeterdb import policy
from perimeterdb.auth.principal import Principal
from perimeterdb.authz import principal_info
from perimeterdb.iam import errors, guardrail_people
from perimeterdb.policy import CompiledPolicy, PolicyKind, PolicyRef, PolicySet, Response
from perimeterdb.world.sealed import (
    GUARDED_ACTIONS,
    GUARDRAIL_POLICY_ID,
    POLICY_ACTIONS,
    Registry,
    guardrail_documents,
    load_registry,
    role_name_of,
)

KIND = "guardrail"
_EVERYTHING = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
# The guardrail decides alone: everything else allows (the ordinary authorization runs after it).
_ALLOW_ALL = policy.load_policy(_EVERYTHING, PolicyKind.SCP, PolicyRef(KIND, "perimeterdb-guardrail-allow-all"))
_ALLOW_IDENTITY = policy.load_policy(
    _EVERYTHING, PolicyKind.IDENTITY, PolicyRef(KIND, "perimeterdb-guardrail-allow-all")
)
_compiled: dict[str, tuple[CompiledPolicy, ...]] = {}


@dataclass(frozen=True, slots=True)
class GuardrailDecision:
    """What the audit record lists for a request the guardrail decided (the shape of ``authz.Decided``)."""

    action: str
    resource: str
    response: Response


def compiled_guardrail(registry: Registry, policy_arns: tuple[str, ...] = ()) -> tuple[CompiledPolicy, ...]:
    """The guardrail documents, compiled once per content."""
    documents = guardrail_documents(registry, policy_arns)
    key = json.dumps(documents, sort_keys=True)
    found = _compiled.get(key)
    if found is None:
        found = tuple(
            policy.load_policy(
                doc, PolicyKind.SCP, PolicyRef(KIND, GUARDRAIL_POLICY_ID if i == 0 else f"{GUARDRAIL_POLICY_ID}-{i + 1}")
            )
            for i, doc in enumerate(documents)
        )
        if len(_compiled) > 256:
            _compiled.clear()
        _compiled[key] = found
    return found


def decide_guardrail(
    registry: Registry,
    principal: policy.PrincipalInfo,
    action: str,
    resource: str,
    *,
    in_management_account: bool,
    policy_arns: tuple[str, ...] = (),
    region: str = "us-east-1",
    source_ip: str = "127.0.0.1",
    documents: tuple[CompiledPolicy, ...] | None = None,
) -> tuple[policy.RequestContext, Response]:
    """Decide one IAM request against the guardrail alone (pure): EXPLICIT_DENY by a guardrail statement,
    or ALLOW (the guardrail has no objection; the request's own policies are decided separately)."""
    keys = policy.standard_keys(
        principal,
        origin=policy.NetworkOrigin(source_ip=source_ip),
        now=datetime.now(UTC),
        region=region,
        resource_account=principal.account,
    )
    ctx = policy.RequestContext(principal, action, resource, principal.account, keys)
    # ``documents``: the break-glass people's guardrail (iam/guardrail_people.py) instead of the roles'.
    levels = ((*(documents if documents is not None else compiled_guardrail(registry, policy_arns)), _ALLOW_ALL),)
    response = policy.decide(
        ctx,
        PolicySet(
            identity=(_ALLOW_IDENTITY,),
            scp_levels=levels,
            principal_in_management_account=in_management_account,
            principal_in_org=True,
            resource_in_org=True,
            same_organization=True,
        ),
    )
    return ctx, response


async def _policy_target(store: Any, registry: Registry, account: str, policy_arn: str) -> bool:
    """Is this customer-managed policy attached to (or the boundary of) a protected role of ``account``?"""
    for role in (*registry.roles, *registry.platform_roles()):
        record = await store.get_role(account, role.name)
        if record is not None and (policy_arn in record.get("attached", []) or record.get("boundary") == policy_arn):
            return True
    return False


async def check(
    principal: Principal,
    action: str,
    resource: str,
    store: Any,
    organizations: Any = None,
    *,
    region: str = "us-east-1",
    source_ip: str = "127.0.0.1",
) -> Response | None:
    """Raise AccessDenied when the guardrail denies this IAM request; the Response when it was decided
    by the guardrail (allowed: a platform principal or the management account), None when it does not
    apply."""
    found = await evaluate(principal, action, resource, store, organizations, region=region, source_ip=source_ip)
    if found is None:
        return None
    raise_if_denied(*found)
    return found[1]


def raise_if_denied(shown: policy.RequestContext, response: Response) -> None:
    """IAM's AccessDenied, AWS's message for an SCP's explicit deny, when the guardrail denied."""
    if response.decision is policy.Decision.EXPLICIT_DENY:
        raise errors.access_denied(policy.access_denied_message(shown, response))


async def evaluate(
    principal: Principal,
    action: str,
    resource: str,
    store: Any,
    organizations: Any = None,
    *,
    region: str = "us-east-1",
    source_ip: str = "127.0.0.1",
) -> tuple[policy.RequestContext, Response] | None:
    """The guardrail's decision on this IAM request (with the context as the caller asked it, for the
    message), or None when it does not apply (not a guarded action, or nothing sealed is touched)."""
    if action not in GUARDED_ACTIONS and action not in guardrail_people.ACTIONS:
        return None
    registry = await load_registry(store.engine)
    if registry.empty:
        return None
    target = resource
    policy_arns: tuple[str, ...] = ()
    documents: tuple[CompiledPolicy, ...] | None = None
    if action in guardrail_people.ACTIONS:  # approvers groups and break-glass users
        people = await guardrail_people.protected_target(store, registry, principal.account, action, resource)
        if people is None:
            return None
        target, documents = people
    elif action in POLICY_ACTIONS:
        if not await _policy_target(store, registry, principal.account, resource):
            return None
        policy_arns = (resource,)
    else:
        name = role_name_of(resource)
        role = registry.protected(name) if name else None
        if role is None:
            return None
        target = role.arn(principal.account)  # the sealed role this name collides with
    placement = await organizations.placement(principal.account) if organizations is not None else None
    info = principal_info(principal)
    ctx, response = decide_guardrail(
        registry,
        info,
        action,
        target,
        in_management_account=bool(placement is not None and placement.is_management),
        policy_arns=policy_arns,
        region=region,
        source_ip=source_ip,
        documents=documents,
    )
    return policy.RequestContext(info, action, resource, principal.account, ctx.keys), response

