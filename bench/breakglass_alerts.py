"""What the durable alert outbox costs, measured on a real server (loopback, durability full by default):

1. the latency of a request made with a break-glass session (its alert queued durably before the answer)
   against the same request made by an ordinary user;
2. the time from the answer of a break-glass request to its alert arriving at a webhook on 127.0.0.1.

    .venv/bin/python bench/breakglass_alerts.py [--requests 200] [--workers 1] [--durability full]

Requests are sent one at a time on a kept-alive connection: the figures are latencies, not throughput.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.breakglass.receiver import receiver  # noqa: E402
from tests.e2e import test_breakglass_review as lab_mod  # noqa: E402


def _timed(call: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        try:
            call(i)
        except ClientError:
            pass
        out.append((time.perf_counter() - start) * 1000)
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"p50_ms": round(statistics.median(ms), 2), "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 2),
            "p99_ms": round(ms[max(0, int(len(ms) * 0.99) - 1)], 2), "n": len(ms)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--durability", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    with receiver() as hook, tempfile.TemporaryDirectory() as tmp:
        original = lab_mod.ServerProcess

        class Server(original):  # type: ignore[misc, valid-type]
            def start(self, timeout: float = 20.0) -> Any:
                self.extra_args = [a if a != "normal" else args.durability for a in self.extra_args]
                return super().start(timeout)

        lab_mod.ServerProcess = Server  # type: ignore[misc]
        lab = lab_mod._start(Path(tmp), hook.url, "--workers", str(args.workers))
        try:
            creds = lab.break_glass("bench")
            glass = lab.client("dynamodb", creds)
            plain = lab.client("dynamodb")  # the oncall user itself: an ordinary principal
            key = {"pk": {"S": "a"}}
            plain_ms = _timed(lambda i: plain.get_item(TableName="absent", Key=key), args.requests)
            sent: dict[str, float] = {}

            def glass_call(i: int) -> None:
                try:
                    glass.get_item(TableName=f"absent-{i}", Key=key)
                finally:
                    sent[f"absent-{i}"] = time.perf_counter()

            glass_ms = _timed(glass_call, args.requests)
            hook.wait_for(lambda: len(hook.accepted()) >= args.requests + 1, timeout=120)
            # Each alert names its audit record (eventID), whose parameters name the table of the request.
            records = {rec["eventID"]: rec for rec in lab_mod.read_records(lab.server.data_dir / "audit")}
            delivery = []
            for r in hook.accepted():
                alert = json.loads(r.body)["alert"]
                rec = records.get(alert.get("eventID") or "")
                table = ((rec or {}).get("requestParameters") or {}).get("tableName")
                if table in sent:
                    delivery.append((r.at - sent[table]) * 1000)
        finally:
            lab.server.stop()
    print(json.dumps({
        "workers": args.workers, "durability": args.durability,
        "ordinary_request": _summary(plain_ms), "break_glass_request": _summary(glass_ms),
        "answer_to_webhook": _summary(delivery) if delivery else None,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
