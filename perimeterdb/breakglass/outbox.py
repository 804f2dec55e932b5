"""The durable alert outbox: a break-glass alert is stored before what it reports takes effect, then
delivered with retries to every configured channel (``channels.py``), and never dropped silently.

API (what STS AssumeRole and the audit log use)::

    outbox = AlertOutbox(engine, data_dir, audit=audit_log)      # built by server/runtime.py
    alert_id = await outbox.enqueue({"alert": "break-glass", ...})  # durable when it returns
    outbox.can_deliver()    # False when no (required) channel is believed able to accept an alert
    await outbox.run()      # the delivery loop (a background task of every server process)

How to reach it: ``runtime.breakglass_outbox``; the audit log's ``BreakGlass`` object carries it as
``.outbox`` (so ``breakglass/alerting.queue(engine, alert)`` finds it through the registered sink).
``enqueue`` is one atomic storage write (spaces ``breakglass:outbox`` and ``breakglass:review``, never
``meta:``, so queueing drops no cache) and returns only once the engine has committed it: call it *before*
minting credentials, and refuse the assumption when it raises. A crash after ``enqueue`` loses nothing:
the alert is delivered after restart.

Delivery: the alert's channels are fixed when it is queued (the names configured then). Queued alerts are
taken in batches (up to 64: one write leases them, one records the outcomes; up to 8 deliveries in flight),
each under a lease (owner and expiry in the alert's row, taken with an atomic read-decide-write; queued rows
are keyed by due time, and a leased row moves to its lease's end, so a round reads only due rows), so with
several ``--workers`` only one process delivers a given alert at a time; a process that dies holding a lease
lets it expire (``lease_seconds``, default 30) and another, or the restarted server, takes over. Delivery is
at least once: a receiver deduplicates on the alert id (``X-PerimeterDB-Alert-Id``, and ``id`` in the
body). A channel that failed twice in a row is probed with one alert per batch before the others are sent
to it (no storm against a receiver that is down). A failed channel is retried with exponential backoff
(0.5 s doubling, at most ``max_backoff_seconds``, default 60) for as long as it takes; after ``report_after`` failed attempts (default 5) the alert is
reported once: an audit record ``BreakGlassAlertUndelivered`` (flagged break-glass, so it never rotates out)
and an error log line; ``perimeterdb break-glass alerts`` lists it. When it is finally delivered, an audit
record ``BreakGlassAlertDelivered`` says so. Delivered alerts move to ``breakglass:alerts`` (the history).

Priority and refusal floods: alerts of refused attempts (``"outcome": "refused"``) wait in their own queue
(``breakglass:outbox-low``); every round first delivers all due alerts of the main queue (granted sessions,
requests made in them, approvals), and checks it again between two batches of refusals, so a flood of
refused AssumeRole calls never delays the alert of a real session by more than one batch. Refusals are also
aggregated: per (principal, role, error code) and per window (``refusal_window_seconds``, default 60), the
first ``refusal_burst`` (default 5) are queued one by one; the others fold into one aggregate alert (same
fields as the first folded one, plus ``aggregate``: ``count``, ``first``, ``last``, the window, and up to 5
distinct error messages with their counts), due at the window's end. Nothing is dropped: every refusal is
counted in exactly one alert, and the queue holds at most ``refusal_burst + 1`` alerts per group and window.
The per-group counters live in ``breakglass:refusal-counts`` (one row per group, reset each window).

``can_deliver``: each channel's health is its last attempt's outcome (shared by all processes through the
``breakglass:alert-health`` rows; a channel never tried is believed healthy). ``alerts: {required:
[webhook]}`` makes only those channels count; by default any channel (the alerts file included) counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import math
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from perimeterdb.breakglass import channels as channel_mod
from perimeterdb.storage.engine import Decision, Delete, Put, Row, RowKey

log = logging.getLogger(__name__)

PENDING = "breakglass:outbox"
PENDING_LOW = "breakglass:outbox-low"  # refused attempts: delivered after every due alert of PENDING
REFUSALS = "breakglass:refusal-counts"  # per (principal, role, reason): the current window's count
MAX_MESSAGES = 5  # distinct error messages kept (with their counts) in an aggregate alert
DELIVERED = "breakglass:alerts"
HEALTH = "breakglass:alert-health"
SETTINGS_ROW = RowKey("meta:break-glass", b"", b"settings", b"")  # world/breakglass.py's settings row
POLL_SECONDS = 1.0
SETTINGS_TTL = 2.0
BACKOFF_BASE = 0.5
BATCH = 64  # alerts leased and settled per storage write
MAX_CONCURRENT = 8  # deliveries in flight at once per process
PROBE_AFTER = 2  # consecutive failures after which a channel is probed with one alert per batch


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    lease_seconds: float = 30.0
    report_after: int = 5
    max_backoff_seconds: float = 60.0
    required: tuple[str, ...] = ()
    refusal_burst: int = 5
    refusal_window_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DeliveryPolicy:
        alerts = settings.get("alerts") if isinstance(settings.get("alerts"), Mapping) else {}
        assert isinstance(alerts, Mapping)

        def number(name: str, default: float, lo: float, hi: float) -> float:
            try:
                return min(max(float(alerts.get(name) or default), lo), hi)
            except (TypeError, ValueError):
                return default

        required = alerts.get("required") or ()
        return cls(
            lease_seconds=number("lease_seconds", 30.0, 2.0, 3600.0),
            report_after=int(number("report_after", 5, 1, 1000)),
            max_backoff_seconds=number("max_backoff_seconds", 60.0, 0.5, 3600.0),
            required=tuple(str(r) for r in required) if isinstance(required, list | tuple) else (str(required),),
            refusal_burst=int(number("refusal_burst", 5, 1, 1000)),
            refusal_window_seconds=number("refusal_window_seconds", 60.0, 1.0, 3600.0),
        )


class _BrokenChannel:
    """Stands for a channel configuration that cannot be used: every delivery fails, saying why."""

    def __init__(self, error: str) -> None:
        self.name = "config"
        self.error = error

    def deliver(self, envelope: bytes, alert_id: str) -> None:
        raise channel_mod.DeliveryError(f"the break-glass alerts configuration is invalid: {self.error}")


def _row(space: str, alert_id: str) -> RowKey:
    return RowKey(space, b"", b"", alert_id.encode())


def _due(ts: float) -> bytes:
    """A due time as the row's first key part: milliseconds, fixed width, so rows sort by due time."""
    return b"%015d" % max(0, int(ts * 1000))


