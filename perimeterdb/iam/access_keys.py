"""Access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey, GetAccessKeyLastUsed.

A user has at most two keys (``LimitExceeded``). The secret is returned once, by CreateAccessKey, and
stored sealed. The key row and the user's list of key ids change in the same atomic write.

A key created by a break-glass credential is marked ``break_glass: {origin_session, session, expires}``:
requests signed with it are break-glass, and it stops working when its origin session expires or is
revoked (``breakglass/lineage.py``; stricter than AWS on purpose). It is recorded for the review.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perimeterdb.breakglass import lineage
from perimeterdb.iam import errors
from perimeterdb.iam.call import Handler, QueryCall, paginate
from perimeterdb.iam.users import no_such_user, user_arn
from perimeterdb.world.identities import ACCESS_KEYS, USERS, Change, Record, account_key, global_key

MAX_KEYS_PER_USER = 2


def _no_such_key(key_id: str) -> errors.ApiError:
    return errors.no_such_entity(f"The Access Key with id {key_id} cannot be found.")


async def create_access_key(call: QueryCall) -> dict[str, Any]:
    name = await call.caller_user_name(call.params.get("UserName"))
    await call.authorize("iam:CreateAccessKey", await user_arn(call, name))
    user_key = account_key(USERS, call.account, name)
    new_key, record = call.store.access_key_changes(call.account, None)
    p = call.principal
    if p.break_glass:
        record["break_glass"] = {
            "origin_session": p.break_glass_origin or p.access_key_id,
            "session": p.access_key_id,
            "expires": p.expires_at,
            "review_required": p.review_required,
        }

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], Record]:
        user = values[0]
        if user is None:
            raise no_such_user(name)
        if len(user.get("access_keys", [])) >= MAX_KEYS_PER_USER:
            raise errors.limit_exceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}")
        user["access_keys"] = [*user.get("access_keys", []), new_key.access_key_id]
        record["user"] = user["name"]
        return [(user_key, user), (global_key(ACCESS_KEYS, new_key.access_key_id), record)], user

    user = await call.store.write([user_key], decide)
    if p.break_glass:
        marker = record["break_glass"]
        await lineage.record_created(
            call.store.engine,
            marker["origin_session"],
            marker["session"] or marker["origin_session"],
            {"eventName": "CreateAccessKey", "eventTime": record["created"], "kind": "access-key",
             "name": new_key.access_key_id, "owner": {"userName": user["name"]}, "account": call.account,
             "by": p.arn},
        )
    return {
        "AccessKey": {
            "UserName": user["name"],
            "AccessKeyId": new_key.access_key_id,
            "Status": "Active",
            "SecretAccessKey": new_key.secret_access_key,
            "CreateDate": record["created"],
        }
    }


async def _keys_of(call: QueryCall, name: str) -> list[Record]:
    user = await call.store.get_user(call.account, name)
    if user is None:
        raise no_such_user(name)
    keys = []
    for key_id in user.get("access_keys", []):
        key = await call.store.get_global(ACCESS_KEYS, key_id)
        if key is not None:
            keys.append(key)
    return keys


async def list_access_keys(call: QueryCall) -> dict[str, Any]:
    name = await call.caller_user_name(call.params.get("UserName"))
    await call.authorize("iam:ListAccessKeys", await user_arn(call, name))
    keys = await _keys_of(call, name)
    metadata = [
        {"UserName": k["user"], "AccessKeyId": k["id"], "Status": k["status"], "CreateDate": k["created"]}
        for k in keys
    ]
    return paginate(metadata, call.params, "AccessKeyMetadata")


async def _owned_key(call: QueryCall, name: str, key_id: str) -> Record:
    key = await call.store.get_global(ACCESS_KEYS, key_id)
    if key is None or key["account"] != call.account or (key.get("user") or "").lower() != name.lower():
        raise _no_such_key(key_id)
    return key


async def update_access_key(call: QueryCall) -> None:
    name = await call.caller_user_name(call.params.get("UserName"))
    key_id = call.params["AccessKeyId"]
    status = call.params["Status"]
    await call.authorize("iam:UpdateAccessKey", await user_arn(call, name))
    await _owned_key(call, name, key_id)
    row = global_key(ACCESS_KEYS, key_id)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        key = values[0]
        if key is None:
            raise _no_such_key(key_id)
        key["status"] = status
        return [(row, key)], None

    await call.store.write([row], decide)
    return None


async def delete_access_key(call: QueryCall) -> None:
    name = await call.caller_user_name(call.params.get("UserName"))
    key_id = call.params["AccessKeyId"]
    await call.authorize("iam:DeleteAccessKey", await user_arn(call, name))
    await _owned_key(call, name, key_id)
    user_key = account_key(USERS, call.account, name)
    row = global_key(ACCESS_KEYS, key_id)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        user, key = values
        if key is None:
            raise _no_such_key(key_id)
        changes: list[Change] = [(row, None)]
        if user is not None:
            user["access_keys"] = [k for k in user.get("access_keys", []) if k != key_id]
            changes.append((user_key, user))
        return changes, None

    await call.store.write([user_key, row], decide)
    return None


async def get_access_key_last_used(call: QueryCall) -> dict[str, Any]:
    key_id = call.params["AccessKeyId"]
    key = await call.store.get_global(ACCESS_KEYS, key_id)
    if key is None or key["account"] != call.account:
        # AWS answers AccessDenied rather than revealing whether a key exists elsewhere.
        await call.authorize("iam:GetAccessKeyLastUsed", call.arn("user", "/", "*"))
        raise errors.access_denied("The specified access key does not exist in this account.")
    owner = key.get("user")
    resource = await user_arn(call, owner) if owner else f"arn:aws:iam::{call.account}:root"
    await call.authorize("iam:GetAccessKeyLastUsed", resource)
    used = key.get("last_used")
    last: dict[str, Any] = (
        {"LastUsedDate": used["date"], "ServiceName": used["service"], "Region": used["region"]}
        if used
        else {"ServiceName": "N/A", "Region": "N/A"}
    )
    return {"UserName": owner or "", "AccessKeyLastUsed": last}


OPERATIONS: dict[str, Handler] = {
    "CreateAccessKey": create_access_key,
    "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key,
    "DeleteAccessKey": delete_access_key,
    "GetAccessKeyLastUsed": get_access_key_last_used,
}
