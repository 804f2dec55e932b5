"""DynamoDB's capacity-unit arithmetic, for ReturnConsumedCapacity.

A read unit covers 4 KB of a strongly consistent read (half a unit when eventually consistent); a write
unit covers 1 KB. Each item rounds up separately; an item that does not exist still costs the minimum.
"""

from __future__ import annotations

import math
from typing import Any

READ_UNIT = 4096
WRITE_UNIT = 1024


def read_units(size: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


def write_units(size: int) -> float:
    return float(max(1, math.ceil(size / WRITE_UNIT)))


def consumed(
    mode: str | None,
    table_name: str,
    table_units: float,
    *,
    kind: str,
    gsi_units: dict[str, float] | None = None,
    lsi_units: dict[str, float] | None = None,
) -> dict[str, Any] | None:
    """The ConsumedCapacity member for ``mode`` (TOTAL, INDEXES or NONE); ``kind`` is Read or Write."""
    if mode not in ("TOTAL", "INDEXES"):
        return None
    gsi_units = gsi_units or {}
    lsi_units = lsi_units or {}
    total = table_units + sum(gsi_units.values()) + sum(lsi_units.values())
    out: dict[str, Any] = {"TableName": table_name, "CapacityUnits": total, f"{kind}CapacityUnits": total}
    if mode == "INDEXES":
        out["Table"] = {"CapacityUnits": table_units, f"{kind}CapacityUnits": table_units}
        if gsi_units:
            out["GlobalSecondaryIndexes"] = {
                name: {"CapacityUnits": u, f"{kind}CapacityUnits": u} for name, u in gsi_units.items()
            }
        if lsi_units:
            out["LocalSecondaryIndexes"] = {
                name: {"CapacityUnits": u, f"{kind}CapacityUnits": u} for name, u in lsi_units.items()
            }
    return out


def throughput_description(throughput: dict[str, Any] | None) -> dict[str, Any]:
    """A table's or GSI's ``ProvisionedThroughput`` as DescribeTable shows it (zeros when on demand)."""
    return {
        "NumberOfDecreasesToday": 0,
        "ReadCapacityUnits": (throughput or {}).get("ReadCapacityUnits", 0),
        "WriteCapacityUnits": (throughput or {}).get("WriteCapacityUnits", 0),
    }
