"""STS over the Query protocol: AssumeRole, GetCallerIdentity, GetSessionToken, GetAccessKeyInfo."""

from __future__ import annotations

from perimeterdb.iam.call import Handler
from perimeterdb.sts import assume_role, identity

VERSION = "2011-06-15"

OPERATIONS: dict[str, Handler] = {
    "AssumeRole": assume_role.assume_role,
    "GetCallerIdentity": identity.get_caller_identity,
    "GetSessionToken": identity.get_session_token,
    "GetAccessKeyInfo": identity.get_access_key_info,
}

# Calls that session credentials from GetSessionToken may make (AWS: only these two STS APIs).
ALLOWED_WITH_SESSION_TOKEN = frozenset({"AssumeRole", "GetCallerIdentity"})
