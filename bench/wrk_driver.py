"""Run wrk with bench/replay.lua against one port and parse its JSON summary.

The same generator drives every system: one wrk thread (the other core is the server's), keep-alive
connections, pre-signed requests. ``rate`` turns the closed loop into a paced one (a pause per connection,
so that the offered load is about ``rate`` requests/s) for the latency-at-half-load figure.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from common import BENCH

LUA = BENCH / "replay.lua"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # non-2xx answers, socket errors and time-outs
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    connections: int
    server_cpu_us: float | None = None  # server CPU per request, from /proc

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 1.0

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "rps": round(self.rps, 1),
            "requests": self.requests,
            "errors": self.errors,
            "mean_ms": self.mean_ms,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "connections": self.connections,
            "server_cpu_us": self.server_cpu_us,
        }


def command(port: int, seconds: float, connections: int) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}/",
    ]


def run(
    port: int,
    request_file: Path,
    *,
    seconds: float,
    connections: int = 16,
    rate: float | None = None,
    server_pid: int | None = None,
) -> WrkResult:
    from common import cpu_seconds

    env = dict(os.environ, WRK_REQUESTS=str(request_file))
    if rate:
        # Each connection sends a request, waits for the answer, then pauses: rate ~ c / (pause + latency).
        # The caller passes the measured latency in by lowering `rate` as needed; here: pause = c / rate.
        env["WRK_DELAY_MS"] = f"{connections / rate * 1000:.3f}"
    cpu0 = cpu_seconds(server_pid) if server_pid else None
    out = subprocess.run(
        command(port, seconds, connections), capture_output=True, text=True, env=env, timeout=seconds + 60
    )
    cpu = cpu_seconds(server_pid) - cpu0 if server_pid and cpu0 is not None else None
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk gave no summary (rc={out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]}"
        )
    data = json.loads(line[len("BENCH_JSON ") :])
    errors = sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
    requests = int(data["requests"])
    return WrkResult(
        requests=requests,
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        mean_ms=data["mean_us"] / 1000,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        p999_ms=data["p999_us"] / 1000,
        connections=connections,
        server_cpu_us=(cpu / requests * 1e6) if cpu is not None and requests else None,
    )


def run_at_rate(
    port: int, request_file: Path, *, target_rps: float, seconds: float, server_pid: int | None = None
) -> WrkResult:
    """A paced run at about ``target_rps``: 4 connections, each pausing so the offered load is the target.

    The pause is c / rate minus the latency, so a first short run measures the latency at that load and a
    second run corrects the pause with it.
    """
    connections = 4
    probe = run(port, request_file, seconds=max(1.0, seconds / 3), connections=connections, rate=target_rps)
    interval_ms = connections / target_rps * 1000
    pause_ms = max(0.0, interval_ms - probe.mean_ms)
    rate_for_pause = connections / (pause_ms / 1000) if pause_ms > 0 else None
    return run(
        port,
        request_file,
        seconds=seconds,
        connections=connections,
        rate=rate_for_pause,
        server_pid=server_pid,
    )
