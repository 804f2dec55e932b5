"""STS AssumeRole: check the request, decide on the trust policy, mint a role session.

Checks, in order: the role ARN; root callers (refused, as AWS does); DurationSeconds (900 s to the
role's MaxSessionDuration, at most 1 h when chaining); the session policy (<= 2048 characters, a valid
SESSION policy) and PolicyArns (<= 10); session tags (<= 50, no duplicate keys regardless of case,
TransitiveTagKeys among them, inherited transitive tags not overridden); MFA (SerialNumber + TokenCode
against the caller's TOTP device, each code once). Then the trust decision for ``sts:AssumeRole``, plus
``sts:TagSession`` when tags are passed and ``sts:SetSourceIdentity`` when a source identity is set.

Break-glass (``world/breakglass.py``): an assumption is break-glass when the role is a break-glass role or
the caller is itself break-glass (role chaining out of a break-glass session: the new session is
break-glass too, carries its origin and expires no later than the caller). For those, after the trust
decision: fresh MFA in this call, a justification, a ticket if required, the duration limit, the approval
(``breakglass/approvals.py``), and ``fail_closed``. Then the alert is queued durably (``breakglass/alerting``)
*before* the credentials are minted: no credentials without an alert. A refused break-glass assumption,
whatever refused it, is alerted too.
"""

from __future__ import annotations

import json
from typing import Any

from perimeterdb.iam import errors
from perimeterdb.iam.call import QueryCall, check_document, parse_iam_arn
from perimeterdb.iam.mfa import check_code, check_token_code_format, mfa_failed
from perimeterdb.policy.ast import PolicyKind
from perimeterdb.sts import glass
from perimeterdb.sts.sessions import mint
from perimeterdb.sts.trust import check_trust
from perimeterdb.world.breakglass import break_glass_settings
from perimeterdb.world.identities import new_unique_id

SESSION_POLICY_LIMIT = 2048
MAX_POLICY_ARNS = 10
CHAINED_MAX_SECONDS = 3600


def _too_long(field: str, value: Any, limit: int, what: str = "length") -> errors.ApiError:
    return errors.validation_error(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
        f"Member must have {what} less than or equal to {limit}"
    )


def _invalid_parameter(message: str) -> errors.ApiError:
    return errors.ApiError("InvalidParameterValue", message, status=400, namespace="query")


