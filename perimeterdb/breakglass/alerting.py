"""Queue a break-glass alert durably, before what it reports takes effect.

STS calls ``queue(engine, alert)`` *before* it mints break-glass credentials (and on every refusal), so
that credentials are never returned without an alert: if the alert cannot be queued, the assumption is
refused. When the durable outbox (``breakglass/outbox.py``) is present it is used; otherwise the alert goes
to the server's ``BreakGlass`` sink (the alerts file, and the webhook), which ``register`` records per
storage engine (one per server process).

Refusals (``"outcome": "refused"``) are queued like any alert, and the outbox gives them the lower
priority: they are delivered after the alerts of granted sessions and of their requests, and a flood of them
is aggregated per (principal, role, error code) and window, counts kept (see the outbox's docstring).

``can_deliver(engine)`` says whether some channel can accept alerts (the per-role ``fail_closed`` setting
refuses the assumption when it cannot).
"""

from __future__ import annotations

import inspect
import logging
import secrets
from typing import Any

log = logging.getLogger(__name__)

_SINKS: dict[int, Any] = {}  # id(engine) -> world.breakglass.BreakGlass of this process


def register(engine: Any, break_glass: Any) -> None:
    _SINKS[id(engine)] = break_glass


def _outbox_module() -> Any:
    try:
        from perimeterdb.breakglass import outbox  # H3's durable outbox, when present
    except ImportError:
        return None
    return outbox


def _outbox_of(engine: Any) -> Any:
    """The outbox object for this engine, when the outbox module exposes one."""
    bg = _SINKS.get(id(engine))
    for holder in (bg, getattr(bg, "runtime", None)):
        box = getattr(holder, "outbox", None) or getattr(holder, "breakglass_outbox", None)
        if box is not None:
            return box
    return None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def queue(engine: Any, alert: dict[str, Any]) -> str:
    """Queue ``alert`` durably and return its id; raises when no sink can take it (the caller refuses)."""
    alert = {"alertId": alert.get("alertId") or "bg-" + secrets.token_hex(12), **alert}
    box = _outbox_of(engine)
    if box is not None and hasattr(box, "enqueue"):
        return str(await _maybe_await(box.enqueue(alert)))
    module = _outbox_module()
    if module is not None and hasattr(module, "enqueue"):
        return str(await _maybe_await(module.enqueue(engine, alert)))
    bg = _SINKS.get(id(engine))
    if bg is None:
        raise RuntimeError("no break-glass alert sink in this process")
    await bg.emit(alert)
    return str(alert["alertId"])


async def can_deliver(engine: Any) -> bool:
    box = _outbox_of(engine)
    if box is not None and hasattr(box, "can_deliver"):
        return bool(await _maybe_await(box.can_deliver()))
    module = _outbox_module()
    if module is not None and hasattr(module, "can_deliver"):
        try:
            return bool(await _maybe_await(module.can_deliver(engine)))
        except TypeError:
            return bool(await _maybe_await(module.can_deliver()))
    bg = _SINKS.get(id(engine))
    return bg is not None and await bg.can_deliver()
