"""The storage engine interface: ordered key ranges, and atomic read-decide-write of one or many rows.

Rows live in named *spaces* (a table, an index, a metadata namespace). Spaces named ``meta:…`` hold what
server processes cache (tables, identities, organizations, the network): a commit that writes one bumps
the shared generation, and every process drops its caches on its next request. A row key is
``(space, hh, hk, rk)``: ``hh`` is a short hash prefix that spreads partitions (and gives Scan its
hash order and parallel-scan segments), ``hk`` and ``rk`` are order-preserving encodings of the partition
and sort key (see ``keys.py``). Values are opaque bytes.

Writes are expressed as ``atomic(keys, decide)``: the engine reads the current values of ``keys`` inside
one transaction, calls the pure function ``decide(values)`` and applies the row changes it returns, all or
nothing. That is the conditional single-item write (one key) and the multi-item transaction (many keys)
in one primitive, and it maps directly onto ``SELECT … FOR UPDATE`` in PostgreSQL. Nothing here is
SQLite-specific.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

T = TypeVar("T")


class RowKey(NamedTuple):  # a tuple: built for every row read, and tuples are the cheapest to build
    space: str
    hh: bytes
    hk: bytes
    rk: bytes = b""


@dataclass(frozen=True, slots=True)
class Put:
    key: RowKey
    value: bytes


@dataclass(frozen=True, slots=True)
class Delete:
    key: RowKey


RowChange = Put | Delete


@dataclass(frozen=True, slots=True)
class Decision:
    """What ``decide`` returns: the row changes to apply and a result handed back to the caller."""

    changes: Sequence[RowChange]
    result: Any = None


class Row(NamedTuple):
    key: RowKey
    value: bytes


@dataclass(frozen=True, slots=True)
class KeyRange:
    """A sort-key range inside one partition; bounds are encoded keys, ``None`` means open."""

    lo: bytes | None = None
    lo_inclusive: bool = True
    hi: bytes | None = None
    hi_inclusive: bool = True


class StorageEngine(Protocol):
    rows_read: int  # rows returned by reads since start: lets tests prove a Query reads a range

    async def get(self, key: RowKey) -> bytes | None: ...

    async def get_many(self, keys: Sequence[RowKey]) -> list[bytes | None]: ...

    async def query(
        self,
        space: str,
        hh: bytes,
        hk: bytes,
        key_range: KeyRange,
        *,
        forward: bool = True,
        limit: int | None = None,
    ) -> list[Row]: ...

    async def scan(
        self,
        space: str,
        *,
        after: RowKey | None = None,
        hh_lo: bytes | None = None,
        hh_hi: bytes | None = None,
        limit: int | None = None,
    ) -> list[Row]: ...

    async def atomic(
        self, keys: Sequence[RowKey], decide: Callable[[list[bytes | None]], Decision]
    ) -> Any: ...

    async def drop_space(self, space: str) -> None: ...

    async def count(self, space: str) -> tuple[int, int]: ...

    def close(self) -> None: ...
