"""Scan: every item of a table or index in hash order, optionally one segment of a parallel scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import paging
from perimeterdb.dynamodb.call import Call
from perimeterdb.storage.engine import Row, RowKey, StorageEngine
from perimeterdb.storage.keys import segment_bounds

ACTION = "dynamodb:Scan"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    return [(ACTION, paging.index_resource(call.table_arn(body["TableName"]), body.get("IndexName")))]


@dataclass(slots=True)
class HashOrderSource:
    """Rows of one space in hash order, optionally inside one segment's hash range."""

    engine: StorageEngine
    space: str
    after: RowKey | None
    hh_lo: bytes | None
    hh_hi: bytes | None

    async def next(self, count: int) -> list[Row]:
        if count <= 0:
            return []
        rows = await self.engine.scan(
            self.space, after=self.after, hh_lo=self.hh_lo, hh_hi=self.hh_hi, limit=count
        )
        if rows:
            self.after = rows[-1].key
        return rows


def check_segments(body: dict[str, Any]) -> tuple[int, int] | None:
    segment, total = body.get("Segment"), body.get("TotalSegments")
    if segment is not None and total is None:
        raise errors.validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter "
            "is present"
        )
    if total is not None and segment is None:
        raise errors.validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments "
            "is present"
        )
    if total is None or segment is None:
        return None
    if segment >= total:
        raise errors.validation(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
            f"Segment: {segment} is not less than TotalSegments: {total}"
        )
    return int(segment), int(total)


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    segments = check_segments(body)
    compiled = paging.compile_request(body, query=False)
    paging.check_start_key_values(body)
    select = paging.resolve_select(body, compiled)
    table = await paging.find_table(call, body["TableName"])
    plan = paging.plan_read(body, table, compiled, select, query=False)
    hh_lo = hh_hi = None
    if segments is not None:
        hh_lo, hh_hi = segment_bounds(*segments)
    after = None
    if body.get("ExclusiveStartKey") is not None:
        _, after = paging.start_key(plan, body["ExclusiveStartKey"])
        if segments is not None and not (after.hh >= hh_lo and (hh_hi is None or after.hh < hh_hi)):  # type: ignore[operator]
            raise errors.validation(
                "The provided Exclusive start key does not map to the provided Segment and TotalSegments values."
            )
    source = HashOrderSource(call.engine, plan.space, after, hh_lo, hh_hi)
    page = await paging.read_page(
        plan, source, call.engine, sizes_wanted=body.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES")
    )
    return paging.response(plan, page, body.get("ReturnConsumedCapacity"))
