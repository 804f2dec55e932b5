"""Where break-glass alerts go: a signed webhook, a file, syslog. Each channel delivers one alert, or raises.

Configuration (the world file's ``break_glass:`` section, stored in the settings row of
``world/breakglass.py``; only the platform writes it, never an API a feature team can call, so no team can
point a webhook at a host it wants to probe)::

    break_glass:
      alerts:
        webhook: {url: https://pager.example.com/hooks/pdb, secret_file: /etc/perimeterdb/webhook.secret}
        file: audit/alerts.jsonl          # relative paths are under the data directory
        syslog: {address: /dev/log}       # or "host:port" (UDP, port 514 when omitted)

The older keys still work: ``alerts_file: PATH`` (the file channel) and ``webhook: URL`` (a webhook whose
secret is generated). Without any of them, alerts go to the file ``DATA_DIR/audit/alerts.jsonl``.

Webhook: ``POST`` of the alert envelope (JSON ``{"id": ..., "alert": {...}, "queuedAt": ...}``) with the
headers ``X-PerimeterDB-Alert-Id: <id>`` (the same on every retry: deduplicate on it) and
``X-PerimeterDB-Signature: t=<unix seconds>,v1=<hex>``, where ``v1 = HMAC-SHA256(secret, "<t>." + body)``.
A receiver verifies it like this (Python)::

    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    expected = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, v1) and abs(time.time() - int(t)) <= 300

and rejects a request whose timestamp is more than 5 minutes away from its clock (a replay), and one whose
alert id it already processed. The secret is the contents of ``secret_file`` (stripped), which must be
readable by its owner only; when the file does not exist, 32 random bytes are generated into it (hex,
mode 0600). Without ``secret_file``, the secret is ``DATA_DIR/alerts-webhook.secret``. The secret is never
logged. Only a 2xx answer counts as delivered; redirects are not followed.

File: one JSON line per delivery, appended and fsynced, mode 0600. Syslog: one datagram, facility authpriv,
severity alert, ``perimeterdb: BREAK-GLASS {json}`` (UDP, or a Unix datagram socket such as ``/dev/log``).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import secrets
import socket
import stat
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

SIGNATURE_HEADER = "X-PerimeterDB-Signature"
ID_HEADER = "X-PerimeterDB-Alert-Id"
DEFAULT_TIMEOUT = 5.0
REPLAY_WINDOW = 300  # seconds: what a receiver should accept (verify_signature's default)
SYSLOG_MAX = 8000  # bytes of one syslog datagram
_SYSLOG_PRI = 10 * 8 + 1  # facility authpriv (10), severity alert (1)


class ChannelConfigError(ValueError):
    """The ``alerts`` settings cannot be used (said in the message)."""


class DeliveryError(Exception):
    """One delivery failed; the message says why (never a secret)."""


class Channel(Protocol):
    name: str

    def deliver(self, envelope: bytes, alert_id: str) -> None: ...


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: bytes, body: bytes, header: str, *, now: float | None = None, window: int = REPLAY_WINDOW
) -> bool:
    """What a receiver does: the HMAC matches (constant-time) and the timestamp is within ``window`` s."""
    fields: dict[str, str] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, value)
    stamp, mac = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or not mac:
        return False
    expected = sign(secret, body, int(stamp)).partition(",v1=")[2]
    current = time.time() if now is None else now
    return hmac.compare_digest(expected, mac) and abs(current - int(stamp)) <= window


def load_or_create_secret(path: Path) -> bytes:
    """The webhook secret in ``path``; generated (32 random bytes, hex, mode 0600) when the file is absent.
    A file that its group or others may read is refused: the secret would not be a secret."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DeliveryError(f"webhook secret file {path} is readable by others (mode {mode & 0o777:o}); chmod 600")
    secret = path.read_bytes().strip()
    if len(secret) < 16:
        raise DeliveryError(f"webhook secret file {path} holds fewer than 16 bytes")
    return secret


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    url: str
    secret_file: Path
    timeout: float = DEFAULT_TIMEOUT
    name: str = "webhook"

    def deliver(self, envelope: bytes, alert_id: str) -> None:
        secret = load_or_create_secret(self.secret_file)
        parts = urllib.parse.urlsplit(self.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname or "", parts.port, timeout=self.timeout)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "perimeterdb-alerts",
            ID_HEADER: alert_id,
            SIGNATURE_HEADER: sign(secret, envelope, int(time.time())),
        }
        try:
            connection.request("POST", path, body=envelope, headers=headers)
            status = connection.getresponse().status  # the body is not read: only the status matters
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"POST to {self._where()} failed: {type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
        if not 200 <= status < 300:
            raise DeliveryError(f"POST to {self._where()} answered {status}")

    def _where(self) -> str:  # the URL without its query or credentials (they could hold a token)
        parts = urllib.parse.urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


