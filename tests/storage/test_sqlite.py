"""The SQLite engine: ranges, atomic multi-row writes that apply all or nothing, and group commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from perimeterdb.storage.engine import Decision, KeyRange, Put, RowKey
from perimeterdb.storage.sqlite import SQLiteEngine


def _key(hk: bytes, rk: bytes = b"") -> RowKey:
    return RowKey("s", b"h" + hk[:1], hk, rk)


def test_range_reads_and_order(tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "db")

    async def scenario() -> None:
        changes = [Put(_key(b"p", bytes([i])), bytes([i])) for i in range(10)]
        await engine.atomic((), lambda _: Decision(changes))
        rows = await engine.query(
            "s", b"hp", b"p", KeyRange(lo=bytes([3]), hi=bytes([6]), hi_inclusive=False)
        )
        assert [r.value for r in rows] == [bytes([3]), bytes([4]), bytes([5])]
        rows = await engine.query("s", b"hp", b"p", KeyRange(), forward=False, limit=2)
        assert [r.value for r in rows] == [bytes([9]), bytes([8])]

    asyncio.run(scenario())
    engine.close()


def test_failed_decision_applies_nothing(tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "db")

    async def scenario() -> None:
        def boom(_: list[bytes | None]) -> Decision:
            raise ValueError("no")

        await engine.atomic((), lambda _: Decision([Put(_key(b"a"), b"1")]))
        with pytest.raises(ValueError):
            await engine.atomic([_key(b"a")], boom)
        assert await engine.get(_key(b"a")) == b"1"

        def half(_: list[bytes | None]) -> Decision:
            raise RuntimeError("after deciding nothing")

        results = await asyncio.gather(
            engine.atomic((), lambda _: Decision([Put(_key(b"b"), b"2")])),
            engine.atomic((), half),
            engine.atomic((), lambda _: Decision([Put(_key(b"c"), b"3")])),
            return_exceptions=True,
        )
        assert isinstance(results[1], RuntimeError)
        assert await engine.get(_key(b"b")) == b"2"
        assert await engine.get(_key(b"c")) == b"3"

    asyncio.run(scenario())
    engine.close()


def test_concurrent_read_modify_write_is_atomic(tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "db", durability="normal")
    key = _key(b"counter")

    def increment(current: list[bytes | None]) -> Decision:
        value = int(current[0] or b"0") + 1
        return Decision([Put(key, str(value).encode())], value)

    async def scenario() -> None:
        await asyncio.gather(*(engine.atomic([key], increment) for _ in range(500)))
        assert await engine.get(key) == b"500"

    asyncio.run(scenario())
    engine.close()
