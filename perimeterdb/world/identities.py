"""Accounts, IAM users, groups, roles, managed policies, access keys, MFA devices and STS sessions.

Records are JSON documents in the storage engine's metadata spaces. Account-scoped entities are keyed
``RowKey(space, account, lower-cased name)`` (IAM names are unique regardless of case), so one account's
entities are one ``hh`` range. Access keys, sessions and MFA devices are keyed by their global id.

Secrets: secret access keys, session tokens and TOTP seeds are sealed by the ``SecretBox`` before they are
stored and opened only in memory; console passwords are kept as scrypt hashes (``auth/passwords.py``).

Every change goes through ``write`` (one atomic read-decide-write per API call, so no failure leaves a
half-made identity), which bumps ``generation`` and drops the credential and policy caches: a deactivated
key, a detached policy or a new group membership takes effect on the very next request.
"""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from perimeterdb.auth.credentials import CredentialRecord, lineage_bound
from perimeterdb.auth.principal import Principal
from perimeterdb.auth.secretbox import SecretBox, UnsealError
from perimeterdb.storage.engine import Decision, Delete, Put, RowKey, StorageEngine
from perimeterdb.world.managed_policies import managed_policy

log = logging.getLogger(__name__)

ACCOUNTS = "meta:accounts"
USERS = "meta:iam-users"
GROUPS = "meta:iam-groups"
ROLES = "meta:iam-roles"
POLICIES = "meta:iam-policies"
MFA_DEVICES = "meta:iam-mfa"
ACCESS_KEYS = "meta:access-keys"
SESSIONS = "meta:sts-sessions"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"

# Sessions are kept this long after they expire, so that a late request gets "expired", not "invalid".
SESSION_GRACE_SECONDS = 24 * 3600
# The credential cache holds what anonymous clients name too (a miss is cached): bounded in entries, and
# a name longer than any access key id (IAM's AccessKeyId: 16 to 128 characters) is never looked up.
_CREDENTIALS_CACHED_MAX = 10_000
_ACCESS_KEY_MAX = 128
_LAST_USED_EVERY = 60.0

_UPPER_DIGITS = string.ascii_uppercase + "234567"

Record = dict[str, Any]
Change = tuple[RowKey, Record | None]
T = TypeVar("T")


def account_key(space: str, account: str, name: str) -> RowKey:
    return RowKey(space, account.encode(), name.lower().encode("utf-8"), b"")


def global_key(space: str, name: str) -> RowKey:
    return RowKey(space, b"", name.encode("utf-8"), b"")


def meta_key(space: str, name: str) -> RowKey:  # kept for callers of the first version
    return global_key(space, name)


def new_unique_id(prefix: str) -> str:
    """IAM-style unique ids: a 4-letter prefix (AIDA, AROA, AKIA, ASIA, ANPA, AGPA) and 16 characters."""
    return prefix + "".join(secrets.choice(_UPPER_DIGITS) for _ in range(16))


def new_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def tags_of(record: Record) -> list[tuple[str, str]]:
    return [(t["Key"], t["Value"]) for t in record.get("tags", [])]


