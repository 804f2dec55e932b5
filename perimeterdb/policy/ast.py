"""The policy language as values: frozen dataclasses produced by ``parse`` and consumed by ``compile``.

Nothing here evaluates anything. Values keep the policy author's spelling (for messages and the
console); normalisation (case folding, wildcard compilation) happens in ``compile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"


class PolicyKind(Enum):
    """Where a policy document is attached; decides which elements it may (or must) carry."""

    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"
    BOUNDARY = "boundary"
    SESSION = "session"
    SCP = "scp"
    RCP = "rcp"
    VPCE = "vpce"

    @property
    def has_principal(self) -> bool:
        """Resource-like policies name a Principal; identity-like policies must not."""
        return self in (PolicyKind.RESOURCE, PolicyKind.TRUST, PolicyKind.RCP, PolicyKind.VPCE)


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class SetQualifier(Enum):
    NONE = ""
    FOR_ALL_VALUES = "ForAllValues"
    FOR_ANY_VALUE = "ForAnyValue"


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """The ``Principal`` / ``NotPrincipal`` element.

    ``wildcard`` is true for ``"*"`` and ``{"AWS": "*"}``. Account ids are kept as written; ``compile``
    turns ``123456789012`` into ``arn:aws:iam::123456789012:root``.
    """

    wildcard: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One (operator, key) pair of a Condition block with its policy values (OR'ed, or NOR'ed if negated).

    ``operator`` is the operator as written (``ForAnyValue:StringLikeIfExists``); ``base`` is the bare
    operator name (``StringLike``) in its canonical spelling.
    """

    operator: str
    base: str
    qualifier: SetQualifier
    if_exists: bool
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Statement:
    index: int
    effect: Effect
    sid: str | None = None
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    principal: PrincipalSpec | None = None
    not_principal: PrincipalSpec | None = None
    conditions: tuple[ConditionClause, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    kind: PolicyKind
    version: str | None
    statements: tuple[Statement, ...]
    id: str | None = None

    @property
    def supports_variables(self) -> bool:
        """Policy variables exist only in the 2012-10-17 language; elsewhere ``${x}`` is literal text."""
        return self.version == VERSION_2012
