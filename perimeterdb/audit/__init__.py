"""The audit log (CloudTrail-shaped JSON lines), its search, and alerts.

``open_audit`` builds the server's log: ``DATA_DIR/audit/audit.log`` (or ``settings.extra["audit_dir"]``),
a new file every 64 MiB (none ever deleted), digests signed with the key beside the secret key file, with
break-glass detection and alerts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perimeterdb.audit.log import KEY_NAME, AuditLog


def audit_dir(settings: Any) -> Path:
    extra = getattr(settings, "extra", {}) or {}
    return Path(extra["audit_dir"]) if extra.get("audit_dir") else Path(settings.data_dir) / "audit"


def open_audit(settings: Any, engine: Any, identities: Any) -> AuditLog:
    from perimeterdb.world.breakglass import BreakGlass

    extra = getattr(settings, "extra", {}) or {}
    return AuditLog(
        audit_dir(settings),
        max_bytes=int(extra.get("audit_max_bytes") or 64 * 1024 * 1024),
        fsync=str(extra.get("audit_fsync") or "") in ("1", "true", "yes"),
        break_glass=BreakGlass(engine, identities, Path(settings.data_dir)),
        signing_key=signing_key_path(settings),
        budget_bytes=int(extra.get("audit_budget_bytes") or 8 * 1024 * 1024 * 1024),
        digest_interval=float(extra.get("audit_digest_interval") or 60.0),
    )


def signing_key_path(settings: Any) -> Path:
    """The digest signing key: beside the key file that seals secrets (``--key-file``), never in the log."""
    return Path(settings.secret_key_path).parent / KEY_NAME


__all__ = ["AuditLog", "audit_dir", "open_audit", "signing_key_path"]
