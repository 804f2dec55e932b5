"""STS GetCallerIdentity (no permission needed), GetSessionToken and GetAccessKeyInfo.

GetSessionToken: long-term credentials of an IAM user or the root user only; 900 s to 36 h (default
12 h), the root user's sessions capped at 1 h; with SerialNumber + TokenCode the session carries MFA.
As AWS documents, it needs no permission ("you cannot use policies to control authentication").
"""

from __future__ import annotations

from typing import Any

from perimeterdb.iam import errors
from perimeterdb.iam.call import QueryCall
from perimeterdb.iam.mfa import check_code, check_token_code_format, mfa_failed
from perimeterdb.sts.sessions import mint
from perimeterdb.world.identities import ACCESS_KEYS, SESSIONS

DEFAULT_SECONDS = 43200
ROOT_MAX_SECONDS = 3600


async def get_caller_identity(call: QueryCall) -> dict[str, Any]:
    p = call.principal
    return {"UserId": p.userid, "Account": p.account, "Arn": p.arn}


async def get_session_token(call: QueryCall) -> dict[str, Any]:
    p = call.principal
    if p.session_kind is not None or p.kind not in ("User", "Account"):
        raise errors.access_denied("Cannot call GetSessionToken with session credentials")
    duration = call.params.get("DurationSeconds") or (
        ROOT_MAX_SECONDS if p.kind == "Account" else DEFAULT_SECONDS
    )
    if p.kind == "Account":
        duration = min(duration, ROOT_MAX_SECONDS)
    mfa = False
    serial, code = call.params.get("SerialNumber"), call.params.get("TokenCode")
    if serial or code:
        if not (serial and code):
            raise errors.validation_error("SerialNumber and TokenCode must be passed together.")
        check_token_code_format(code)
        if not await check_code(call.store, p.account, p.username, serial, code, call.now):
            raise mfa_failed()
        mfa = True
    principal = {
        "arn": p.arn,
        "principal_arn": p.principal_arn,
        "account": p.account,
        "kind": p.kind,
        "userid": p.userid,
        "username": p.username,
        "tags": [],
        "mfa_authenticated": mfa,
        "mfa_auth_time": call.now if mfa else None,
        "source_arn": p.arn,
    }
    if p.break_glass:  # a key created during a break-glass session: the session is break-glass too
        left = int((p.expires_at or call.now) - call.now)
        if left <= 0:
            raise errors.expired_token()
        duration = min(duration, left)
        principal.update(
            break_glass=True,
            origin_session=p.break_glass_origin,
            parent_session=p.access_key_id,
            review_required=p.review_required,
        )
    creds = await mint(
        call.store,
        account=p.account,
        kind="GetSessionToken",
        principal=principal,
        duration=duration,
        now=call.now,
    )
    return {"Credentials": creds.shape()}


async def get_access_key_info(call: QueryCall) -> dict[str, Any]:
    key_id = call.params["AccessKeyId"]
    await call.authorize("sts:GetAccessKeyInfo", "*")
    space = SESSIONS if key_id.startswith("ASIA") else ACCESS_KEYS
    record = await call.store.get_global(space, key_id)
    if record is None:
        raise errors.invalid_client_token()
    return {"Account": record["account"]}
