"""Who is calling: the authenticated principal, as a value the policy engine and the audit log read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``arn`` is what AWS shows in messages (the session ARN for a role session); ``principal_arn`` is the value
    of ``aws:PrincipalArn`` (the role ARN for a role session). ``kind`` is the ``aws:PrincipalType`` value.
    """

    arn: str
    principal_arn: str
    account: str
    kind: str  # User | AssumedRole | Account | FederatedUser
    userid: str
    username: str | None = None
    role_name: str | None = None
    session_name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    mfa_authenticated: bool | None = None
    mfa_auth_time: float | None = None
    token_issue_time: float | None = None
    source_identity: str | None = None
    session_policies: tuple[str, ...] | None = None  # policy documents (JSON text) passed to the session
    session_policy_arns: tuple[str, ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    role_chained: bool = False
    break_glass: bool = False
    # The break-glass session at the root of this credential's lineage (its ASIA… id), when break_glass.
    break_glass_origin: str | None = None
    review_required: bool = False  # a break-glass session opened without approval ("emergency")
    # Added for STS sessions (issue #5): what minted the credential and when it ends.
    session_kind: str | None = None  # "AssumeRole" | "GetSessionToken"; None for long-term keys
    access_key_id: str | None = None  # the key that signed the request (AKIA… or ASIA…)
    expires_at: float | None = None  # epoch seconds; None for long-term keys
    role_id: str | None = None  # AROA… for a role session
    source_arn: str | None = None  # who called AssumeRole / GetSessionToken (the session's parent)
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_root(self) -> bool:
        return self.kind == "Account"

    @property
    def is_session(self) -> bool:
        return self.kind in ("AssumedRole", "FederatedUser") or self.token_issue_time is not None
