"""The embedded default storage engine: one SQLite file in WAL mode, with group commit.

Reads run on the caller's thread with a connection of its own (WAL readers never block the writer).
Writes go to one writer thread, which takes every write waiting in its queue, runs each inside a SAVEPOINT
of one transaction, commits once, and only then completes their futures: an acknowledged write is on
disk (``synchronous=FULL`` by default), and many concurrent writers share one fsync. Because one thread
applies the writes in order and ``BEGIN IMMEDIATE`` locks out other processes, each read-decide-write is
atomic: concurrent conditional increments lose no update.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from perimeterdb.storage.engine import Decision, Delete, KeyRange, Put, Row, RowKey
from perimeterdb.storage.generation import Generation

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    space TEXT NOT NULL,
    hh BLOB NOT NULL,
    hk BLOB NOT NULL,
    rk BLOB NOT NULL,
    val BLOB NOT NULL,
    PRIMARY KEY (space, hh, hk, rk)
) WITHOUT ROWID;
"""

SYNC_MODES = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}
_MAX_BATCH = 256


class _Job:
    """One atomic write waiting for the writer thread; completed through an asyncio future (callers on an
    event loop) or a concurrent future (callers outside one)."""

    __slots__ = ("decide", "future", "keys", "loop")

    def __init__(
        self,
        keys: Sequence[RowKey],
        decide: Callable[[list[bytes | None]], Decision],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.keys = keys
        self.decide = decide
        self.loop = loop
        self.future: asyncio.Future[Any] | Future[Any] = (
            loop.create_future() if loop is not None else Future()
        )


def _settle(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    """On the event loop: complete the asyncio futures of one committed batch, in one wake-up."""
    for job, result, exc in outcomes:
        if job.future.done():  # the caller was cancelled meanwhile
            continue
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)


_CHECKPOINT_EVERY = 0.25  # seconds
_WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the WAL file is cut back to after a complete checkpoint


class SQLiteEngine:
    """A ``StorageEngine`` on one SQLite database file."""

    def __init__(self, path: Path, *, durability: str = "full") -> None:
        self.path = path
        self.durability = durability
        self.rows_read = 0
        # Bumped after every commit that changed metadata, for the other processes' caches.
        self.generation = Generation(path.with_name(path.name + ".generation"))
        self._writer_lock = os.open(path.with_name(path.name + ".writer-lock"), os.O_RDWR | os.O_CREAT, 0o600)
        self._local = threading.local()
        writer = self._connect()
        writer.executescript(SCHEMA)
        # Checkpoints (copying the WAL back into the database file, then an fsync of it) run mostly on
        # their own thread (_checkpoint_loop). The writer's automatic checkpoint (every 1,000 pages, the
        # default) stays: it is what restarts the WAL while writes keep coming, and with the background
        # passes done it has little left to copy; alone, it stalled the commit that triggered it, and
        # every write queued behind it, for up to tens of milliseconds (the p99 of writes under load
        # went from 6-15 ms to 2.5-5.5 ms at half load with the background passes).
        writer.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")  # the writer is who restarts the WAL
        self._writer_conn = writer
        self._meta_changed = False
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._writer_loop, name="sqlite-writer", daemon=True)
        self._thread.start()
        self._closing = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    # --- connections -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        # 16 KiB pages: a 1 KB item fits in its B-tree page instead of spilling to an overflow page (with
        # 4 KiB pages a 1 KB row took ~4.5 KB on disk). It only takes effect on a new, empty database, so
        # it must come before anything (journal_mode=WAL included) writes the file.
        conn.execute("PRAGMA page_size=16384")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={SYNC_MODES[self.durability]}")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-16384")  # 16 MiB per connection: memory stays flat with table size
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    # --- reads -------------------------------------------------------------------------------------

    async def get(self, key: RowKey) -> bytes | None:
        row = (
            self._reader()
            .execute(
                "SELECT val FROM rows WHERE space=? AND hh=? AND hk=? AND rk=?",
                (key.space, key.hh, key.hk, key.rk),
            )
            .fetchone()
        )
        if row is None:
            return None
        self.rows_read += 1
        return row[0]

    async def get_many(self, keys: Sequence[RowKey]) -> list[bytes | None]:
        return [await self.get(k) for k in keys]

    async def query(
        self,
        space: str,
        hh: bytes,
        hk: bytes,
        key_range: KeyRange,
        *,
        forward: bool = True,
        limit: int | None = None,
    ) -> list[Row]:
        sql = ["SELECT rk, val FROM rows WHERE space=? AND hh=? AND hk=?"]
        args: list[Any] = [space, hh, hk]
        if key_range.lo is not None:
            sql.append("AND rk >= ?" if key_range.lo_inclusive else "AND rk > ?")
            args.append(key_range.lo)
        if key_range.hi is not None:
            sql.append("AND rk <= ?" if key_range.hi_inclusive else "AND rk < ?")
            args.append(key_range.hi)
        sql.append("ORDER BY rk" if forward else "ORDER BY rk DESC")
        if limit is not None:
            sql.append("LIMIT ?")
            args.append(limit)
        fetched = self._reader().execute(" ".join(sql), args).fetchall()
        self.rows_read += len(fetched)
        return [Row(RowKey(space, hh, hk, rk), val) for rk, val in fetched]

    async def scan(
        self,
        space: str,
        *,
        after: RowKey | None = None,
        hh_lo: bytes | None = None,
        hh_hi: bytes | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        sql = ["SELECT hh, hk, rk, val FROM rows WHERE space=?"]
        args: list[Any] = [space]
        if after is not None:
            sql.append("AND (hh, hk, rk) > (?, ?, ?)")
            args += [after.hh, after.hk, after.rk]
        if hh_lo is not None:
            sql.append("AND hh >= ?")
            args.append(hh_lo)
        if hh_hi is not None:
            sql.append("AND hh < ?")
            args.append(hh_hi)
        sql.append("ORDER BY hh, hk, rk")
        if limit is not None:
            sql.append("LIMIT ?")
            args.append(limit)
        fetched = self._reader().execute(" ".join(sql), args).fetchall()
        self.rows_read += len(fetched)
        return [Row(RowKey(space, hh, hk, rk), val) for hh, hk, rk, val in fetched]

    async def count(self, space: str) -> tuple[int, int]:
        n, size = (
            self._reader()
            .execute("SELECT count(*), coalesce(sum(length(val)), 0) FROM rows WHERE space=?", (space,))
            .fetchone()
        )
        return int(n), int(size)

    # --- writes ------------------------------------------------------------------------------------

    async def atomic(self, keys: Sequence[RowKey], decide: Callable[[list[bytes | None]], Decision]) -> Any:
        job = _Job(keys, decide, asyncio.get_running_loop())
        self._queue.put(job)
        return await job.future

    def atomic_sync(self, keys: Sequence[RowKey], decide: Callable[[list[bytes | None]], Decision]) -> Any:
        """The same write for callers outside an event loop (start-up, command-line tools)."""
        job = _Job(keys, decide)
        self._queue.put(job)
        assert isinstance(job.future, Future)
        return job.future.result()

    async def drop_space(self, space: str) -> None:
        def drop(_: list[bytes | None]) -> Decision:
            if space.startswith("meta:"):
                self._meta_changed = True
            self._writer_conn.execute("DELETE FROM rows WHERE space=?", (space,))
            return Decision(())

        await self.atomic((), drop)

    def _decide_job(self, conn: sqlite3.Connection, job: _Job) -> Decision:
        """Read a job's rows and let it decide. Writes nothing, so a job that raises here leaves no trace."""
        current: list[bytes | None] = []
        for k in job.keys:
            row = conn.execute(
                "SELECT val FROM rows WHERE space=? AND hh=? AND hk=? AND rk=?", (k.space, k.hh, k.hk, k.rk)
            ).fetchone()
            current.append(row[0] if row else None)
        return job.decide(current)

    def _apply(self, conn: sqlite3.Connection, decision: Decision) -> None:
        for change in decision.changes:
            k = change.key
            if k.space.startswith("meta:"):
                self._meta_changed = True
            if isinstance(change, Put):
                conn.execute(
                    "INSERT OR REPLACE INTO rows (space, hh, hk, rk, val) VALUES (?, ?, ?, ?, ?)",
                    (k.space, k.hh, k.hk, k.rk, change.value),
                )
            elif isinstance(change, Delete):
                conn.execute(
                    "DELETE FROM rows WHERE space=? AND hh=? AND hk=? AND rk=?", (k.space, k.hh, k.hk, k.rk)
                )

    def _writer_loop(self) -> None:
        conn = self._writer_conn
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            outcomes: list[tuple[_Job, Any, BaseException | None]] = []
            self._meta_changed = False
            # Several server processes (serve --workers N) share the file. SQLite's own busy handler
            # polls with sleeps of up to 100 ms, which made write latency spike under load; a blocking
            # lock on a side file hands the database from one writer to the next as soon as it is free.
            fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
            try:
                conn.execute("BEGIN IMMEDIATE")
                # A job decides before it writes, and a decision that raises (a failed condition) has
                # written nothing: no savepoint is needed to undo it. A failing write statement is a
                # failure of the database, not of the job: the whole batch is rolled back (below).
                for job in batch:
                    try:
                        decision = self._decide_job(conn, job)
                    except BaseException as exc:  # the job's own failure (e.g. a condition)
                        outcomes.append((job, None, exc))
                        continue
                    self._apply(conn, decision)
                    outcomes.append((job, decision.result, None))
                conn.execute("COMMIT")
                if self._meta_changed:
                    self.generation.bump()
            except Exception as exc:  # a write or the commit failed: nothing in the batch is durable
                log.exception("storage commit failed")
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                outcomes = [(job, None, exc) for job in batch]
            finally:
                fcntl.flock(self._writer_lock, fcntl.LOCK_UN)
            # Complete the callers only now that the batch is on disk: one wake-up per event loop.
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any, BaseException | None]]] = {}
            for outcome in outcomes:
                job, result, exc = outcome
                if job.loop is None:
                    assert isinstance(job.future, Future)
                    if exc is not None:
                        job.future.set_exception(exc)
                    else:
                        job.future.set_result(result)
                else:
                    by_loop.setdefault(job.loop, []).append(outcome)
            for loop, settled in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, settled)
                except RuntimeError:  # that loop is closed: nobody is waiting any more
                    pass
            if stop:
                return

    def _checkpoint_loop(self) -> None:
        """Copy committed WAL frames into the database every ``_CHECKPOINT_EVERY`` seconds.

        PASSIVE: it takes no lock writers or readers wait on, and copies what no reader still needs. The
        WAL itself is restarted by the writer's own (now short) automatic checkpoint, and
        ``journal_size_limit`` keeps the file from staying large. Several processes may run this loop on
        one database: SQLite lets one checkpoint run at a time and the others return at once."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0.0)
        try:
            conn.execute("PRAGMA cache_size=-1024")
            conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
            while not self._closing.wait(_CHECKPOINT_EVERY):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy (another process's checkpoint) or closing: try again next time
        finally:
            conn.close()

    def close(self) -> None:
        self._closing.set()
        self._checkpointer.join(timeout=10)
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._writer_conn.close()
        os.close(self._writer_lock)
        self.generation.close()
