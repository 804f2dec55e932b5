"""The review assembled from storage (and the audit log when it still has the records), and sign-offs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from perimeterdb.audit.log import read_records
from perimeterdb.breakglass import review
from perimeterdb.breakglass.outbox import AlertOutbox
from perimeterdb.storage.engine import Decision, Delete, Put, RowKey
from perimeterdb.storage.sqlite import SQLiteEngine

PROD = "222222222222"
T0 = 1_800_000_000.0  # the session's start (epoch seconds)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _grant(session_id: str, *, origin: str | None = None, review_required: bool = False,
           who: str = f"arn:aws:iam::{PROD}:user/oncall") -> dict[str, Any]:
    return {
        "alert": "break-glass-assume-role", "outcome": "granted", "time": T0, "roleArn": f"arn:aws:iam::{PROD}:role/emergency",
        "who": who, "principalArn": who, "accessKeyId": "AKIAONCALL", "sourceIdentity": "alice",
        "justification": "INC-7: restore", "ticket": "INC-7", "sourceIPAddress": "203.0.113.9",
        "vpcEndpointId": None, "sessionArn": f"arn:aws:sts::{PROD}:assumed-role/emergency/{session_id}",
        "sessionId": session_id, "originSessionId": origin or session_id, "expires": T0 + 900,
        "durationSeconds": 900, "approval": None, "reviewRequired": review_required, "emergency": review_required,
    }


def _request(key: str, what: str, at: float, event_id: str, error: str | None = None) -> dict[str, Any]:
    return {"alert": "break-glass", "time": _iso(at), "what": what, "who": f"arn:aws:sts::{PROD}:assumed-role/emergency/x",
            "accessKeyId": key, "sourceIPAddress": "203.0.113.9", "vpcEndpointId": None, "errorCode": error,
            "eventID": event_id, "details": {}}


def _run(work: Callable[[SQLiteEngine], Awaitable[Any]], tmp_path: Path) -> Any:
    engine = SQLiteEngine(tmp_path / "perimeterdb.sqlite3", durability="normal")
    try:
        return asyncio.run(work(engine))
    finally:
        engine.close()


def test_rows_an_alert_leaves() -> None:
    [session] = review.session_rows("a1", _grant("ASIAONE"))
    assert session.key.space == review.SPACE and orjson.loads(session.value)["justification"] == "INC-7: restore"
    [activity] = review.session_rows("a2", _request("ASIAONE", "PutItem", T0, "e1"))
    assert orjson.loads(activity.value)["action"] == "PutItem"
    [refused] = review.session_rows("a3", {**_grant("ASIAONE"), "outcome": "refused", "errorCode": "AccessDenied"})
    assert refused.key.hh == b"refused" and orjson.loads(refused.value)["errorCode"] == "AccessDenied"
    assert review.session_rows("a4", {"alert": "something-else"}) == []
    assert review.is_mutating("PutItem") and not review.is_mutating("BatchGetItem") and not review.is_mutating("Query")


def test_sessions_survive_a_rotated_audit_log_and_group_derived_sessions(tmp_path: Path) -> None:
    async def work(engine: SQLiteEngine) -> list[dict[str, Any]]:
        box = AlertOutbox(engine, tmp_path, session_rows=review.session_rows)
        await box.enqueue(_grant("ASIAONE"))
        await box.enqueue(_grant("ASIACHAIN", origin="ASIAONE"))
        await box.enqueue(_request("ASIAONE", "PutItem", T0 + 10, "e1"))
        await box.enqueue(_request("ASIAONE", "GetItem", T0 + 20, "e2"))
        await box.enqueue(_request("ASIAONE", "DeleteItem", T0 + 25, "e3", error="AccessDeniedException"))
        await box.enqueue(_request("ASIACHAIN", "CreateUser", T0 + 30, "e4"))
        await box.enqueue(_request("ASIAOTHER", "PutItem", T0 + 40, "e5"))  # not a session of ours
        audit = [{"eventID": "e1", "eventSource": "dynamodb.amazonaws.com", "eventName": "PutItem",
                  "userIdentity": {"accessKeyId": "ASIAONE"},
                  "additionalEventData": {"decisions": [{"resource": f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders",
                                                         "decision": "Allow"}]}}]
        with_log = await review.sessions(engine, audit, session="ASIAONE", now=T0 + 100)
        rotated = await review.sessions(engine, [], now=T0 + 1000)  # the log has rotated away
        return [with_log, rotated]

    with_log, rotated = _run(work, tmp_path)
    [s] = with_log
    assert s["sessionId"] == "ASIAONE" and s["state"] == "active" and s["derivedSessions"] == ["ASIACHAIN"]
    assert s["who"] == {"principal": f"arn:aws:iam::{PROD}:user/oncall", "callerArn": f"arn:aws:iam::{PROD}:user/oncall",
                        "sourceIdentity": "alice", "sourceIPAddress": "203.0.113.9", "vpcEndpointId": None}
    assert [r["action"] for r in s["requests"]] == ["dynamodb:PutItem", "GetItem", "DeleteItem", "CreateUser"]
    assert s["requests"][0]["resources"] == [f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders"]
    assert s["requests"][2]["decision"] == "Deny"
    assert [r["action"] for r in s["changes"]] == ["dynamodb:PutItem", "CreateUser"]
    assert {x["sessionId"] for x in rotated} == {"ASIAONE", "ASIACHAIN"}, "found without the audit log"
    assert [x["sessionId"] for x in review.unreviewed(rotated)] == ["ASIAONE"], "a chained session: with its origin"
    one = next(x for x in rotated if x["sessionId"] == "ASIAONE")
    assert one["state"] == "expired" and len(one["requests"]) == 4 and not one["requests"][0]["auditRecord"]
    assert one["endedAt"] == _iso(T0 + 900) and one["usedSeconds"] == 900


def test_sign_off_rules_audit_and_reopening(tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"

    async def work(engine: SQLiteEngine) -> dict[str, Any]:
        box = AlertOutbox(engine, tmp_path, session_rows=review.session_rows)
        await box.enqueue(_grant("ASIAONE"))
        await box.enqueue(_grant("ASIATWO", review_required=True))
        await box.enqueue(_request("ASIAONE", "PutItem", T0 + 10, "e1"))
        first = review.unreviewed(await review.sessions(engine, now=T0 + 60))
        assert [s["sessionId"] for s in first] == ["ASIATWO", "ASIAONE"], "review-required sessions come first"
        for reviewer, note, message in [("alice", "ok", "cannot sign it off"), ("oncall", "ok", "cannot sign it off"),
                                        ("bob", "   ", "--note"), ("", "ok", "--reviewer"),
                                        ("bob", "x" * 2001, "--note")]:
            with pytest.raises(review.ReviewError, match=message):
                await review.sign_off(engine, audit_dir, "ASIAONE", reviewer, note, now=T0 + 60)
        with pytest.raises(review.ReviewError, match="no break-glass session"):
            await review.sign_off(engine, audit_dir, "ASIANONE", "bob", "ok", now=T0 + 60)
        done = await review.sign_off(engine, audit_dir, f"arn:aws:sts::{PROD}:assumed-role/emergency/ASIAONE",
                                     "bob", "restore verified", now=T0 + 60)
        after = review.unreviewed(await review.sessions(engine, now=T0 + 61))
        assert [s["sessionId"] for s in after] == ["ASIATWO"]
        await box.enqueue(_request("ASIAONE", "DeleteTable", T0 + 120, "e9"))  # used again after the sign-off
        again = review.unreviewed(await review.sessions(engine, now=T0 + 121))
        assert [s["sessionId"] for s in again] == ["ASIATWO", "ASIAONE"]
        return done

    done = _run(work, tmp_path)
    assert done["sessionId"] == "ASIAONE" and done["requestsReviewed"] == 1
    [record] = [r for r in read_records(audit_dir) if r["eventName"] == "BreakGlassSignOff"]
    assert record["breakGlass"] is True and record["userIdentity"]["userName"] == "bob"
    assert record["additionalEventData"]["note"] == "restore verified" and record["eventID"] == done["eventID"]


def test_revoked_session_is_shown_revoked(tmp_path: Path) -> None:
    async def work(engine: SQLiteEngine) -> dict[str, Any]:
        box = AlertOutbox(engine, tmp_path, session_rows=review.session_rows)
        await box.enqueue(_grant("ASIAREV"))
        key = RowKey("meta:sts-sessions", b"", b"ASIAREV", b"")
        row = orjson.dumps({"id": "ASIAREV", "revoked": {"at": T0 + 30, "by": "cli", "reason": "done"}})
        await engine.atomic([key], lambda _v: Decision([Put(key, row)]))
        [s] = await review.sessions(engine, session="ASIAREV", now=T0 + 60)
        return s

    s = _run(work, tmp_path)
    assert s["state"] == "revoked" and s["revoked"]["reason"] == "done" and s["usedSeconds"] == 30


def test_approval_is_shown_with_its_approver(tmp_path: Path) -> None:
    from perimeterdb.breakglass import approvals

    requester = approvals.Caller(arn=f"arn:aws:iam::{PROD}:user/oncall", principal_arn=f"arn:aws:iam::{PROD}:user/oncall",
                                 account=PROD, kind="User", username="oncall")
    lead = approvals.Caller(arn=f"arn:aws:iam::{PROD}:user/lead", principal_arn=f"arn:aws:iam::{PROD}:user/lead",
                            account=PROD, kind="User", username="lead")

    async def work(engine: SQLiteEngine) -> tuple[dict[str, Any], dict[str, Any]]:
        role = {"arn": f"arn:aws:iam::{PROD}:role/emergency"}
        request = await approvals.create(engine, requester, role, "INC-7: restore", "INC-7", T0)
        await approvals.decide_request(engine, request["id"], lead, True, 600, "go", T0 + 5)
        box = AlertOutbox(engine, tmp_path, session_rows=lambda i, a: review.remember(engine, i, a))
        await box.enqueue({**_grant("ASIAAPPROVED"), "approval": request["id"]})
        [s] = await review.sessions(engine, session="ASIAAPPROVED", now=T0 + 60)
        key = approvals._key(request["id"])  # requests are deleted after 30 days: the review keeps a copy
        await engine.atomic([key], lambda _v: Decision([Delete(key)]))
        [later] = await review.sessions(engine, session="ASIAAPPROVED", now=T0 + 40 * 86400)
        return s, later

    s, later = _run(work, tmp_path)
    assert s["approval"]["Approver"] == f"arn:aws:iam::{PROD}:user/lead" and s["approval"]["Comment"] == "go"
    assert not s["emergency"] and not s["reviewRequired"]
    assert later["approval"]["Approver"] == f"arn:aws:iam::{PROD}:user/lead"
    assert later["approval"]["Justification"] == "INC-7: restore"


def test_an_arn_naming_two_sessions_cannot_be_signed_off(tmp_path: Path) -> None:
    async def work(engine: SQLiteEngine) -> None:
        box = AlertOutbox(engine, tmp_path, session_rows=review.session_rows)
        await box.enqueue({**_grant("ASIAFIRST"), "sessionArn": f"arn:aws:sts::{PROD}:assumed-role/emergency/x"})
        await box.enqueue({**_grant("ASIASECOND"), "sessionArn": f"arn:aws:sts::{PROD}:assumed-role/emergency/x"})
        assert len(await review.sessions(engine, session=f"arn:aws:sts::{PROD}:assumed-role/emergency/x")) == 2
        with pytest.raises(review.ReviewError, match="names 2 sessions"):
            await review.sign_off(engine, None, f"arn:aws:sts::{PROD}:assumed-role/emergency/x", "bob", "ok")
        await review.sign_off(engine, None, "ASIAFIRST", "bob", "ok")

    _run(work, tmp_path)


def test_text_output_escapes_what_a_session_sent(capsys: pytest.CaptureFixture[str]) -> None:
    from perimeterdb import cli_breakglass_review

    cli_breakglass_review._out("ticket INC-1\x1b[2J\x1b]0;owned\x07\nforged line")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and out.count("\n") == 1
    assert "\\x1b[2J" in out and "\\nforged line" in out
