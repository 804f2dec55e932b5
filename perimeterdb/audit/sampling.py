"""Anonymous failures under a flood: the first few of each (source, error) per second in full, the rest
counted, and one summary record per second with the counts (audit/log.py writes it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from perimeterdb.audit import records

SUMMARY_EVENT = "UnauthenticatedRequestsSummary"
_SUMMARY_KEYS_MAX = 100  # sources listed by name in one summary; the rest are added up


class Sampler:
    """Counts anonymous failures per (source, error) in one-second windows; admits the first few in full."""

    def __init__(self, per_source: int, total: int, max_keys: int = 10_000) -> None:
        self.per_source = per_source
        self.total = total
        self.max_keys = max_keys
        self.window_start = 0.0
        self.window_wall = 0.0
        self.counts: dict[tuple[str, str], list[int]] = {}  # key -> [seen, written]
        self.written = 0
        self.suppressed = 0

    def admit(self, key: tuple[str, str], now: float, full_allowed: bool) -> bool:
        entry = self.counts.get(key)
        if entry is None:
            if len(self.counts) >= self.max_keys:
                key = ("*", "*")
                entry = self.counts.get(key)
            if entry is None:
                entry = self.counts[key] = [0, 0]
        entry[0] += 1
        if full_allowed and entry[1] < self.per_source and self.written < self.total:
            entry[1] += 1
            self.written += 1
            return True
        self.suppressed += 1
        return False

    def due(self, now: float) -> bool:
        return now - self.window_start >= 1.0

    def roll(self, now: float) -> dict[str, Any] | None:
        """Start a new window; the summary record of the one that ended, when it suppressed anything."""
        summary = None
        if self.suppressed:
            ranked = sorted(self.counts.items(), key=lambda kv: -kv[1][0])
            listed = [
                {"sourceIPAddress": ip, "errorCode": code, "count": seen, "suppressed": seen - written}
                for (ip, code), (seen, written) in ranked[:_SUMMARY_KEYS_MAX]
            ]
            rest = ranked[_SUMMARY_KEYS_MAX:]
            summary = {
                "windowStart": records.iso_now(_utc(self.window_wall)),
                "windowSeconds": 1,
                "written": self.written,
                "suppressed": self.suppressed,
                "sources": listed,
                "otherSources": len(rest),
                "otherCount": sum(v[0] for _, v in rest),
            }
        self.window_start = now
        self.window_wall = time.time()
        self.counts = {}
        self.written = 0
        self.suppressed = 0
        return summary


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
