"""What an IAM or STS operation receives: the decoded input, the caller, the store and an authorize hook.

Operations authorize themselves once they know the resource (``await call.authorize(action, arn)``), so
that every IAM action is decided on the ARN it touches, never on ``*`` unless AWS itself uses ``*``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from perimeterdb.auth.principal import Principal
from perimeterdb.iam import errors
from perimeterdb.policy.ast import PolicyKind
from perimeterdb.world.identities import IdentityStore

Authorize = Callable[[str, str], Awaitable[None]]
Handler = Callable[["QueryCall"], Awaitable[dict[str, Any] | None]]


async def _allow(action: str, resource: str) -> None:
    return None


@dataclass
class QueryCall:
    operation: str
    params: dict[str, Any]
    principal: Principal
    store: IdentityStore
    region: str = "us-east-1"
    authorize: Authorize = _allow
    now: float = field(default_factory=time.time)
    origin: Any = None  # server.network.NetworkOrigin of the request
    authorizer: Any = None  # the runtime's Authorizer, for STS's cross-account identity check

    def __post_init__(self) -> None:
        # Every IAM action passes the sealed break-glass guardrail first (iam/guardrail.py), whatever the
        # caller's policies and SCPs say: it is the one place every operation authorizes through.
        self.authorize = self._guarded(self.authorize)

    def _guarded(self, hook: Authorize) -> Authorize:
        async def authorize(action: str, resource: str) -> None:
            from perimeterdb.iam import guardrail

            found = await guardrail.evaluate(
                self.principal,
                action,
                resource,
                self.store,
                getattr(self.authorizer, "organizations", None),
                region=self.region,
                source_ip=getattr(self.origin, "source_ip", None) or "127.0.0.1",
            )
            if found is not None:
                shown, response = found
                note = getattr(self.authorizer, "note", None)
                if note is not None:  # the audit record names the guardrail's statement
                    note(guardrail.GuardrailDecision(action, resource, response))
                guardrail.raise_if_denied(shown, response)
            await hook(action, resource)

        return authorize

    @property
    def account(self) -> str:
        return self.principal.account

    def arn(self, kind: str, path: str, name: str) -> str:
        return f"arn:aws:iam::{self.account}:{kind}{path}{name}"

    async def caller_user_name(self, given: str | None) -> str:
        """``UserName`` or, when omitted, the calling IAM user's own name (AWS's implicit user)."""
        if given:
            return given
        if self.principal.kind == "User" and self.principal.username:
            return self.principal.username
        raise errors.validation_error("Must specify userName when calling with non-User credentials")


def tag_list(params: dict[str, Any]) -> list[dict[str, str]]:
    tags = [{"Key": t["Key"], "Value": t.get("Value", "")} for t in params.get("Tags", [])]
    if len(tags) > 50:
        raise errors.limit_exceeded(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: "
            "Member must have length less than or equal to 50"
        )
    seen: set[str] = set()
    for t in tags:
        if t["Key"].lower() in seen:
            raise errors.invalid_input(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(t["Key"].lower())
    return tags


def merge_tag_lists(old: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    out = {t["Key"].lower(): t for t in old}
    for t in new:
        out[t["Key"].lower()] = t
    if len(out) > 50:
        raise errors.limit_exceeded("The number of tags has reached the maximum limit.")
    return list(out.values())


def paginate(items: list[Any], params: dict[str, Any], result_key: str) -> dict[str, Any]:
    """IAM's Marker/MaxItems paging (default 100 items); the marker is an opaque offset."""
    start = 0
    marker = params.get("Marker")
    if marker:
        try:
            start = int(base64.b64decode(marker).decode())
        except ValueError:
            raise errors.validation_error("Invalid Marker") from None
    limit = params.get("MaxItems") or 100
    page = items[start : start + limit]
    out: dict[str, Any] = {result_key: page, "IsTruncated": start + limit < len(items)}
    if out["IsTruncated"]:
        out["Marker"] = base64.b64encode(str(start + limit).encode()).decode()
    return out


def check_document(text: str, kind: PolicyKind, limit: int, quota: str) -> str:
    """Validate a policy document with the policy engine; IAM's size quota counts non-whitespace chars."""
    from perimeterdb.policy.parse import PolicyParseError
    from perimeterdb.policy.stored import check_policy

    size = sum(1 for ch in text if not ch.isspace())
    if size > limit:
        raise errors.limit_exceeded(f"Cannot exceed quota for {quota}: {limit}")
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise errors.malformed_policy("Syntax errors in policy.") from None
    try:
        check_policy(text, kind)  # parsed and compiled, as the authorizer will
    except PolicyParseError as exc:
        where = f" ({exc.path})" if exc.path else ""
        raise errors.malformed_policy(f"{exc.message}{where}") from None
    return text


def encode_document(text: str) -> str:
    """IAM returns policy documents URL-encoded (botocore decodes them)."""
    return quote(text, safe="")


def inline_size(inline: dict[str, str]) -> int:
    return sum(sum(1 for ch in doc if not ch.isspace()) for doc in inline.values())


def parse_iam_arn(arn: str, kind: str) -> tuple[str, str, str] | None:
    """``arn:aws:iam::ACCOUNT:<kind>/path/name`` -> (account, path, name), or None if it is not one."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] != "aws" or parts[2] != "iam" or parts[3]:
        return None
    account, resource = parts[4], parts[5]
    if not resource.startswith(kind + "/"):
        return None
    rest = resource[len(kind) :]
    path, _, name = rest.rpartition("/")
    if not name:
        return None
    return account, path + "/", name
