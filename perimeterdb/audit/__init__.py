"""The audit log (CloudTrail-shaped JSON lines), its search, and alerts.

``open_audit`` builds the server's log: ``DATA_DIR/audit/audit.log`` (or ``settings.extra["audit_dir"]``),
rotated at 64 MiB keeping 10 files, with break-glass detection and alerts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perimeterdb.audit.log import AuditLog


def audit_dir(settings: Any) -> Path:
    extra = getattr(settings, "extra", {}) or {}
    return Path(extra["audit_dir"]) if extra.get("audit_dir") else Path(settings.data_dir) / "audit"


def open_audit(settings: Any, engine: Any, identities: Any) -> AuditLog:
    from perimeterdb.world.breakglass import BreakGlass

    extra = getattr(settings, "extra", {}) or {}
    return AuditLog(
        audit_dir(settings),
        max_bytes=int(extra.get("audit_max_bytes") or 64 * 1024 * 1024),
        backups=int(extra.get("audit_backups") or 10),
        fsync=str(extra.get("audit_fsync") or "") in ("1", "true", "yes"),
        break_glass=BreakGlass(engine, identities, Path(settings.data_dir)),
    )


__all__ = ["AuditLog", "audit_dir", "open_audit"]
