"""A signing credential as the verifier sees it: an access key, its secret, and whom it stands for."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from perimeterdb.auth.principal import Principal


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    access_key: str
    secret: str
    principal: Principal
    active: bool = True
    session_token: str | None = None
    expires_at: float | None = None  # epoch seconds; None for long-term keys

    def token_matches(self, provided: str | None) -> bool:
        if self.session_token is None or provided is None:
            return False
        return hmac.compare_digest(self.session_token.encode(), provided.encode())

    def __repr__(self) -> str:  # never print the secret
        return f"CredentialRecord(access_key={self.access_key!r}, principal={self.principal.arn!r})"


OriginLookup = Callable[[str], Awaitable[dict[str, Any] | None]]


async def lineage_bound(
    row: dict[str, Any], record: CredentialRecord, origin_row: OriginLookup
) -> CredentialRecord:
    """The credential as break-glass lineage and revocation leave it (see ``breakglass/lineage.py``).

    ``row``: the stored session or access-key row; ``origin_row(id)``: the stored row of a session.
    - a revoked credential (``row["revoked"]``) is inactive: the verifier answers as for an unknown key
      (UnrecognizedClient / InvalidClientTokenId);
    - a credential derived from a break-glass session (``origin_session`` in a session's principal, or
      ``break_glass`` in a key row) is break-glass, is inactive once its origin is revoked or gone, and
      expires no later than its origin (an access key then answers ExpiredToken, like a session).
    Fail closed: an origin that cannot be found makes the credential inactive."""
    principal = row.get("principal") or {}
    marker = row.get("break_glass") if isinstance(row.get("break_glass"), dict) else None
    origin_id = (marker or {}).get("origin_session") or principal.get("origin_session")
    # Inactive, but still known as break-glass: a use with the right signature is audited and alerted as such.
    inactive = dataclasses.replace(
        record, active=False,
        principal=dataclasses.replace(record.principal, break_glass=True) if origin_id else record.principal,
    )
    if row.get("revoked"):
        return inactive
    if not origin_id:
        return record
    expires = record.expires_at
    if origin_id != record.access_key:
        origin = await origin_row(str(origin_id))
        if origin is None or origin.get("revoked"):
            return inactive
        origin_expires = float(origin["expires"])
        expires = origin_expires if expires is None else min(expires, origin_expires)  # verify: ExpiredToken
        # A chained session minted while its parent was being revoked is not marked by the revocation:
        # its revoked parent session makes it inactive (a key's parent keys are marked with it).
        parent_id = principal.get("parent_session") or (marker or {}).get("session")
        if parent_id and parent_id not in (origin_id, record.access_key) and str(parent_id).startswith("ASIA"):
            parent = await origin_row(str(parent_id))
            if parent is None or parent.get("revoked"):
                return inactive
    flagged = dataclasses.replace(
        record.principal,
        break_glass=True,
        break_glass_origin=str(origin_id),
        review_required=bool(principal.get("review_required") or (marker or {}).get("review_required")),
        expires_at=expires,
    )
    return dataclasses.replace(record, principal=flagged, expires_at=expires)
