"""Authorization of one (action, resource) pair: the server's meeting point with the policy engine.

For each pair the authorizer gathers what applies, builds the request context and asks
``perimeterdb.policy.decide`` for a decision:

- the principal's identity policies, permissions boundary and session policies (identity store);
- the resource's policy (a DynamoDB table's, which also covers its indexes and streams) and tags;
- the SCPs of the principal's account and the RCPs of the resource's account, through the OU tree, and
  whether either account is the organization's management account (organization view);
- the VPC endpoint policy when the request came through an endpoint (network origin).

Every policy document is compiled once (cached by kind, id and content), through
``policy.stored.compile_stored``: a stored document that cannot be compiled becomes a ``BrokenPolicy`` that
denies everything and names itself in the decision (never an exception, never a 500). A broken table policy
does not stop its removal (``REPAIR_ACTIONS``, docs/policy-engine.md). The principal's identity side
is cached per principal and dropped when the identity store's generation moves. A denial raises
AccessDeniedException with AWS's message, rendered from the decision itself.

Decisions are memoised. The engine is a pure function of the policies, the principal, the action, the
resource and the condition keys it reads, and every key read goes through ``ContextKeys.lookup``. So the
first decision for (principal, origin, action, resource, region) records the keys the evaluation looked up
with their values, and a later request reuses the ``Response`` only while those keys have the same values
(``aws:CurrentTime`` read by a policy therefore expires the entry every second). Any metadata change
(policies, tables, organizations, network: every ``meta:`` write) bumps the storage generation, and
``Runtime.sync_caches`` then calls ``invalidate()``, which retires every entry.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from perimeterdb import errors, policy
from perimeterdb.auth.principal import Principal
from perimeterdb.policy import CompiledPolicy, PolicyKind, PolicyRef, PolicySet, Response
from perimeterdb.policy.context import ContextKeys, iso_second, normalise_value
from perimeterdb.policy.stored import BrokenPolicy, compile_stored
from perimeterdb.server.network import NetworkOrigin

log = logging.getLogger(__name__)

# Requests that remove a table's resource policy: a broken one does not stop them (decide's repair rule).
REPAIR_ACTIONS = frozenset({"dynamodb:DeleteResourcePolicy", "dynamodb:DeleteTable"})


def principal_info(principal: Principal, place: Any = None) -> policy.PrincipalInfo:
    """What the policy engine knows of the caller; ``place`` is its organization placement, if any."""
    return policy.PrincipalInfo(
        arn=principal.arn,
        principal_arn=principal.principal_arn,
        account=principal.account,
        type=principal.kind,
        userid=principal.userid,
        username=principal.username,
        tags=principal.tags,
        is_service_linked_role=principal.principal_arn.split(":", 5)[-1].startswith("role/aws-service-role/"),
        mfa_present=principal.mfa_authenticated,
        token_issue_time=datetime.fromtimestamp(principal.token_issue_time, UTC)
        if principal.token_issue_time
        else None,
        source_identity=principal.source_identity,
        org_id=place.org_id if place else None,
        org_paths=tuple(place.org_paths) if place else (),
    )


class _Stored(Protocol):
    id: str
    document: str


@dataclass(frozen=True, slots=True)
class Decided:
    """One authorization: what was asked and the engine's answer, for the audit log."""

    action: str
    resource: str
    response: Response


@dataclass(frozen=True, slots=True)
class _IdentitySide:
    generation: int
    identity: tuple[CompiledPolicy, ...]
    boundary: CompiledPolicy | None
    session: tuple[CompiledPolicy, ...] | None


# Condition keys a request computes lazily (DynamoDB's ``dynamodb:*`` keys need the table's schema): asked
# for only when a policy reads one of them. They may not shadow global keys, which start with "aws:".
LazyKeys = Callable[[], Awaitable[Mapping[str, object]]]


class _RecordingKeys(ContextKeys):
    """The request's keys, remembering every lookup the evaluation makes (and what it found)."""

    __slots__ = ("seen",)

    def lookup(self, lower_key: str) -> Any:
        value = self._data.get(lower_key)
        self.seen[lower_key] = value
        return value


@dataclass(slots=True)
class _Memo:
    """One remembered decision and what it depended on."""

    principal: Principal
    origin: NetworkOrigin
    epoch: int
    info: policy.PrincipalInfo
    resource_account: str | None
    base: ContextKeys
    depends_on: tuple[tuple[str, Any], ...]  # (lower-case key, value found) of every lookup
    needs_lazy: bool  # a looked-up key lies outside the global "aws:" keys
    response: Response
    decided: Decided  # what authorize() records, the same for every reuse


