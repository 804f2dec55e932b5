"""The world file's per-account part: IAM users, groups, roles, managed policies, MFA devices, fixed access
keys, and DynamoDB tables.

The identity store (``world/identities.py``) has no reconcile-style methods, and the IAM API generates what
a world file must fix (access key secrets, MFA seeds), so this module writes IAM records itself, in the
shapes ``iam/users.py``, ``iam/groups.py``, ``iam/roles.py``, ``iam/policies.py`` and ``iam/mfa.py`` write,
through ``IdentityStore.write`` (atomic, and it bumps the identity generation). Tables go through the
DynamoDB operations themselves (``create_table``, ``put_resource_policy``).

Reconciliation is declarative for what the file declares and additive otherwise: a declared user, role,
group or policy is created or brought to the declared state (inline and attached policies, boundary, tags,
trust, group membership); entities and access keys the file does not mention are left alone.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

from perimeterdb.auth.principal import Principal
from perimeterdb.auth.secretbox import UnsealError
from perimeterdb.policy import PolicyKind, PolicyParseError
from perimeterdb.policy.stored import check_policy
from perimeterdb.world.identities import (
    ACCESS_KEYS,
    GROUPS,
    MFA_DEVICES,
    POLICIES,
    ROLES,
    USERS,
    IdentityStore,
    Record,
    account_key,
    global_key,
    new_unique_id,
    new_user_record,
)
from perimeterdb.world.managed_policies import managed_policy

Where = Callable[..., str]  # where(*path) -> "file:line" for error messages
MAX_POLICY_VERSIONS = 5


class WorldError(ValueError):
    """A world file that cannot be applied; the message names the place (file:line) and the field."""


def compact(document: Any) -> str:
    """The stored form of a document from a world file: compact JSON with sorted keys, so that applying a
    file is idempotent whatever order (or YAML/JSON spelling) its mappings use."""
    if isinstance(document, str):
        document = json.loads(document)
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def checked(document: Any, kind: PolicyKind, where: Where, *path: Any) -> str:
    try:
        text = compact(document)
        check_policy(text, kind)  # parsed and compiled, as the authorizer will
    except (PolicyParseError, ValueError) as exc:
        raise WorldError(f"{where(*path)}: {'.'.join(map(str, path))}: invalid {kind.value} policy: {exc}") from None
    return text


def _opened(box: Any, token: str, context: str) -> str | None:
    """A sealed secret, or None when it does not open (a damaged record): the importer then writes the
    file's value again, the exporter leaves it out; never a traceback."""
    try:
        return str(box.open(token, context=context))
    except UnsealError:
        return None


def _tags(spec: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in (spec or {}).items()]


def root_principal(account: str) -> Principal:
    arn = f"arn:aws:iam::{account}:root"
    return Principal(arn=arn, principal_arn=arn, account=account, kind="Account", userid=account)


