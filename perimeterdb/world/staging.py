"""A staging storage engine: ``world apply`` writes into it, and nothing reaches the real engine until
``commit()`` writes every staged row in one atomic write (all of it or nothing).

Reads see the staged rows over the real engine's, so the importers (identities, catalog, organizations,
network) work unchanged. ``commit`` refuses (``StagingConflict``) when a row it is about to write changed
in the real engine after the staging engine first read it: a concurrent writer (the IAM API of a running
server) is never overwritten silently, and nothing is written in that case either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from perimeterdb.storage.engine import Decision, Delete, KeyRange, Put, Row, RowKey, StorageEngine

_UNREAD = object()


class StagingConflict(RuntimeError):
    """A staged row changed in the real engine before the commit."""


class StagingEngine:
    def __init__(self, real: StorageEngine) -> None:
        self.real = real
        self.rows_read = 0
        self._staged: dict[RowKey, bytes | None] = {}  # None: deleted
        self._base: dict[RowKey, bytes | None] = {}  # the real value when first seen

    @property
    def changes(self) -> int:
        return len(self._staged)

    # --- reads ---------------------------------------------------------------------------------------

    async def _real_get(self, key: RowKey) -> bytes | None:
        value = await self.real.get(key)
        self._base.setdefault(key, value)
        return value

    async def get(self, key: RowKey) -> bytes | None:
        if key in self._staged:
            return self._staged[key]
        return await self._real_get(key)

    async def get_many(self, keys: Sequence[RowKey]) -> list[bytes | None]:
        return [await self.get(k) for k in keys]

    def _merge(self, rows: list[Row], keep: Callable[[RowKey], bool]) -> list[Row]:
        merged = {r.key: r.value for r in rows}
        for r in rows:
            self._base.setdefault(r.key, r.value)
        for key, value in self._staged.items():
            if keep(key):
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        return [Row(k, merged[k]) for k in sorted(merged)]

    async def query(self, space: str, hh: bytes, hk: bytes, key_range: KeyRange, *, forward: bool = True,
                    limit: int | None = None) -> list[Row]:
        rows = await self.real.query(space, hh, hk, key_range, forward=True)

        def keep(k: RowKey) -> bool:
            if (k.space, k.hh, k.hk) != (space, hh, hk):
                return False
            r = key_range
            if r.lo is not None and (k.rk < r.lo or (k.rk == r.lo and not r.lo_inclusive)):
                return False
            return not (r.hi is not None and (k.rk > r.hi or (k.rk == r.hi and not r.hi_inclusive)))

        out = self._merge(rows, keep)
        if not forward:
            out.reverse()
        return out[:limit] if limit is not None else out

    async def scan(self, space: str, *, after: RowKey | None = None, hh_lo: bytes | None = None,
                   hh_hi: bytes | None = None, limit: int | None = None) -> list[Row]:
        rows = await self.real.scan(space, after=after, hh_lo=hh_lo, hh_hi=hh_hi)

        def keep(k: RowKey) -> bool:
            if k.space != space:
                return False
            if after is not None and (k.hh, k.hk, k.rk) <= (after.hh, after.hk, after.rk):
                return False
            if hh_lo is not None and k.hh < hh_lo:
                return False
            return not (hh_hi is not None and k.hh >= hh_hi)

        out = self._merge(rows, keep)
        return out[:limit] if limit is not None else out

    async def count(self, space: str) -> tuple[int, int]:
        rows = await self.scan(space)
        return len(rows), sum(len(r.value) for r in rows)

    # --- writes --------------------------------------------------------------------------------------

    async def atomic(self, keys: Sequence[RowKey], decide: Callable[[list[bytes | None]], Decision]) -> Any:
        decision = decide([await self.get(k) for k in keys])
        for change in decision.changes:
            if change.key not in self._staged and change.key not in self._base:
                await self._real_get(change.key)
            self._staged[change.key] = change.value if isinstance(change, Put) else None
        return decision.result

    async def drop_space(self, space: str) -> None:
        raise StagingConflict(f"a world apply cannot drop {space}")

    async def commit(self) -> int:
        """Write every staged row in one atomic write; how many rows changed."""
        staged = dict(self._staged)
        if not staged:
            return 0
        keys = list(staged)

        def decide(current: list[bytes | None]) -> Decision:
            for key, value in zip(keys, current, strict=True):
                if self._base.get(key, _UNREAD) is not _UNREAD and self._base[key] != value:
                    raise StagingConflict(f"{key.space} changed while the world was being applied")
            return Decision([Put(k, v) if v is not None else Delete(k) for k, v in staged.items()])

        await self.real.atomic(keys, decide)
        self._staged.clear()
        return len(keys)

    def close(self) -> None:  # the real engine is closed by its owner
        pass