@dataclass(frozen=True, slots=True)
class FileChannel:
    path: Path
    name: str = "file"

    def deliver(self, envelope: bytes, alert_id: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, envelope + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeliveryError(f"append to {self.path} failed: {exc}") from None


@dataclass(frozen=True, slots=True)
class SyslogChannel:
    address: str  # a Unix socket path, or host[:port] (UDP)
    name: str = "syslog"

    def deliver(self, envelope: bytes, alert_id: str) -> None:
        body = envelope if len(envelope) <= SYSLOG_MAX else orjson.dumps(
            {"id": alert_id, "truncated": True, "head": envelope[:SYSLOG_MAX // 2].decode(errors="replace")}
        )
        message = f"<{_SYSLOG_PRI}>perimeterdb[{os.getpid()}]: BREAK-GLASS ".encode() + body
        try:
            if self.address.startswith("/"):
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                    s.settimeout(DEFAULT_TIMEOUT)
                    s.sendto(message, self.address)
            else:
                host, port = _host_port(self.address)
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                with socket.socket(family, socket.SOCK_DGRAM) as s:
                    s.settimeout(DEFAULT_TIMEOUT)
                    s.sendto(message, (host, port))
        except OSError as exc:
            raise DeliveryError(f"syslog to {self.address} failed: {exc}") from None


def _host_port(address: str) -> tuple[str, int]:
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or 514)
    host, sep, port = address.rpartition(":")
    if not sep or ":" in host:
        return address, 514
    return host, int(port)


def _under(data_dir: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else data_dir / path


def parse_channels(settings: Mapping[str, Any], data_dir: Path) -> list[Channel]:
    """The channels of the break-glass settings row (see the module docstring). Raises ChannelConfigError."""
    alerts = settings.get("alerts") or {}
    if not isinstance(alerts, Mapping):
        raise ChannelConfigError("break_glass.alerts must be a mapping of webhook, file and syslog")
    unknown = set(alerts) - {"webhook", "file", "syslog", "lease_seconds", "report_after", "max_backoff_seconds", "required",
                             "refusal_burst", "refusal_window_seconds"}  # the last two: outbox.py's aggregation
    if unknown:
        raise ChannelConfigError(f"break_glass.alerts: unknown keys {sorted(unknown)}")
    channels: list[Channel] = []
    webhook = alerts.get("webhook") or settings.get("webhook")
    if webhook:
        spec = {"url": webhook} if isinstance(webhook, str) else dict(webhook)
        url = str(spec.get("url") or "")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChannelConfigError(f"break_glass.alerts.webhook.url must be an http(s) URL, not {url!r}")
        if parts.username or parts.password:
            raise ChannelConfigError("break_glass.alerts.webhook.url must not hold credentials")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
            timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
        except ValueError as exc:
            raise ChannelConfigError(f"break_glass.alerts.webhook: {exc}") from None
        secret = _under(data_dir, str(spec.get("secret_file") or "alerts-webhook.secret"))
        channels.append(WebhookChannel(url, secret, min(max(timeout, 0.5), 30.0)))
    file_value = alerts.get("file") or settings.get("alerts_file") or "audit/alerts.jsonl"
    channels.append(FileChannel(_under(data_dir, str(file_value))))
    syslog = alerts.get("syslog")
    if syslog:
        address = syslog if isinstance(syslog, str) else (syslog or {}).get("address")
        if not address or not isinstance(address, str):
            raise ChannelConfigError("break_glass.alerts.syslog needs an address (a socket path or host:port)")
        if not address.startswith("/"):
            try:
                _host_port(address)
            except ValueError:
                raise ChannelConfigError(f"break_glass.alerts.syslog.address {address!r} is not host:port") from None
        channels.append(SyslogChannel(address))
    return channels
