"""Permissions boundaries: Put/Delete {User,Role}PermissionsBoundary, and the check CreateUser and
CreateRole make of a ``PermissionsBoundary`` argument.

The boundary's policy row counts its uses (``PermissionsBoundaryUsageCount``) in the same atomic write
that sets or clears the entity's boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perimeterdb.iam import errors
from perimeterdb.iam.call import Handler, QueryCall
from perimeterdb.iam.entities import ROLE, USER, EntityKind, policy_row
from perimeterdb.storage.engine import RowKey
from perimeterdb.world.identities import Change, Record


async def check_boundary_arn(call: QueryCall, arn: str) -> None:
    """A boundary must be an existing managed policy (AWS's or this account's)."""
    try:
        await policy_row(call, arn)
    except errors.ApiError:
        raise errors.invalid_input(f"ARN {arn} is not valid.") from None


def _bump(policy: Record | None, delta: int) -> Record | None:
    if policy is None:
        return None
    policy["boundary_uses"] = max(0, policy.get("boundary_uses", 0) + delta)
    return policy


def _put(kind: EntityKind) -> Handler:
    async def run(call: QueryCall) -> None:
        name = call.params[kind.name_param]
        arn = call.params["PermissionsBoundary"]
        await call.authorize(f"iam:Put{kind.title}PermissionsBoundary", await kind.arn(call, name))
        current = await kind.require(call, name)
        await check_boundary_arn(call, arn)
        new_row = await policy_row(call, arn)
        old_arn = current.get("boundary")
        old_row = await policy_row(call, old_arn) if old_arn and old_arn != arn else None
        await _write(call, kind, name, arn, old_arn, new_row, old_row)
        return None

    return run


def _delete(kind: EntityKind) -> Handler:
    async def run(call: QueryCall) -> None:
        name = call.params[kind.name_param]
        await call.authorize(f"iam:Delete{kind.title}PermissionsBoundary", await kind.arn(call, name))
        current = await kind.require(call, name)
        old_arn = current.get("boundary")
        if not old_arn:
            return None
        try:
            old_row = await policy_row(call, old_arn)
        except errors.ApiError:
            old_row = None
        await _write(call, kind, name, None, old_arn, None, old_row)
        return None

    return run


async def _write(
    call: QueryCall,
    kind: EntityKind,
    name: str,
    arn: str | None,
    old_arn: str | None,
    new_row: RowKey | None,
    old_row: RowKey | None,
) -> None:
    ekey = kind.key(call.account, name)
    keys = [ekey, *(k for k in (new_row, old_row) if k is not None)]

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], Any]:
        record = values[0]
        if record is None:
            raise kind.not_found(name)
        if record.get("boundary") != old_arn:
            raise errors.ApiError(
                "ConcurrentModification",
                "The boundary changed while it was being updated.",
                status=409,
                namespace="query",
            )
        record["boundary"] = arn
        changes: list[Change] = [(ekey, record)]
        rest = iter(values[1:])
        if new_row is not None and arn != old_arn:
            changes.append((new_row, _bump(next(rest), +1)))
        elif new_row is not None:
            next(rest)
        if old_row is not None:
            changes.append((old_row, _bump(next(rest), -1)))
        return [c for c in changes if c[1] is not None], None

    await call.store.write(keys, decide)


OPERATIONS: dict[str, Handler] = {
    "PutUserPermissionsBoundary": _put(USER),
    "DeleteUserPermissionsBoundary": _delete(USER),
    "PutRolePermissionsBoundary": _put(ROLE),
    "DeleteRolePermissionsBoundary": _delete(ROLE),
}
