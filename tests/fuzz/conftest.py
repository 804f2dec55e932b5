"""Hypothesis settings for the short CI run of the fuzz campaign: reproducible (derandomized, no example
database), no per-example deadline, a modest number of examples per surface.

``PERIMETERDB_FUZZ_EXAMPLES`` raises the count for a longer local run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "perimeterdb-ci",
    max_examples=int(os.environ.get("PERIMETERDB_FUZZ_EXAMPLES", "200")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.load_profile("perimeterdb-ci")
