"""The full differential run: the prover and the evaluator on N random (policy set, request) pairs.

Run: .venv/bin/python bench/prover_differential.py [--pairs 100000] [--seed 1] [--batch 250] [--fresh]
(--fresh: the principal is a new one, symbolic and pinned afterwards; smaller batches are faster then)
Prints the number of pairs checked, the agreements, the disagreements (with the first few pairs), the pairs
the encoding does not cover (by reason) and the time. Exit status 1 on any disagreement.
The generator and the batch checker are tests/prover/differential.py (the CI test runs a 2,000-pair sample).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.prover.differential import check_batch, random_fresh_pair, random_pair


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--fresh", action="store_true", help="new principals (symbolic ARN), pinned")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    start = time.perf_counter()
    generated = checked = agreed = allowed = 0
    unsupported: collections.Counter[str] = collections.Counter()
    disagreements = []
    while generated < args.pairs:
        batch = []
        while len(batch) < args.batch and generated < args.pairs:
            pair = random_fresh_pair(rng) if args.fresh else random_pair(rng)
            generated += 1
            if pair is not None:
                batch.append(pair)
        for pair, expected, got, note in check_batch(batch):
            if got is None:
                unsupported[note.split(":", 2)[-1].strip()[:80]] += 1
                continue
            checked += 1
            allowed += expected
            if got == expected:
                agreed += 1
            else:
                disagreements.append(pair)
        if generated % 10_000 < args.batch:
            print(
                f"  {generated} pairs, {len(disagreements)} disagreements, {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    seconds = time.perf_counter() - start
    print(f"pairs generated: {generated}; checked: {checked} (allowed {allowed}, denied {checked - allowed})")
    print(f"agree: {agreed}; disagree: {len(disagreements)}; not encoded: {sum(unsupported.values())}")
    for reason, count in unsupported.most_common():
        print(f"  not encoded ({count}): {reason}")
    print(f"time: {seconds:.1f} s ({seconds / max(1, generated) * 1e3:.2f} ms per pair)")
    for pair in disagreements[:3]:
        print(
            json.dumps(
                {
                    "principal": pair.principal.arn,
                    "action": pair.action,
                    "resource": pair.resource,
                    "keys": {k: list(v) if isinstance(v, tuple) else v for k, v in pair.keys.items()},
                    "policies": pair.documents,
                }
            )
        )
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
