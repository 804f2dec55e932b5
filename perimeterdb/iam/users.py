"""IAM users: CreateUser, GetUser, ListUsers, DeleteUser, TagUser, UntagUser, ListUserTags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perimeterdb.iam import errors
from perimeterdb.iam.boundaries import check_boundary_arn
from perimeterdb.iam.call import Handler, QueryCall, merge_tag_lists, paginate, tag_list
from perimeterdb.world.identities import USERS, Change, Record, account_key, new_user_record


def user_shape(user: Record, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": user["path"],
        "UserName": user["name"],
        "UserId": user["user_id"],
        "Arn": user["arn"],
        "CreateDate": user["created"],
    }
    if user.get("password_last_used"):
        out["PasswordLastUsed"] = user["password_last_used"]
    if full:
        if user.get("boundary"):
            out["PermissionsBoundary"] = {
                "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                "PermissionsBoundaryArn": user["boundary"],
            }
        if user.get("tags"):
            out["Tags"] = user["tags"]
    return out


def no_such_user(name: str) -> errors.ApiError:
    return errors.no_such_entity(f"The user with name {name} cannot be found.")


async def user_arn(call: QueryCall, name: str) -> str:
    """The ARN of a user (with its path if it exists), for authorization before the user is read."""
    user = await call.store.get_user(call.account, name)
    return user["arn"] if user is not None else call.arn("user", "/", name)


async def require_user(call: QueryCall, name: str) -> Record:
    user = await call.store.get_user(call.account, name)
    if user is None:
        raise no_such_user(name)
    return user


async def update_user(call: QueryCall, name: str, change: Any) -> Record:
    """Read-modify-write of one user record; ``change(user)`` mutates it or raises."""
    key = account_key(USERS, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], Record]:
        user = values[0]
        if user is None:
            raise no_such_user(name)
        change(user)
        return [(key, user)], user

    return await call.store.write([key], decide)


async def create_user(call: QueryCall) -> dict[str, Any]:
    name = call.params["UserName"]
    path = call.params.get("Path") or "/"
    await call.authorize("iam:CreateUser", call.arn("user", path, name))
    tags = tag_list(call.params)
    boundary = call.params.get("PermissionsBoundary")
    if boundary:
        await check_boundary_arn(call, boundary)
    record = new_user_record(call.account, name, path, tags)
    record["boundary"] = boundary or None
    key = account_key(USERS, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        if values[0] is not None:
            raise errors.entity_already_exists(f"User with name {name} already exists.")
        return [(key, record)], None

    await call.store.write([key], decide)
    return {"User": user_shape(record)}


async def get_user(call: QueryCall) -> dict[str, Any]:
    if not call.params.get("UserName") and call.principal.kind == "Account":
        await call.authorize("iam:GetUser", f"arn:aws:iam::{call.account}:root")
        return {
            "User": {
                "Path": "/",
                "UserName": "",
                "UserId": call.account,
                "Arn": f"arn:aws:iam::{call.account}:root",
                "CreateDate": (await call.store.get_account(call.account) or {}).get("created", call.now),
            }
        }
    name = await call.caller_user_name(call.params.get("UserName"))
    await call.authorize("iam:GetUser", await user_arn(call, name))
    return {"User": user_shape(await require_user(call, name))}


async def list_users(call: QueryCall) -> dict[str, Any]:
    await call.authorize("iam:ListUsers", f"arn:aws:iam::{call.account}:user/")
    prefix = call.params.get("PathPrefix") or "/"
    users = [u for u in await call.store.list(USERS, call.account) if u["path"].startswith(prefix)]
    users.sort(key=lambda u: u["name"].lower())
    return paginate([user_shape(u, full=False) for u in users], call.params, "Users")


async def delete_user(call: QueryCall) -> None:
    name = call.params["UserName"]
    await call.authorize("iam:DeleteUser", await user_arn(call, name))
    key = account_key(USERS, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        user = values[0]
        if user is None:
            raise no_such_user(name)
        if user.get("login"):
            raise errors.delete_conflict("Cannot delete entity, must delete login profile first.")
        if user.get("access_keys"):
            raise errors.delete_conflict("Cannot delete entity, must delete access keys first.")
        if user.get("inline"):
            raise errors.delete_conflict("Cannot delete entity, must delete policies first.")
        if user.get("attached"):
            raise errors.delete_conflict("Cannot delete entity, must detach all policies first.")
        if user.get("groups"):
            raise errors.delete_conflict("Cannot delete entity, must remove user from all groups first.")
        if user.get("mfa"):
            raise errors.delete_conflict("Cannot delete entity, must delete MFA device first.")
        return [(key, None)], None

    await call.store.write([key], decide)
    return None


async def tag_user(call: QueryCall) -> None:
    name = call.params["UserName"]
    await call.authorize("iam:TagUser", await user_arn(call, name))
    tags = tag_list(call.params)
    await update_user(call, name, lambda u: u.__setitem__("tags", merge_tag_lists(u.get("tags", []), tags)))
    return None


async def untag_user(call: QueryCall) -> None:
    name = call.params["UserName"]
    await call.authorize("iam:UntagUser", await user_arn(call, name))
    drop = {k.lower() for k in call.params.get("TagKeys", [])}
    await update_user(
        call,
        name,
        lambda u: u.__setitem__("tags", [t for t in u.get("tags", []) if t["Key"].lower() not in drop]),
    )
    return None


async def list_user_tags(call: QueryCall) -> dict[str, Any]:
    name = call.params["UserName"]
    await call.authorize("iam:ListUserTags", await user_arn(call, name))
    user = await require_user(call, name)
    return paginate(user.get("tags", []), call.params, "Tags")


OPERATIONS: dict[str, Handler] = {
    "CreateUser": create_user,
    "GetUser": get_user,
    "ListUsers": list_users,
    "DeleteUser": delete_user,
    "TagUser": tag_user,
    "UntagUser": untag_user,
    "ListUserTags": list_user_tags,
}
