"""The portfolio: first answer wins, a timeout is UNKNOWN (never "holds"), both solvers agree."""

from __future__ import annotations

import pytest

from perimeterdb.prover import available_solvers, private
from perimeterdb.prover.solve import solve, solve_in_process
from tests.prover.worlds import TABLE, VPC, seed

pytestmark = pytest.mark.skipif(
    set(available_solvers()) != {"z3", "cvc5"}, reason="z3-solver and cvc5 must both be installed"
)

SAT = '(declare-const x String)\n(assert (str.in_re x (re.++ (str.to_re "arn:") (re.+ re.allchar))))\n'
UNSAT = '(declare-const x String)\n(assert (= x "a"))\n(assert (str.prefixof "b" x))\n'


@pytest.mark.parametrize("solver", ["z3", "cvc5"])
def test_each_solver_answers_sat_with_a_model_and_unsat(solver: str) -> None:
    sat = solve_in_process(SAT, solver=solver)
    assert sat.status == "sat" and sat.model["x"].startswith("arn:") and len(sat.model["x"]) > 4
    assert solve_in_process(UNSAT, solver=solver).status == "unsat"


def test_portfolio_first_sat_wins_and_all_unsat_is_unsat() -> None:
    answer = solve([UNSAT, SAT], timeout=10)
    assert answer.status == "sat" and answer.model["#problem"] == 1
    assert solve([UNSAT, UNSAT], timeout=10).status == "unsat"


def test_no_solver_is_unknown_never_unsat() -> None:
    answer = solve(UNSAT, solvers=("no-such-solver",))
    assert answer.status == "unknown" and "no SMT solver" in answer.reason


def test_a_query_out_of_time_is_unknown_never_holds() -> None:
    """The sealed seed world holds, but only the solvers can show it; with no time, the answer is UNKNOWN."""
    snapshot = seed(sealed=frozenset({"emergency"}))
    assert private(snapshot, TABLE, VPC, except_=("emergency",), any_principal=True).status == "holds"
    result = private(snapshot, TABLE, VPC, except_=("emergency",), any_principal=True, timeout=0.0)
    assert result.status == "unknown"
