"""Resource-based policies on tables and streams: validation, revisions, storage in the description.

A table's policy is kept as ``_resource_policy = {"Policy": text, "RevisionId": id}`` and its stream's
as ``_stream_resource_policy`` (same shape). The text is stored exactly as received, and only after the
policy engine has parsed and compiled it (``policy.stored.check_policy``): a document the authorizer could
not enforce is refused here with ValidationException, never stored. Revision ids are millisecond timestamps, strictly increasing per resource,
and putting the same text again keeps the revision.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.catalog import Table
from perimeterdb.dynamodb.tags import ResourceArn, parse_arn
from perimeterdb.policy import PolicyKind, PolicyParseError
from perimeterdb.policy.stored import check_policy

MAX_POLICY_BYTES = 20 * 1024
NO_POLICY = "NO_POLICY"
_INVALID = "One or more parameter values were invalid: "
_DOCUMENT = _INVALID + "Invalid policy document: "
_ACCOUNT = re.compile(r"\d{12}")
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:(iam|sts)::\d{12}:[A-Za-z0-9_+=,.@/:-]+")


def _document(reason: str) -> errors.ApiError:
    return errors.validation(_DOCUMENT + reason)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _check_principal(principal: Any) -> bool:
    """True when the principal is everyone (``*``); raise when it is malformed."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping) or not principal:
        raise errors.validation("Invalid principal in policy document.")
    everyone = False
    for kind, values in principal.items():
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise errors.validation("Invalid principal in policy document.")
        for value in _as_list(values):
            if not isinstance(value, str) or not value:
                raise errors.validation("Invalid principal in policy document.")
            if value == "*":
                everyone = True
            elif kind == "AWS" and not (_ACCOUNT.fullmatch(value) or _PRINCIPAL_ARN.fullmatch(value)):
                raise errors.validation("Invalid principal in policy document.")
    return everyone


def validate_policy(text: Any) -> None:
    """DynamoDB's checks on a resource-based policy document (PutResourcePolicy, CreateTable)."""
    if not isinstance(text, str):
        raise _document("This policy contains invalid Json")
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise errors.validation(_INVALID + f"Maximum policy size of {MAX_POLICY_BYTES} bytes exceeded")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise _document("This policy contains invalid Json") from None
    if not isinstance(document, dict):
        raise _document("This policy contains invalid Json")
    statements = document.get("Statement")
    if not statements:
        raise _document("Could not parse the policy: Statement is empty!")
    sids: set[str] = set()
    for statement in _as_list(statements):
        if not isinstance(statement, dict):
            raise _document("This policy contains invalid Json")
        sid = statement.get("Sid")
        if sid is not None:
            if sid in sids:
                raise _document("The Statement Ids in the policy are not unique")
            sids.add(sid)
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise _document(
                "Missing required field Effect"
                if "Effect" not in statement
                else f"Invalid effect: {statement.get('Effect')}"
            )
        if "Action" not in statement and "NotAction" not in statement:
            raise _document("Missing required field Action")
        if "Resource" not in statement and "NotResource" not in statement:
            raise _document("Missing required field Resource")
        if "Principal" not in statement and "NotPrincipal" not in statement:
            raise _document("Missing required field Principal")
        if "Principal" in statement:
            everyone = _check_principal(statement["Principal"])
            if everyone and statement["Effect"] == "Allow" and not statement.get("Condition"):
                raise errors.validation(
                    "Resource-based policy grants unbounded access in one or more elements. Please revise the "
                    "policy to ensure least-privilege form of access"
                )
    # Everything else the engine checks (condition operators and values, actions, resources, principals):
    # what is stored must be what the authorizer can enforce.
    try:
        check_policy(document, PolicyKind.RESOURCE)
    except PolicyParseError as exc:
        where = f" ({exc.path})" if exc.path else ""
        raise _document(f"{exc.message}{where}") from None


def new_revision(previous: str | None = None) -> str:
    now = int(time.time() * 1000)
    if previous is not None and previous.isdigit():
        now = max(now, int(previous) + 1)
    return str(now)


@dataclass(frozen=True, slots=True)
class PolicyTarget:
    table: Table
    arn: ResourceArn
    field: str  # _resource_policy | _stream_resource_policy


async def target(call: Call, arn_text: str) -> PolicyTarget:
    """The table (or stream) a policy request names, with DynamoDB's errors for anything else."""
    arn, reason = parse_arn(arn_text)
    if arn is None:
        raise errors.validation(reason)
    if arn.partition != "aws" or arn.region != call.region:
        raise errors.validation(_INVALID + f"Invalid resource Arn: {arn_text}")
    if arn.account != call.account:
        raise errors.validation(
            "This action is only supported by accounts that match the resource owner\u2019s account."
        )
    table = await call.catalog.find(arn.account, arn.region, arn.table)
    if table is None:
        raise errors.resource_not_found(f"Requested resource not found: Table: {arn.table} not found")
    if arn.stream is None:
        return PolicyTarget(table, arn, "_resource_policy")
    if table.description.get("LatestStreamArn") != arn_text:
        raise errors.resource_not_found(
            f"Requested resource not found: Stream: {arn.stream} not found for Table: {arn.table}"
        )
    return PolicyTarget(table, arn, "_stream_resource_policy")


def not_found(arn_text: str) -> errors.ApiError:
    return errors.policy_not_found(
        f"Resource-based policy not found for the provided ResourceArn: {arn_text}"
    )


def check_expected(found: PolicyTarget, current: Mapping[str, Any] | None, expected: str | None) -> None:
    if expected is None:
        return
    name = found.table.name
    if expected == NO_POLICY:
        if current is not None:
            raise errors.policy_not_found(
                "Resource-based policy not found for the provided ResourceArn: Requested policy update expecting "
                f"none to be present for table {name}, but a policy exists with revision id {current['RevisionId']}."
            )
        return
    if current is None:
        raise not_found(found.arn.text)
    if current["RevisionId"] != expected:
        raise errors.policy_not_found(
            "Resource-based policy not found for the provided ResourceArn: Requested update for policy with "
            f"revision id {expected}, but the policy associated to target table {name} has revision id "
            f"{current['RevisionId']}."
        )


async def change(call: Call, found: PolicyTarget, policy: str | None, expected: str | None) -> str:
    """Put (``policy`` text) or delete (None) a policy in one atomic catalog update; return the revision id."""
    table = found.table

    def mutate(description: dict[str, Any]) -> str:
        current = description.get(found.field)
        check_expected(found, current, expected)
        if policy is None:
            if current is None:
                raise not_found(found.arn.text)
            description.pop(found.field, None)
            return new_revision(current["RevisionId"])
        if current is not None and current["Policy"] == policy:
            return str(current["RevisionId"])
        revision = new_revision(current["RevisionId"] if current else None)
        description[found.field] = {"Policy": policy, "RevisionId": revision}
        return revision

    _, revision = await call.catalog.update(table.account, table.region, table.name, mutate)
    return revision
