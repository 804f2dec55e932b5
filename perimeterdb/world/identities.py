"""Accounts, IAM users and their access keys, kept in the storage engine's metadata spaces.

Records are JSON documents. Secret access keys are sealed by a ``SecretBox`` before they are stored and
are only ever opened in memory to verify a signature. Lookups by access key are cached; every write
through this store drops the cache entry so a deactivated key stops working on the next request.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

import orjson

from perimeterdb.auth.credentials import CredentialRecord
from perimeterdb.auth.principal import Principal
from perimeterdb.auth.secretbox import SecretBox
from perimeterdb.storage.engine import Decision, Put, RowKey, StorageEngine

ACCOUNTS = "meta:accounts"
USERS = "meta:users"
ACCESS_KEYS = "meta:access-keys"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"

_UPPER_DIGITS = string.ascii_uppercase + "234567"


def meta_key(space: str, name: str) -> RowKey:
    return RowKey(space, b"", name.encode("utf-8"), b"")


def new_unique_id(prefix: str) -> str:
    """IAM-style unique ids: a 4-letter prefix (AIDA, AROA, AKIA, ASIA) and 16 upper-case characters."""
    return prefix + "".join(secrets.choice(_UPPER_DIGITS) for _ in range(16))


def new_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    access_key_id: str
    secret_access_key: str


class IdentityStore:
    def __init__(self, engine: StorageEngine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box
        self._credentials: dict[str, CredentialRecord | None] = {}

    # --- reads -------------------------------------------------------------------------------------

    async def _get(self, space: str, name: str) -> dict[str, Any] | None:
        raw = await self.engine.get(meta_key(space, name))
        return orjson.loads(raw) if raw is not None else None

    async def list_accounts(self) -> list[dict[str, Any]]:
        rows = await self.engine.scan(ACCOUNTS)
        return [orjson.loads(r.value) for r in rows]

    async def get_user(self, account: str, name: str) -> dict[str, Any] | None:
        return await self._get(USERS, f"{account}/{name}")

    async def credential(self, access_key: str) -> CredentialRecord | None:
        """The signing credential of an access key, or ``None`` when it does not exist."""
        if access_key in self._credentials:
            return self._credentials[access_key]
        record = await self._load_credential(access_key)
        self._credentials[access_key] = record
        return record

    async def _load_credential(self, access_key: str) -> CredentialRecord | None:
        key = await self._get(ACCESS_KEYS, access_key)
        if key is None:
            return None
        user = await self.get_user(key["account"], key["user"])
        if user is None:
            return None
        principal = Principal(
            arn=user["arn"],
            principal_arn=user["arn"],
            account=key["account"],
            kind="User",
            userid=user["user_id"],
            username=user["name"],
            tags=tuple((t["Key"], t["Value"]) for t in user.get("tags", [])),
        )
        secret = self.box.open(key["secret"], context=access_key)
        return CredentialRecord(access_key, secret, principal, active=key["status"] == "Active")

    def forget(self, access_key: str | None = None) -> None:
        """Drop cached credentials (one key, or all) after a change."""
        if access_key is None:
            self._credentials.clear()
        else:
            self._credentials.pop(access_key, None)

    # --- writes ------------------------------------------------------------------------------------

    async def bootstrap(self, region: str) -> tuple[str, NewAccessKey] | None:
        """On an empty store: an account, an administrator user and its access key, in one atomic write."""
        if await self.list_accounts():
            return None
        account = new_account_id()
        now = time.time()
        user = {
            "name": "admin",
            "account": account,
            "path": "/",
            "arn": f"arn:aws:iam::{account}:user/admin",
            "user_id": new_unique_id("AIDA"),
            "created": now,
            "attached_policies": [ADMIN_POLICY_ARN],
            "tags": [],
        }
        key = NewAccessKey(new_unique_id("AKIA"), new_secret_key())
        key_record = {
            "id": key.access_key_id,
            "account": account,
            "user": "admin",
            "secret": self.box.seal(key.secret_access_key, context=key.access_key_id),
            "status": "Active",
            "created": now,
        }
        account_record = {"id": account, "name": "admin", "created": now, "home_region": region}
        changes = [
            Put(meta_key(ACCOUNTS, account), orjson.dumps(account_record)),
            Put(meta_key(USERS, f"{account}/admin"), orjson.dumps(user)),
            Put(meta_key(ACCESS_KEYS, key.access_key_id), orjson.dumps(key_record)),
        ]
        await self.engine.atomic((), lambda _: Decision(changes))
        return account, key
