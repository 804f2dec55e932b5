"""The simple figure of issue #2: one boto3 process doing GetItem/PutItem in a loop, and the server's CPU.

    python3 bench/boto3_loop.py [--seconds 10]

Starts a server (durability full) on a free port, runs PutItem then GetItem for the given time each from
one boto3 client, and prints calls/s and the server's CPU time per request (from /proc).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.server import ServerProcess


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data").start()
        try:
            assert server.proc is not None
            client = server.client()
            client.create_table(
                TableName="loop",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            payload = "x" * 1000
            for name, call in (
                (
                    "PutItem",
                    lambda i: client.put_item(
                        TableName="loop", Item={"pk": {"S": f"k{i % 1000}"}, "v": {"S": payload + str(i)}}
                    ),
                ),
                ("GetItem", lambda i: client.get_item(TableName="loop", Key={"pk": {"S": f"k{i % 1000}"}})),
            ):
                cpu0, t0, n = _cpu_seconds(server.proc.pid), time.perf_counter(), 0
                while time.perf_counter() - t0 < args.seconds:
                    call(n)
                    n += 1
                elapsed = time.perf_counter() - t0
                cpu = _cpu_seconds(server.proc.pid) - cpu0
                print(
                    f"{name}: {n / elapsed:.0f} calls/s from one boto3 process; server CPU {cpu / n * 1e6:.0f} µs/request"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
