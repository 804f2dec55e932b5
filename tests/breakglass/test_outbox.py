"""The durable alert outbox against real channels: a local webhook receiver, a file, a syslog socket."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from perimeterdb.audit.log import AuditLog, read_records
from perimeterdb.breakglass import channels, outbox
from perimeterdb.breakglass.outbox import AlertOutbox
from perimeterdb.storage.sqlite import SQLiteEngine
from perimeterdb.world.breakglass import save_settings
from tests.breakglass.receiver import receiver
from tests.breakglass.support import run_on_engine as _run
from tests.breakglass.support import until as _until
from tests.support.server import free_port

ALERT = {"alert": "break-glass", "what": "PutItem", "who": "arn:aws:sts::222222222222:assumed-role/emergency/s"}


def test_signature_verifies_and_rejects_tampering_and_replays() -> None:
    secret, body = b"0123456789abcdef0123", b'{"id":"1"}'
    header = channels.sign(secret, body, int(time.time()))
    assert channels.verify_signature(secret, body, header)
    assert not channels.verify_signature(secret, body + b" ", header)
    assert not channels.verify_signature(b"another secret 123456", body, header)
    old = channels.sign(secret, body, int(time.time()) - 301)
    assert not channels.verify_signature(secret, body, old), "older than 5 minutes: a replay"
    assert not channels.verify_signature(secret, body, "t=abc,v1=00")


def test_config_is_checked(tmp_path: Path) -> None:
    with pytest.raises(channels.ChannelConfigError, match="http"):
        channels.parse_channels({"alerts": {"webhook": {"url": "file:///etc/passwd"}}}, tmp_path)
    with pytest.raises(channels.ChannelConfigError, match="credentials"):
        channels.parse_channels({"alerts": {"webhook": {"url": "http://u:p@127.0.0.1/"}}}, tmp_path)
    with pytest.raises(channels.ChannelConfigError, match="unknown"):
        channels.parse_channels({"alerts": {"pager": "x"}}, tmp_path)
    legacy = channels.parse_channels({"webhook": "http://127.0.0.1:9/x", "alerts_file": "a.jsonl"}, tmp_path)
    assert [c.name for c in legacy] == ["webhook", "file"]
    assert legacy[1].path == tmp_path / "a.jsonl"  # type: ignore[attr-defined]
    default = channels.parse_channels({}, tmp_path)
    assert [c.name for c in default] == ["file"] and default[0].path == tmp_path / "audit" / "alerts.jsonl"  # type: ignore[attr-defined]


def test_retries_until_the_receiver_accepts_signed_and_idempotent(tmp_path: Path) -> None:
    secret_file = tmp_path / "hook.secret"
    syslog_path = tmp_path / "syslog.sock"
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(syslog_path))
    syslog.settimeout(10)
    with receiver(fail_first=2) as hook:
        async def work(engine: SQLiteEngine) -> str:
            await save_settings(engine, {"alerts": {
                "webhook": {"url": hook.url, "secret_file": str(secret_file)},
                "file": "alerts/out.jsonl",
                "syslog": {"address": str(syslog_path)},
            }})
            box = AlertOutbox(engine, tmp_path)
            task = asyncio.create_task(box.run())
            try:
                alert_id = await box.enqueue(dict(ALERT))
                assert [a["id"] for a in await outbox.pending(engine)] == [alert_id]
                assert await _until(lambda: _empty(engine)), "delivered after the receiver's failures"
            finally:
                task.cancel()
            assert [d["id"] for d in await outbox.delivered(engine)] == [alert_id]
            assert box.can_deliver()
            return alert_id

        alert_id = _run(work, tmp_path)
        assert [r.status for r in hook.received] == [500, 500, 204], "retried after each failure"
    assert os.stat(secret_file).st_mode & 0o777 == 0o600, "the generated secret is the owner's only"
    secret = secret_file.read_bytes().strip()
    for got in hook.received:
        assert got.headers["x-perimeterdb-alert-id"] == alert_id, "the same idempotency id on every retry"
        assert channels.verify_signature(secret, got.body, got.headers["x-perimeterdb-signature"])
        assert secret.decode() not in json.dumps(got.headers) and secret not in got.body
    body = json.loads(hook.received[-1].body)
    assert body["id"] == alert_id and body["alert"]["what"] == "PutItem"
    line_file = tmp_path / "alerts" / "out.jsonl"
    assert os.stat(line_file).st_mode & 0o777 == 0o600
    assert [json.loads(line)["id"] for line in line_file.read_text().splitlines()] == [alert_id], \
        "the file channel is not repeated when only the webhook failed"
    datagram = syslog.recv(65536)
    syslog.close()
    assert datagram.startswith(b"<81>perimeterdb[") and alert_id.encode() in datagram


async def _empty(engine: SQLiteEngine) -> bool:
    return not await outbox.pending(engine)


def test_receiver_down_alert_stays_queued_is_reported_then_delivered(tmp_path: Path) -> None:
    port = free_port()  # nobody listens here yet
    audit_dir = tmp_path / "audit"

    async def work(engine: SQLiteEngine) -> tuple[str, list[dict[str, Any]]]:
        await save_settings(engine, {"alerts": {
            "webhook": {"url": f"http://127.0.0.1:{port}/hook"},
            "report_after": 2, "max_backoff_seconds": 0.5, "required": ["webhook"],
        }})
        audit = AuditLog(audit_dir)
        box = AlertOutbox(engine, tmp_path, audit=audit)
        task = asyncio.create_task(box.run())
        try:
            alert_id = await box.enqueue(dict(ALERT))

            async def reported() -> bool:
                return any(r["eventName"] == "BreakGlassAlertUndelivered" for r in read_records(audit_dir))

            assert await _until(reported), "after 2 failed attempts the alert is reported"
            queued = await outbox.pending(engine)
            assert [a["id"] for a in queued] == [alert_id] and queued[0]["attempts"] >= 2
            assert "webhook" in queued[0]["errors"] and "file" in queued[0]["delivered"]
            assert not box.can_deliver(), "the required channel failed its last attempt"
            listed = subprocess.run(
                [sys.executable, "-m", "perimeterdb.cli", "break-glass", "alerts", "--json", "--data-dir",
                 str(tmp_path)], capture_output=True, timeout=60, check=True,
            )
            assert [a["id"] for a in json.loads(listed.stdout)["undelivered"]] == [alert_id]
            with receiver(port) as hook:
                assert await _until(lambda: _empty(engine)), "delivered once the receiver is back"
                assert [json.loads(r.body)["id"] for r in hook.accepted()] == [alert_id]
            assert box.can_deliver()
            return alert_id, list(read_records(audit_dir))
        finally:
            task.cancel()
            audit.close()

    alert_id, records = _run(work, tmp_path)
    undelivered = [r for r in records if r["eventName"] == "BreakGlassAlertUndelivered"]
    assert len(undelivered) == 1, "reported once, not at every retry"
    assert undelivered[0]["breakGlass"] is True and undelivered[0]["errorCode"] == "AlertUndelivered"
    assert undelivered[0]["additionalEventData"]["undelivered"] == ["webhook"]
    late = [r for r in records if r["eventName"] == "BreakGlassAlertDelivered"]
    assert late and late[0]["additionalEventData"]["alertId"] == alert_id


_DELIVERER = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from perimeterdb.breakglass.outbox import AlertOutbox
    from perimeterdb.storage.sqlite import SQLiteEngine

    async def main():
        engine = SQLiteEngine(Path(sys.argv[1]) / "perimeterdb.sqlite3", durability="normal")
        task = asyncio.create_task(AlertOutbox(engine, Path(sys.argv[1])).run())
        await asyncio.sleep(float(sys.argv[2]))
        task.cancel()
        engine.close()

    asyncio.run(main())
""")


