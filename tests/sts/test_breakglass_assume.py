"""Break-glass rules as units: the AssumeRole checks, TokenCode's format, lineage of derived credentials,
revocation's closure over derived credentials, and the approval state machine (on a real SQLite engine)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from perimeterdb.auth.credentials import CredentialRecord, lineage_bound
from perimeterdb.auth.principal import Principal
from perimeterdb.breakglass import approvals, lineage, revocation
from perimeterdb.errors import ApiError
from perimeterdb.iam.mfa import check_code, check_token_code_format
from perimeterdb.storage.engine import Decision, Put, RowKey
from perimeterdb.storage.sqlite import SQLiteEngine
from perimeterdb.world.breakglass import approval_mode, check_break_glass_assume, justification_of
from perimeterdb.world.identities import IdentityStore

ROLE = {"arn": "arn:aws:iam::222222222222:role/emergency", "name": "emergency", "break_glass": {}}
JUSTIFIED = [{"Key": "justification", "Value": "INC-42: restore the orders table"}]


def _refused(role: dict[str, Any], request: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as exc:
        check_break_glass_assume(role, request)
    assert exc.value.code == "AccessDenied" and exc.value.status == 403
    return exc.value.message


def test_ordinary_role_has_no_rules() -> None:
    assert check_break_glass_assume({"arn": "arn:aws:iam::1:role/x"}, {}) is None


def test_fresh_mfa_is_required() -> None:
    message = _refused(ROLE, {"Tags": JUSTIFIED, "mfa_fresh": False})
    assert "fresh MFA code" in message and "GetSessionToken is not enough" in message


@pytest.mark.parametrize("value", ["", " ", "\t \n", "   "])
def test_blank_justification_is_refused(value: str) -> None:
    tags = [{"Key": "Justification", "Value": value}]
    assert "requires a justification" in _refused(ROLE, {"Tags": tags, "mfa_fresh": True})


def test_source_identity_is_not_a_justification() -> None:
    request = {"SourceIdentity": "INC-42", "mfa_fresh": True}
    assert "requires a justification" in _refused(ROLE, request)
    assert justification_of({"SourceIdentity": "alice", "Tags": JUSTIFIED}) == JUSTIFIED[0]["Value"]


def test_ticket_can_be_mandatory() -> None:
    role = {**ROLE, "break_glass": {"require_ticket": True}}
    assert "ticket" in _refused(role, {"Tags": JUSTIFIED, "mfa_fresh": True})
    blank = [*JUSTIFIED, {"Key": "ticket", "Value": "  "}]
    assert "ticket" in _refused(role, {"Tags": blank, "mfa_fresh": True})
    tags = [*JUSTIFIED, {"Key": "Ticket", "Value": "INC-42"}]
    assert check_break_glass_assume(role, {"Tags": tags, "mfa_fresh": True}) == 3600


def test_duration_limit() -> None:
    role = {**ROLE, "break_glass": {"max_session_seconds": 900}}
    assert "at most 900 seconds" in _refused(role, {"Tags": JUSTIFIED, "mfa_fresh": True, "DurationSeconds": 901})
    assert check_break_glass_assume(role, {"Tags": JUSTIFIED, "mfa_fresh": True}) == 900


def test_unknown_approval_mode_fails_closed() -> None:
    assert approval_mode({}) == "none"
    assert approval_mode({"approval": "emergency-allowed"}) == "emergency-allowed"
    assert approval_mode({"approval": "sometimes"}) == "required"


@pytest.mark.parametrize("code", ["\u0660\u0661\u0662\u0663\u0664\u0665", "\uff11\uff12\uff13\uff14\uff15\uff16", "12345a", "12 345"])
def test_token_code_must_be_ascii_digits(code: str) -> None:
    with pytest.raises(ApiError) as exc:
        check_token_code_format(code)
    assert exc.value.code == "ValidationError" and exc.value.status == 400
    assert exc.value.message == (
        f"1 validation error detected: Value '{code}' at 'tokenCode' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\d]*"
    )


def test_check_code_refuses_non_ascii_digits_without_error(store: IdentityStore) -> None:
    ok = asyncio.run(check_code(store, "1", "alice", "arn:aws:iam::1:mfa/alice", "\u0660\u0661\u0662\u0663\u0664\u0665", time.time()))
    assert ok is False


# --- lineage: what a derived credential becomes -------------------------------------------------------------


def _record(key: str, kind: str = "User", expires: float | None = None) -> CredentialRecord:
    principal = Principal(arn=f"arn:aws:iam::1:user/{key}", principal_arn="p", account="1", kind=kind, userid="u",
                          access_key_id=key)
    return CredentialRecord(key, "secret", principal, expires_at=expires)


def _lookup(rows: dict[str, dict[str, Any]]) -> Any:
    async def get(key: str) -> dict[str, Any] | None:
        return rows.get(key)

    return get


def test_key_made_in_a_break_glass_session_is_break_glass_and_bound_to_its_origin() -> None:
    now = time.time()
    origin = {"id": "ASIAORIGIN", "expires": now + 600, "principal": {"break_glass": True}}
    row = {"id": "AKIAKEY", "break_glass": {"origin_session": "ASIAORIGIN", "session": "ASIAORIGIN"}}
    bound = asyncio.run(lineage_bound(row, _record("AKIAKEY"), _lookup({"ASIAORIGIN": origin})))
    assert bound.active and bound.principal.break_glass
    assert bound.principal.break_glass_origin == "ASIAORIGIN"
    assert bound.expires_at == origin["expires"]


@pytest.mark.parametrize("origin", [None, {"id": "ASIAORIGIN", "expires": time.time() + 600, "revoked": {"at": 1}}])
def test_derived_key_dies_with_its_origin(origin: dict[str, Any] | None) -> None:
    rows = {"ASIAORIGIN": origin} if origin else {}
    row = {"id": "AKIAKEY", "break_glass": {"origin_session": "ASIAORIGIN"}}
    assert not asyncio.run(lineage_bound(row, _record("AKIAKEY"), _lookup(rows))).active


def test_derived_key_expires_with_its_origin() -> None:
    from datetime import UTC, datetime

    from perimeterdb.auth import verify

    origin = {"id": "ASIAORIGIN", "expires": time.time() - 1}
    row = {"id": "AKIAKEY", "break_glass": {"origin_session": "ASIAORIGIN"}}
    bound = asyncio.run(lineage_bound(row, _record("AKIAKEY"), _lookup({"ASIAORIGIN": origin})))
    assert bound.expires_at == origin["expires"]
    parts = verify.HttpRequestParts("POST", "/", [], {"host": ["h"]}, b"")
    claim = verify.SignatureClaim(verify.sigv4.CredentialScope("AKIAKEY", datetime.now(UTC).strftime("%Y%m%d"),
                                                               "us-east-1", "sts", "aws4_request"),
                                  ("host",), "00", datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"), None, False)
    with pytest.raises(ApiError) as exc:
        verify.verify(parts, claim, bound, service="sts")
    assert exc.value.code == "ExpiredTokenException"


def test_revoked_session_is_inactive_and_ordinary_one_untouched() -> None:
    record = _record("ASIAONE", "AssumedRole", time.time() + 60)
    assert not asyncio.run(lineage_bound({"revoked": {"at": 1}}, record, _lookup({}))).active
    assert asyncio.run(lineage_bound({"principal": {}}, record, _lookup({}))) is record


def test_derived_session_expires_no_later_than_origin() -> None:
    now = time.time()
    origin = {"id": "ASIAORIGIN", "expires": now + 100}
    row = {"id": "ASIACHILD", "principal": {"break_glass": True, "origin_session": "ASIAORIGIN"}}
    bound = asyncio.run(lineage_bound(row, _record("ASIACHILD", "AssumedRole", now + 3600),
                                      _lookup({"ASIAORIGIN": origin})))
    assert bound.expires_at == now + 100 and bound.principal.expires_at == now + 100


# --- revocation -------------------------------------------------------------------------------------------


def _cred(space: str, ident: str, **fields: Any) -> tuple[str, RowKey, dict[str, Any]]:
    return space, RowKey(space, b"", ident.encode(), b""), {"id": ident, **fields}


def test_revocation_follows_derived_credentials_transitively() -> None:
    s, k = revocation.SESSIONS, revocation.ACCESS_KEYS
    creds = [
        _cred(s, "ASIAROOT", principal={"break_glass": True, "origin_session": "ASIAROOT",
                                        "principal_arn": "arn:aws:iam::1:role/emergency"}),
        _cred(s, "ASIACHAIN", principal={"break_glass": True, "origin_session": "ASIAROOT",
                                         "parent_session": "ASIAROOT"}),
        _cred(k, "AKIAMADE", break_glass={"origin_session": "ASIAROOT", "session": "ASIACHAIN"}),
        _cred(s, "ASIAGST", principal={"break_glass": True, "origin_session": "ASIAROOT",
                                       "parent_session": "AKIAMADE"}),
        _cred(s, "ASIAOTHER", principal={"principal_arn": "arn:aws:iam::1:role/app"}),
    ]
    ids = {row["id"] for _, _, row in revocation.choose(creds, session_id="ASIAROOT")}
    assert ids == {"ASIAROOT", "ASIACHAIN", "AKIAMADE", "ASIAGST"}
    only_chain = {row["id"] for _, _, row in revocation.choose(creds, session_id="ASIACHAIN")}
    assert only_chain == {"ASIACHAIN", "AKIAMADE", "ASIAGST"}
    by_role = {row["id"] for _, _, row in revocation.choose(creds, role_arn="arn:aws:iam::1:role/EMERGENCY")}
    assert by_role == {"ASIAROOT", "ASIACHAIN", "AKIAMADE", "ASIAGST"}
    assert {row["id"] for _, _, row in revocation.choose(creds, everything=True)} == by_role


def test_revoke_writes_every_row_once(tmp_path: Path) -> None:
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        engine = SQLiteEngine(tmp_path / "db.sqlite3", durability="normal")
        try:
            now = time.time()
            rows = {
                "ASIAROOT": {"id": "ASIAROOT", "expires": now + 600,
                             "principal": {"break_glass": True, "origin_session": "ASIAROOT"}},
                "ASIAOLD": {"id": "ASIAOLD", "expires": now - 5,
                            "principal": {"break_glass": True, "origin_session": "ASIAOLD"}},
            }
            changes = [Put(RowKey(revocation.SESSIONS, b"", k.encode(), b""), orjson.dumps(v)) for k, v in rows.items()]
            await engine.atomic([], lambda _v: Decision(changes))
            before = engine.generation.read()
            first = await revocation.revoke(engine, everything=True, reason="drill")
            assert engine.generation.read() > before  # every worker drops its credential cache
            again = await revocation.revoke(engine, everything=True)
            listed = await revocation.break_glass_sessions(engine)
            return first, again, listed
        finally:
            engine.close()

    first, again, listed = asyncio.run(go())
    assert [r["id"] for r in first] == ["ASIAROOT"]  # the expired one is left alone
    assert again == []
    assert listed[0]["revoked"]["reason"] == "drill"


# --- approvals --------------------------------------------------------------------------------------------


def _caller(name: str) -> approvals.Caller:
    arn = f"arn:aws:iam::222222222222:user/{name}"
    return approvals.Caller(arn, arn, "222222222222", "User", name)


def test_two_person_rule_and_one_session_per_grant(tmp_path: Path) -> None:
    async def go() -> None:
        engine = SQLiteEngine(tmp_path / "db.sqlite3", durability="normal")
        try:
            now = time.time()
            request = await approvals.create(engine, _caller("oncall"), ROLE, "restore", None, now)
            with pytest.raises(ApiError) as own:
                await approvals.decide_request(engine, request["id"], _caller("oncall"), True, 600, None, now)
            assert own.value.code == "AccessDeniedException"
            assert await approvals.consume_grant(engine, _caller("oncall").principal_arn, ROLE["arn"], "S1", now) is None
            await approvals.decide_request(engine, request["id"], _caller("lead"), True, 600, "ok", now)
            with pytest.raises(ApiError) as twice:
                await approvals.decide_request(engine, request["id"], _caller("lead2"), False, 600, None, now)
            assert twice.value.code == "ConflictException"
            requester = _caller("oncall").principal_arn
            assert await approvals.consume_grant(engine, "arn:aws:iam::222222222222:user/lead", ROLE["arn"], "S0",
                                                 now) is None  # only the requester's grant
            racing = await asyncio.gather(*[
                approvals.consume_grant(engine, requester, ROLE["arn"], f"S{i}", now) for i in range(4)
            ])
            assert sum(1 for r in racing if r == request["id"]) == 1
            stored = await approvals.get(engine, request["id"])
            assert stored is not None and stored["status"] == "consumed"
            late = await approvals.create(engine, _caller("oncall"), ROLE, "again", None, now)
            await approvals.decide_request(engine, late["id"], _caller("lead"), True, 600, None, now)
            assert await approvals.consume_grant(engine, requester, ROLE["arn"], "S9", now + 601) is None  # lapsed
            assert approvals.shape(late, now + 10**6)["Status"] == "expired"
            for _ in range(approvals.MAX_PENDING_PER_REQUESTER):
                await approvals.create(engine, _caller("spammer"), ROLE, "again", None, now)
            with pytest.raises(ApiError) as flood:
                await approvals.create(engine, _caller("spammer"), ROLE, "again", None, now)
            assert flood.value.code == "LimitExceededException"
        finally:
            engine.close()

    asyncio.run(go())


def test_created_during_lists_by_origin_and_by_session(tmp_path: Path) -> None:
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        engine = SQLiteEngine(tmp_path / "db.sqlite3", durability="normal")
        try:
            await lineage.record_created(engine, "ASIAROOT", "ASIAROOT", {"kind": "user", "name": "ghost"})
            await lineage.record_created(engine, "ASIAROOT", "ASIACHILD", {"kind": "table", "name": "copy"})
            return await lineage.created_during(engine, "ASIAROOT"), await lineage.created_during(engine, "ASIACHILD")
        finally:
            engine.close()

    root, child = asyncio.run(go())
    assert [(e["kind"], e["name"]) for e in root] == [("user", "ghost"), ("table", "copy")]
    assert [(e["kind"], e["name"], e["originSessionId"]) for e in child] == [("table", "copy", "ASIAROOT")]


# --- AssumeRole in process: the alert is queued before the credentials exist, or nothing is minted ----------


class _Outbox:
    """Stands in for the durable outbox: records what is queued and what existed at that moment."""

    def __init__(self, store: IdentityStore, healthy: bool = True, broken: bool = False) -> None:
        self.store, self.healthy, self.broken = store, healthy, broken
        self.queued: list[tuple[dict[str, Any], bool]] = []

    async def enqueue(self, alert: dict[str, Any]) -> str:
        if self.broken:
            raise OSError("disk full")
        session = alert.get("sessionId")
        exists = bool(session) and await self.store.get_global("meta:sts-sessions", session) is not None
        self.queued.append((alert, exists))
        return "a1"

    def can_deliver(self) -> bool:
        return self.healthy


class _Sink:
    def __init__(self, outbox: _Outbox) -> None:
        self.outbox = outbox


def _glass_setup(store: IdentityStore, settings: dict[str, Any]) -> tuple[Principal, bytes, str]:
    import base64
    import json

    from perimeterdb.auth import totp
    from perimeterdb.iam import mfa, roles, users
    from perimeterdb.world.identities import ROLES, account_key
    from tests.sts.conftest import call, root

    account = asyncio.run(store.create_account("prod", "us-east-1", "222222222222"))
    asyncio.run(users.create_user(call(store, root(account), {"UserName": "oncall"})))
    made = asyncio.run(mfa.create_virtual_mfa_device(call(store, root(account), {"VirtualMFADeviceName": "oncall"})))
    serial = made["VirtualMFADevice"]["SerialNumber"]
    seed = base64.b32decode(made["VirtualMFADevice"]["Base32StringSeed"])
    step = totp.time_step() - 5
    asyncio.run(mfa.enable_mfa_device(call(store, root(account), {
        "UserName": "oncall", "SerialNumber": serial,
        "AuthenticationCode1": totp.hotp(seed, step), "AuthenticationCode2": totp.hotp(seed, step + 1)})))
    user = asyncio.run(store.get_user(account, "oncall"))
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": user["arn"]},
                                                     "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    asyncio.run(roles.create_role(call(store, root(account), {"RoleName": "emergency",
                                                              "AssumeRolePolicyDocument": json.dumps(trust)})))
    key = account_key(ROLES, account, "emergency")

    def mark(values: list[dict[str, Any] | None]) -> tuple[list[Any], None]:
        role = values[0]
        assert role is not None
        role["break_glass"] = settings
        return [(key, role)], None

    asyncio.run(store.write([key], mark))
    principal = Principal(arn=user["arn"], principal_arn=user["arn"], account=account, kind="User",
                          userid=user["user_id"], username="oncall", access_key_id="AKIAONCALL")
    return principal, seed, serial


def _assume_in_process(store: IdentityStore, principal: Principal, seed: bytes, serial: str) -> dict[str, Any]:
    from perimeterdb.auth import totp
    from perimeterdb.sts import assume_role
    from tests.sts.conftest import call

    params = {"RoleArn": "arn:aws:iam::222222222222:role/emergency", "RoleSessionName": "inc",
              "SerialNumber": serial, "TokenCode": totp.totp(seed), "Tags": JUSTIFIED}
    return asyncio.run(assume_role.assume_role(call(store, principal, params)))  # type: ignore[no-any-return]


def test_alert_is_queued_before_the_session_exists(store: IdentityStore) -> None:
    from perimeterdb.breakglass import alerting

    principal, seed, serial = _glass_setup(store, {"fail_closed": True})
    outbox = _Outbox(store)
    alerting.register(store.engine, _Sink(outbox))
    out = _assume_in_process(store, principal, seed, serial)
    (alert, existed), = outbox.queued
    assert alert["outcome"] == "granted" and alert["sessionId"] == out["Credentials"]["AccessKeyId"]
    assert existed is False, "the alert was queued before the credentials were minted"


@pytest.mark.parametrize("healthy,broken,text", [(False, False, "fails closed"), (True, True, "could not be queued")])
def test_no_alert_no_session(store: IdentityStore, healthy: bool, broken: bool, text: str) -> None:
    from perimeterdb.breakglass import alerting
    from perimeterdb.world.identities import SESSIONS

    principal, seed, serial = _glass_setup(store, {"fail_closed": True})
    outbox = _Outbox(store, healthy=healthy, broken=broken)
    alerting.register(store.engine, _Sink(outbox))
    with pytest.raises(ApiError) as exc:
        _assume_in_process(store, principal, seed, serial)
    assert exc.value.code == "AccessDenied" and text in exc.value.message
    assert asyncio.run(store.list_global(SESSIONS)) == []
    if not broken:
        assert [a["outcome"] for a, _ in outbox.queued] == ["refused"]  # the refusal itself is alerted


def test_note_record_keeps_what_a_break_glass_credential_created(tmp_path: Path) -> None:
    async def go() -> list[dict[str, Any]]:
        engine = SQLiteEngine(tmp_path / "db.sqlite3", durability="normal")
        try:
            session = {"id": "ASIACHILD", "expires": time.time() + 60,
                       "principal": {"break_glass": True, "origin_session": "ASIAROOT"}}
            row = RowKey("meta:sts-sessions", b"", b"ASIACHILD", b"")
            await engine.atomic([row], lambda _v: Decision([Put(row, orjson.dumps(session))]))
            base = {"userIdentity": {"accessKeyId": "ASIACHILD", "arn": "arn:aws:sts::1:assumed-role/x/y",
                                     "accountId": "1"}, "awsRegion": "us-east-1", "eventTime": "t"}
            await lineage.note_record(engine, {**base, "eventName": "CreateTable", "eventID": "e1",
                                               "requestParameters": {"tableName": "copy"}})
            await lineage.note_record(engine, {**base, "eventName": "PutRolePolicy", "eventID": "e2",
                                               "requestParameters": {"roleName": "app", "policyName": "wide"}})
            await lineage.note_record(engine, {**base, "eventName": "CreateUser", "eventID": "e3",
                                               "errorCode": "AccessDenied", "requestParameters": {"userName": "no"}})
            await lineage.note_record(engine, {**base, "eventName": "GetItem", "eventID": "e4"})
            plain = {**base, "userIdentity": {"accessKeyId": "ASIAUNKNOWN"}, "eventName": "CreateUser",
                     "eventID": "e5", "requestParameters": {"userName": "ordinary"}}
            await lineage.note_record(engine, plain)
            return await lineage.created_during(engine, "ASIAROOT")
        finally:
            engine.close()

    created = asyncio.run(go())
    assert [(c["kind"], c["name"], c.get("owner")) for c in created] == [
        ("table", "copy", None), ("role-inline-policy", "wide", {"roleName": "app"})]
    assert all(c["sessionId"] == "ASIACHILD" and c["originSessionId"] == "ASIAROOT" for c in created)