def _pending_key(alert_id: str, due: float, low: bool = False) -> RowKey:
    return RowKey(PENDING_LOW if low else PENDING, _due(due), b"", alert_id.encode())


def _is_low(state: Mapping[str, Any]) -> bool:
    return state.get("priority") == "low"


def is_refusal(alert: Mapping[str, Any]) -> bool:
    """A refused attempt's alert: queued behind the others, and aggregated when it floods."""
    return alert.get("outcome") == "refused"


def refusal_group(alert: Mapping[str, Any]) -> RowKey:
    """The counter row of a refusal's (principal, role, reason). The reason is the error code only: the
    message may quote what the caller sent, and a caller must not escape aggregation by varying it."""
    group = [str(alert.get("principalArn") or alert.get("who") or ""), str(alert.get("roleArn") or ""),
             str(alert.get("errorCode") or "")]
    return RowKey(REFUSALS, b"", b"", hashlib.sha256(orjson.dumps(group)).hexdigest().encode())


class _Changed(Exception):
    """The refusal counter changed between its read and the write: read it again."""


def _health_row(name: str) -> RowKey:
    return RowKey(HEALTH, b"", b"", name.encode())


def new_alert_id(now: float | None = None) -> str:
    """Time-ordered (the outbox is scanned oldest first) and unguessable."""
    return f"{int((time.time() if now is None else now) * 1000):013d}-{secrets.token_hex(8)}"


