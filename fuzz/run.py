"""Coverage-guided fuzzing of one surface with atheris (libFuzzer):

    .venv/bin/python -m fuzz.run TARGET [libFuzzer options, e.g. -max_total_time=60 -rss_limit_mb=2048]

TARGET is one of ``TARGETS`` below. Structured targets (``expressions``, ``values``, ``requests``,
``sigv4``, ``policies``, ``world``) let libFuzzer's bytes drive the Hypothesis strategies of
fuzz/strategies.py through ``fuzz_one_input``; raw targets (``*-raw``) hand the bytes straight to a parser.

A ``Finding`` (a contract break: a 5xx, a crash type the surface must not raise) does not stop the run: its
input and message are written to ``fuzz/findings/TARGET-<sha1>.txt`` (one file per distinct message) and
printed as a ``FINDING`` line on stderr. Anything that kills the process (a segfault, an out-of-memory, an
uncaught exception outside the contract checks) stops it as libFuzzer does. libFuzzer's closing
``Done N runs`` line gives the number of executions (soak/fuzz_all.py reads it).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["perimeterdb"]):
    import perimeterdb.auth.verify
    import perimeterdb.dynamodb.expressions
    import perimeterdb.dynamodb.values
    import perimeterdb.policy
    import perimeterdb.shapes
    import perimeterdb.world.worldfile  # noqa: F401

from hypothesis import HealthCheck, given, settings

from fuzz import strategies as fs
from fuzz import targets

FINDINGS = Path(__file__).resolve().parent / "findings"
_SETTINGS = settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))


def _structured(strategy: Any, call: Callable[[Any], None]) -> Callable[[bytes], None]:
    @_SETTINGS
    @given(strategy)
    def test(case: Any) -> None:
        call(case)

    return test.hypothesis.fuzz_one_input  # type: ignore[attr-defined]


def _raw_expression(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 4)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    param = ["condition", "update", "projection", "filter", "key_condition"][which]
    targets.expression_case(
        **{param: text},
        names={"#n": "a", "#m": "b"},
        values={":v": {"S": "x"}, ":w": {"N": "1"}, ":l": {"L": [{"S": "y"}]}},
        item={"pk": {"S": "k"}, "a": {"L": [{"N": "1"}]}, "b": {"M": {"c": {"S": "d"}}}},
    )


def _raw_json(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    operation = fdp.PickValueInList(fs.OPERATIONS)
    body = targets.json_or_none(fdp.ConsumeBytes(fdp.remaining_bytes()))
    targets.request_case(operation, body)
    targets.value_case(body)


def _raw_sigv4(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    authorization = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300)).decode("latin-1")
    date = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)).decode("latin-1")
    query = fdp.ConsumeBytes(fdp.remaining_bytes()).decode("latin-1")
    from urllib.parse import parse_qsl

    targets.sigv4_case(
        {"authorization": [authorization], "x-amz-date": [date], "host": ["h"]}, parse_qsl(query)
    )
    targets.sigv4_case({"x-amz-date": [date], "host": ["h"]}, parse_qsl(authorization))


def _raw_policy(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    kind = fdp.ConsumeIntInRange(0, 20)
    targets.policy_case(fdp.ConsumeBytes(fdp.remaining_bytes()), kind, {})


def _raw_world(data: bytes) -> None:
    targets.world_case(data.decode("utf-8", "replace"))


TARGETS: dict[str, Callable[[], Callable[[bytes], None]]] = {
    "expressions": lambda: _structured(fs.expression_inputs(), lambda c: targets.expression_case(**c)),
    "values": lambda: _structured(fs.attribute_values, targets.value_case),
    "requests": lambda: _structured(fs.request_bodies(), lambda c: targets.request_case(*c)),
    "sigv4": lambda: _structured(fs.sigv4_inputs(), lambda c: targets.sigv4_case(**c)),
    "policies": lambda: _structured(fs.policy_documents(), lambda c: targets.policy_case(*c)),
    "world": lambda: _structured(fs.world_texts(), targets.world_case),
    "expressions-raw": lambda: _raw_expression,
    "json-raw": lambda: _raw_json,
    "sigv4-raw": lambda: _raw_sigv4,
    "policies-raw": lambda: _raw_policy,
    "world-raw": lambda: _raw_world,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz.run TARGET [libFuzzer options]; TARGET one of {', '.join(TARGETS)}")
    name = sys.argv[1]
    one_input = TARGETS[name]()
    counts = {"execs": 0, "findings": 0}
    seen: set[str] = set()

    def test_one_input(data: bytes) -> None:
        counts["execs"] += 1
        try:
            one_input(data)
        except targets.Finding as finding:
            _record(name, data, finding, counts, seen)
        except Exception as error:  # Hypothesis wraps a failing example's Finding in its own errors
            cause = error if isinstance(error, targets.Finding) else _finding_in(error)
            if cause is None:
                raise
            _record(name, data, cause, counts, seen)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], test_one_input)
    atheris.Fuzz()


def _finding_in(error: BaseException) -> targets.Finding | None:
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, targets.Finding):
            return e
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += list(getattr(e, "exceptions", ()))
    return None


def _record(name: str, data: bytes, finding: BaseException, counts: dict[str, int], seen: set[str]) -> None:
    counts["findings"] += 1
    message = str(finding).splitlines()[0][:300]
    signature = message.split(":")[0:2]
    key = hashlib.sha1(f"{name}:{signature}".encode()).hexdigest()[:12]
    if key in seen:
        return
    seen.add(key)
    FINDINGS.mkdir(exist_ok=True)
    (FINDINGS / f"{name}-{key}.txt").write_text(f"{message}\ninput (hex): {data.hex()}\n")
    print(f"FINDING {name}: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
