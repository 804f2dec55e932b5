"""The sealed break-glass guardrail's cost on a mutating IAM call, over loopback with boto3.

The platform's session (management account -> role/platform in prod) tags, 300 times in a row each:
- ``emergency``, a sealed role: the guardrail is evaluated by the policy engine (and allows the platform);
- ``feature-team``, an ordinary role: the guardrail reads the registry and finds nothing sealed to protect;
then, with nothing sealed at all, the same calls on both roles (the difference on ``emergency`` is the
guardrail; what a break-glass role costs besides, e.g. its audit and alerts, is in both).

    .venv/bin/python bench/sealed_guardrail.py /tmp/sealed-bench
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perimeterdb.storage.sqlite import SQLiteEngine
from perimeterdb.world import sealed
from tests.e2e.test_breakglass_sealed import PROD, Lab, _key, _world
from tests.support.server import ServerProcess

N = 300


def timed(iam: Any, role: str, n: int = N) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        iam.tag_role(RoleName=role, Tags=[{"Key": "bench", "Value": str(i)}])
        out.append(time.perf_counter() - start)
    return out


def report(name: str, xs: list[float]) -> None:
    xs = sorted(xs)
    median, p90 = statistics.median(xs) * 1000, xs[int(len(xs) * 0.9)] * 1000
    print(f"{name}: median {median:.2f} ms, p90 {p90:.2f} ms (n={len(xs)})")


async def unseal_everything(data_dir: Path) -> None:
    engine = SQLiteEngine(data_dir / "perimeterdb.sqlite3", durability="full")
    try:
        await sealed.save_registry(engine, sealed.Registry())
    finally:
        engine.close()


def main() -> None:
    directory = Path(sys.argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    keys = {name: _key(name) for name in ("platform", "team", "team2")}
    world = _world(directory, keys)
    server = ServerProcess(directory / "data", extra_args=["--world", str(world)]).start()
    try:
        iam = Lab(server, keys, world).platform(PROD)
        timed(iam, "feature-team", 50)  # warm-up
        sealed_role = timed(iam, "emergency")
        ordinary = timed(iam, "feature-team")
        asyncio.run(unseal_everything(server.data_dir))
        timed(iam, "feature-team", 50)
        nothing = timed(iam, "feature-team")
        unsealed = timed(iam, "emergency")
        report("TagRole on the sealed role (guardrail evaluated)", sealed_role)
        report("TagRole on the same role, unsealed (guardrail skipped)", unsealed)
        report("TagRole on an ordinary role (registry read only)", ordinary)
        report("TagRole on an ordinary role, nothing sealed", nothing)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
