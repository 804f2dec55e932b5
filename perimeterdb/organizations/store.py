"""The organization in storage: one document row and one generation row, changed together atomically.

The generation row is tiny and read on every authorization that needs the organization (a point read), so
a change made by any server process sharing the storage takes effect on the very next request. The
document row is re-read only when the generation moved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from perimeterdb.organizations import errors
from perimeterdb.organizations.state import Doc, OrgState
from perimeterdb.storage.engine import Decision, Put, RowChange, RowKey, StorageEngine

SPACE = "meta:org"
STATE_KEY = RowKey(SPACE, b"", b"state", b"")
GENERATION_KEY = RowKey(SPACE, b"", b"generation", b"")

T = TypeVar("T")
Mutation = Callable[[OrgState], tuple[T, Sequence[RowChange]]]


class OrgStore:
    def __init__(self, engine: StorageEngine) -> None:
        self.engine = engine
        self.last_generation = 0
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    async def generation(self) -> int:
        raw = await self.engine.get(GENERATION_KEY)
        value = int(raw) if raw is not None else 0
        self.last_generation = value
        return value

    async def load(self) -> OrgState | None:
        raw = await self.engine.get(STATE_KEY)
        return OrgState(orjson.loads(raw)) if raw is not None else None

    async def require(self) -> OrgState:
        state = await self.load()
        if state is None:
            raise errors.not_in_use()
        return state

    async def create(self, doc: Doc, extra: Sequence[RowChange] = ()) -> OrgState:
        """Create the organization; fails with AlreadyInOrganizationException when one exists."""

        def decide(values: list[bytes | None]) -> Decision:
            if values[0] is not None:
                raise errors.already_in_organization()
            gen = int(values[1]) + 1 if values[1] is not None else 1
            rows = [Put(STATE_KEY, orjson.dumps(doc)), Put(GENERATION_KEY, str(gen).encode()), *extra]
            return Decision(rows, gen)

        await self._write(decide, ())
        return OrgState(doc)

    async def mutate(self, fn: Mutation[T], keys: Sequence[RowKey] = ()) -> T:
        """Run ``fn`` on the current state inside one atomic write; ``fn`` returns (result, extra row changes).

        ``keys`` are further rows read in the same transaction (their current values are not passed on:
        callers use them to make the write conflict-free, e.g. a new account's row)."""

        def decide(values: list[bytes | None]) -> Decision:
            if values[0] is None:
                raise errors.not_in_use()
            state = OrgState(orjson.loads(values[0]))
            result, extra = fn(state)
            gen = int(values[1]) + 1 if values[1] is not None else 1
            rows = [Put(STATE_KEY, orjson.dumps(state.doc)), Put(GENERATION_KEY, str(gen).encode()), *extra]
            return Decision(rows, result)

        return await self._write(decide, keys)  # type: ignore[no-any-return]

    async def replace(self, doc: Doc) -> None:
        """Write a whole document (the world-file importer), bumping the generation."""

        def decide(values: list[bytes | None]) -> Decision:
            gen = int(values[1]) + 1 if values[1] is not None else 1
            return Decision([Put(STATE_KEY, orjson.dumps(doc)), Put(GENERATION_KEY, str(gen).encode())])

        await self._write(decide, ())

    async def _write(self, decide: Callable[[list[bytes | None]], Decision], keys: Sequence[RowKey]) -> Any:
        try:
            return await self.engine.atomic([STATE_KEY, GENERATION_KEY, *keys], decide)
        finally:
            for callback in self._listeners:
                callback()