def _arn_account(arn: str) -> str | None:
    """The owning account of a resource ARN; ``None`` for AWS-owned resources (``arn:aws:iam::aws:…``)."""
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4].isdigit() else None


def _table_of(arn: str) -> tuple[str, str, str] | None:
    """(account, region, table) of a DynamoDB table, index or stream ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "dynamodb" or not parts[5].startswith("table/"):
        return None
    return parts[4], parts[3], parts[5][len("table/") :].split("/", 1)[0]


class Authorizer:
    def __init__(self, identities: Any, catalog: Any, organizations: Any = None) -> None:
        self.identities = identities
        self.catalog = catalog
        self.organizations = organizations
        self._compiled: dict[tuple[str, str, str], CompiledPolicy] = {}
        self._principals: dict[tuple[Any, ...], _IdentitySide] = {}
        self._static: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}
        self._tables: dict[str, tuple[Any, CompiledPolicy | None, dict[str, str] | None]] = {}
        self._memo: dict[tuple[int, int, str, str, str], _Memo] = {}
        self.epoch = 0

    def invalidate(self) -> None:
        """Metadata changed somewhere: no remembered decision may be reused."""
        self.epoch += 1
        self._memo.clear()

    # --- compilation and caches --------------------------------------------------------------------------

    def compiled(
        self, kind: PolicyKind, policy_id: str, document: str, *, name: str | None = None
    ) -> CompiledPolicy:
        digest = hashlib.blake2b(document.encode(), digest_size=16).hexdigest()
        key = (kind.value, policy_id, digest)
        found = self._compiled.get(key)
        if found is None:
            arn = policy_id if policy_id.startswith("arn:") else None
            found = compile_stored(document, kind, PolicyRef(kind.value, policy_id, name, arn))
            if isinstance(found, BrokenPolicy):  # logged once per document (the cache keeps it)
                log.error("%s", found.error)
            if len(self._compiled) > 50_000:
                self._compiled.clear()
            self._compiled[key] = found
        return found

    def _compile_all(self, kind: PolicyKind, stored: tuple[_Stored, ...]) -> tuple[CompiledPolicy, ...]:
        return tuple(self.compiled(kind, s.id, s.document) for s in stored)

    async def _identity_side(self, principal: Principal) -> _IdentitySide:
        found = await self.identities.policies_for(principal)
        key = (
            principal.arn,
            principal.principal_arn,
            principal.session_policies,
            principal.session_policy_arns,
        )
        cached = self._principals.get(key)
        if cached is not None and cached.generation == found.generation:
            return cached
        side = _IdentitySide(
            found.generation,
            self._compile_all(PolicyKind.IDENTITY, found.identity),
            self.compiled(PolicyKind.BOUNDARY, found.boundary.id, found.boundary.document)
            if found.boundary is not None
            else None,
            self._compile_all(PolicyKind.SESSION, found.session) if found.session is not None else None,
        )
        if len(self._principals) > 10_000:
            self._principals.clear()
        self._principals[key] = side
        return side

    # --- the decision -------------------------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        origin: NetworkOrigin,
        region: str,
        *,
        extra_keys: Mapping[str, object] | LazyKeys | None = None,
        request_tags: dict[str, str] | None = None,
        tag_keys: list[str] | None = None,
        resource_policy: tuple[PolicyKind, str, str] | None = None,
        resource_tags: dict[str, str] | None = None,
    ) -> tuple[policy.RequestContext, Response]:
        """Decide one request. ``resource_policy`` (kind, id, document) names the resource's policy when
        the resource is not a table, e.g. a role's trust policy for ``sts:AssumeRole``. ``extra_keys`` may
        be a coroutine function giving the keys, called only when a policy reads a non-global key."""
        now = time.time()
        memo_key: tuple[int, int, str, str, str] | None = None
        if resource_policy is None and resource_tags is None and request_tags is None and tag_keys is None:
            memo_key = (id(principal), id(origin), action, resource, region)
            memo, extra_keys = await self._recall(memo_key, principal, origin, now, extra_keys)
            if memo is not None:
                return self._remembered_context(memo, principal, now, extra_keys), memo.response
        epoch = self.epoch
        if callable(extra_keys):
            extra_keys = dict(await extra_keys())
        side = await self._identity_side(principal)
        resource_account = _arn_account(resource) or (principal.account if resource == "*" else None)
        compiled_resource_policy: CompiledPolicy | None = None
        table_ref = _table_of(resource)
        if resource_policy is not None:
            compiled_resource_policy = self.compiled(*resource_policy)
        if table_ref is not None:
            table = await self.catalog.find(*table_ref)
            if table is not None:
                table_policy, table_tags = self._table_facts(table)
                compiled_resource_policy = table_policy or compiled_resource_policy
                resource_tags = table_tags or resource_tags
        principal_place = await self._placement(principal.account)
        resource_place = await self._placement(resource_account) if resource_account else None
        info, base_keys, vpce_policy = self._static_context(
            principal, principal_place, origin, region, resource_account, resource_place, resource_tags
        )
        # Only the clock and the request's own keys change from one request to the next.
        dynamic = self._clock_keys(principal, now)
        for tag_key, tag_value in (request_tags or {}).items():
            dynamic[f"aws:RequestTag/{tag_key}"] = tag_value
        if tag_keys is not None:
            dynamic["aws:TagKeys"] = tuple(tag_keys)
        if extra_keys:
            dynamic.update(extra_keys)
        keys = base_keys.merged(dynamic)
        recording = None
        if memo_key is not None:
            recording = _RecordingKeys()
            recording._data = keys._data
            recording.seen = {}
            keys = recording
        ctx = policy.RequestContext(info, action, resource, resource_account, keys)
        in_org = principal_place is not None
        resource_in_org = resource_place is not None
        policies = PolicySet(
            identity=side.identity,
            boundary=side.boundary,
            session=side.session,
            resource=compiled_resource_policy,
            scp_levels=tuple(principal_place.scp_levels) if principal_place else (),
            rcp_levels=tuple(resource_place.rcp_levels) if resource_place else (),
            vpce=vpce_policy,
            principal_in_management_account=bool(principal_place and principal_place.is_management),
            resource_in_management_account=bool(resource_place and resource_place.is_management),
            principal_in_org=in_org,
            resource_in_org=resource_in_org,
            same_organization=bool(
                in_org and resource_in_org and principal_place.org_id == resource_place.org_id  # type: ignore[union-attr]
            ),
            # The table's own ARN only: removing a stream's policy does not repair the table's.
            repair=action in REPAIR_ACTIONS and table_ref is not None and resource.endswith(f":table/{table_ref[2]}"),
        )
        response = policy.decide(ctx, policies)
        if memo_key is not None and recording is not None:
            lazy_names = {k.lower() for k in extra_keys or ()}
            if not any(name.startswith("aws:") for name in lazy_names):
                if len(self._memo) > 20_000:
                    self._memo.clear()
                self._memo[memo_key] = _Memo(
                    principal,
                    origin,
                    epoch,
                    info,
                    resource_account,
                    base_keys,
                    tuple(recording.seen.items()),
                    any(not k.startswith("aws:") for k in recording.seen),
                    response,
                    Decided(action, resource, response),
                )
        return ctx, response

    def _remembered_context(
        self, memo: _Memo, principal: Principal, now: float, extra_keys: Any
    ) -> policy.RequestContext:
        """The context of a request answered from memory (for messages and the simulator): the remembered
        base with this request's clock and whichever of its own keys were computed."""
        dynamic = self._clock_keys(principal, now)
        dynamic.update(extra_keys if extra_keys is not None and not callable(extra_keys) else {})
        decided = memo.decided
        return policy.RequestContext(
            memo.info, decided.action, decided.resource, memo.resource_account, memo.base.merged(dynamic)
        )

    @staticmethod
    def _clock_keys(principal: Principal, now: float) -> dict[str, object]:
        keys: dict[str, object] = {"aws:CurrentTime": iso_second(int(now)), "aws:EpochTime": int(now)}
        if principal.mfa_authenticated and principal.mfa_auth_time:
            keys["aws:MultiFactorAuthAge"] = int(now - principal.mfa_auth_time)
        return keys

    async def _recall(
        self,
        memo_key: tuple[int, int, str, str, str],
        principal: Principal,
        origin: NetworkOrigin,
        now: float,
        extra_keys: Mapping[str, object] | LazyKeys | None,
    ) -> tuple[_Memo | None, Mapping[str, object] | LazyKeys | None]:
        """The remembered decision, if every key its evaluation read has the same value now; and the
        request's own keys, computed if they had to be (so that they are not computed twice)."""
        memo = self._memo.get(memo_key)
        if memo is None or memo.principal is not principal or memo.origin is not origin:
            return None, extra_keys
        if memo.epoch != self.epoch:
            return None, extra_keys
        # What this request's context would hold over the remembered base: the clock, and the request's
        # own keys (lazy ones only if the evaluation read a non-global key), as ContextKeys.merged has it.
        current = {name.lower(): value for name, value in self._clock_keys(principal, now).items()}
        if extra_keys is not None and (memo.needs_lazy or not callable(extra_keys)):
            if callable(extra_keys):
                extra_keys = dict(await extra_keys())
            for name, value in extra_keys.items():
                lower = name.lower()
                if lower.startswith("aws:"):
                    return None, extra_keys  # request keys standing in for global ones: decide afresh
                current[lower] = value
        for name, value in memo.depends_on:
            found = normalise_value(current[name]) if name in current else memo.base.lookup(name)
            if found != value:
                return None, extra_keys
        return memo, extra_keys

    def _table_facts(self, table: Any) -> tuple[CompiledPolicy | None, dict[str, str] | None]:
        """A table's compiled resource policy and its tags, once per stored description."""
        found = self._tables.get(table.arn)
        if found is not None and found[0] is table.description:
            return found[1], found[2]
        stored = table.description.get("_resource_policy")
        compiled = self.compiled(PolicyKind.RESOURCE, table.arn, stored["Policy"]) if stored else None
        tags = {t["Key"]: t["Value"] for t in table.description.get("_tags") or []} or None
        self._tables[table.arn] = (table.description, compiled, tags)
        return compiled, tags

    def _static_context(
        self,
        principal: Principal,
        principal_place: Any,
        origin: NetworkOrigin,
        region: str,
        resource_account: str | None,
        resource_place: Any,
        resource_tags: dict[str, str] | None,
    ) -> tuple[policy.PrincipalInfo, policy.ContextKeys, CompiledPolicy | None]:
        """The parts of a request's context that depend on who, from where and on whose resource, but not
        on the moment or the request's parameters: built once and reused while the placements (org
        generation) are the same objects."""
        tags_key = tuple(sorted(resource_tags.items())) if resource_tags else ()
        key = (principal, id(principal_place), origin, region, resource_account, id(resource_place), tags_key)
        found = self._static.get(key)
        if found is not None and found[0] is principal_place and found[1] is resource_place:
            return found[2]
        info = principal_info(principal, principal_place)
        vpce_policy = None
        vpce_document = getattr(origin, "vpce_policy", None)
        if origin.vpce_id and vpce_document:
            vpce_policy = self.compiled(PolicyKind.VPCE, origin.vpce_id, vpce_document)
        engine_origin = policy.NetworkOrigin(
            source_ip=origin.source_ip,
            secure_transport=origin.secure,
            vpc_id=origin.vpc_id,
            vpce_id=origin.vpce_id,
            vpce_account=origin.vpce_account,
            vpce_org_id=getattr(origin, "vpce_org_id", None),
            vpce_org_paths=tuple(getattr(origin, "vpce_org_paths", ()) or ()),
        )
        base = policy.standard_keys(
            info,
            origin=engine_origin,
            now=datetime.now(UTC),  # replaced per request
            region=region,
            resource_account=resource_account,
            resource_org_id=resource_place.org_id if resource_place else None,
            resource_org_paths=tuple(resource_place.org_paths) if resource_place else (),
            resource_tags=resource_tags,
        )
        result = (info, base, vpce_policy)
        if len(self._static) > 10_000:
            self._static.clear()
        self._static[key] = (principal_place, resource_place, result)
        return result

    async def _placement(self, account: str | None) -> Any:
        if account is None or self.organizations is None:
            return None
        return await self.organizations.placement(account)

    async def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str,
        origin: NetworkOrigin,
        region: str,
        call: Any = None,
        **context: Any,
    ) -> Decided:
        """Decide; on a denial raise AccessDeniedException with AWS's message."""
        memo = None
        if context.keys() <= {"extra_keys"}:  # the common case: a remembered decision, recorded as it is
            now = time.time()
            memo, extra = await self._recall(
                (id(principal), id(origin), action, resource, region),
                principal,
                origin,
                now,
                context.get("extra_keys"),
            )
            context["extra_keys"] = extra
        if memo is not None:
            decided, response = memo.decided, memo.response
            if not response.allowed:  # rare: only then is the context needed, for the message
                ctx = self._remembered_context(memo, principal, now, extra)
        else:
            ctx, response = await self.decide(principal, action, resource, origin, region, **context)
            decided = Decided(action, resource, response)
        if call is not None and hasattr(call, "notes"):
            call.notes.setdefault("decisions", []).append(decided)
        if not response.allowed:
            raise errors.access_denied(policy.access_denied_message(ctx, response))
        return decided
