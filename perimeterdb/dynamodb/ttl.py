"""Time to live: the per-table setting, and the background expirer that deletes expired items.

The setting lives in the table description as ``_ttl = {"AttributeName": name, "Enabled": bool}``.
An item expires when that attribute is a number (epoch seconds) not after now and not more than five
years before now (DynamoDB ignores older timestamps). Expired items stay readable until the expirer
deletes them, which it does atomically with their index rows, re-checking each item inside the write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from perimeterdb.dynamodb import items
from perimeterdb.dynamodb.catalog import Catalog, Table
from perimeterdb.storage.engine import Decision, Delete, RowChange, RowKey, StorageEngine

log = logging.getLogger(__name__)

FIVE_YEARS = 5 * 365 * 24 * 3600
SCAN_CHUNK = 500
SWEEP_BUDGET = 5000  # rows read per table per sweep
_cursors: dict[str, RowKey | None] = {}  # table space -> where the next sweep continues


def setting(table: Table) -> dict[str, Any] | None:
    ttl = table.description.get("_ttl")
    return ttl if ttl and ttl.get("Enabled") else None


def description(table: Table) -> dict[str, Any]:
    """DescribeTimeToLive's TimeToLiveDescription."""
    ttl = setting(table)
    if ttl is None:
        return {"TimeToLiveStatus": "DISABLED"}
    return {"TimeToLiveStatus": "ENABLED", "AttributeName": ttl["AttributeName"]}


def is_expired(item: dict[str, Any] | None, attribute: str, now: float) -> bool:
    if item is None:
        return False
    value = item.get(attribute)
    if not isinstance(value, dict) or "N" not in value:
        return False
    try:
        when = Decimal(value["N"])
    except InvalidOperation:
        return False
    return bool(now - FIVE_YEARS <= when <= Decimal(now))


async def expire_table(
    engine: StorageEngine, table: Table, now: float | None = None, *, budget: int = SWEEP_BUDGET
) -> int:
    """Delete expired items of one table, reading at most ``budget`` rows; return how many were deleted.

    Each sweep continues where the last one stopped (a cursor per table) and wraps around at the end, so
    the work per interval is bounded whatever the table's size, and the event loop is yielded between
    chunks. A large table is therefore swept over several intervals; expired items are still returned
    until deleted, as DynamoDB returns them until its own (days-long) sweep reaches them.
    """
    ttl = setting(table)
    if ttl is None:
        return 0
    attribute = ttl["AttributeName"]
    deleted = 0
    read = 0
    after = _cursors.get(table.space)
    while read < budget:
        rows = await engine.scan(table.space, after=after, limit=min(SCAN_CHUNK, budget - read))
        read += len(rows)
        if not rows:
            after = None  # the end of the table: the next sweep starts over
            break
        after = rows[-1].key
        moment = time.time() if now is None else now
        doomed = [row.key for row in rows if is_expired(orjson.loads(row.value), attribute, moment)]
        if doomed:

            def decide(
                current: list[bytes | None], doomed: list[RowKey] = doomed, moment: float = moment
            ) -> Decision:
                changes: list[RowChange] = []
                count = 0
                for key, raw in zip(doomed, current, strict=True):
                    item = items.decode_item(raw)
                    if is_expired(item, attribute, moment):
                        changes.extend(items.write_changes(table, key, item, None))
                        count += 1
                return Decision(changes, count)

            deleted += await engine.atomic(doomed, decide)
        if len(rows) < SCAN_CHUNK:
            after = None
            break
        await asyncio.sleep(0)  # let requests through between chunks
    _cursors[table.space] = after
    return deleted


async def expire_tokens(engine: StorageEngine, now: float) -> None:
    """Forget ClientRequestTokens older than their idempotency window."""
    from perimeterdb.dynamodb.transactions import TOKENS

    rows = await engine.scan(TOKENS)
    doomed = [row.key for row in rows if orjson.loads(row.value).get("expires", 0) <= now]
    if doomed:

        def decide(current: list[bytes | None]) -> Decision:
            return Decision(
                [
                    Delete(k)
                    for k, raw in zip(doomed, current, strict=True)
                    if raw is not None and orjson.loads(raw).get("expires", 0) <= now
                ]
            )

        await engine.atomic(doomed, decide)


async def sweep(catalog: Catalog, engine: StorageEngine) -> int:
    deleted = 0
    for table in await catalog.all_tables():
        if setting(table) is not None:
            try:
                deleted += await expire_table(engine, table)
            except Exception:
                log.exception("TTL sweep failed for table %s", table.name)
    await expire_tokens(engine, time.time())
    return deleted


async def run_expirer(runtime: Any) -> None:
    """The background loop: sweep every ``settings.ttl_interval`` seconds until cancelled."""
    interval = float(getattr(runtime.settings, "ttl_interval", 2.0) or 2.0)
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep(runtime.catalog, runtime.engine)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("TTL sweep failed")
