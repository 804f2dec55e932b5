"""The prover agrees with the evaluator on random (policy set, request) pairs (a CI sample; the full run is
bench/prover_differential.py)."""

from __future__ import annotations

import random

import pytest

from perimeterdb.prover import available_solvers
from tests.prover.differential import check_batch, random_fresh_pair, random_pair

pytestmark = pytest.mark.skipif("cvc5" not in available_solvers(), reason="cvc5 must be installed")

SAMPLE = 1600
FRESH_SAMPLE = 400
BATCH = 250


def test_prover_and_evaluator_agree_on_random_pairs() -> None:
    rng = random.Random(20261206)
    pairs = [p for p in (random_pair(rng) for _ in range(SAMPLE)) if p is not None]
    assert len(pairs) > SAMPLE * 0.9
    checked = allowed = unsupported = 0
    disagreements = []
    for start in range(0, len(pairs), BATCH):
        for pair, expected, got, note in check_batch(pairs[start : start + BATCH]):
            if got is None:
                assert note.startswith("unsupported"), note
                unsupported += 1
                continue
            checked += 1
            allowed += expected
            if got != expected:
                disagreements.append((expected, got, pair))
    assert not disagreements, disagreements[:3]
    assert checked > SAMPLE * 0.8  # the encoding covers (almost) everything generated
    assert 0.03 * checked < allowed < 0.97 * checked  # both answers are represented


def test_prover_and_evaluator_agree_with_new_principals() -> None:
    """The same, with the principal a *new* one (symbolic ARN, path, session, user id) pinned afterwards:
    Principal/NotPrincipal grants and aws:PrincipalArn conditions on a principal that does not exist yet."""
    rng = random.Random(20261207)
    pairs = [p for p in (random_fresh_pair(rng) for _ in range(FRESH_SAMPLE)) if p is not None]
    checked = 0
    disagreements = []
    for start in range(0, len(pairs), 50):
        for pair, expected, got, note in check_batch(pairs[start : start + 50]):
            if got is None:
                assert note.startswith("unsupported"), note
                continue
            checked += 1
            if got != expected:
                disagreements.append((expected, got, pair.principal.arn, pair.documents))
    assert not disagreements, disagreements[:3]
    assert checked > FRESH_SAMPLE * 0.8
