"""The regions a world file declares (``regions:``), and the check that refuses a request signed for any
other region, as AWS refuses a region it does not have.

Stored in one metadata row by ``world apply``; when no world declared regions there is no row and every
region is accepted (a bare ``serve``). The server reads the row again only when the metadata generation
moves, so the check costs a dictionary lookup per request.

DynamoDB's answer to a credential scoped to a region it does not serve is HTTP 400
``InvalidSignatureException`` "Credential should be scoped to a valid region, not 'mars-1'."
"""

from __future__ import annotations

from typing import Any

import orjson

from perimeterdb import errors
from perimeterdb.storage.engine import Decision, Delete, Put, RowKey

ROW = RowKey("meta:regions", b"", b"world", b"")

_cache: dict[int, tuple[int, frozenset[str] | None]] = {}  # id(engine) -> (generation, regions)


async def load_regions(engine: Any) -> tuple[str, ...] | None:
    raw = await engine.get(ROW)
    return tuple(orjson.loads(raw)) if raw is not None else None


async def save_regions(engine: Any, regions: list[str] | None) -> bool:
    """Store the declared regions (None: accept every region); True when that changed."""
    wanted = orjson.dumps(list(regions)) if regions else None

    def decide(values: list[bytes | None]) -> Decision:
        if values[0] == wanted:
            return Decision((), False)
        return Decision([Put(ROW, wanted) if wanted is not None else Delete(ROW)], True)

    return bool(await engine.atomic([ROW], decide))


async def check_region(engine: Any, region: str) -> None:
    """Refuse a request signed for a region outside the world's ``regions:``."""
    generation = engine.generation.read()
    cached = _cache.get(id(engine))
    if cached is None or cached[0] != generation:
        declared = await load_regions(engine)
        cached = (generation, frozenset(declared) if declared else None)
        _cache[id(engine)] = cached
    allowed = cached[1]
    if allowed is not None and region not in allowed:
        raise errors.invalid_signature(f"Credential should be scoped to a valid region, not '{region}'.")
