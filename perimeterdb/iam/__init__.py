"""IAM over the Query protocol: one module per concept, each exporting ``OPERATIONS`` (name -> handler)."""

from __future__ import annotations

from perimeterdb.iam import access_keys, boundaries, entities, groups, mfa, policies, roles, users
from perimeterdb.iam.call import Handler

VERSION = "2010-05-08"

OPERATIONS: dict[str, Handler] = {
    **users.OPERATIONS,
    **access_keys.OPERATIONS,
    **roles.OPERATIONS,
    **groups.OPERATIONS,
    **policies.OPERATIONS,
    **entities.OPERATIONS,
    **boundaries.OPERATIONS,
    **mfa.OPERATIONS,
}