def test_two_processes_never_deliver_one_alert_at_once(tmp_path: Path) -> None:
    with receiver(delay=0.3) as hook:
        async def setup(engine: SQLiteEngine) -> list[str]:
            await save_settings(engine, {"alerts": {"webhook": {"url": hook.url}}})
            box = AlertOutbox(engine, tmp_path)  # queues only: its loop does not run
            return [await box.enqueue({**ALERT, "n": n}) for n in range(8)]

        ids = _run(setup, tmp_path)
        workers = [
            subprocess.Popen([sys.executable, "-c", _DELIVERER, str(tmp_path), "12"]) for _ in range(2)
        ]
        try:
            assert hook.wait_for(lambda: len(hook.accepted()) >= len(ids), timeout=30)
            time.sleep(1.5)  # both loops polled again after the last delivery
        finally:
            for w in workers:
                w.wait(timeout=30)
    assert not hook.overlaps, f"delivered by two processes at once: {hook.overlaps}"
    got = [json.loads(r.body)["id"] for r in hook.accepted()]
    assert sorted(got) == sorted(ids), "each alert delivered exactly once here (the lease held throughout)"

    async def left(engine: SQLiteEngine) -> int:
        return len(await outbox.pending(engine))

    assert _run(left, tmp_path) == 0


