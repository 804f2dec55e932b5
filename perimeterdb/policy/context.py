"""The request context: who asks, for what action on which resource, and the condition keys.

``ContextKeys`` is a case-insensitive mapping of condition-key names to a string or a tuple of strings
("Context key names are not case-sensitive"; tag keys under ``aws:PrincipalTag/``, ``aws:RequestTag/``
and ``aws:ResourceTag/`` therefore match case-insensitively too). Absent keys are simply absent.

``standard_keys`` builds the global keys following the "present when" rules of the IAM global condition
keys page (see /work/shared/reference/aws-access-control.md section 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

__all__ = [
    "ContextKeys",
    "NetworkOrigin",
    "PrincipalInfo",
    "RequestContext",
    "build_context",
    "standard_keys",
]

ContextValue = str | tuple[str, ...]


class ContextKeys(Mapping[str, ContextValue]):
    """An immutable, case-insensitive mapping of condition keys to values."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, object] | Iterable[tuple[str, object]] = ()) -> None:
        items = data.items() if isinstance(data, Mapping) else data
        out: dict[str, ContextValue] = {}
        for key, value in items:
            norm = _normalise(value)
            if norm is not None:
                out[key.lower()] = norm
        self._data = out

    def __getitem__(self, key: str) -> ContextValue:
        return self._data[key.lower()]

    def get(self, key: str, default: object = None) -> ContextValue | None:  # type: ignore[override]
        return self._data.get(key.lower(), default)  # type: ignore[arg-type]

    def lookup(self, lower_key: str) -> ContextValue | None:
        """Fast path for callers that already lower-cased the key."""
        return self._data.get(lower_key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ContextKeys({self._data!r})"

    def merged(self, extra: Mapping[str, object]) -> ContextKeys:
        new = ContextKeys()
        new._data = dict(self._data)
        for key, value in extra.items():
            norm = _normalise(value)
            if norm is None:
                new._data.pop(key.lower(), None)
            else:
                new._data[key.lower()] = norm
        return new


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


def normalise_value(value: object) -> ContextValue | None:
    """A condition key's value as the context stores it (strings, or tuples of strings; None: absent)."""
    return _normalise(value)


def _normalise(value: object) -> ContextValue | None:
    if type(value) is str:  # the common case on the request path: no conversion at all
        return value
    if value is None:
        return None
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_scalar(v) for v in value)
    return _scalar(value)


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return iso_second(int(dt.timestamp()))


