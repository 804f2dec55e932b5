"""perimeterdb.policy: the IAM policy language, pure (no I/O, nothing else from perimeterdb).

Pipeline: ``parse_policy`` (JSON -> ``Policy``) -> ``compile_policy`` (-> ``CompiledPolicy``, cached by the
caller) -> ``decide(RequestContext, PolicySet)`` (-> ``Response``) -> ``access_denied_message``.
Decisions on points where AWS sources conflict are recorded in each module's docstring and in
docs/policy-engine.md.
"""

from perimeterdb.policy.ast import (
    ConditionClause,
    Effect,
    Policy,
    PolicyKind,
    PrincipalSpec,
    SetQualifier,
    Statement,
)
from perimeterdb.policy.compile import (
    CompiledPolicy,
    Grant,
    PolicyRef,
    StatementRef,
    compile_policy,
)
from perimeterdb.policy.conditions import OPERATORS, ConditionError
from perimeterdb.policy.context import (
    ContextKeys,
    NetworkOrigin,
    PrincipalInfo,
    RequestContext,
    build_context,
    standard_keys,
)
from perimeterdb.policy.decide import Decision, PolicySet, Response, decide
from perimeterdb.policy.explain import access_denied_message
from perimeterdb.policy.parse import PolicyParseError, parse_policy

__all__ = [
    "OPERATORS",
    "CompiledPolicy",
    "ConditionClause",
    "ConditionError",
    "ContextKeys",
    "Decision",
    "Effect",
    "Grant",
    "NetworkOrigin",
    "Policy",
    "PolicyKind",
    "PolicyParseError",
    "PolicyRef",
    "PolicySet",
    "PrincipalInfo",
    "PrincipalSpec",
    "RequestContext",
    "Response",
    "SetQualifier",
    "Statement",
    "StatementRef",
    "access_denied_message",
    "build_context",
    "compile_policy",
    "decide",
    "load_policy",
    "parse_policy",
    "standard_keys",
]


def load_policy(document: str | dict, kind: PolicyKind, ref: PolicyRef | None = None) -> CompiledPolicy:
    """parse + compile in one call (tests, the simulator)."""
    policy = parse_policy(document, kind)
    return compile_policy(policy, ref or PolicyRef(kind.value, f"{kind.value}-policy"))
