"""What users, groups and roles share: how to find one by name, and its inline and attached policies.

Inline policies: Put/Get/Delete/List {User,Group,Role}Policy. Managed attachments: Attach/Detach
{User,Group,Role}Policy and ListAttached{User,Group,Role}Policies. Attaching a customer-managed policy
updates the entity row and the policy's attachment count in one atomic write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from perimeterdb.iam import errors
from perimeterdb.iam.call import Handler, QueryCall, check_document, inline_size, paginate
from perimeterdb.iam.policies import find_policy, no_such_policy, policy_key
from perimeterdb.policy.ast import PolicyKind
from perimeterdb.storage.engine import RowKey
from perimeterdb.world.identities import GROUPS, ROLES, USERS, Change, Record, account_key
from perimeterdb.world.managed_policies import managed_policy

MAX_ATTACHED = 10


@dataclass(frozen=True, slots=True)
class EntityKind:
    kind: str  # user | group | role
    title: str  # User | Group | Role
    space: str
    inline_limit: int

    @property
    def name_param(self) -> str:
        return f"{self.title}Name"

    def key(self, account: str, name: str) -> RowKey:
        return account_key(self.space, account, name)

    def not_found(self, name: str) -> errors.ApiError:
        return errors.no_such_entity(f"The {self.kind} with name {name} cannot be found.")

    async def arn(self, call: QueryCall, name: str) -> str:
        record = await call.store.get(self.space, call.account, name)
        return record["arn"] if record is not None else call.arn(self.kind, "/", name)

    async def require(self, call: QueryCall, name: str) -> Record:
        record = await call.store.get(self.space, call.account, name)
        if record is None:
            raise self.not_found(name)
        return record


USER = EntityKind("user", "User", USERS, 2048)
GROUP = EntityKind("group", "Group", GROUPS, 5120)
ROLE = EntityKind("role", "Role", ROLES, 10240)


async def update_entity(call: QueryCall, kind: EntityKind, name: str, change: Any) -> Any:
    key = kind.key(call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], Any]:
        record = values[0]
        if record is None:
            raise kind.not_found(name)
        result = change(record)
        return [(key, record)], result

    return await call.store.write([key], decide)


# --- inline policies -----------------------------------------------------------------------------------


def _put_inline(kind: EntityKind) -> Handler:
    async def run(call: QueryCall) -> None:
        name = call.params[kind.name_param]
        policy_name = call.params["PolicyName"]
        await call.authorize(f"iam:Put{kind.title}Policy", await kind.arn(call, name))
        document = check_document(
            call.params["PolicyDocument"], PolicyKind.IDENTITY, kind.inline_limit, "PolicySize"
        )

        def change(record: Record) -> None:
            inline = {k: v for k, v in record.get("inline", {}).items() if k.lower() != policy_name.lower()}
            inline[policy_name] = document
            if inline_size(inline) > kind.inline_limit:
                raise errors.limit_exceeded(
                    f"Maximum policy size of {kind.inline_limit} bytes exceeded for {kind.kind} {record['name']}"
                )
            record["inline"] = inline

        await update_entity(call, kind, name, change)
        return None

    return run


def _find_inline(record: Record, policy_name: str) -> str | None:
    for key in record.get("inline", {}):
        if key.lower() == policy_name.lower():
            return str(key)
    return None


def _no_such_inline(kind: EntityKind, policy_name: str) -> errors.ApiError:
    return errors.no_such_entity(f"The {kind.kind} policy with name {policy_name} cannot be found.")


def _get_inline(kind: EntityKind) -> Handler:
    async def run(call: QueryCall) -> dict[str, Any]:
        name = call.params[kind.name_param]
        policy_name = call.params["PolicyName"]
        await call.authorize(f"iam:Get{kind.title}Policy", await kind.arn(call, name))
        record = await kind.require(call, name)
        stored = _find_inline(record, policy_name)
        if stored is None:
            raise _no_such_inline(kind, policy_name)
        return {
            kind.name_param: record["name"],
            "PolicyName": stored,
            "PolicyDocument": quote(record["inline"][stored], safe=""),
        }

    return run


def _delete_inline(kind: EntityKind) -> Handler:
    async def run(call: QueryCall) -> None:
        name = call.params[kind.name_param]
        policy_name = call.params["PolicyName"]
        await call.authorize(f"iam:Delete{kind.title}Policy", await kind.arn(call, name))

        def change(record: Record) -> None:
            stored = _find_inline(record, policy_name)
            if stored is None:
                raise _no_such_inline(kind, policy_name)
            del record["inline"][stored]

        await update_entity(call, kind, name, change)
        return None

    return run


def _list_inline(kind: EntityKind) -> Handler:
    async def run(call: QueryCall) -> dict[str, Any]:
        name = call.params[kind.name_param]
        await call.authorize(f"iam:List{kind.title}Policies", await kind.arn(call, name))
        record = await kind.require(call, name)
        return paginate(sorted(record.get("inline", {})), call.params, "PolicyNames")

    return run


# --- managed policy attachments ------------------------------------------------------------------------


async def policy_row(call: QueryCall, arn: str) -> RowKey | None:
    """The row of a customer-managed policy (``None`` for an AWS-managed one); NoSuchEntity if neither."""
    if managed_policy(arn) is not None:
        return None
    try:
        await find_policy(call, arn)
    except errors.ApiError as error:
        if error.code == "InvalidInput":
            raise
        raise no_such_policy(arn) from None
    return policy_key(arn)[0]


def _attach(kind: EntityKind, attach: bool) -> Handler:
    verb = "Attach" if attach else "Detach"

    async def run(call: QueryCall) -> None:
        name = call.params[kind.name_param]
        arn = call.params["PolicyArn"]
        await call.authorize(f"iam:{verb}{kind.title}Policy", await kind.arn(call, name))
        prow = await policy_row(call, arn)
        ekey = kind.key(call.account, name)
        keys = [ekey] + ([prow] if prow is not None else [])

        def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
            record = values[0]
            if record is None:
                raise kind.not_found(name)
            attached: list[str] = record.get("attached", [])
            changes: list[Change] = []
            if attach:
                if arn in attached:
                    return [], None
                if len(attached) >= MAX_ATTACHED:
                    raise errors.limit_exceeded(
                        f"Cannot exceed quota for PoliciesPer{kind.title}: {MAX_ATTACHED}"
                    )
                record["attached"] = [*attached, arn]
            else:
                if arn not in attached:
                    raise errors.no_such_entity(f"Policy {arn} was not found.")
                record["attached"] = [a for a in attached if a != arn]
            changes.append((ekey, record))
            if prow is not None:
                policy = values[1]
                if policy is None:
                    raise no_such_policy(arn)
                policy["attachments"] = max(0, policy.get("attachments", 0) + (1 if attach else -1))
                changes.append((prow, policy))
            return changes, None

        await call.store.write(keys, decide)
        return None

    return run


def _list_attached(kind: EntityKind) -> Handler:
    async def run(call: QueryCall) -> dict[str, Any]:
        name = call.params[kind.name_param]
        await call.authorize(f"iam:ListAttached{kind.title}Policies", await kind.arn(call, name))
        record = await kind.require(call, name)
        prefix = call.params.get("PathPrefix") or "/"
        items = []
        for arn in record.get("attached", []):
            resource = arn.split(":", 5)[5]
            path = resource[len("policy") : resource.rfind("/") + 1]
            if path.startswith(prefix):
                items.append({"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn})
        return paginate(items, call.params, "AttachedPolicies")

    return run


OPERATIONS: dict[str, Handler] = {}
for _kind in (USER, GROUP, ROLE):
    OPERATIONS[f"Put{_kind.title}Policy"] = _put_inline(_kind)
    OPERATIONS[f"Get{_kind.title}Policy"] = _get_inline(_kind)
    OPERATIONS[f"Delete{_kind.title}Policy"] = _delete_inline(_kind)
    OPERATIONS[f"List{_kind.title}Policies"] = _list_inline(_kind)
    OPERATIONS[f"Attach{_kind.title}Policy"] = _attach(_kind, True)
    OPERATIONS[f"Detach{_kind.title}Policy"] = _attach(_kind, False)
    OPERATIONS[f"ListAttached{_kind.title}Policies"] = _list_attached(_kind)
