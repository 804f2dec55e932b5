"""The condition keys of an IAM request, as AWS puts them in the request context.

- ``iam:PermissionsBoundary``: the boundary being set (CreateUser, CreateRole, Put*PermissionsBoundary), or
  the boundary the target user or role already has (every other action on it). This is what lets a
  platform team allow feature teams to create and change roles only with the approved boundary.
- ``iam:PolicyARN``: the managed policy being attached or detached.
- ``aws:RequestTag/*`` and ``aws:TagKeys``: the tags passed (Create*, Tag*; keys only for Untag*).
- ``aws:ResourceTag/*``: the target user's or role's tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from perimeterdb.world.identities import IdentityStore

_ENTITY = re.compile(r"arn:aws:iam::(\d{12}):(user|role)/(?:.*/)?([^/]+)$")
_SETS_BOUNDARY = frozenset(
    {"iam:CreateUser", "iam:CreateRole", "iam:PutUserPermissionsBoundary", "iam:PutRolePermissionsBoundary"}
)


@dataclass
class IamContext:
    extra_keys: dict[str, object] = field(default_factory=dict)
    request_tags: dict[str, str] | None = None
    tag_keys: list[str] | None = None
    resource_tags: dict[str, str] | None = None


async def iam_context(store: IdentityStore, action: str, resource: str, params: dict[str, Any]) -> IamContext:
    out = IamContext()
    entity = None
    found = _ENTITY.match(resource)
    if found is not None:
        account, kind, name = found.groups()
        entity = await (store.get_user(account, name) if kind == "user" else store.get_role(account, name))
    if action in _SETS_BOUNDARY:
        if params.get("PermissionsBoundary"):
            out.extra_keys["iam:PermissionsBoundary"] = params["PermissionsBoundary"]
    elif entity is not None and entity.get("boundary"):
        out.extra_keys["iam:PermissionsBoundary"] = entity["boundary"]
    if params.get("PolicyArn") and action.startswith(("iam:Attach", "iam:Detach")):
        out.extra_keys["iam:PolicyARN"] = params["PolicyArn"]
    tags = params.get("Tags")
    if isinstance(tags, list) and action.startswith(("iam:Create", "iam:Tag")):
        out.request_tags = {t["Key"]: t.get("Value", "") for t in tags if isinstance(t, dict) and "Key" in t}
        out.tag_keys = list(out.request_tags)
    elif isinstance(params.get("TagKeys"), list) and action.startswith("iam:Untag"):
        out.tag_keys = [str(k) for k in params["TagKeys"]]
    if entity is not None and entity.get("tags"):
        out.resource_tags = {t["Key"]: t["Value"] for t in entity["tags"]}
    return out
