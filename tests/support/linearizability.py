"""A Wing-Gong linearizability checker for compare-and-set registers (independent of perimeterdb).

A history is a list of ``Op``: each has an invocation time, a return time (``None`` when the outcome is
unknown: the client timed out or the connection broke, so the operation may or may not have taken
effect), a kind and its arguments and result:

- ``read``: ``result`` is the value read (``None``: the register is empty);
- ``write``: sets the register to ``new``;
- ``cas``: if the register holds ``expected`` (``None``: empty), set it to ``new`` and ``result=True``;
  otherwise leave it and ``result=False``.

The history is linearizable if the operations can be put in one order that respects real time (an
operation that returned before another was invoked comes first), in which every completed operation gives
its recorded result from the sequential register, and in which each operation of unknown outcome either
takes effect at some point after its invocation or never does.

Registers with different keys are independent (linearizability is local: Herlihy & Wing 1990), so
``check_history`` checks each key on its own. The search is Wing & Gong's (1993): repeatedly pick a
minimal operation (one invoked before every pending completed operation returned), apply it to the
sequential model, and backtrack on a mismatch; with Lowe's (2017) memo of visited (linearized set, state)
pairs, which makes the search practical for hundreds of operations of a handful of clients.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "Op", "check_history", "check_register"]

_EMPTY = ("<empty>",)  # the register's state before any write (distinct from every client value)


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of one client: ``call`` and ``ret`` are times on one clock (``ret`` None: unknown)."""

    call: float
    ret: float | None
    kind: str  # "read", "write" or "cas"
    key: Hashable = None
    expected: Any = None  # cas: the value the register must hold (None: empty)
    new: Any = None  # write, cas: the value stored
    result: Any = None  # read: the value read (None: empty); cas: True / False
    client: Hashable = None

    def __post_init__(self) -> None:
        if self.kind not in ("read", "write", "cas"):
            raise ValueError(f"unknown operation kind {self.kind!r}")
        if self.ret is not None and self.ret < self.call:
            raise ValueError("an operation returned before it was invoked")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """``ok`` is True (linearizable), False (not), or None (the search gave up after ``max_states``)."""

    ok: bool | None
    key: Hashable = None
    states: int = 0
    order: tuple[Op, ...] = ()  # a witness order when ok (the linearization of every completed op)
    detail: str = ""
    per_key: tuple[CheckResult, ...] = field(default=())


def _step(state: Any, op: Op) -> tuple[bool, Any]:
    """Apply ``op`` to the sequential register: (does its recorded outcome match, the next state)."""
    held = None if state is _EMPTY else state
    if op.kind == "read":
        if op.ret is None:
            return True, state  # an unanswered read constrains nothing
        return op.result == held, state
    if op.kind == "write":
        return True, op.new
    holds = held == op.expected
    if op.ret is None:  # unknown outcome: only its taking effect is worth linearizing (else: skip it)
        return holds, op.new if holds else state
    if op.result:
        return holds, op.new if holds else state
    return not holds, state


def check_register(history: Sequence[Op], *, initial: Any = None, max_states: int = 2_000_000) -> CheckResult:
    """Check the history of one register (every op on the same key)."""
    ops = sorted(history, key=lambda o: o.call)
    n = len(ops)
    completed = [o.ret is not None for o in ops]
    must = sum(1 << i for i in range(n) if completed[i])  # every completed op must be linearized
    rets = [o.ret if o.ret is not None else float("inf") for o in ops]
    start_state = _EMPTY if initial is None else initial
    seen: set[tuple[int, Any]] = set()
    # Depth-first search with an explicit stack of (linearized set, state, order so far).
    stack: list[tuple[int, Any, tuple[int, ...]]] = [(0, start_state, ())]
    states = 0
    while stack:
        done, state, order = stack.pop()
        if done & must == must:
            return CheckResult(True, ops[0].key if ops else None, states, tuple(ops[i] for i in order))
        if (done, state) in seen:
            continue
        seen.add((done, state))
        states += 1
        if states > max_states:
            return CheckResult(None, ops[0].key if ops else None, states, detail="search limit reached")
        # The earliest return among completed, not yet linearized ops bounds which op may come next.
        horizon = min((rets[i] for i in range(n) if completed[i] and not done >> i & 1), default=float("inf"))
        for i in range(n):
            if done >> i & 1:
                continue
            if ops[i].call > horizon:
                break  # sorted by call: no later op can come next either
            matches, nxt = _step(state, ops[i])
            if matches:
                stack.append((done | 1 << i, nxt, (*order, i)))
    return CheckResult(
        False,
        ops[0].key if ops else None,
        states,
        detail=f"no linearization of {sum(completed)} completed operations ({n} in all) exists",
    )


def check_history(history: Iterable[Op], *, max_states: int = 2_000_000) -> CheckResult:
    """Check every key's register; ``ok`` is False if any key fails, None if any search gave up."""
    by_key: dict[Hashable, list[Op]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    results = tuple(
        check_register(ops, max_states=max_states)
        for _, ops in sorted(by_key.items(), key=lambda kv: repr(kv[0]))
    )
    if any(r.ok is False for r in results):
        ok: bool | None = False
    elif any(r.ok is None for r in results):
        ok = None
    else:
        ok = True
    bad = [r for r in results if r.ok is not True]
    detail = "; ".join(f"key {r.key!r}: {r.detail}" for r in bad)
    return CheckResult(ok, None, sum(r.states for r in results), detail=detail, per_key=results)