class AccountImporter:
    def __init__(self, store: IdentityStore, account: str, spec: dict[str, Any], where: Where, base: tuple[Any, ...]):
        self.store = store
        self.account = account
        self.spec = spec
        self.where = where
        self.base = base
        self.changes: list[str] = []

    def _fail(self, message: str, *path: Any) -> WorldError:
        full = (*self.base, *path)
        return WorldError(f"{self.where(*full)}: {'.'.join(map(str, full))}: {message}")

    def _doc(self, document: Any, kind: PolicyKind, *path: Any) -> str:
        return checked(document, kind, self.where, *self.base, *path)

    def policy_arn(self, ref: str, *path: Any) -> str:
        if ref.startswith("arn:"):
            if managed_policy(ref) is None and f":{self.account}:" not in ref:
                parts = ref.split(":")
                if len(parts) < 6 or parts[2] != "iam":
                    raise self._fail(f"not a policy ARN: {ref}", *path)
            return ref
        declared = (self.spec.get("policies") or {}).get(ref)
        if declared is None:
            raise self._fail(f"no policy named {ref!r} is declared in this account", *path)
        return f"arn:aws:iam::{self.account}:policy{declared.get('path', '/')}{ref}"

    # --- apply ---------------------------------------------------------------------------------------

    async def apply(self) -> list[str]:
        for name, spec in (self.spec.get("policies") or {}).items():
            await self._policy(name, spec)
        members: dict[str, list[str]] = {}
        for user, spec in (self.spec.get("users") or {}).items():
            for group in spec.get("groups") or []:
                if group not in (self.spec.get("groups") or {}) and await self.store.get_group(self.account, group) is None:
                    raise self._fail(f"unknown group {group!r}", "users", user, "groups")
                members.setdefault(group.lower(), []).append(user)
        for name, spec in (self.spec.get("groups") or {}).items():
            await self._group(name, spec, members.get(name.lower(), []))
        for name, spec in (self.spec.get("users") or {}).items():
            await self._user(name, spec)
        for name, spec in (self.spec.get("roles") or {}).items():
            await self._role(name, spec)
        await self._recount()
        return self.changes

    async def _put(self, key: Any, desired: Record, what: str, existing: Record | None) -> None:
        if existing == desired:
            return
        await self.store.write([key], lambda _values: ([(key, desired)], None))
        self.changes.append(f"{'updated' if existing else 'created'} {what}")

    async def _policy(self, name: str, spec: dict[str, Any]) -> None:
        path = spec.get("path", "/")
        document = self._doc(spec["document"], PolicyKind.IDENTITY, "policies", name, "document")
        existing = await self.store.get(POLICIES, self.account, name)
        now = time.time()
        if existing is None:
            record: Record = {
                "name": name, "account": self.account, "path": path,
                "arn": f"arn:aws:iam::{self.account}:policy{path}{name}",
                "policy_id": new_unique_id("ANPA"), "created": now, "updated": now,
                "description": spec.get("description", ""), "default_version": "v1", "next_version": 2,
                "versions": {"v1": {"document": document, "created": now}},
                "attachments": 0, "boundary_uses": 0, "tags": [],
            }
        else:
            record = json.loads(json.dumps(existing))
            current = record["versions"][record["default_version"]]["document"]
            if compact(current) != document:
                version = f"v{record['next_version']}"
                record["next_version"] += 1
                record["versions"][version] = {"document": document, "created": now}
                record["default_version"] = version
                record["updated"] = now
                while len(record["versions"]) > MAX_POLICY_VERSIONS:
                    oldest = min((v for v in record["versions"] if v != version), key=lambda v: int(v[1:]))
                    del record["versions"][oldest]
        await self._put(account_key(POLICIES, self.account, name), record, f"policy {record['arn']}", existing)

    def _common(self, record: Record, spec: dict[str, Any], kind: str, name: str) -> None:
        record["inline"] = {
            pname: self._doc(doc, PolicyKind.IDENTITY, kind, name, "inline", pname)
            for pname, doc in (spec.get("inline") or {}).items()
        }
        record["attached"] = [
            self.policy_arn(ref, kind, name, "policies") for ref in spec.get("policies") or []
        ]
        if kind != "groups":
            boundary = spec.get("boundary")
            record["boundary"] = self.policy_arn(boundary, kind, name, "boundary") if boundary else None
            record["tags"] = _tags(spec.get("tags"))

    async def _group(self, name: str, spec: dict[str, Any], members: list[str]) -> None:
        existing = await self.store.get_group(self.account, name)
        path = spec.get("path", "/")
        record: Record = json.loads(json.dumps(existing)) if existing else {
            "name": name, "account": self.account, "path": path,
            "arn": f"arn:aws:iam::{self.account}:group{path}{name}", "group_id": new_unique_id("AGPA"),
            "created": time.time(), "inline": {}, "attached": [], "members": [],
        }
        self._common(record, spec, "groups", name)
        record["members"] = sorted(set(record.get("members", [])) | set(members))
        await self._put(account_key(GROUPS, self.account, name), record, f"group {record['arn']}", existing)

    async def _user(self, name: str, spec: dict[str, Any]) -> None:
        existing = await self.store.get_user(self.account, name)
        record = json.loads(json.dumps(existing)) if existing else new_user_record(
            self.account, name, spec.get("path", "/"), _tags(spec.get("tags"))
        )
        self._common(record, spec, "users", name)
        record["groups"] = sorted(set(record.get("groups", [])) | set(spec.get("groups") or []))
        ukey = account_key(USERS, self.account, name)
        changes: list[tuple[Any, Record | None]] = []
        for i, key_spec in enumerate(spec.get("access_keys") or []):
            key_id = key_spec["id"]
            found = await self.store.get_global(ACCESS_KEYS, key_id)
            if found is not None and (found["account"] != self.account or found.get("user") != name):
                raise self._fail(f"access key {key_id} belongs to another user", "users", name, "access_keys", i)
            status = key_spec.get("status", "Active")
            if (found is None or found["status"] != status
                    or _opened(self.store.box, found["secret"], key_id) != key_spec["secret"]):
                changes.append((global_key(ACCESS_KEYS, key_id), {
                    "id": key_id, "account": self.account, "user": name,
                    "secret": self.store.box.seal(key_spec["secret"], context=key_id), "status": status,
                    "created": (found or {}).get("created", time.time()), "last_used": None,
                }))
            if key_id not in record["access_keys"]:
                record["access_keys"].append(key_id)
        mfa = spec.get("mfa")
        if mfa:
            serial = f"arn:aws:iam::{self.account}:mfa/{mfa['name']}"
            device = await self.store.get_global(MFA_DEVICES, serial)
            if device is not None and (device.get("user") or name).lower() != name.lower():
                raise self._fail(f"MFA device {serial} belongs to another user", "users", name, "mfa")
            seed_text = mfa.get("seed_base32")
            seed = base64.b32decode(seed_text + "=" * (-len(seed_text) % 8)) if seed_text else None
            sealed = _opened(self.store.box, device["seed"], serial) if device else None
            current = bytes.fromhex(sealed) if sealed else None  # a damaged seed is replaced
            if device is None or (seed is not None and seed != current):
                import secrets

                seed = seed or secrets.token_bytes(40)
                changes.append((global_key(MFA_DEVICES, serial), {
                    "serial": serial, "account": self.account, "name": mfa["name"],
                    "seed": self.store.box.seal(seed.hex(), context=serial), "user": name,
                    "enabled": time.time(), "last_step": 0, "tags": [],
                }))
            if serial not in record.get("mfa", []):
                record["mfa"] = [*record.get("mfa", []), serial]
        if existing != record or changes:
            await self.store.write([ukey], lambda _v: ([(ukey, record), *changes], None))
            self.changes.append(f"{'updated' if existing else 'created'} user {record['arn']}"
                                + (f" ({len(changes)} key/MFA change(s))" if changes else ""))

    async def _role(self, name: str, spec: dict[str, Any]) -> None:
        existing = await self.store.get_role(self.account, name)
        path = spec.get("path", "/")
        record: Record = json.loads(json.dumps(existing)) if existing else {
            "name": name, "account": self.account, "path": path,
            "arn": f"arn:aws:iam::{self.account}:role{path}{name}", "role_id": new_unique_id("AROA"),
            "created": time.time(), "last_used": None,
        }
        self._common(record, spec, "roles", name)
        record["trust"] = self._doc(spec["trust"], PolicyKind.TRUST, "roles", name, "trust")
        record["description"] = spec.get("description", "")
        record["max_session"] = spec.get("max_session_seconds", 3600)
        glass = spec.get("break_glass")
        record["break_glass"] = (dict(glass) if isinstance(glass, dict) else {}) if glass else None
        if record["break_glass"] is None:
            record.pop("break_glass")
        await self._put(account_key(ROLES, self.account, name), record, f"role {record['arn']}", existing)

    async def _recount(self) -> None:
        """Managed policies carry attachment counts (DeletePolicy's DeleteConflict): recompute them."""
        policies = await self.store.list(POLICIES, self.account)
        if not policies:
            return
        entities = [*await self.store.list(USERS, self.account), *await self.store.list(GROUPS, self.account),
                    *await self.store.list(ROLES, self.account)]
        for p in policies:
            attachments = sum(p["arn"] in e.get("attached", []) for e in entities)
            boundary = sum(p["arn"] == e.get("boundary") for e in entities)
            if p.get("attachments") != attachments or p.get("boundary_uses") != boundary:
                key = account_key(POLICIES, self.account, p["name"])
                updated = {**p, "attachments": attachments, "boundary_uses": boundary}
                await self.store.write([key], lambda _v, k=key, u=updated: ([(k, u)], None))


