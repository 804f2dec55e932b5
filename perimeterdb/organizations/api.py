"""The Organizations operations (JSON 1.1). One function per operation, all with the same signature.

Who may call: the management account, or a registered delegated administrator; a member account may only
``DescribeOrganization`` (others get AccessDeniedException); an account outside the organization, or any
account when there is no organization, gets AWSOrganizationsNotInUseException. Each operation then
authorizes ``organizations:<Operation>`` on the ARN it touches (``*`` where AWS uses no resource), so the
caller's IAM policies (and SCPs) apply as for any other service.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from perimeterdb.auth.principal import Principal
from perimeterdb.organizations import errors
from perimeterdb.organizations.state import SUPPORTED_TYPES, OrgState, new_document
from perimeterdb.organizations.store import OrgStore
from perimeterdb.storage.engine import Put, RowChange
from perimeterdb.world.identities import ROLES, account_key, new_unique_id

Authorize = Callable[[str, str], Awaitable[None]]


async def _allow(action: str, resource: str) -> None:
    return None


@dataclass
class OrgCall:
    operation: str
    params: dict[str, Any]
    principal: Principal
    store: OrgStore
    identities: Any  # world.identities.IdentityStore
    region: str = "us-east-1"
    authorize: Authorize = _allow
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.principal.account


Handler = Callable[[OrgCall], Awaitable[dict[str, Any]]]


# --- helpers --------------------------------------------------------------------------------------------


async def _admin_state(call: OrgCall) -> OrgState:
    """The organization, for a caller that administers it (management account or delegated admin)."""
    state = await call.store.require()
    if call.account not in state.doc["accounts"]:
        raise errors.not_in_use()
    if not state.is_admin(call.account):
        raise errors.access_denied()
    return state


async def _authorized(call: OrgCall, *resources: str) -> OrgState:
    state = await _admin_state(call)
    for resource in resources or ("*",):
        await call.authorize(f"organizations:{call.operation}", resource)
    return state


def _page(items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
    start = 0
    token = params.get("NextToken")
    if token:
        try:
            start = int(base64.b64decode(token).decode())
        except ValueError:
            raise errors.invalid_input("INVALID_PAGINATION_TOKEN", "The pagination token is invalid.") from None
    limit = int(params.get("MaxResults") or 20)
    out: dict[str, Any] = {key: items[start : start + limit]}
    if start + limit < len(items):
        out["NextToken"] = base64.b64encode(str(start + limit).encode()).decode()
    return out


def _policy_shape(state: OrgState, policy_id: str) -> dict[str, Any]:
    return {"PolicySummary": state.policy_summary(policy_id), "Content": state.doc["policies"][policy_id]["content"]}


def _resource_of(state: OrgState, target: str) -> str:
    return state.target_arn(target) if state.has_target(target) else "*"


def _policy_resource(state: OrgState, policy_id: str) -> str:
    return state.policy_arn(policy_id) if policy_id in state.doc["policies"] else "*"


# --- the organization and its root ----------------------------------------------------------------------


async def create_organization(call: OrgCall) -> dict[str, Any]:
    existing = await call.store.load()
    if existing is not None:
        if call.account in existing.doc["accounts"]:
            raise errors.already_in_organization()
        raise errors.access_denied("This perimeterdb server already holds an organization.")
    await call.authorize("organizations:CreateOrganization", "*")
    feature_set = call.params.get("FeatureSet") or "ALL"
    account = await call.identities.get_account(call.account)
    email = (account or {}).get("email") or f"{call.account}@perimeterdb.local"
    state = await call.store.create(new_document(call.account, email, feature_set))
    return {"Organization": state.organization_shape()}


async def describe_organization(call: OrgCall) -> dict[str, Any]:
    state = await call.store.require()
    if call.account not in state.doc["accounts"]:
        raise errors.not_in_use()
    await call.authorize("organizations:DescribeOrganization", "*")
    return {"Organization": state.organization_shape()}


async def list_roots(call: OrgCall) -> dict[str, Any]:
    state = await _authorized(call)
    return _page([state.root_shape()], call.params, "Roots")


async def enable_policy_type(call: OrgCall) -> dict[str, Any]:
    root, policy_type = call.params["RootId"], call.params["PolicyType"]
    state = await _admin_state(call)
    await call.authorize("organizations:EnablePolicyType", state.root_arn() if root == state.root_id else "*")
    state = await call.store.mutate(lambda s: (s, _void(s.enable_type(root, policy_type))))
    return {"Root": state.root_shape()}


async def disable_policy_type(call: OrgCall) -> dict[str, Any]:
    root, policy_type = call.params["RootId"], call.params["PolicyType"]
    state = await _admin_state(call)
    await call.authorize("organizations:DisablePolicyType", state.root_arn() if root == state.root_id else "*")
    state = await _guarded(call, lambda s: (s, _void(s.disable_type(root, policy_type))))
    return {"Root": state.root_shape()}


def _void(_: None) -> Sequence[RowChange]:
    return ()


async def _guarded(call: OrgCall, fn: Callable[[OrgState], tuple[Any, Sequence[RowChange]]]) -> Any:
    """``call.store.mutate(fn)`` for a change that can move an SCP or RCP (attach, detach, update, delete,
    disable a type, move an account): when world invariants are stored (prover_invariants.py), they are
    proved first over the organization as ``fn`` leaves it (applied to a staging engine, never committed),
    and a change that breaks one, or that the solvers cannot decide, is refused (ConstraintViolationException,
    see docs/prover.md). The real write then refuses (ConcurrentModificationException) if the organization
    changed since it was proved."""
    from perimeterdb.prover_invariants import load, message, proposed_engine

    if not await load(call.store.engine):
        return await call.store.mutate(fn)
    from perimeterdb.world.staging import StagingEngine

    seen: dict[str, Any] = {}

    def capture(state: OrgState) -> tuple[Any, Sequence[RowChange]]:
        seen["doc"] = orjson.loads(orjson.dumps(state.doc))
        return fn(state)

    staged = StagingEngine(call.store.engine)
    await OrgStore(staged).mutate(capture)
    violations = await proposed_engine(staged, getattr(call.identities, "box", None))
    if violations:
        raise errors.invariant_broken(f"This change would break a world invariant: {message(violations)}")

    def guarded(state: OrgState) -> tuple[Any, Sequence[RowChange]]:
        if state.doc != seen["doc"]:
            raise errors.concurrent_modification()
        return fn(state)

    return await call.store.mutate(guarded)


# --- OUs and the tree -----------------------------------------------------------------------------------


async def create_organizational_unit(call: OrgCall) -> dict[str, Any]:
    parent, name = call.params["ParentId"], call.params["Name"]
    state = await _authorized(call, await _parent_resource(call, parent))
    ou_id = await call.store.mutate(lambda s: (s.create_ou(parent, name), ()))
    state = await call.store.require()
    return {"OrganizationalUnit": state.ou_shape(ou_id)}


async def _parent_resource(call: OrgCall, parent: str) -> str:
    state = await call.store.require()
    return _resource_of(state, parent)


async def list_organizational_units_for_parent(call: OrgCall) -> dict[str, Any]:
    parent = call.params["ParentId"]
    state = await _authorized(call, await _parent_resource(call, parent))
    state.require_parent(parent)
    ous = [state.ou_shape(o) for o in state.children(parent, "ORGANIZATIONAL_UNIT")]
    return _page(ous, call.params, "OrganizationalUnits")


async def list_children(call: OrgCall) -> dict[str, Any]:
    parent, child_type = call.params["ParentId"], call.params["ChildType"]
    state = await _authorized(call, await _parent_resource(call, parent))
    state.require_parent(parent)
    children = [{"Id": c, "Type": child_type} for c in state.children(parent, child_type)]
    return _page(children, call.params, "Children")


async def list_parents(call: OrgCall) -> dict[str, Any]:
    child = call.params["ChildId"]
    state = await _authorized(call, await _parent_resource(call, child))
    parent = state.parent_of(child)
    if parent is None:
        raise errors.not_found("Child", "We can't find an organizational unit (OU) or AWS account with the ChildId.")
    kind = "ROOT" if parent == state.root_id else "ORGANIZATIONAL_UNIT"
    return _page([{"Id": parent, "Type": kind}], call.params, "Parents")


# --- accounts -------------------------------------------------------------------------------------------

ACCESS_ROLE = "OrganizationAccountAccessRole"
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"


def access_role(account: str, name: str, management: str, now: float) -> dict[str, Any]:
    """The role CreateAccount makes in the new account, as AWS Organizations does: full administrative
    permissions (AdministratorAccess), assumable by the management account (its administrators decide who
    there may assume it)."""
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{management}:root"}, "Action": "sts:AssumeRole"}]}
    return {
        "name": name, "account": account, "path": "/", "arn": f"arn:aws:iam::{account}:role/{name}",
        "role_id": new_unique_id("AROA"), "created": now, "last_used": None, "inline": {},
        "attached": [ADMINISTRATOR_ACCESS], "boundary": None, "tags": [], "description": "",
        "trust": orjson.dumps(trust, option=orjson.OPT_SORT_KEYS).decode(), "max_session": 3600,
    }



async def create_account(call: OrgCall) -> dict[str, Any]:
    name, email = call.params["AccountName"], call.params["Email"]
    await _authorized(call)
    account, rows = call.identities.account_changes(name, call.region)
    role_name = call.params.get("RoleName") or ACCESS_ROLE
    from perimeterdb.world.sealed import load_registry

    if (await load_registry(call.store.engine)).protected(role_name) is not None:
        # Not on AWS: here a role of that name would pass for the sealed break-glass (or platform) role,
        # whose aws:PrincipalArn exceptions in SCPs would then let an administrator role through.
        raise errors.invalid_input("INVALID_ROLE_NAME", f"RoleName {role_name} is reserved for a sealed "
                                   "break-glass or platform role of this organization")
    role_key = account_key(ROLES, account, role_name)
    now = time.time()
    request_id = "car-" + secrets.token_hex(16)

    def change(state: OrgState) -> tuple[dict[str, Any], Sequence[RowChange]]:
        status: dict[str, Any] = {"Id": request_id, "AccountName": name, "RequestedTimestamp": now}
        extra: list[RowChange] = []
        if state.email_taken(email):
            status.update(State="FAILED", FailureReason="EMAIL_ALREADY_EXISTS", CompletedTimestamp=now)
        else:
            state.add_account(account, name, email)
            extra = [Put(key, orjson.dumps({**record, "email": email})) for key, record in rows]
            extra.append(Put(role_key, orjson.dumps(access_role(account, role_name, state.management, now))))
            status.update(State="SUCCEEDED", AccountId=account, CompletedTimestamp=now)
        state.doc["create_requests"][request_id] = status
        return status, extra

    status = await call.store.mutate(change, [*(key for key, _ in rows), role_key])
    call.identities.changed()
    # AWS answers IN_PROGRESS and completes asynchronously; here the account exists before we answer.
    return {"CreateAccountStatus": {**{k: v for k, v in status.items() if k in ("Id", "AccountName",
                                                                                 "RequestedTimestamp")},
                                    "State": "IN_PROGRESS"}}


async def describe_create_account_status(call: OrgCall) -> dict[str, Any]:
    state = await _authorized(call)
    status = state.doc["create_requests"].get(call.params["CreateAccountRequestId"])
    if status is None:
        raise errors.create_account_status_not_found()
    return {"CreateAccountStatus": status}


async def list_accounts(call: OrgCall) -> dict[str, Any]:
    state = await _authorized(call)
    return _page([state.account_shape(a) for a in state.doc["accounts"]], call.params, "Accounts")


async def list_accounts_for_parent(call: OrgCall) -> dict[str, Any]:
    parent = call.params["ParentId"]
    state = await _authorized(call, await _parent_resource(call, parent))
    state.require_parent(parent)
    accounts = [state.account_shape(a) for a in state.children(parent, "ACCOUNT")]
    return _page(accounts, call.params, "Accounts")


async def describe_account(call: OrgCall) -> dict[str, Any]:
    account = call.params["AccountId"]
    state = await _authorized(call, await _parent_resource(call, account))
    state.require_account(account)
    return {"Account": state.account_shape(account)}


async def move_account(call: OrgCall) -> dict[str, Any]:
    p = call.params
    state = await _admin_state(call)
    for resource in (_resource_of(state, p["AccountId"]), _resource_of(state, p["SourceParentId"]),
                     _resource_of(state, p["DestinationParentId"])):
        await call.authorize("organizations:MoveAccount", resource)
    await _guarded(
        call, lambda s: (None, _void(s.move_account(p["AccountId"], p["SourceParentId"], p["DestinationParentId"])))
    )
    return {}


async def register_delegated_administrator(call: OrgCall) -> dict[str, Any]:
    account = call.params["AccountId"]
    state = await _authorized(call, await _parent_resource(call, account))
    if state.management != call.account:
        raise errors.access_denied()
    await call.store.mutate(lambda s: (None, _void(s.register_delegated_admin(account))))
    return {}


# --- policies -------------------------------------------------------------------------------------------


async def create_policy(call: OrgCall) -> dict[str, Any]:
    p = call.params
    await _authorized(call)
    policy_id = await call.store.mutate(
        lambda s: (s.create_policy(p["Type"], p["Name"], p.get("Description", ""), p["Content"]), ())
    )
    state = await call.store.require()
    return {"Policy": _policy_shape(state, policy_id)}


async def update_policy(call: OrgCall) -> dict[str, Any]:
    p = call.params
    policy_id = p["PolicyId"]
    state = await _admin_state(call)
    await call.authorize("organizations:UpdatePolicy", _policy_resource(state, policy_id))
    await _guarded(
        call, lambda s: (None, _void(s.update_policy(policy_id, p.get("Name"), p.get("Description"), p.get("Content"))))
    )
    state = await call.store.require()
    return {"Policy": _policy_shape(state, policy_id)}


async def delete_policy(call: OrgCall) -> dict[str, Any]:
    policy_id = call.params["PolicyId"]
    state = await _admin_state(call)
    await call.authorize("organizations:DeletePolicy", _policy_resource(state, policy_id))
    await _guarded(call, lambda s: (None, _void(s.delete_policy(policy_id))))
    return {}


async def describe_policy(call: OrgCall) -> dict[str, Any]:
    policy_id = call.params["PolicyId"]
    state = await _admin_state(call)
    await call.authorize("organizations:DescribePolicy", _policy_resource(state, policy_id))
    state.require_policy(policy_id)
    return {"Policy": _policy_shape(state, policy_id)}


async def list_policies(call: OrgCall) -> dict[str, Any]:
    policy_type = call.params["Filter"]
    state = await _authorized(call)
    ids = [pid for pid, rec in state.doc["policies"].items() if rec["type"] == policy_type]
    return _page([state.policy_summary(pid) for pid in ids], call.params, "Policies")


async def attach_policy(call: OrgCall) -> dict[str, Any]:
    policy_id, target = call.params["PolicyId"], call.params["TargetId"]
    state = await _admin_state(call)
    await call.authorize("organizations:AttachPolicy", _policy_resource(state, policy_id))
    await call.authorize("organizations:AttachPolicy", _resource_of(state, target))
    await _guarded(call, lambda s: (None, _void(s.attach(policy_id, target))))
    return {}


async def detach_policy(call: OrgCall) -> dict[str, Any]:
    policy_id, target = call.params["PolicyId"], call.params["TargetId"]
    state = await _admin_state(call)
    await call.authorize("organizations:DetachPolicy", _policy_resource(state, policy_id))
    await call.authorize("organizations:DetachPolicy", _resource_of(state, target))
    await _guarded(call, lambda s: (None, _void(s.detach(policy_id, target))))
    return {}


async def list_policies_for_target(call: OrgCall) -> dict[str, Any]:
    target, policy_type = call.params["TargetId"], call.params["Filter"]
    state = await _authorized(call, await _parent_resource(call, target))
    state.require_target(target)
    if policy_type not in SUPPORTED_TYPES:
        raise errors.policy_type_not_available(policy_type)
    summaries = [state.policy_summary(pid) for pid in state.attached(target, policy_type)]
    return _page(summaries, call.params, "Policies")


async def list_targets_for_policy(call: OrgCall) -> dict[str, Any]:
    policy_id = call.params["PolicyId"]
    state = await _admin_state(call)
    await call.authorize("organizations:ListTargetsForPolicy", _policy_resource(state, policy_id))
    state.require_policy(policy_id)
    return _page([state.target_summary(t) for t in state.targets_of(policy_id)], call.params, "Targets")


OPERATIONS: dict[str, Handler] = {
    "CreateOrganization": create_organization,
    "DescribeOrganization": describe_organization,
    "ListRoots": list_roots,
    "EnablePolicyType": enable_policy_type,
    "DisablePolicyType": disable_policy_type,
    "CreateOrganizationalUnit": create_organizational_unit,
    "ListOrganizationalUnitsForParent": list_organizational_units_for_parent,
    "ListChildren": list_children,
    "ListParents": list_parents,
    "CreateAccount": create_account,
    "DescribeCreateAccountStatus": describe_create_account_status,
    "ListAccounts": list_accounts,
    "ListAccountsForParent": list_accounts_for_parent,
    "DescribeAccount": describe_account,
    "MoveAccount": move_account,
    "RegisterDelegatedAdministrator": register_delegated_administrator,
    "CreatePolicy": create_policy,
    "UpdatePolicy": update_policy,
    "DeletePolicy": delete_policy,
    "DescribePolicy": describe_policy,
    "ListPolicies": list_policies,
    "AttachPolicy": attach_policy,
    "DetachPolicy": detach_policy,
    "ListPoliciesForTarget": list_policies_for_target,
    "ListTargetsForPolicy": list_targets_for_policy,
}