def _session_tags(call: QueryCall) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, str]]]:
    """(all session tags incl. inherited transitive ones, all transitive keys, explicitly passed tags)."""
    p = call.principal
    passed = [(t["Key"], t.get("Value", "")) for t in call.params.get("Tags", [])]
    lowered = [k.lower() for k, _ in passed]
    if len(set(lowered)) != len(lowered):
        raise _invalid_parameter("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
    transitive = list(call.params.get("TransitiveTagKeys", []))
    for key in transitive:
        if key.lower() not in lowered:
            raise _invalid_parameter(
                f"The specified transitive tag key {key} must be included in the requested tags."
            )
    inherited: list[tuple[str, str]] = []
    if p.kind == "AssumedRole" and p.transitive_tag_keys:
        keys = {k.lower() for k in p.transitive_tag_keys}
        inherited = [(k, v) for k, v in p.tags if k.lower() in keys]
        clash = keys & set(lowered)
        if clash:
            raise _invalid_parameter(
                "One or more of the specified transitive tag keys can't be set because they conflict with a "
                "transitive tag key inherited from the role session."
            )
        transitive = [*p.transitive_tag_keys, *transitive]
    return inherited + passed, transitive, passed


async def assume_role(call: QueryCall) -> dict[str, Any]:
    p = call.principal
    params = call.params
    role_arn = params["RoleArn"]
    parsed = parse_iam_arn(role_arn, "role")
    if parsed is None or not parsed[0].isdigit() or len(parsed[0]) != 12:
        raise errors.validation_error(f"{role_arn} is invalid")
    account, _, role_name = parsed
    denied = errors.not_authorized(p.arn, "sts:AssumeRole", role_arn)
    if p.kind == "Account":
        raise errors.access_denied("Roles may not be assumed by root accounts.")
    role = await call.store.get_role(account, role_name)
    if role is None or role["arn"] != role_arn:
        raise denied
    if break_glass_settings(role) is None and not p.break_glass:
        return await _assume(call, role, None)
    attempt = glass.Attempt(call, role)
    try:
        return await _assume(call, role, attempt)
    except errors.ApiError as refusal:
        await attempt.refused(refusal)  # alerted (and audited as break-glass), then refused
        raise


async def _assume(call: QueryCall, role: dict[str, Any], attempt: glass.Attempt | None) -> dict[str, Any]:
    p = call.principal
    params = call.params
    account = role["arn"].split(":")[4]
    session_name = params["RoleSessionName"]
    chained = p.kind == "AssumedRole"
    duration = params.get("DurationSeconds")
    if chained and duration is not None and duration > CHAINED_MAX_SECONDS:
        raise errors.validation_error(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
        )
    if duration is not None and duration > role["max_session"]:
        raise errors.validation_error(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        )
    duration = duration or 3600

    session_policy = params.get("Policy")
    if session_policy is not None:
        if len(session_policy) > SESSION_POLICY_LIMIT:
            raise _too_long("policy", session_policy, SESSION_POLICY_LIMIT)
        check_document(session_policy, PolicyKind.SESSION, SESSION_POLICY_LIMIT, "PolicySize")
    policy_arns = [d.get("arn", "") for d in params.get("PolicyArns", [])]
    if len(policy_arns) > MAX_POLICY_ARNS:
        raise _too_long("policyArns", policy_arns, MAX_POLICY_ARNS)
    for arn in policy_arns:
        if parse_iam_arn(arn, "policy") is None:
            raise errors.invalid_input(f"ARN {arn} is not valid.")

    tags, transitive, passed = _session_tags(call)
    if len(tags) > 50:
        raise errors.packed_policy_too_large("Packed size of session tags exceeds the limit.")

    source_identity = params.get("SourceIdentity")
    if p.source_identity and source_identity and source_identity != p.source_identity:
        raise errors.access_denied("SourceIdentity cannot be changed once it is set in a role chain.")

    mfa_present: bool | None = None
    mfa_time: float | None = None
    serial, code = params.get("SerialNumber"), params.get("TokenCode")
    if serial or code:
        if not (serial and code):
            raise errors.validation_error("SerialNumber and TokenCode must be passed together.")
        check_token_code_format(code)
        if not await check_code(call.store, p.account, p.username, serial, code, call.now):
            raise mfa_failed()
        mfa_present, mfa_time = True, call.now
    elif p.session_kind == "GetSessionToken" and p.mfa_authenticated:
        mfa_present, mfa_time = True, p.mfa_auth_time

    extra: dict[str, object] = {"sts:RoleSessionName": session_name}
    if params.get("ExternalId") is not None:
        extra["sts:ExternalId"] = params["ExternalId"]
    if source_identity:
        extra["sts:SourceIdentity"] = source_identity
    if transitive:
        extra["sts:TransitiveTagKeys"] = tuple(transitive)
    if mfa_present:
        extra["aws:MultiFactorAuthPresent"] = True
        extra["aws:MultiFactorAuthAge"] = int(call.now - (mfa_time or call.now))
    request_tags = {k: v for k, v in passed}
    tag_keys = [k for k, _ in passed] if passed else None
    await check_trust(
        call, role, "sts:AssumeRole", extra_keys=extra, request_tags=request_tags, tag_keys=tag_keys
    )
    if passed:
        await check_trust(
            call, role, "sts:TagSession", extra_keys=extra, request_tags=request_tags, tag_keys=tag_keys
        )
    if source_identity and source_identity != p.source_identity:
        await check_trust(
            call, role, "sts:SetSourceIdentity", extra_keys=extra, request_tags=None, tag_keys=None
        )

    access_key = new_unique_id("ASIA")
    extra_principal: dict[str, Any] = {}
    if attempt is not None:  # break-glass: the rules, the approval, then the alert, before any credential
        duration = await attempt.admit(duration, fresh_mfa=bool(serial and code and mfa_present),
                                       session_id=access_key)
        extra_principal = attempt.principal_fields(access_key)

    session_arn = f"arn:aws:sts::{account}:assumed-role/{role['name']}/{session_name}"
    userid = f"{role['role_id']}:{session_name}"
    principal = {
        "arn": session_arn,
        "principal_arn": role["arn"],
        "account": account,
        "kind": "AssumedRole",
        "userid": userid,
        "role_name": role["name"],
        "role_id": role["role_id"],
        "session_name": session_name,
        "tags": [[k, v] for k, v in tags],
        "transitive_tag_keys": transitive,
        "mfa_authenticated": bool(mfa_present),
        "mfa_auth_time": mfa_time,
        "source_identity": source_identity or p.source_identity,
        "session_policy": session_policy,
        "session_policy_arns": policy_arns,
        "role_chained": chained,
        "source_arn": p.arn,
        **extra_principal,
    }
    if attempt is not None:
        await attempt.queue_alert(session_arn, access_key, call.now + duration)
    creds = await mint(
        call.store,
        account=account,
        kind="AssumeRole",
        principal=principal,
        duration=duration,
        now=call.now,
        access_key=access_key,
    )
    packed = 0
    if session_policy or tags:
        size = len(json.dumps(json.loads(session_policy), separators=(",", ":"))) if session_policy else 0
        size += sum(len(k) + len(v) for k, v in tags)
        packed = max(1, min(100, size * 100 // 4096))
    result: dict[str, Any] = {
        "Credentials": creds.shape(),
        "AssumedRoleUser": {"AssumedRoleId": userid, "Arn": session_arn},
    }
    if packed:
        result["PackedPolicySize"] = packed
    if principal["source_identity"]:
        result["SourceIdentity"] = principal["source_identity"]
    return result
