"""The fallback alert sink: used only where no durable outbox is wired (a ``BreakGlass`` built outside the
server's runtime). The server queues every break-glass alert in ``breakglass/outbox.py`` instead, which
retries and never drops one.

``emit`` appends the alert as a JSON line to the alerts file (mode 0600, fsynced) before it returns, and, when a
webhook is configured, POSTs it in the background with the same signature the outbox uses
(``breakglass/channels.py``: ``X-PerimeterDB-Signature``; the secret is ``alerts-webhook.secret`` beside the
data directory's ``audit/`` folder, generated 0600 when absent). At most ``max_pending`` POSTs wait at once; a
failed or dropped POST is logged (the alert is in the file), not retried: that is the outbox's job.
"""

from __future__ import annotations

import logging
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from perimeterdb.breakglass.channels import DeliveryError, FileChannel, WebhookChannel

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 5.0


class AlertSink:
    def __init__(self, path: Path | None, webhook: str | None = None, *, max_pending: int = 64) -> None:
        self.path = path
        self.webhook = webhook
        self.max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._file = FileChannel(path) if path is not None else None
        secret_dir = path.parent.parent if path is not None else Path(".")
        self._hook = WebhookChannel(webhook, secret_dir / "alerts-webhook.secret", WEBHOOK_TIMEOUT) if webhook else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, alert: dict[str, Any]) -> Future[None] | None:
        alert_id = str(alert.get("alertId") or "bg-" + secrets.token_hex(12))
        body = orjson.dumps({"id": alert_id, "alert": alert}, default=str)
        if self._file is not None:
            self._file.deliver(body, alert_id)  # raises DeliveryError: the caller learns the alert is not kept
        log.warning("ALERT %s", body.decode()[:500])
        if self._hook is None:
            return None
        with self._lock:
            if self._pending >= self.max_pending:
                log.error("alert webhook backlog full; POST dropped (the alert is in the alerts file)")
                return None
            self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alert-webhook")
        return self._pool.submit(self._post, body, alert_id)

    def _post(self, body: bytes, alert_id: str) -> None:
        try:
            assert self._hook is not None
            self._hook.deliver(body, alert_id)
        except DeliveryError as exc:
            log.error("alert webhook: %s", exc)
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