def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class AlertOutbox:
    def __init__(
        self,
        engine: Any,
        data_dir: Path,
        *,
        audit: Any = None,
        session_rows: Callable[[str, dict[str, Any]], Sequence[Put] | Awaitable[Sequence[Put]]] | None = None,
    ) -> None:
        self.engine = engine
        self.data_dir = Path(data_dir)
        self.audit = audit  # audit.log.AuditLog: the "undelivered"/"delivered late" records
        # Extra rows written in the same atomic write as an alert (review.py remembers sessions this way).
        self.session_rows = session_rows
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._settings: dict[str, Any] | None = None
        self._settings_read = -1e9
        self._channels: dict[str, channel_mod.Channel] = {}
        self._policy = DeliveryPolicy()
        self._health: dict[str, dict[str, Any]] = {}
        self._wake: asyncio.Event | None = None
        self._pool = ThreadPoolExecutor(MAX_CONCURRENT, thread_name_prefix="breakglass-alerts")
        self._stopped = False

    # --- configuration -----------------------------------------------------------------------------

    async def _configure(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._settings_read < SETTINGS_TTL:
            return
        raw = await self.engine.get(SETTINGS_ROW)
        settings = orjson.loads(raw) if raw is not None else {}
        self._settings_read = time.monotonic()
        if settings == self._settings and self._channels:
            return
        self._settings = settings
        self._policy = DeliveryPolicy.from_settings(settings)
        try:
            parsed = channel_mod.parse_channels(settings, self.data_dir)
        except channel_mod.ChannelConfigError as exc:
            log.error("break-glass alert channels: %s (alerts go to the default file and stay queued)", exc)
            parsed = [channel_mod.FileChannel(self.data_dir / "audit" / "alerts.jsonl"), _BrokenChannel(str(exc))]
        self._channels = {c.name: c for c in parsed}

    # --- queueing ----------------------------------------------------------------------------------

    async def enqueue(self, alert: dict[str, Any]) -> str:
        """Store ``alert`` durably (one atomic write) and return its id; wakes this process's delivery loop.
        Raises when the storage cannot take it: the caller must then not go on (fail closed)."""
        await self._configure()
        now = time.time()
        alert_id = new_alert_id(now)
        envelope = orjson.dumps({"id": alert_id, "queuedAt": iso_time(now), "alert": alert}, default=str)
        state = {
            "id": alert_id,
            "envelope": envelope.decode(),
            "channels": sorted(self._channels),
            "delivered": {},
            "errors": {},
            "attempts": 0,
            "next": now,
            "queued": now,
            "lease": None,
            "reported": False,
        }
        low = is_refusal(alert)
        if low:
            state["priority"] = "low"
        key = _pending_key(alert_id, now, low)
        extra: Any = self.session_rows(alert_id, alert) if self.session_rows is not None else []
        if inspect.isawaitable(extra):
            extra = await extra
        extra = list(extra)
        if low:
            return await self._enqueue_refusal(alert, state, extra)
        value = orjson.dumps(state)

        def decide(values: list[bytes | None]) -> Decision:
            if values[0] is not None:
                raise RuntimeError("alert id collision")
            return Decision([Put(key, value), *extra], alert_id)

        await self.engine.atomic([key], decide)
        if self._wake is not None:
            self._wake.set()
        return alert_id

    async def _enqueue_refusal(self, alert: dict[str, Any], state: dict[str, Any], extra: list[Put]) -> str:
        """Queue a refused attempt's alert: one by one for the first ``refusal_burst`` of its group in the
        current window, then folded into the window's aggregate alert (one atomic write with the counter)."""
        policy = self._policy
        now = float(state["queued"])
        window = policy.refusal_window_seconds
        start = math.floor(now / window) * window
        end = start + window
        counter_key = refusal_group(alert)
        for _ in range(50):
            seen = await self.engine.get(counter_key)
            counter = orjson.loads(seen) if seen is not None else {}
            open_agg = counter.get("aggregate") if counter.get("window") == start else None
            agg_key = _pending_key(open_agg["id"], open_agg["due"], True) if open_agg else None
            keys = [counter_key] + ([agg_key] if agg_key is not None else [])

            def decide(values: list[bytes | None], seen: bytes | None = seen, counter: dict[str, Any] = counter,
                       agg_key: RowKey | None = agg_key) -> Decision:
                if values[0] != seen:
                    raise _Changed
                counter = dict(counter)
                if counter.get("window") != start:
                    counter = {"window": start, "count": 0, "aggregate": None}
                counter["count"] = int(counter["count"]) + 1
                if counter["count"] <= policy.refusal_burst:
                    key = _pending_key(state["id"], now, True)
                    return Decision([Put(counter_key, orjson.dumps(counter)), Put(key, orjson.dumps(state)), *extra],
                                    state["id"])
                message = str(alert.get("errorMessage") or "")[:500]
                agg_raw = values[1] if agg_key is not None else None
                agg = orjson.loads(agg_raw) if agg_raw is not None else None
                if agg is not None and agg.get("lease") is None and not agg.get("attempts") and not agg["delivered"]:
                    envelope = orjson.loads(agg["envelope"])
                    info = envelope["alert"]["aggregate"]
                    info["count"] += 1
                    info["last"] = iso_time(now)
                    messages = info["messages"]
                    if message in messages or len(messages) < MAX_MESSAGES:
                        messages[message] = messages.get(message, 0) + 1
                    else:
                        info["otherMessages"] = int(info.get("otherMessages", 0)) + 1
                    agg["envelope"] = orjson.dumps(envelope, default=str).decode()
                    assert agg_key is not None
                    changes: list[Put | Delete] = [Put(agg_key, orjson.dumps(agg))]
                else:
                    # No aggregate yet in this window (or it is already being delivered): open a new one, due
                    # at the window's end, that carries this refusal and the ones that follow.
                    agg_id = new_alert_id(now)
                    due = max(end, now)
                    body = {**alert, "aggregate": {
                        "count": 1, "first": iso_time(now), "last": iso_time(now),
                        "windowStart": iso_time(start), "windowEnd": iso_time(end),
                        "windowSeconds": window, "alertedIndividually": policy.refusal_burst,
                        "messages": {message: 1},
                    }}
                    envelope = {"id": agg_id, "queuedAt": iso_time(now), "alert": body}
                    agg = {**state, "id": agg_id, "envelope": orjson.dumps(envelope, default=str).decode(),
                           "next": due}
                    counter["aggregate"] = {"id": agg_id, "due": due}
                    changes = [Put(_pending_key(agg_id, due, True), orjson.dumps(agg))]
                changes += [Put(counter_key, orjson.dumps(counter)), *extra]
                return Decision(changes, agg["id"])

            try:
                alert_id = str(await self.engine.atomic(keys, decide))
            except _Changed:
                await asyncio.sleep(random.uniform(0, 0.01))
                continue
            if self._wake is not None:
                self._wake.set()
            return alert_id
        # The group's counter kept changing under us (a flood across workers): queue this one on its own rather
        # than lose it.
        key, value = _pending_key(state["id"], now, True), orjson.dumps(state)

        def alone(values: list[bytes | None]) -> Decision:
            if values[0] is not None:
                raise RuntimeError("alert id collision")
            return Decision([Put(key, value), *extra], state["id"])

        alert_id = str(await self.engine.atomic([key], alone))
        if self._wake is not None:
            self._wake.set()
        return alert_id

    # --- health ------------------------------------------------------------------------------------

    def can_deliver(self) -> bool:
        """Whether at least one (required) channel accepted its last delivery or has not failed yet."""
        names = [n for n in self._channels if not self._policy.required or n in self._policy.required]
        if not self._channels:  # not configured yet in this process: the default file channel
            return True
        return any(self._health.get(n, {}).get("failures", 0) == 0 for n in names)

    async def _refresh_health(self) -> None:
        rows = await self.engine.scan(HEALTH, limit=64)
        self._health = {r.key.rk.decode(): orjson.loads(r.value) for r in rows}

    # --- delivery ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver queued alerts until cancelled: woken by ``enqueue`` in this process, else every second."""
        self._wake = asyncio.Event()
        while not self._stopped:
            self._wake.clear()  # before the round: an alert queued during it wakes the next one at once
            delay = POLL_SECONDS
            try:
                delay = min(delay, await self.deliver_due())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("break-glass alert delivery round failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.05))
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopped = True
        if self._wake is not None:
            self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def deliver_due(self) -> float:
        """One round: deliver every queued alert that is due, a batch at a time (one write takes the batch's
        leases, one records its outcomes). Only due rows are read (they are keyed by due time; a leased row
        is due when its lease ends). Returns the seconds until the next one is due (at most POLL_SECONDS)."""
        await self._configure()
        await self._refresh_health()
        after: RowKey | None = None
        while True:
            await self._deliver_space(PENDING)  # first (and again between two batches of refusals)
            rows = await self.engine.scan(PENDING_LOW, after=after, hh_hi=_due(time.time() + 0.001), limit=BATCH)
            if rows:
                await self._deliver_batch(rows)
            if len(rows) < BATCH:
                break
            after = rows[-1].key
        wait = POLL_SECONDS
        for space in (PENDING, PENDING_LOW):
            upcoming = await self.engine.scan(space, hh_lo=_due(time.time() + 0.001), limit=1)
            if upcoming:
                wait = min(wait, max(0.0, int(upcoming[0].key.hh) / 1000 - time.time()))
        return wait

    async def _deliver_space(self, space: str) -> None:
        after: RowKey | None = None
        while True:
            rows = await self.engine.scan(space, after=after, hh_hi=_due(time.time() + 0.001), limit=BATCH)
            if rows:
                await self._deliver_batch(rows)
            if len(rows) < BATCH:
                return
            after = rows[-1].key

    async def _take_leases(self, rows: Sequence[Row]) -> list[tuple[RowKey, dict[str, Any]]]:
        """Lease the scanned alerts that are still there (one atomic write): each row moves to the due time
        of its lease's end, with the owner, so no other process sees it due while this one delivers it."""
        keys = [row.key for row in rows]
        now = time.time()
        # Long enough for the whole batch, even if every delivery runs to its timeout: another process must
        # not take an alert over while this one may still be delivering it.
        bound = max((float(getattr(c, "timeout", channel_mod.DEFAULT_TIMEOUT)) for c in self._channels.values()),
                    default=channel_mod.DEFAULT_TIMEOUT) + 1.0
        rounds = -(-len(rows) * max(1, len(self._channels)) // MAX_CONCURRENT)
        until = now + max(self._policy.lease_seconds, rounds * bound + 2.0)
        owner = self.owner

        def decide(values: list[bytes | None]) -> Decision:
            changes: list[Put | Delete] = []
            taken = []
            for key, raw in zip(keys, values, strict=True):
                if raw is None:
                    continue  # taken (or delivered) meanwhile by another process
                state = orjson.loads(raw)
                state["lease"] = {"owner": owner, "until": until}
                state["next"] = until
                leased = _pending_key(state["id"], until, _is_low(state))
                changes += [Delete(key), Put(leased, orjson.dumps(state))]
                taken.append((leased, state))
            return Decision(changes, taken)

        taken: list[tuple[RowKey, dict[str, Any]]] = await self.engine.atomic(keys, decide)
        return taken

    async def _deliver_batch(self, rows: Sequence[Row]) -> None:
        leased = await self._take_leases(rows)
        if not leased:
            return
        states = [state for _, state in leased]
        gate = asyncio.Semaphore(MAX_CONCURRENT)

        async def attempt(alert_id: str, envelope: bytes, name: str) -> tuple[str, str, str | None]:
            channel = self._channels.get(name)
            if channel is None:
                return alert_id, name, f"channel {name!r} is no longer configured"
            async with gate:
                try:
                    await asyncio.get_running_loop().run_in_executor(self._pool, channel.deliver, envelope, alert_id)
                except channel_mod.DeliveryError as exc:
                    return alert_id, name, str(exc)
                except Exception as exc:  # a channel bug must not lose the alert either
                    return alert_id, name, f"{type(exc).__name__}: {exc}"
            return alert_id, name, None

        # A channel that failed its last attempts is probed with one alert of the batch first; while it
        # keeps failing, the batch's other alerts are not sent to it (they count as failed and wait their
        # next attempt): no storm of requests against a receiver that is down.
        failing = {n for n, h in self._health.items() if int(h.get("failures", 0)) >= PROBE_AFTER}
        now_tries, later = [], []
        probes: set[str] = set()
        for state in states:
            for name in state["channels"]:
                if name in state["delivered"]:
                    continue
                item = (state["id"], state["envelope"].encode(), name)
                if name in failing and name in probes:
                    later.append(item)
                else:
                    probes.add(name)
                    now_tries.append(item)
        outcomes: dict[str, dict[str, str | None]] = {state["id"]: {} for state in states}
        for alert_id, name, error in await asyncio.gather(*(attempt(*item) for item in now_tries)):
            outcomes[alert_id][name] = error
        probe_error = {
            name: next((per[name] for per in outcomes.values() if per.get(name)), None) for name in failing
        }
        retry = [item for item in later if probe_error.get(item[2]) is None]
        for alert_id, _, name in later:
            if probe_error.get(name) is not None:
                outcomes[alert_id][name] = f"not tried: {name} is failing ({probe_error[name]})"
        for alert_id, name, error in await asyncio.gather(*(attempt(*item) for item in retry)):
            outcomes[alert_id][name] = error
        await self._settle(outcomes, {state["id"]: key for key, state in leased})

    async def _settle(self, outcomes: dict[str, dict[str, str | None]], leased: dict[str, RowKey]) -> None:
        """Record a batch's outcomes in one atomic write: delivered alerts move to the history, the others
        get their next attempt (their row moves to that due time); each channel's health is updated."""
        ids = list(outcomes)
        keys = [leased[i] for i in ids]
        names = sorted({n for per in outcomes.values() for n in per})
        health_keys = [_health_row(n) for n in names]
        now = time.time()
        policy = self._policy
        owner = self.owner
        # A channel is healthy when it accepted at least one alert of this batch.
        channel_ok = {n: any(per.get(n, "x") is None for per in outcomes.values() if n in per) for n in names}
        channel_error = {
            n: next((per[n] for per in outcomes.values() if per.get(n) is not None), None) for n in names
        }

        def decide(values: list[bytes | None]) -> Decision:
            changes: list[Put | Delete] = []
            for name, health_key, raw in zip(names, health_keys, values[len(ids):], strict=True):
                health = orjson.loads(raw) if raw is not None else {"failures": 0}
                if channel_ok[name]:
                    health.update(failures=0, ok=now)
                else:
                    health.update(failures=int(health.get("failures", 0)) + 1, failed=now, error=channel_error[name])
                changes.append(Put(health_key, orjson.dumps(health)))
            verdicts = []
            for alert_id, key, raw in zip(ids, keys, values[: len(ids)], strict=True):
                if raw is None:
                    continue  # the lease ran out and another process took it over: it delivers again
                state = orjson.loads(raw)
                for name, error in outcomes[alert_id].items():
                    if error is None:
                        state["delivered"][name] = now
                        state["errors"].pop(name, None)
                    else:
                        state["errors"][name] = error
                if (state.get("lease") or {}).get("owner") == owner:
                    state["lease"] = None
                if all(n in state["delivered"] for n in state["channels"]):
                    state["deliveredAt"] = now
                    changes += [Delete(key), Put(_row(DELIVERED, alert_id), orjson.dumps(state))]
                    verdicts.append(("delivered", state))
                    continue
                state["attempts"] = int(state["attempts"]) + 1
                backoff = min(BACKOFF_BASE * 2 ** (state["attempts"] - 1), policy.max_backoff_seconds)
                state["next"] = now + backoff * random.uniform(0.8, 1.0)
                report = state["attempts"] >= policy.report_after and not state["reported"]
                if report:
                    state["reported"] = True
                changes += [Delete(key), Put(_pending_key(alert_id, state["next"], _is_low(state)), orjson.dumps(state))]
                verdicts.append(("report" if report else "retry", state))
            return Decision(changes, verdicts)

        verdicts = await self.engine.atomic([*keys, *health_keys], decide)
        for name in names:
            entry = self._health.setdefault(name, {"failures": 0})
            if channel_ok[name]:
                entry.update(failures=0, ok=now)
            else:
                entry.update(failures=int(entry.get("failures", 0)) + 1, failed=now)
        for verdict, state in verdicts:
            if verdict == "report":
                log.error(
                    "break-glass alert %s undelivered after %d attempts (%s); it stays queued and is retried",
                    state["id"], state["attempts"],
                    "; ".join(f"{k}: {v}" for k, v in state["errors"].items()),
                )
                self._audit("BreakGlassAlertUndelivered", state, error=True)
            elif verdict == "delivered" and state.get("reported"):
                self._audit("BreakGlassAlertDelivered", state, error=False)

    def _audit(self, event_name: str, state: dict[str, Any], *, error: bool) -> None:
        if self.audit is None:
            return
        record = system_record(
            event_name,
            {
                "alertId": state["id"],
                "channels": state["channels"],
                "delivered": sorted(state["delivered"]),
                "undelivered": sorted(set(state["channels"]) - set(state["delivered"])),
                "attempts": state["attempts"],
                "errors": state["errors"],
                "queuedAt": iso_time(state["queued"]),
            },
            error_code="AlertUndelivered" if error else None,
        )
        try:
            self.audit.write(record)
        except OSError:
            log.exception("audit record %s could not be written", event_name)


def system_record(
    event_name: str, data: dict[str, Any], *, error_code: str | None = None, identity: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A CloudTrail-shaped record of something the break-glass machinery did (not a request)."""
    now = time.time()
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity or {"type": "AWSService", "invokedBy": "perimeterdb"},
        "eventTime": iso_time(now),
        "eventSource": "breakglass.perimeterdb",
        "eventName": event_name,
        "awsRegion": "global",
        "sourceIPAddress": "perimeterdb",
        "eventID": f"pdb-{secrets.token_hex(16)}",
        "eventType": "AwsServiceEvent",
        "readOnly": False,
        "breakGlass": True,
        "additionalEventData": data,
    }
    if error_code:
        record["errorCode"] = error_code
    return record


async def pending(engine: Any) -> list[dict[str, Any]]:
    """Every alert still queued (oldest first): id, queued, channels, delivered, errors, attempts, next."""
    out: list[dict[str, Any]] = []
    for space in (PENDING, PENDING_LOW):
        after: RowKey | None = None
        while True:
            rows = await engine.scan(space, after=after, limit=256)
            for row in rows:
                state = orjson.loads(row.value)
                envelope = orjson.loads(state.pop("envelope"))
                state["alert"] = envelope.get("alert")
                out.append(state)
            if len(rows) < 256:
                break
            after = rows[-1].key
    return sorted(out, key=lambda a: a["id"])


async def delivered(engine: Any, limit: int = 1000) -> list[dict[str, Any]]:
    """The delivered alerts' history, oldest first (at most ``limit``)."""
    rows = await engine.scan(DELIVERED, limit=limit)
    out = []
    for row in rows:
        state = orjson.loads(row.value)
        state["alert"] = orjson.loads(state.pop("envelope")).get("alert")
        out.append(state)
    return out
