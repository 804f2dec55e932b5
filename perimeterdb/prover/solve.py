"""Run SMT-LIB problems on z3 and cvc5: as a portfolio of child processes (first answer wins), or in process.

A problem is SMT-LIB text without ``check-sat``. The answer is ``Answer(status, model, solver, seconds)``:
``sat`` with a model (symbol name -> Python value: str, int, Fraction, bool), ``unsat``, or ``unknown``
(a timeout, a solver that gave up, or no solver at all). A timeout is never read as ``unsat``.

The turn-1 prototype found z3 alone flaky on satisfiable problems over free strings and cvc5 fast on them,
so both run at once and the first definite answer (sat/unsat) wins; the other child is killed.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["SOLVERS", "Answer", "available_solvers", "solve", "solve_in_process"]

SOLVERS = ("cvc5", "z3")
_ESCAPE = re.compile(r"\\u\{([0-9a-fA-F]{1,5})\}")


@dataclass(frozen=True, slots=True)
class Answer:
    status: str  # "sat" | "unsat" | "unknown"
    model: dict[str, Any] = field(default_factory=dict)
    solver: str = ""
    seconds: float = 0.0
    reason: str = ""


def available_solvers() -> tuple[str, ...]:
    found = []
    for name in SOLVERS:
        try:
            __import__(name)
        except ImportError:
            continue
        found.append(name)
    return tuple(found)


_LOADED: set[str] = set()


def _preload(names: list[str]) -> None:
    """Import the solvers once in the parent, so that forked children start with them loaded."""
    for name in names:
        if name not in _LOADED:
            __import__(name)
            _LOADED.add(name)


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _run_z3(text: str, timeout: float, want: list[str] | None) -> tuple[str, dict[str, Any], str]:
    import z3

    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout * 1000)))
    solver.from_string(text)
    result = solver.check()
    if result == z3.unsat:
        return "unsat", {}, ""
    if result != z3.sat:
        return "unknown", {}, str(solver.reason_unknown())
    model = solver.model()
    out: dict[str, Any] = {}
    for decl in model.decls():
        value = model[decl]
        name = decl.name()
        if z3.is_string_value(value):
            out[name] = _unescape(value.as_string())
        elif z3.is_true(value) or z3.is_false(value):
            out[name] = z3.is_true(value)
        elif z3.is_int_value(value) or z3.is_bv_value(value):
            out[name] = value.as_long()
        elif z3.is_rational_value(value):
            out[name] = Fraction(value.numerator_as_long(), value.denominator_as_long())
    return "sat", out, ""


def _run_cvc5(text: str, timeout: float, want: list[str] | None) -> tuple[str, dict[str, Any], str]:
    import cvc5

    solver = cvc5.Solver()
    solver.setOption("produce-models", "true")
    solver.setOption("strings-exp", "true")
    solver.setOption("tlimit-per", str(max(1, int(timeout * 1000))))
    symbols = cvc5.SymbolManager(solver.getTermManager())
    parser = cvc5.InputParser(solver, symbols)
    parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, text, "problem")
    while True:
        command = parser.nextCommand()
        if command.isNull():
            break
        command.invoke(solver, symbols)
    result = solver.checkSat()
    if result.isUnsat():
        return "unsat", {}, ""
    if not result.isSat():
        return "unknown", {}, str(result.getUnknownExplanation())
    out: dict[str, Any] = {}
    for term in symbols.getDeclaredTerms():
        value = solver.getValue(term)
        name = str(term).strip("|")
        sort = value.getSort()
        if sort.isString():
            out[name] = value.getStringValue()
        elif sort.isBoolean():
            out[name] = value.getBooleanValue()
        elif sort.isInteger():
            out[name] = int(value.getIntegerValue())
        elif sort.isReal():
            out[name] = Fraction(value.getRealValue())
        elif sort.isBitVector():
            out[name] = int(value.getBitVectorValue(10))
    return "sat", out, ""


_RUNNERS = {"z3": _run_z3, "cvc5": _run_cvc5}


def _run_list(
    name: str, texts: list[str], timeout: float, hints: frozenset[int] = frozenset()
) -> tuple[str, dict[str, Any], str]:
    """Several problems in turn: the first sat wins (its index in ``model["#problem"]``); all unsat ->
    unsat; otherwise unknown. The time budget is shared."""
    deadline = time.perf_counter() + timeout
    reasons = []
    for index, text in enumerate(texts):
        left = deadline - time.perf_counter()
        if left <= 0:
            return "unknown", {}, f"timeout after {timeout:g} s"
        status, model, reason = _RUNNERS[name](text, min(left, 0.3) if index in hints else left, None)
        if status == "sat":
            model["#problem"] = index
            return status, model, ""
        if status != "unsat" and index not in hints:
            reasons.append(f"problem {index}: {reason or 'unknown'}")
    if reasons:
        return "unknown", {}, "; ".join(reasons)
    return "unsat", {}, ""


def solve_in_process(
    text: str | list[str], *, solver: str = "cvc5", timeout: float = 5.0, hints: frozenset[int] = frozenset()
) -> Answer:
    """One solver in this process (tests and the differential bench, where a child per problem costs
    more than the problem)."""
    start = time.perf_counter()
    try:
        texts = [text] if isinstance(text, str) else text
        status, model, reason = _run_list(solver, texts, timeout, hints)
    except Exception as exc:  # a solver error is an UNKNOWN, never a proof
        return Answer("unknown", {}, solver, time.perf_counter() - start, f"{solver} failed: {exc}")
    return Answer(status, model, solver, time.perf_counter() - start, reason)


def _child(name: str, texts: list[str], timeout: float, conn: Connection) -> None:
    try:
        status, model, reason = _run_list(name, texts, timeout)
        conn.send((status, model, reason))
    except BaseException as exc:  # report, never hang the parent
        try:
            conn.send(("unknown", {}, f"{name} failed: {exc}"))
        except Exception:
            pass
    finally:
        conn.close()


_SLICES = (0.3, 1.5, 5.0)  # seconds per problem in the first passes; the last pass gets what is left


def _stream(
    name: str, texts: list[str], timeout: float, decided: Any, conn: Connection, hints: frozenset[int]
) -> None:
    """One solver over the whole list, in passes with growing time slices, skipping the problems the
    other solver has decided (``decided``: a shared byte per problem). Sends (index, status, model, reason)
    for each problem it decides, then ("done",)."""
    try:
        deadline = time.perf_counter() + timeout
        for slice_ in (*_SLICES, None):
            for index, text in enumerate(texts):
                if decided[index] or (index in hints and slice_ != _SLICES[0]):
                    continue
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                budget = left if slice_ is None else min(slice_, left)
                status, model, reason = _RUNNERS[name](text, budget, None)
                if status in ("sat", "unsat"):
                    decided[index] = 1
                    conn.send((index, status, model, ""))
                    if status == "sat":
                        return
                elif slice_ is None:
                    conn.send((index, "unknown", {}, reason))
            if all(decided[i] for i in range(len(texts)) if i not in hints):
                break
        conn.send(("done",))
    except BaseException as exc:  # report, never hang the parent
        try:
            conn.send(("done", f"{name} failed: {exc}"))
        except Exception:
            pass
    finally:
        conn.close()


def solve(
    text: str | list[str],
    *,
    timeout: float = 10.0,
    solvers: tuple[str, ...] | None = None,
    hints: frozenset[int] = frozenset(),
) -> Answer:
    """The portfolio: every available solver in its own child process, each working through the problems
    (``text`` may be a list) and skipping those the other has decided; the first sat of any problem wins
    (its index in ``model["#problem"]``) and the children are killed; every problem unsat -> unsat; a
    problem nobody decided in ``timeout`` -> unknown, never unsat. ``hints``: problems that are special
    cases of others (a guessed principal name pinned): tried briefly first, their sat counts, their
    unsat or unknown does not."""
    texts = [text] if isinstance(text, str) else text
    names = [n for n in (solvers or SOLVERS) if n in available_solvers()]
    start = time.perf_counter()
    if not names:
        return Answer("unknown", {}, "", 0.0, "no SMT solver installed (pip install z3-solver cvc5)")
    _preload(names)
    ctx = mp.get_context("fork")
    decided = ctx.Array("b", len(texts), lock=False)
    children: dict[Connection, tuple[str, Any]] = {}
    for name in names:
        parent_end, child_end = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_stream, args=(name, texts, timeout, decided, child_end, hints), daemon=True
        )
        process.start()
        child_end.close()
        children[parent_end] = (name, process)
    unsat: set[int] = set()
    reasons: dict[int, str] = {}
    used: set[str] = set()
    answer: Answer | None = None
    deadline = start + timeout + 1.0
    try:
        required = len(texts) - len(hints)
        while children and answer is None and len(unsat - hints) < required:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            for conn in wait(list(children), timeout=left):
                name, process = children[conn]  # type: ignore[index]
                try:
                    message = conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    message = ("done", f"{name} exited")
                if message[0] == "done":
                    children.pop(conn)  # type: ignore[arg-type]
                    conn.close()  # type: ignore[union-attr]
                    if len(message) > 1:
                        reasons[-1] = message[1]
                    continue
                index, status, model, reason = message
                if status == "sat":
                    model["#problem"] = index
                    answer = Answer("sat", model, name, time.perf_counter() - start)
                    break
                if status == "unsat":
                    unsat.add(index)
                    used.add(name)
                else:
                    reasons[index] = f"{name}: {reason or 'unknown'}"
    finally:
        for conn, (_name, process) in children.items():
            if process.is_alive():
                process.kill()
            process.join(timeout=1)
            conn.close()
    if answer is not None:
        return answer
    solver_names = "+".join(sorted(used))
    if len(unsat - hints) == len(texts) - len(hints):
        return Answer("unsat", {}, solver_names, time.perf_counter() - start)
    open_problems = [i for i in range(len(texts)) if i not in unsat and i not in hints]
    why = "; ".join(
        f"problem {i}: {reasons.get(i, f'timeout after {timeout:g} s')}" for i in open_problems[:3]
    )
    return Answer("unknown", {}, solver_names, time.perf_counter() - start, why)


def _race(text: str, timeout: float, names: list[str]) -> Answer:
    ctx = mp.get_context("fork")
    start = time.perf_counter()
    children: dict[Connection, tuple[str, Any]] = {}
    for name in names:
        parent_end, child_end = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_child, args=(name, [text], timeout, child_end), daemon=True)
        process.start()
        child_end.close()
        children[parent_end] = (name, process)
    reasons: list[str] = []
    answer: Answer | None = None
    deadline = start + timeout + 1.0
    try:
        while children and answer is None:
            left = deadline - time.perf_counter()
            if left <= 0:
                reasons.append(f"timeout after {timeout:.3g} s")
                break
            for conn in wait(list(children), timeout=left):
                name, process = children.pop(conn)  # type: ignore[arg-type]
                try:
                    status, model, reason = conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    status, model, reason = "unknown", {}, f"{name} exited without an answer"
                conn.close()  # type: ignore[union-attr]
                process.join(timeout=1)
                if status in ("sat", "unsat"):
                    answer = Answer(status, model, name, time.perf_counter() - start)
                    break
                reasons.append(f"{name}: {reason or 'unknown'}")
    finally:
        for conn, (_name, process) in children.items():
            if process.is_alive():
                process.kill()
            process.join(timeout=1)
            conn.close()
    if answer is not None:
        return answer
    return Answer("unknown", {}, "", time.perf_counter() - start, "; ".join(reasons) or "no answer")
