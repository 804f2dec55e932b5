"""Temporary credentials: minting ``ASIA…`` keys with a secret and a session token, kept server-side.

The session row (keyed by the access key id) holds the sealed secret, the sealed token, the expiry and
the principal the credentials stand for. The verifier compares the presented token with the stored one in
constant time, so a forged or altered token is refused (InvalidClientTokenId / UnrecognizedClient) and a
session past its expiry is refused as expired. Expired rows are purged a day after they expire.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from perimeterdb.world.identities import (
    SESSION_GRACE_SECONDS,
    SESSIONS,
    Change,
    IdentityStore,
    Record,
    global_key,
    new_secret_key,
    new_unique_id,
)

_PURGE_EVERY = 3600.0
_last_purge: dict[int, float] = {}


@dataclass(frozen=True, slots=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float

    def shape(self) -> dict[str, Any]:
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": self.expiration,
        }

    def __repr__(self) -> str:  # never print the secret or the token
        return f"TemporaryCredentials({self.access_key_id!r}, expiration={self.expiration})"


def new_session_token() -> str:
    """An opaque token: 'pdb1' and 192 random bytes, base64 (AWS tokens are opaque base64 too)."""
    return base64.b64encode(b"pdb1" + secrets.token_bytes(192)).decode()


async def mint(
    store: IdentityStore,
    *,
    account: str,
    kind: str,
    principal: dict[str, Any],
    duration: int,
    now: float,
    access_key: str | None = None,
) -> TemporaryCredentials:
    """Create and store a session; one atomic write. ``access_key``: an id chosen beforehand (break-glass
    sessions are named in their alert before they exist)."""
    await _maybe_purge(store, now)
    access_key = access_key or new_unique_id("ASIA")
    creds = TemporaryCredentials(
        access_key, new_secret_key(), new_session_token(), float(int(now) + duration)
    )
    record: Record = {
        "id": access_key,
        "account": account,
        "kind": kind,
        "created": now,
        "expires": creds.expiration,
        "secret": store.box.seal(creds.secret_access_key, context=access_key),
        "token": store.box.seal(creds.session_token, context=access_key + ":token"),
        "principal": principal,
    }
    key = global_key(SESSIONS, access_key)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        if values[0] is not None:  # 16 random characters collided: refuse rather than overwrite
            raise RuntimeError("session id collision")
        return [(key, record)], None

    await store.write([key], decide)
    return creds


async def _maybe_purge(store: IdentityStore, now: float) -> None:
    if now - _last_purge.get(id(store), 0.0) < _PURGE_EVERY:
        return
    _last_purge[id(store)] = now
    stale = [s["id"] for s in await store.list_global(SESSIONS) if s["expires"] + SESSION_GRACE_SECONDS < now]
    if not stale:
        return
    keys = [global_key(SESSIONS, s) for s in stale]
    await store.write([], lambda _: ([(k, None) for k in keys], None))


def seconds_left(principal_expires: float | None) -> float:
    return (principal_expires - time.time()) if principal_expires is not None else float("inf")
