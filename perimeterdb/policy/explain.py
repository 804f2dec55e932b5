"""AWS's AccessDenied message, rendered from a ``Response``.

Format (IAM User Guide, troubleshoot_access-denied): ``User: <principal> is not authorized to perform:
<action> on resource: <resource> because no <type> allows the <action> action`` for an implicit deny, and
``... with an explicit deny in a <type>`` for an explicit one. Since the policy-ARN enhancement (AWS
Security Blog "Enhanced access denied error messages with policy ARNs") an explicit deny by an SCP, RCP,
permissions boundary, session policy or identity-based policy ends with ``: <policy ARN>`` -- only "in
same-account and same-organization scenarios", and only for a policy that has an ARN (inline policies have
none). We add the ARN to explicit denies only: the blog's examples show it there, and an implicit deny has
no single denying policy for the SCP/RCP/identity types.
"""

from __future__ import annotations

from perimeterdb.policy.context import RequestContext
from perimeterdb.policy.decide import Decision, Response

__all__ = ["POLICY_TYPE_NAMES", "access_denied_message"]

POLICY_TYPE_NAMES: dict[str, str] = {
    "identity": "identity-based policy",
    "resource": "resource-based policy",
    "boundary": "permissions boundary",
    "session": "session policy",
    "scp": "service control policy",
    "rcp": "resource control policy",
    "vpce": "VPC endpoint policy",
    "trust": "role trust policy",
}


def access_denied_message(ctx: RequestContext, response: Response) -> str:
    """The ``Message`` of DynamoDB's ``AccessDeniedException`` for this denied request."""
    if response.decision is Decision.ALLOW:
        raise ValueError("the request was allowed")
    who = ctx.principal.arn if not ctx.principal.is_anonymous else "anonymous"
    head = f"User: {who} is not authorized to perform: {ctx.action} on resource: {ctx.resource}"
    kind = response.denied_by
    if kind is None:
        return head
    name = POLICY_TYPE_NAMES.get(kind, f"{kind} policy")
    if response.decision is Decision.EXPLICIT_DENY:
        article = "an" if name[0] in "aeiou" else "a"
        tail = f" with an explicit deny in {article} {name}"
        if response.denied_policy_arn:
            tail += f": {response.denied_policy_arn}"
        return head + tail
    return f"{head} because no {name} allows the {ctx.action} action"
