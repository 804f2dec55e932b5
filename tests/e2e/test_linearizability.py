"""Linearizability: the Wing-Gong checker (tests/support/linearizability.py) on known histories, and short
recorded histories of concurrent conditional writes against real servers (one and two worker processes).
The long run is soak/linearizability.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soak.linearizability import make_table, record_history
from tests.support.linearizability import Op, check_history, check_register
from tests.support.server import ServerProcess


def W(call: float, ret: float | None, new: str, key: str = "k") -> Op:
    return Op(call, ret, "write", key, new=new)


def R(call: float, ret: float | None, result: str | None, key: str = "k") -> Op:
    return Op(call, ret, "read", key, result=result)


def C(call: float, ret: float | None, expected: str | None, new: str, ok: bool | None, key: str = "k") -> Op:
    return Op(call, ret, "cas", key, expected, new, ok)


# --- histories the checker must reject ------------------------------------------------------------------

NOT_LINEARIZABLE = {
    "stale read after a completed write": [W(0, 1, "a"), R(2, 3, None)],
    "read of a value nobody wrote": [W(0, 1, "a"), R(2, 3, "z")],
    "two CAS from the same value both succeed (lost update)": [
        W(0, 1, "a"),
        C(2, 10, "a", "b", True),
        C(3, 11, "a", "c", True),
    ],
    "read of an overwritten value": [W(0, 1, "a"), W(2, 3, "b"), R(4, 5, "a")],
    "reads go back in time": [W(0, 1, "a"), W(2, 10, "b"), R(3, 4, "b"), R(5, 6, "a")],
    "CAS fails although the register holds its value": [W(0, 1, "a"), C(2, 3, "a", "b", False)],
    "CAS succeeds although the register does not hold its value": [W(0, 1, "a"), C(2, 3, "x", "b", True)],
    "a write of unknown outcome seen before it was sent": [R(0, 1, "a"), W(2, None, "a")],
    "CAS on an empty register fails with nothing concurrent": [C(0, 1, None, "a", False)],
    "a successful CAS is not seen by a later read": [C(0, 1, None, "a", True), R(2, 3, None)],
    "two readers disagree on the order of two writes": [
        W(0, 10, "a"),
        W(0, 10, "b"),
        R(1, 2, "a"),
        R(3, 4, "b"),
        R(1, 2.5, "b", key="k"),
        R(3.5, 4.5, "a", key="k"),
    ],
}

LINEARIZABLE = {
    "empty": [],
    "read concurrent with a write sees the old value": [W(0, 1, "a"), W(2, 10, "b"), R(3, 4, "a")],
    "read concurrent with a write sees the new value": [W(0, 1, "a"), W(2, 10, "b"), R(3, 4, "b")],
    "concurrent CAS: one wins, one fails": [
        W(0, 1, "a"),
        C(2, 10, "a", "b", True),
        C(3, 11, "a", "c", False),
    ],
    "a CAS of unknown outcome that took effect": [C(0, None, None, "a", None), R(5, 6, "a")],
    "a CAS of unknown outcome that did not": [C(0, None, None, "a", None), R(5, 6, None)],
    "a CAS whose success is read before it returned": [C(0, 10, None, "a", True), R(1, 2, "a")],
    "independent keys": [W(0, 1, "a", key="x"), R(2, 3, None, key="y"), R(2, 3, "a", key="x")],
}


@pytest.mark.parametrize("name", NOT_LINEARIZABLE)
def test_checker_rejects(name: str) -> None:
    result = check_history(NOT_LINEARIZABLE[name])
    assert result.ok is False, result


@pytest.mark.parametrize("name", LINEARIZABLE)
def test_checker_accepts(name: str) -> None:
    result = check_history(LINEARIZABLE[name])
    assert result.ok is True, result


def test_checker_gives_a_witness_order() -> None:
    result = check_register([W(0, 1, "a"), C(2, 10, "a", "b", True), R(3, 4, "b"), R(11, 12, "b")])
    assert result.ok is True
    assert [o.kind for o in result.order] == ["write", "cas", "read", "read"]


def test_checker_reports_giving_up() -> None:
    # Many overlapping writes and one impossible read force a search wider than the limit.
    history = [W(0, 100, f"v{i}") for i in range(12)] + [R(1, 2, "never")]
    assert check_register(history, max_states=50).ok is None


@st.composite
def executions(draw: st.DrawFn) -> list[Op]:
    """A real execution of a register: each op takes effect at one instant inside its interval, results come
    from applying the ops in the order of those instants; some ops lose their answer (unknown outcome)."""
    n = draw(st.integers(1, 9))
    ops = []
    for i in range(n):
        call = draw(st.integers(0, 40))
        point = call + draw(st.integers(0, 10))
        ret = point + draw(st.integers(0, 10))
        kind = draw(st.sampled_from(["read", "write", "cas"]))
        expected = draw(st.sampled_from([None, "v0", "v1", "v2"]))
        ops.append((point, i, call, ret, kind, expected, f"v{i % 3}"))
    value = None
    history = []
    for point, i, call, ret, kind, expected, new in sorted(ops):
        lost = draw(st.integers(0, 5)) == 0
        if kind == "read":
            history.append(R(call, None if lost else ret, value))
        elif kind == "write":
            value = new
            history.append(W(call, None if lost else ret, new))
        else:
            ok = value == expected
            if ok:
                value = new
            if lost and not ok:
                continue  # a failed CAS of unknown outcome: indistinguishable from not having been sent
            history.append(C(call, None if lost else ret, expected, new, None if lost else ok))
        del point, i
    return history


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(executions())
def test_checker_accepts_every_real_execution(history: list[Op]) -> None:
    assert check_register(history).ok is True


# --- recorded histories against real servers -----------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_recorded_histories_are_linearizable(tmp_path: Path, workers: int) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--workers", str(workers)]).start()
    try:
        kinds: dict[str, int] = {"cas-ok": 0, "cas-failed": 0, "read-value": 0}
        for seed in range(3):
            history, _unknown = record_history(
                server, make_table(server), clients=4, ops=25, keys=2, seed=seed
            )
            result = check_history(history)
            assert result.ok is True, result.detail
            kinds["cas-ok"] += sum(1 for o in history if o.kind == "cas" and o.result is True)
            kinds["cas-failed"] += sum(1 for o in history if o.kind == "cas" and o.result is False)
            kinds["read-value"] += sum(1 for o in history if o.kind == "read" and o.result is not None)
        # The workload exercised both outcomes of a conditional write and read written values.
        assert all(count >= 5 for count in kinds.values()), kinds
    finally:
        server.stop()
