"""perimeterdb.prover: questions about every possible request, answered with a proof or a counterexample.

The policies in force are encoded into SMT (``encode``, mirroring ``perimeterdb.policy`` node for node),
the finite parts (principals, origins, resources) are enumerated as cases (``world``), z3 and cvc5 answer
as a portfolio (``solve``), and every counterexample is replayed through ``perimeterdb.policy.decide``
before it is shown (``check``). The queries and what "holds" means for each: ``queries`` and
docs/prover.md. This package imports nothing of perimeterdb but ``perimeterdb.policy``.
"""

from perimeterdb.prover.check import COUNTEREXAMPLE, HOLDS, UNKNOWN, Counterexample, Result, check
from perimeterdb.prover.queries import (
    WhoCan,
    no_new_access,
    no_new_world_access,
    not_granted,
    private,
    public,
    who_can,
)
from perimeterdb.prover.request import Case, Fresh, Origin, Unsupported
from perimeterdb.prover.solve import available_solvers
from perimeterdb.prover.world import TABLE_ACTIONS, Account, Endpoint, Principal, Snapshot, Table

__all__ = [
    "COUNTEREXAMPLE",
    "HOLDS",
    "TABLE_ACTIONS",
    "UNKNOWN",
    "Account",
    "Case",
    "Counterexample",
    "Endpoint",
    "Fresh",
    "Origin",
    "Principal",
    "Result",
    "Snapshot",
    "Table",
    "Unsupported",
    "WhoCan",
    "available_solvers",
    "check",
    "no_new_access",
    "no_new_world_access",
    "not_granted",
    "private",
    "public",
    "who_can",
]
