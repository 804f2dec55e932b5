"""Alerts: a JSON line in the alerts file, and a POST of the same JSON to a configured webhook.

The file line is written synchronously (before the response). The webhook POST runs in the background on
a worker thread with a 5-second timeout, at most ``max_pending`` at once (further alerts are still written
to the file, and the dropped POST is logged); a failed POST is logged and not retried.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

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
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, alert: dict[str, Any]) -> Future[None] | None:
        line = orjson.dumps(alert, default=str) + b"\n"
        if self.path is not None:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        log.warning("ALERT %s", line.decode().strip()[:500])
        if not self.webhook:
            return None
        with self._lock:
            if self._pending >= self.max_pending:
                log.error("alert webhook backlog full; POST dropped (the alert is in the alerts file)")
                return None
            self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alert-webhook")
        return self._pool.submit(self._post, line)

    def _post(self, body: bytes) -> None:
        try:
            request = urllib.request.Request(
                self.webhook or "", data=body, method="POST", headers={"content-type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
                response.read(1024)
        except Exception as exc:
            log.error("alert webhook POST to %s failed: %s", self.webhook, exc)
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