async def apply_tables(rt: Any, account: str, tables: dict[str, Any], region: str, where: Where,
                       base: tuple[Any, ...]) -> list[str]:
    from perimeterdb.dynamodb.call import Call
    from perimeterdb.dynamodb.operations import create_table, put_resource_policy
    from perimeterdb.errors import ApiError
    from perimeterdb.shapes import validate_request

    out: list[str] = []
    for name, spec in tables.items():
        table_region = spec.get("region", region)
        call = Call(account=account, region=table_region, principal=root_principal(account), catalog=rt.catalog,
                    engine=rt.engine, settings=rt.settings)
        policy = (checked(spec["resource_policy"], PolicyKind.RESOURCE, where, *base, name, "resource_policy")
                  if spec.get("resource_policy") else None)
        existing = await rt.catalog.find(account, table_region, name)
        try:
            if existing is None:
                keys = [spec["hash_key"], *([spec["range_key"]] if spec.get("range_key") else [])]
                body: dict[str, Any] = {
                    "TableName": name,
                    "AttributeDefinitions": [{"AttributeName": k["name"], "AttributeType": k["type"]} for k in keys],
                    "KeySchema": [{"AttributeName": k["name"], "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
                    "BillingMode": "PAY_PER_REQUEST",
                }
                if spec.get("tags"):
                    body["Tags"] = _tags(spec["tags"])
                if policy:
                    body["ResourcePolicy"] = policy
                validate_request("dynamodb", "CreateTable", body)
                await create_table.run(body, call)
                out.append(f"created table {name} in {account}/{table_region}")
            elif policy is not None:
                stored = (existing.description.get("_resource_policy") or {}).get("Policy")
                if stored is None or compact(stored) != policy:
                    await put_resource_policy.run({"ResourceArn": existing.arn, "Policy": policy}, call)
                    out.append(f"updated resource policy of table {name} in {account}/{table_region}")
        except ApiError as exc:
            raise WorldError(f"{where(*base, name)}: {'.'.join(map(str, (*base, name)))}: {exc.code}: {exc.message}") from None
    return out


async def export_account(store: IdentityStore, account: str, include_secrets: bool) -> dict[str, Any]:
    """The account's IAM entities in world-file form."""
    out: dict[str, Any] = {}

    def refs(arns: list[str]) -> list[str]:
        prefix = f"arn:aws:iam::{account}:policy/"
        return [a.rsplit("/", 1)[-1] if a.startswith(prefix) else a for a in arns]

    def common(e: Record) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if e.get("path", "/") != "/":
            d["path"] = e["path"]
        if e.get("attached"):
            d["policies"] = refs(e["attached"])
        if e.get("inline"):
            d["inline"] = {k: json.loads(v) for k, v in e["inline"].items()}
        if e.get("boundary"):
            d["boundary"] = e["boundary"]
        if e.get("tags"):
            d["tags"] = {t["Key"]: t["Value"] for t in e["tags"]}
        return d

    policies = await store.list(POLICIES, account)
    if policies:
        out["policies"] = {
            p["name"]: {**({"path": p["path"]} if p.get("path", "/") != "/" else {}),
                        **({"description": p["description"]} if p.get("description") else {}),
                        "document": json.loads(p["versions"][p["default_version"]]["document"])}
            for p in policies
        }
    groups = await store.list(GROUPS, account)
    if groups:
        out["groups"] = {g["name"]: common(g) for g in groups}
    users = await store.list(USERS, account)
    if users:
        out["users"] = {}
        for u in users:
            d = common(u)
            if u.get("groups"):
                d["groups"] = list(u["groups"])
            keys = []
            for key_id in u.get("access_keys", []):
                key = await store.get_global(ACCESS_KEYS, key_id)
                secret = _opened(store.box, key["secret"], key_id) if key is not None and include_secrets else None
                if key is not None and secret is not None:  # a damaged record is left out
                    keys.append({"id": key_id, "secret": secret, "status": key["status"]})
            if keys:
                d["access_keys"] = keys
            for serial in u.get("mfa", [])[:1]:
                device = await store.get_global(MFA_DEVICES, serial)
                if device is not None:
                    d["mfa"] = {"name": device["name"]}
                    opened = _opened(store.box, device["seed"], serial) if include_secrets else None
                    if opened:
                        d["mfa"]["seed_base32"] = base64.b32encode(bytes.fromhex(opened)).decode()
            out["users"][u["name"]] = d
    roles = await store.list(ROLES, account)
    if roles:
        out["roles"] = {}
        for r in roles:
            d = {"trust": json.loads(r["trust"]), **common(r)}
            if r.get("description"):
                d["description"] = r["description"]
            if r.get("max_session", 3600) != 3600:
                d["max_session_seconds"] = r["max_session"]
            if r.get("break_glass") is not None:
                d["break_glass"] = r["break_glass"] or True
            out["roles"][r["name"]] = d
    return out
