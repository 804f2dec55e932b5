"""The small version of soak/crash_loop.py: a few kill -9 runs of the mixed workload, each checked after
restart (acknowledged writes whole, transactions all-or-nothing, counters, index = table, integrity_check);
and a check that the verification does notice a lost write."""

from __future__ import annotations

from pathlib import Path

from soak.crash_loop import TX_SIZE, CrashLoop, RunReport
from tests.support.server import ServerProcess


def test_kill_9_during_a_mixed_workload_three_times(tmp_path: Path) -> None:
    loop = CrashLoop(tmp_path / "data", seed=7, clients=3, max_workload_s=0.8)
    reports = [loop.run_once(run) for run in range(3)]
    for report in reports:
        assert report.clean, (report.run, report.problems)
    assert sum(r.acknowledged for r in reports) >= 20, (
        "the workload made too little progress to test anything"
    )
    assert all(r.items > 0 for r in reports)


def test_the_checks_notice_lost_and_partial_writes(tmp_path: Path) -> None:
    loop = CrashLoop(tmp_path / "data", seed=3, clients=2, max_workload_s=0.5)
    assert loop.run_once(0).clean
    exp = loop.expected["crash0"]
    server = ServerProcess(tmp_path / "data").start()
    try:
        ddb = server.client()
        lost = next(pk for pk in exp.items if pk.startswith("p"))
        ddb.delete_item(TableName="crash0", Key={"pk": {"S": lost}})
        acknowledged_tx = next((tx for tx, ok in exp.transactions.items() if ok), None)
        if acknowledged_tx is not None:
            ddb.delete_item(TableName="crash0", Key={"pk": {"S": f"t{acknowledged_tx}-{TX_SIZE - 1}"}})
        report = RunReport(1)
        loop._verify(server, "crash0", exp, report)
    finally:
        server.stop()
    assert any(lost in p and "missing" in p for p in report.problems), report.problems
    if acknowledged_tx is not None:
        assert any(f"transaction {acknowledged_tx} is partial" in p for p in report.problems), report.problems