def merge_tags(
    base: Sequence[tuple[str, str]], override: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """Session tags override role or user tags with the same key, regardless of case."""
    out = {k.lower(): (k, v) for k, v in base}
    for k, v in override:
        out[k.lower()] = (k, v)
    return tuple(out.values())


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """One policy document that applies to a principal. ``id`` is the policy ARN for a managed policy and
    ``inline:<owner arn>:<policy name>`` for an inline one (``inline:<session arn>:session`` for the inline
    session policy)."""

    id: str
    document: str
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class PrincipalPolicies:
    """Everything the authorizer needs from the identity side.

    ``identity``: a user's inline and attached policies plus those of each of its groups, or a role's.
    ``boundary``: the permissions boundary, if one is set. ``session``: the session policies (inline and
    ``PolicyArns``) of a role session, or ``None`` when none were passed (or the caller is no session).
    ``generation`` changes whenever anything in the identity store changes.
    """

    identity: tuple[StoredPolicy, ...]
    boundary: StoredPolicy | None
    session: tuple[StoredPolicy, ...] | None
    generation: int


class IdentityStore:
    def __init__(self, engine: StorageEngine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box
        self.generation = 0
        self._credentials: dict[str, CredentialRecord | None] = {}
        self._policies: dict[tuple[Any, ...], PrincipalPolicies] = {}
        self._last_used_written: dict[str, float] = {}
        self._unseal_failures: set[str] = set()

    # --- low-level reads -----------------------------------------------------------------------------

    async def get(self, space: str, account: str, name: str) -> Record | None:
        raw = await self.engine.get(account_key(space, account, name))
        return orjson.loads(raw) if raw is not None else None

    async def get_global(self, space: str, name: str) -> Record | None:
        raw = await self.engine.get(global_key(space, name))
        return orjson.loads(raw) if raw is not None else None

    async def list(self, space: str, account: str) -> list[Record]:
        lo = account.encode()
        rows = await self.engine.scan(space, hh_lo=lo, hh_hi=lo + b"\x00")
        return [orjson.loads(r.value) for r in rows]

    async def list_global(self, space: str) -> list[Record]:
        return [orjson.loads(r.value) for r in await self.engine.scan(space)]

    async def list_accounts(self) -> list[Record]:
        return await self.list_global(ACCOUNTS)

    async def get_account(self, account: str) -> Record | None:
        return await self.get_global(ACCOUNTS, account)

    async def get_user(self, account: str, name: str) -> Record | None:
        return await self.get(USERS, account, name)

    async def get_role(self, account: str, name: str) -> Record | None:
        return await self.get(ROLES, account, name)

    async def get_group(self, account: str, name: str) -> Record | None:
        return await self.get(GROUPS, account, name)

    async def policy_document(self, arn: str) -> tuple[str, str] | None:
        """The default version (document, version id) of a managed policy, AWS's or an account's."""
        aws = managed_policy(arn)
        if aws is not None:
            return aws.document, aws.version_id
        record = await self.get_policy_by_arn(arn)
        if record is None:
            return None
        version = record["default_version"]
        return record["versions"][version]["document"], version

    async def get_policy_by_arn(self, arn: str) -> Record | None:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("policy/"):
            return None
        account, name = parts[4], parts[5].rsplit("/", 1)[-1]
        record = await self.get(POLICIES, account, name)
        if record is None or record["arn"] != arn:
            return None
        return record

    # --- writes --------------------------------------------------------------------------------------

    async def write(
        self, keys: Sequence[RowKey], decide: Callable[[list[Record | None]], tuple[Sequence[Change], T]]
    ) -> T:
        """One atomic read-decide-write over JSON records; ``decide`` may raise to write nothing."""

        def raw(values: list[bytes | None]) -> Decision:
            decoded = [orjson.loads(v) if v is not None else None for v in values]
            changes, result = decide(decoded)
            rows = [Put(k, orjson.dumps(v)) if v is not None else Delete(k) for k, v in changes]
            return Decision(rows, result)

        try:
            return await self.engine.atomic(keys, raw)  # type: ignore[no-any-return]
        finally:
            self.changed()

    def changed(self) -> None:
        """Something changed: every cached credential and policy set is stale from now on."""
        self.generation += 1
        self._credentials.clear()
        self._policies.clear()

    def forget(self, access_key: str | None = None) -> None:
        """Drop cached credentials (one key, or all) after a change."""
        if access_key is None:
            self._credentials.clear()
        else:
            self._credentials.pop(access_key, None)

    # --- credentials ---------------------------------------------------------------------------------

    async def credential(self, access_key: str) -> CredentialRecord | None:
        """The signing credential of an access key, or ``None`` when it does not exist."""
        if access_key in self._credentials:
            return self._credentials[access_key]
        if len(access_key) > _ACCESS_KEY_MAX:
            return None
        generation = self.generation
        if access_key.startswith("ASIA"):
            record = await self._load_session(access_key)
        else:
            record = await self._load_access_key(access_key)
        if generation == self.generation:  # nothing changed while we were reading
            if len(self._credentials) >= _CREDENTIALS_CACHED_MAX:
                self._credentials.clear()
            self._credentials[access_key] = record
        return record

    async def _load_access_key(self, access_key: str) -> CredentialRecord | None:
        key = await self.get_global(ACCESS_KEYS, access_key)
        if key is None:
            return None
        account = key["account"]
        if key.get("user") is None:
            principal = Principal(
                arn=f"arn:aws:iam::{account}:root",
                principal_arn=f"arn:aws:iam::{account}:root",
                account=account,
                kind="Account",
                userid=account,
                access_key_id=access_key,
            )
        else:
            user = await self.get_user(account, key["user"])
            if user is None:
                return None
            principal = Principal(
                arn=user["arn"],
                principal_arn=user["arn"],
                account=account,
                kind="User",
                userid=user["user_id"],
                username=user["name"],
                tags=tuple(tags_of(user)),
                access_key_id=access_key,
            )
        secret = self._unseal(key["secret"], access_key)
        if secret is None:
            return None
        record = CredentialRecord(access_key, secret, principal, active=key["status"] == "Active")
        return await lineage_bound(key, record, self._session_row)  # break-glass lineage, revocation

    def _unseal(self, token: str, context: str) -> str | None:
        """A sealed secret, or None when it does not open: the key is then treated as unknown (the caller
        gets the usual signature error, never a 500), and the failure is logged once per record."""
        try:
            return self.box.open(token, context=context)
        except UnsealError as exc:
            if context not in self._unseal_failures:
                if len(self._unseal_failures) > 10_000:
                    self._unseal_failures.clear()
                self._unseal_failures.add(context)
                log.error("%s: the credential is refused (a damaged record, or a key file it was not sealed "
                          "under)", exc)
            return None

    async def _load_session(self, access_key: str) -> CredentialRecord | None:
        session = await self.get_global(SESSIONS, access_key)
        if session is None:
            return None
        p = session["principal"]
        tags = [tuple(t) for t in p.get("tags", [])]
        if p["kind"] == "AssumedRole":
            role = await self.get_role(p["account"], p["role_name"])
            base = tags_of(role) if role is not None else []
            tags = list(merge_tags(base, [(k, v) for k, v in tags]))
        elif p["kind"] == "User" and p.get("username"):
            user = await self.get_user(p["account"], p["username"])
            if user is None:
                return None
            tags = tags_of(user)
        principal = Principal(
            arn=p["arn"],
            principal_arn=p["principal_arn"],
            account=p["account"],
            kind=p["kind"],
            userid=p["userid"],
            username=p.get("username"),
            role_name=p.get("role_name"),
            session_name=p.get("session_name"),
            tags=tuple((str(k), str(v)) for k, v in tags),
            mfa_authenticated=p.get("mfa_authenticated"),
            mfa_auth_time=p.get("mfa_auth_time"),
            token_issue_time=session["created"],
            source_identity=p.get("source_identity"),
            session_policies=(p["session_policy"],) if p.get("session_policy") else None,
            session_policy_arns=tuple(p.get("session_policy_arns", ())),
            transitive_tag_keys=tuple(p.get("transitive_tag_keys", ())),
            role_chained=bool(p.get("role_chained")),
            break_glass=bool(p.get("break_glass")),
            session_kind=session["kind"],
            access_key_id=access_key,
            expires_at=session["expires"],
            role_id=p.get("role_id"),
            source_arn=p.get("source_arn"),
        )
        secret = self._unseal(session["secret"], access_key)
        token = self._unseal(session["token"], access_key + ":token")
        if secret is None or token is None:
            return None
        record = CredentialRecord(
            access_key, secret, principal, active=True, session_token=token, expires_at=session["expires"]
        )
        return await lineage_bound(session, record, self._session_row)  # break-glass lineage, revocation

    async def _session_row(self, access_key: str) -> Record | None:
        return await self.get_global(SESSIONS, access_key)

    async def note_key_used(self, access_key: str, service: str, region: str) -> None:
        """Record an access key's last use (at most once a minute per key; sessions are not tracked)."""
        if not access_key.startswith("AKIA"):
            return
        now = time.time()
        if now - self._last_used_written.get(access_key, 0.0) < _LAST_USED_EVERY:
            return
        self._last_used_written[access_key] = now
        key = global_key(ACCESS_KEYS, access_key)

        def decide(values: list[bytes | None]) -> Decision:
            if values[0] is None:
                return Decision(())
            record = orjson.loads(values[0])
            record["last_used"] = {"date": now, "service": service, "region": region}
            return Decision([Put(key, orjson.dumps(record))])

        await self.engine.atomic([key], decide)  # no cache holds last-used data: nothing to invalidate

    # --- policies ------------------------------------------------------------------------------------

    async def policies_for(self, principal: Principal) -> PrincipalPolicies:
        """The identity policies, permissions boundary and session policies of a principal, as documents."""
        cache_key = (
            principal.kind,
            principal.arn,
            principal.principal_arn,
            principal.session_policies,
            principal.session_policy_arns,
        )
        cached = self._policies.get(cache_key)
        if cached is not None and cached.generation == self.generation:
            return cached
        generation = self.generation
        identity: list[StoredPolicy] = []
        boundary: StoredPolicy | None = None
        owner: Record | None = None
        if principal.kind == "User" and principal.username:
            owner = await self.get_user(principal.account, principal.username)
            if owner is not None:
                for group_name in owner.get("groups", []):
                    group = await self.get_group(principal.account, group_name)
                    if group is not None:
                        identity += await self._entity_policies(group)
        elif principal.kind == "AssumedRole" and principal.role_name:
            owner = await self.get_role(principal.account, principal.role_name)
        if owner is not None:
            identity = await self._entity_policies(owner) + identity
            if owner.get("boundary"):
                found = await self.policy_document(owner["boundary"])
                if found is not None:
                    boundary = StoredPolicy(owner["boundary"], found[0], found[1])
        session: list[StoredPolicy] | None = None
        if principal.kind == "AssumedRole" and (principal.session_policies or principal.session_policy_arns):
            session = [
                StoredPolicy(f"inline:{principal.arn}:session", doc)
                for doc in principal.session_policies or ()
            ]
            for arn in principal.session_policy_arns:
                found = await self.policy_document(arn)
                if found is not None:
                    session.append(StoredPolicy(arn, found[0], found[1]))
        result = PrincipalPolicies(
            tuple(identity), boundary, tuple(session) if session is not None else None, generation
        )
        if generation == self.generation:
            self._policies[cache_key] = result
        return result

    async def _entity_policies(self, entity: Record) -> list[StoredPolicy]:
        out = [
            StoredPolicy(f"inline:{entity['arn']}:{name}", doc)
            for name, doc in entity.get("inline", {}).items()
        ]
        for arn in entity.get("attached", []):
            found = await self.policy_document(arn)
            if found is not None:
                out.append(StoredPolicy(arn, found[0], found[1]))
        return out

    # --- accounts ------------------------------------------------------------------------------------

    def account_changes(self, name: str, region: str, account: str | None = None) -> tuple[str, list[Change]]:
        """The rows of a new account (its root user needs no row: ``arn:aws:iam::<id>:root``)."""
        account = account or new_account_id()
        record = {"id": account, "name": name, "created": time.time(), "home_region": region}
        return account, [(global_key(ACCOUNTS, account), record)]

    async def create_account(self, name: str, region: str, account: str | None = None) -> str:
        """A new account with its root user, for Organizations and the world importer."""
        account, changes = self.account_changes(name, region, account)

        def decide(values: list[Record | None]) -> tuple[Sequence[Change], str]:
            if values[0] is not None:
                raise ValueError(f"account {account} exists")
            return changes, account

        return await self.write([global_key(ACCOUNTS, account)], decide)

    def access_key_changes(self, account: str, user: str | None) -> tuple[NewAccessKey, Record]:
        key = NewAccessKey(new_unique_id("AKIA"), new_secret_key())
        record = {
            "id": key.access_key_id,
            "account": account,
            "user": user,
            "secret": self.box.seal(key.secret_access_key, context=key.access_key_id),
            "status": "Active",
            "created": time.time(),
            "last_used": None,
        }
        return key, record

    async def bootstrap(self, region: str) -> tuple[str, NewAccessKey] | None:
        """On an empty store: an account, an administrator user and its access key, in one atomic write.

        On a data directory from before ``secret.check`` (the box has just written one), first make sure the
        key file opens the stored secrets: ``KeyFileError`` otherwise (the server refuses to start)."""
        if await self.list_accounts():
            if self.box.new_check is not None:
                for row in await self.engine.scan(ACCESS_KEYS, limit=1):
                    record = orjson.loads(row.value)
                    try:
                        self.box.open(record["secret"], context=record["id"])
                    except UnsealError:
                        raise self.box.mismatch() from None
            return None
        account, changes = self.account_changes("admin", region)
        key, key_record = self.access_key_changes(account, "admin")
        user = new_user_record(account, "admin", "/")
        user["attached"] = [ADMIN_POLICY_ARN]
        user["access_keys"] = [key.access_key_id]
        changes += [
            (account_key(USERS, account, "admin"), user),
            (global_key(ACCESS_KEYS, key.access_key_id), key_record),
        ]
        await self.write([], lambda _: (changes, None))
        return account, key


def new_user_record(account: str, name: str, path: str, tags: list[dict[str, str]] | None = None) -> Record:
    return {
        "name": name,
        "account": account,
        "path": path,
        "arn": f"arn:aws:iam::{account}:user{path}{name}",
        "user_id": new_unique_id("AIDA"),
        "created": time.time(),
        "tags": tags or [],
        "inline": {},
        "attached": [],
        "groups": [],
        "boundary": None,
        "access_keys": [],
        "login": None,
        "mfa": [],
    }
