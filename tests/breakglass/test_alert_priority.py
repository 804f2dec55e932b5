"""A flood of refused break-glass attempts must not delay the alerts that matter (issue 12, red-team finding).

Against the real outbox with a local webhook receiver: refused attempts wait behind granted sessions' alerts,
and beyond the first few per (principal, role, reason) and window they are aggregated, counts kept.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from perimeterdb.breakglass import outbox
from perimeterdb.breakglass.outbox import BATCH, AlertOutbox
from perimeterdb.storage.sqlite import SQLiteEngine
from perimeterdb.world.breakglass import save_settings
from tests.breakglass.receiver import Receiver, receiver
from tests.breakglass.support import run_on_engine as _run
from tests.breakglass.support import until as _until

ROLE = "arn:aws:iam::222222222222:role/emergency"


def _refused(n: int, principals: int) -> dict[str, Any]:
    who = f"arn:aws:iam::222222222222:user/attacker{n % principals}"
    return {
        "alert": "break-glass-assume-role", "outcome": "refused", "roleArn": ROLE, "who": who,
        "principalArn": who, "errorCode": "AccessDenied", "time": time.time(),
        "errorMessage": "MFA required" if n % 3 else "the code was already used", "n": n,
    }


GRANTED = {"alert": "break-glass-assume-role", "outcome": "granted", "roleArn": ROLE, "sessionId": "ASIAGRANTED",
           "who": "arn:aws:iam::222222222222:user/oncall", "principalArn": "arn:aws:iam::222222222222:user/oncall"}
REQUEST = {"alert": "break-glass", "what": "PutItem", "accessKeyId": "ASIAGRANTED",
           "who": "arn:aws:sts::222222222222:assumed-role/emergency/oncall"}


def _bodies(hook: Receiver) -> list[tuple[float, dict[str, Any]]]:
    """Accepted alerts in arrival order, each id once (delivery is at least once)."""
    seen: set[str] = set()
    out = []
    for got in sorted(hook.accepted(), key=lambda r: r.at):
        body = json.loads(got.body)
        if body["id"] not in seen:
            seen.add(body["id"])
            out.append((got.at, body))
    return out


def test_granted_alert_first_and_refusal_flood_aggregated_with_counts(tmp_path: Path) -> None:
    flood, principals, burst, window = 500, 10, 5, 4.0
    with receiver() as hook:
        async def work(engine: SQLiteEngine) -> list[dict[str, Any]]:
            await save_settings(engine, {"alerts": {
                "webhook": {"url": hook.url}, "refusal_burst": burst, "refusal_window_seconds": window,
            }})
            box = AlertOutbox(engine, tmp_path)
            started = time.time()
            for n in range(flood):
                await box.enqueue(_refused(n, principals))
            spanned = int((time.time()) // window) - int(started // window) + 1
            granted_id = await box.enqueue(dict(GRANTED))
            request_id = await box.enqueue(dict(REQUEST))
            queued = await outbox.pending(engine)
            assert len(queued) <= spanned * principals * (burst + 1) + 2, "the queue stays bounded"
            assert {granted_id, request_id} <= {a["id"] for a in queued}
            task = asyncio.create_task(box.run())
            try:
                assert await _until(lambda: _empty(engine)), "everything is delivered"
            finally:
                task.cancel()
                box.stop()
            return [{"granted": granted_id, "request": request_id, "spanned": spanned}]

        info = _run(work, tmp_path)[0]
        bodies = _bodies(hook)
    order = [body["id"] for _, body in bodies]
    assert set(order[:2]) == {info["granted"], info["request"]}, "the session's alerts arrive before any refusal"
    refused = [body["alert"] for _, body in bodies if body["alert"].get("outcome") == "refused"]
    assert len(refused) <= info["spanned"] * principals * (burst + 1)
    per_principal: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    aggregates = 0
    for alert in refused:
        agg = alert.get("aggregate")
        if agg is None:
            per_principal[alert["principalArn"]] += 1
            messages[alert["errorMessage"]] += 1
            continue
        aggregates += 1
        assert agg["first"] <= agg["last"] and agg["alertedIndividually"] == burst
        assert agg["count"] == sum(agg["messages"].values()) + agg.get("otherMessages", 0)
        per_principal[alert["principalArn"]] += agg["count"]
        messages.update(agg["messages"])
    assert aggregates >= principals, "each attacker's flood was folded"
    assert per_principal == {f"arn:aws:iam::222222222222:user/attacker{i}": flood // principals
                             for i in range(principals)}, "every refusal is counted exactly once"
    assert messages == {"MFA required": sum(1 for n in range(flood) if n % 3),
                        "the code was already used": sum(1 for n in range(flood) if not n % 3)}


async def _empty(engine: SQLiteEngine) -> bool:
    return not await outbox.pending(engine)


def test_granted_alert_overtakes_a_flood_already_being_delivered(tmp_path: Path) -> None:
    flood = 500
    with receiver(delay=0.005) as hook:
        async def work(engine: SQLiteEngine) -> tuple[str, int]:
            # No aggregation here (a burst above the flood): 500 refusals really are queued one by one.
            await save_settings(engine, {"alerts": {"webhook": {"url": hook.url}, "refusal_burst": 1000}})
            box = AlertOutbox(engine, tmp_path)
            for n in range(flood):
                await box.enqueue(_refused(n, 1))
            assert len(await outbox.pending(engine)) == flood
            task = asyncio.create_task(box.run())
            try:
                async def started() -> bool:
                    return len(hook.accepted()) >= 1

                assert await _until(started)
                before = len(hook.accepted())
                granted_id = await box.enqueue(dict(GRANTED))
                assert await _until(lambda: _empty(engine)), "everything is delivered"
            finally:
                task.cancel()
                box.stop()
            return granted_id, before

        granted_id, before = _run(work, tmp_path)
        bodies = _bodies(hook)
    order = [body["id"] for _, body in bodies]
    assert len(order) == flood + 1
    ahead = order.index(granted_id)
    # At most the refusals already delivered, plus the batch in flight when it was queued, plus the next
    # batch that may have been leased at the same moment: never the whole flood.
    assert ahead <= before + 2 * BATCH < flood, (ahead, before)


def test_two_workers_flooding_one_group_count_every_refusal_once(tmp_path: Path) -> None:
    """Two server processes' outboxes (two engines on one database) fold the same group's refusals at once."""
    per_worker, burst = 100, 3

    async def work(engine: SQLiteEngine) -> list[dict[str, Any]]:
        await save_settings(engine, {"alerts": {"file": "alerts.jsonl", "refusal_burst": burst,
                                                "refusal_window_seconds": 3600}})
        other = SQLiteEngine(tmp_path / "perimeterdb.sqlite3", durability="normal")
        try:
            boxes = [AlertOutbox(engine, tmp_path), AlertOutbox(other, tmp_path)]

            async def flood(box: AlertOutbox) -> None:
                for n in range(per_worker):
                    await box.enqueue(_refused(n, 1))

            await asyncio.gather(*(flood(box) for box in boxes))
            return await outbox.pending(engine)
        finally:
            other.close()

    queued = _run(work, tmp_path)
    assert all(a.get("priority") == "low" for a in queued)
    total = sum((a["alert"].get("aggregate") or {"count": 1})["count"] for a in queued)
    assert total == 2 * per_worker, "each refusal is in exactly one alert"
    assert len(queued) < 2 * per_worker // 4, f"folded, not queued one by one: {len(queued)}"
