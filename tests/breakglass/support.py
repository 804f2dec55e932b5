"""Helpers shared by the outbox tests: run work on a fresh engine, and wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from perimeterdb.storage.sqlite import SQLiteEngine


def run_on_engine(work: Callable[[SQLiteEngine], Awaitable[Any]], data_dir: Path) -> Any:
    engine = SQLiteEngine(data_dir / "perimeterdb.sqlite3", durability="normal")
    try:
        return asyncio.run(work(engine))
    finally:
        engine.close()


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> bool:
    """True once ``predicate`` holds; False after ``timeout`` seconds (a bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False
