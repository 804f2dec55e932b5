"""A signing credential as the verifier sees it: an access key, its secret, and whom it stands for."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

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