def test_a_stale_lease_is_taken_over(tmp_path: Path) -> None:
    """A process that died holding a lease: another delivers once the lease expires."""
    with receiver() as hook:
        async def work(engine: SQLiteEngine) -> None:
            await save_settings(engine, {"alerts": {"webhook": {"url": hook.url}, "lease_seconds": 2}})
            dead = AlertOutbox(engine, tmp_path)
            alert_id = await dead.enqueue(dict(ALERT))
            await dead._configure(force=True)
            assert await dead._take_leases(await engine.scan(outbox.PENDING))  # ...and then it "dies"
            alive = AlertOutbox(engine, tmp_path)
            await alive.deliver_due()
            assert not hook.received, "the live lease is respected"
            [queued] = await outbox.pending(engine)
            assert queued["id"] == alert_id and queued["lease"]["owner"] == dead.owner
            until = queued["lease"]["until"]
            assert until - time.time() < 15, "a lease lasts a bounded time"
            await asyncio.sleep(until - time.time() + 0.2)
            await alive.deliver_due()
            assert [json.loads(r.body)["id"] for r in hook.accepted()] == [alert_id]

        _run(work, tmp_path)


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("x" * 40)
    os.chmod(secret, 0o644)
    with pytest.raises(channels.DeliveryError, match="readable by others"):
        channels.load_or_create_secret(secret)


def test_a_round_reads_only_due_alerts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long outage with many alerts queued: a round that finds nothing due reads no queued alert."""
    port = free_port()  # nobody listens: every webhook attempt fails at once
    monkeypatch.setattr(outbox, "BACKOFF_BASE", 60.0)  # nothing becomes due again during the test

    async def work(engine: SQLiteEngine) -> tuple[int, int]:
        await save_settings(engine, {"alerts": {"webhook": {"url": f"http://127.0.0.1:{port}/h"}}})
        box = AlertOutbox(engine, tmp_path)
        for n in range(200):
            await box.enqueue({**ALERT, "n": n})
        await box.deliver_due()  # every alert is tried once and waits for its next attempt
        queued = await outbox.pending(engine)
        assert len(queued) == 200 and all(a["attempts"] == 1 and "file" in a["delivered"] for a in queued)
        before = engine.rows_read
        await box.deliver_due()
        return engine.rows_read - before, len(queued)

    read, queued = _run(work, tmp_path)
    assert queued == 200 and read <= 5, f"{read} rows read by a round with nothing due"


def test_syslog_over_udp_and_a_file_channel_that_cannot_be_written(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(10)
        port = udp.getsockname()[1]
        [syslog] = [c for c in channels.parse_channels({"alerts": {"syslog": f"127.0.0.1:{port}"}}, tmp_path)
                    if c.name == "syslog"]
        syslog.deliver(b'{"id":"x1","alert":{"what":"PutItem\\n<13>forged"}}', "x1")
        datagram = udp.recv(65536)
    assert datagram.startswith(b"<81>perimeterdb[") and datagram.count(b"\n") == 0, "one line: JSON escapes"
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    with pytest.raises(channels.DeliveryError, match="append to"):
        channels.FileChannel(blocked / "alerts.jsonl").deliver(b"{}", "x2")


def test_a_failing_receiver_is_probed_not_stormed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "BACKOFF_BASE", 60.0)
    with receiver(fail_first=10**9) as hook:  # answers 500 to everything
        async def work(engine: SQLiteEngine) -> list[dict[str, Any]]:
            await save_settings(engine, {"alerts": {"webhook": {"url": hook.url}}})
            box = AlertOutbox(engine, tmp_path)
            for n in range(300):
                await box.enqueue({**ALERT, "n": n})
            await box.deliver_due()
            return await outbox.pending(engine)

        queued = _run(work, tmp_path)
        posts = len(hook.received)
    assert len(queued) == 300 and all(a["attempts"] == 1 for a in queued), "every alert counted one attempt"
    assert posts <= 2 * outbox.BATCH + 5, f"{posts} POSTs to a receiver that fails everything"
    assert all("webhook" in a["errors"] for a in queued), "every alert says why the webhook has it not"
    skipped = [a for a in queued if a["errors"]["webhook"].startswith("not tried: webhook is failing")]
    assert len(skipped) >= 300 - posts and all("answered 500" in a["errors"]["webhook"] for a in skipped)


def test_a_probe_that_succeeds_lets_the_rest_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "BACKOFF_BASE", 60.0)
    with receiver(fail_first=2 * outbox.BATCH) as hook:  # the first two batches fail, then it is back
        async def work(engine: SQLiteEngine) -> tuple[int, int]:
            await save_settings(engine, {"alerts": {"webhook": {"url": hook.url}}})
            box = AlertOutbox(engine, tmp_path)
            for n in range(3 * outbox.BATCH + 8):
                await box.enqueue({**ALERT, "n": n})
            await box.deliver_due()
            return len(await outbox.pending(engine)), len(await outbox.delivered(engine))

        queued, done = _run(work, tmp_path)
    assert queued == 2 * outbox.BATCH and done == outbox.BATCH + 8, (queued, done)