@lru_cache(maxsize=64)
def iso_second(epoch: int) -> str:
    """ISO 8601 text of one second; cached because every request in that second asks for it."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    """The caller as the policy engine sees it.

    ``arn`` is what messages show (the session ARN for a role session); ``principal_arn`` is the value of
    ``aws:PrincipalArn`` (the role ARN for a role session). ``type`` is the ``aws:PrincipalType`` value:
    User | AssumedRole | Account | FederatedUser | Anonymous | Service, or WebIdentityUser / SAMLUser for a
    caller of sts:AssumeRoleWithWebIdentity / WithSAML (``federated_provider`` = the identity provider ARN,
    matched by a ``Principal {"Federated": ...}``). ``source_user_arn`` is, for an STS federated user, the
    ARN of the IAM user who called GetFederationToken.
    """

    arn: str
    principal_arn: str
    account: str
    type: str
    userid: str
    username: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    is_service_linked_role: bool = False
    mfa_present: bool | None = None
    mfa_age_seconds: int | None = None
    token_issue_time: datetime | None = None
    source_identity: str | None = None
    source_user_arn: str | None = None
    org_id: str | None = None
    org_paths: tuple[str, ...] = ()
    federated_provider: str | None = None
    canonical_user: str | None = None

    @property
    def is_root(self) -> bool:
        return self.type == "Account"

    @property
    def is_session(self) -> bool:
        return self.type in ("AssumedRole", "FederatedUser")

    @property
    def is_anonymous(self) -> bool:
        return self.type == "Anonymous"

    @property
    def is_service(self) -> bool:
        return self.type == "Service"

    @property
    def role_arn(self) -> str | None:
        return self.principal_arn if self.type == "AssumedRole" else None


@dataclass(frozen=True, slots=True)
class NetworkOrigin:
    """Where the request came from. ``vpce_id`` set means "through a VPC endpoint"."""

    source_ip: str
    secure_transport: bool = True
    vpc_id: str | None = None
    vpce_id: str | None = None
    vpce_account: str | None = None
    vpce_org_id: str | None = None
    vpce_org_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: PrincipalInfo
    action: str
    resource: str
    resource_account: str | None
    keys: ContextKeys = field(default_factory=ContextKeys)

    @property
    def action_lower(self) -> str:
        return self.action.lower()


def standard_keys(
    principal: PrincipalInfo,
    *,
    origin: NetworkOrigin,
    now: datetime,
    region: str,
    resource_account: str | None = None,
    resource_org_id: str | None = None,
    resource_org_paths: tuple[str, ...] = (),
    resource_tags: Mapping[str, str] | None = None,
    request_tags: Mapping[str, str] | None = None,
    tag_keys: Iterable[str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> ContextKeys:
    """The global condition keys for one request, each present only when AWS would include it."""
    k: dict[str, object] = {}
    p = principal
    signed = not p.is_anonymous
    # IAM principals of an account: users, role sessions, STS federated users, root. Service principals
    # and callers of an external identity provider (web identity, SAML) are not.
    iam = signed and not p.is_service and p.type not in ("WebIdentityUser", "SAMLUser")
    # Principal keys ("Principal key values" table; PrincipalArn/PrincipalIsAWSService: signed requests only).
    if iam:
        k["aws:PrincipalArn"] = p.principal_arn
    if not signed:
        k["aws:PrincipalAccount"] = "anonymous"
    elif p.account:
        k["aws:PrincipalAccount"] = p.account
    if p.is_service:
        # aws:PrincipalServiceName: "present in the request when the call is made by an AWS service
        # principal" (global condition keys page).
        k["aws:PrincipalServiceName"] = p.arn
    k["aws:PrincipalType"] = p.type
    k["aws:userid"] = p.userid if signed else "anonymous"
    if p.type == "User" and p.username:
        k["aws:username"] = p.username
    if signed:
        k["aws:PrincipalIsAWSService"] = p.is_service
    for tag_key, tag_value in p.tags:
        k[f"aws:PrincipalTag/{tag_key}"] = tag_value
    # aws:PrincipalOrgID: "included in the request context only if the principal is a member of an
    # organization" -- every IAM principal of a member account, STS federated users included (the
    # data-perimeter README's "not the case with federated users" is about SAML/OIDC identities).
    if iam and p.org_id:
        k["aws:PrincipalOrgID"] = p.org_id
        if p.org_paths:
            k["aws:PrincipalOrgPaths"] = tuple(p.org_paths)
    if p.source_identity:
        k["aws:SourceIdentity"] = p.source_identity
    # Session keys: MultiFactorAuthPresent and TokenIssueTime only with temporary credentials.
    if p.token_issue_time is not None:
        k["aws:TokenIssueTime"] = p.token_issue_time
        k["aws:MultiFactorAuthPresent"] = bool(p.mfa_present)
    if p.mfa_present and p.mfa_age_seconds is not None:
        k["aws:MultiFactorAuthAge"] = p.mfa_age_seconds
    # Request keys: always present.
    k["aws:RequestedRegion"] = region
    k["aws:CurrentTime"] = now
    k["aws:EpochTime"] = int(now.timestamp())
    k["aws:SecureTransport"] = origin.secure_transport
    k["aws:ViaAWSService"] = False
    # Network keys: SourceIp XOR the VPC endpoint keys.
    if origin.vpce_id:
        k["aws:SourceVpce"] = origin.vpce_id
        if origin.vpc_id:
            k["aws:SourceVpc"] = origin.vpc_id
        k["aws:VpcSourceIp"] = origin.source_ip
        if origin.vpce_account:
            k["aws:VpceAccount"] = origin.vpce_account
        if origin.vpce_org_id:
            k["aws:VpceOrgID"] = origin.vpce_org_id
            if origin.vpce_org_paths:
                k["aws:VpceOrgPaths"] = tuple(origin.vpce_org_paths)
    else:
        k["aws:SourceIp"] = origin.source_ip
    # Resource keys.
    if resource_account:
        k["aws:ResourceAccount"] = resource_account
    if resource_org_id:
        k["aws:ResourceOrgID"] = resource_org_id
        if resource_org_paths:
            k["aws:ResourceOrgPaths"] = tuple(resource_org_paths)
    for tag_key, tag_value in (resource_tags or {}).items():
        k[f"aws:ResourceTag/{tag_key}"] = tag_value
    for tag_key, tag_value in (request_tags or {}).items():
        k[f"aws:RequestTag/{tag_key}"] = tag_value
    if tag_keys is not None:
        k["aws:TagKeys"] = tuple(tag_keys)
    if extra:
        k.update(extra)
    return ContextKeys(k)


def build_context(
    principal: PrincipalInfo,
    action: str,
    resource: str,
    *,
    resource_account: str | None = None,
    keys: Mapping[str, object] | ContextKeys | None = None,
) -> RequestContext:
    """Convenience constructor (tests, the simulator): keys may be a plain dict."""
    ck = keys if isinstance(keys, ContextKeys) else ContextKeys(keys or {})
    return RequestContext(principal, action, resource, resource_account, ck)
