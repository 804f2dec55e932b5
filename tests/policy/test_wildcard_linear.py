"""Wildcard patterns match in linear time (policy/match.py, ``_without_backtracking``) and exactly as the
plain reading of ``*`` and ``?`` says: checked against a small dynamic-programming matcher on every short
pattern and value over a tiny alphabet, ARN segments included."""

from __future__ import annotations

import functools
import itertools
import random

from perimeterdb.policy.match import arn_regex, compile_arns, compile_globs, compiled, glob_regex


def _reference(pattern: str, value: str, *, arn: bool) -> bool:
    """``*`` any run, ``?`` one character; in an ARN pattern, neither crosses ``:`` before the sixth segment."""
    colons_before = list(itertools.accumulate((ch == ":" for ch in pattern), initial=0))

    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        ch = pattern[i]
        bounded = arn and colons_before[i] < 5
        can_take = j < len(value) and not (bounded and value[j] == ":")
        if ch == "*":
            return match(i + 1, j) or (can_take and match(i, j + 1))
        if ch == "?":
            return can_take and match(i + 1, j + 1)
        return j < len(value) and value[j] == ch and match(i + 1, j + 1)

    return match(0, 0)


def test_matches_exactly_what_the_wildcards_say() -> None:
    rnd = random.Random(13)
    for trial in range(20000):
        arn = trial % 2 == 0
        pattern = "".join(rnd.choice("ab:*?") for _ in range(rnd.randint(0, 9)))
        value = "".join(rnd.choice("ab:") for _ in range(rnd.randint(0, 10)))
        source = arn_regex([(pattern, False)]) if arn else glob_regex([(pattern, False)])
        got = compiled(source).fullmatch(value) is not None
        assert got == _reference(pattern, value, arn=arn), (pattern, value, arn, source)


def test_many_wildcards_against_a_long_value_finish() -> None:
    """500 ``*a`` against 10 KB of ``a``: with backtracking this never finishes (the test would hang)."""
    pattern = "*a" * 500 + "*b"
    assert not compile_globs([pattern], ignore_case=False)("a" * 10_000)
    assert compile_globs([pattern], ignore_case=False)("a" * 10_000 + "b")
    arns = compile_arns(["arn:aws:dynamodb:*:*:table/" + "*a" * 500 + "*b"])
    assert not arns("arn:aws:dynamodb:us-east-1:123456789012:table/" + "a" * 10_000)
    assert arns("arn:aws:dynamodb:us-east-1:123456789012:table/" + "a" * 10_000 + "b")


def test_literal_parts_stay_literal() -> None:
    """Policy variables' values are literal: a ``*`` in them matches only a ``*``."""
    source = glob_regex([("*x", False), ("*", True), ("*y", False)])
    assert compiled(source).fullmatch("1x*2y")
    assert not compiled(source).fullmatch("1x-2y")
