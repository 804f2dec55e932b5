"""Policies as they are kept: checked once before they are stored, compiled without ever raising after.

``check_policy`` is what every API that stores a policy calls (PutResourcePolicy, CreateTable's
``ResourcePolicy``, Organizations CreatePolicy/UpdatePolicy, the world file): it parses *and* compiles the
document, so that anything the engine cannot enforce is refused before it is stored.

``compile_stored`` is what every reader of stored policies calls (the authorizer, the organization view).
A stored document can still fail to compile: a row written before validation existed, or written around
it. Such a policy must not turn every request into a 500, and must not silently stop applying either (it
might have been a Deny). So it compiles into a ``BrokenPolicy``: one synthetic statement that denies every
action on every resource to every principal. ``decide`` thus fails closed on it with no special case
(STYLE.md example 8: a Deny that cannot be evaluated counts as matching), the determining statement names
the broken policy (sid ``BrokenPolicy``), and the response's ``errors`` say why it is broken.

The one exception, so that an administrator can always repair a broken resource policy, is
``PolicySet.repair`` (see ``decide``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perimeterdb.policy.ast import Effect, Policy, PolicyKind, PrincipalSpec, Statement
from perimeterdb.policy.compile import (
    CompiledPolicy,
    CompiledStatement,
    PolicyRef,
    StatementRef,
    compile_policy,
)
from perimeterdb.policy.parse import PolicyParseError, parse_policy

__all__ = ["BROKEN_SID", "BrokenPolicy", "BrokenStatement", "check_policy", "compile_stored"]

BROKEN_SID = "BrokenPolicy"


class BrokenStatement(CompiledStatement):
    """The deny-everything statement standing in for a policy that cannot be compiled."""

    __slots__ = ("error",)

    def __init__(self, stmt: Statement, ref: StatementRef, error: str) -> None:
        super().__init__(stmt, ref, variables=False)
        self.error = error


class BrokenPolicy(CompiledPolicy):
    """A stored policy that failed to compile: denies everything, and says why in ``error``."""

    __slots__ = ("error",)

    def __init__(self, kind: PolicyKind, ref: PolicyRef, reason: str) -> None:
        name = f" ({ref.name})" if ref.name else ""
        self.error = (
            f"{ref.kind} policy {ref.policy_id}{name} cannot be compiled ({reason}): "
            "it is treated as an explicit deny of every request it could apply to"
        )
        stmt = Statement(
            index=0,
            effect=Effect.DENY,
            sid=BROKEN_SID,
            actions=("*",),
            resources=None if kind is PolicyKind.TRUST else ("*",),
            principal=PrincipalSpec(wildcard=True) if kind.has_principal else None,
        )
        super().__init__(Policy(kind=kind, version=None, statements=()), ref)
        self.statements = (
            BrokenStatement(stmt, StatementRef(ref.kind, ref.policy_id, BROKEN_SID, 0, ref.arn), self.error),
        )

    def __repr__(self) -> str:
        return f"BrokenPolicy({self.ref!r})"


def check_policy(document: str | bytes | Mapping[str, Any], kind: PolicyKind) -> CompiledPolicy:
    """Parse and compile; any failure is a ``PolicyParseError`` (what a storing API answers with)."""
    parsed = parse_policy(document, kind)
    try:
        return compile_policy(parsed, PolicyRef(kind.value, "check"))
    except Exception as exc:  # whatever the compiler trips on, the document is refused
        raise PolicyParseError("", f"The policy cannot be compiled: {exc}") from None


def compile_stored(
    document: str | bytes | Mapping[str, Any], kind: PolicyKind, ref: PolicyRef
) -> CompiledPolicy:
    """Compile a stored policy; never raises. A document that fails gives a ``BrokenPolicy``."""
    try:
        return compile_policy(parse_policy(document, kind), ref)
    except PolicyParseError as exc:
        return BrokenPolicy(kind, ref, str(exc))
    except Exception as exc:  # fail closed on anything, never a 500 (see the docstring)
        return BrokenPolicy(kind, ref, f"{type(exc).__name__}: {exc}")
