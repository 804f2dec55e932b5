"""IAM groups: CreateGroup, GetGroup, ListGroups, DeleteGroup, AddUserToGroup, RemoveUserFromGroup,
ListGroupsForUser. Membership is kept on both sides (user ``groups``, group ``members``) and changed in one
atomic write of the two rows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from perimeterdb.iam import errors
from perimeterdb.iam.call import Handler, QueryCall, paginate
from perimeterdb.iam.users import no_such_user, user_arn, user_shape
from perimeterdb.world.identities import GROUPS, USERS, Change, Record, account_key, new_unique_id

MAX_GROUPS_PER_USER = 10


def group_shape(group: Record) -> dict[str, Any]:
    return {
        "Path": group["path"],
        "GroupName": group["name"],
        "GroupId": group["group_id"],
        "Arn": group["arn"],
        "CreateDate": group["created"],
    }


def no_such_group(name: str) -> errors.ApiError:
    return errors.no_such_entity(f"The group with name {name} cannot be found.")


async def group_arn(call: QueryCall, name: str) -> str:
    group = await call.store.get_group(call.account, name)
    return group["arn"] if group is not None else call.arn("group", "/", name)


async def create_group(call: QueryCall) -> dict[str, Any]:
    name = call.params["GroupName"]
    path = call.params.get("Path") or "/"
    arn = call.arn("group", path, name)
    await call.authorize("iam:CreateGroup", arn)
    record: Record = {
        "name": name,
        "account": call.account,
        "path": path,
        "arn": arn,
        "group_id": new_unique_id("AGPA"),
        "created": time.time(),
        "inline": {},
        "attached": [],
        "members": [],
    }
    key = account_key(GROUPS, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        if values[0] is not None:
            raise errors.entity_already_exists(f"Group with name {name} already exists.")
        return [(key, record)], None

    await call.store.write([key], decide)
    return {"Group": group_shape(record)}


async def get_group(call: QueryCall) -> dict[str, Any]:
    name = call.params["GroupName"]
    await call.authorize("iam:GetGroup", await group_arn(call, name))
    group = await call.store.get_group(call.account, name)
    if group is None:
        raise no_such_group(name)
    users = []
    for member in group.get("members", []):
        user = await call.store.get_user(call.account, member)
        if user is not None:
            users.append(user_shape(user, full=False))
    page = paginate(users, call.params, "Users")
    page["Group"] = group_shape(group)
    return page


async def list_groups(call: QueryCall) -> dict[str, Any]:
    await call.authorize("iam:ListGroups", f"arn:aws:iam::{call.account}:group/")
    prefix = call.params.get("PathPrefix") or "/"
    groups = [g for g in await call.store.list(GROUPS, call.account) if g["path"].startswith(prefix)]
    groups.sort(key=lambda g: g["name"].lower())
    return paginate([group_shape(g) for g in groups], call.params, "Groups")


async def delete_group(call: QueryCall) -> None:
    name = call.params["GroupName"]
    await call.authorize("iam:DeleteGroup", await group_arn(call, name))
    key = account_key(GROUPS, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        group = values[0]
        if group is None:
            raise no_such_group(name)
        if group.get("members"):
            raise errors.delete_conflict("Cannot delete entity, must remove users from group first.")
        if group.get("inline"):
            raise errors.delete_conflict("Cannot delete entity, must delete policies first.")
        if group.get("attached"):
            raise errors.delete_conflict("Cannot delete entity, must detach all policies first.")
        return [(key, None)], None

    await call.store.write([key], decide)
    return None


async def _membership(call: QueryCall, add: bool) -> None:
    group_name = call.params["GroupName"]
    user_name = call.params["UserName"]
    action = "iam:AddUserToGroup" if add else "iam:RemoveUserFromGroup"
    await call.authorize(action, await group_arn(call, group_name))
    gkey = account_key(GROUPS, call.account, group_name)
    ukey = account_key(USERS, call.account, user_name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        group, user = values
        if group is None:
            raise no_such_group(group_name)
        if user is None:
            raise no_such_user(user_name)
        groups = [g for g in user.get("groups", []) if g.lower() != group["name"].lower()]
        members = [m for m in group.get("members", []) if m.lower() != user["name"].lower()]
        if add:
            if len(groups) >= MAX_GROUPS_PER_USER:
                raise errors.limit_exceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
            groups.append(group["name"])
            members.append(user["name"])
        elif len(groups) == len(user.get("groups", [])):
            raise errors.no_such_entity(
                f"The user with name {user_name} cannot be found in group {group_name}."
            )
        user["groups"] = groups
        group["members"] = members
        return [(gkey, group), (ukey, user)], None

    await call.store.write([gkey, ukey], decide)


async def add_user_to_group(call: QueryCall) -> None:
    await _membership(call, add=True)
    return None


async def remove_user_from_group(call: QueryCall) -> None:
    await _membership(call, add=False)
    return None


async def list_groups_for_user(call: QueryCall) -> dict[str, Any]:
    name = call.params["UserName"]
    await call.authorize("iam:ListGroupsForUser", await user_arn(call, name))
    user = await call.store.get_user(call.account, name)
    if user is None:
        raise no_such_user(name)
    groups = []
    for group_name in user.get("groups", []):
        group = await call.store.get_group(call.account, group_name)
        if group is not None:
            groups.append(group_shape(group))
    return paginate(groups, call.params, "Groups")


OPERATIONS: dict[str, Handler] = {
    "CreateGroup": create_group,
    "GetGroup": get_group,
    "ListGroups": list_groups,
    "DeleteGroup": delete_group,
    "AddUserToGroup": add_user_to_group,
    "RemoveUserFromGroup": remove_user_from_group,
    "ListGroupsForUser": list_groups_for_user,
}
