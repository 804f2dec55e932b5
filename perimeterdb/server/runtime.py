"""The server's long-lived parts, built once at start: storage, identities, catalog, authorizer."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perimeterdb.auth.secretbox import SecretBox
from perimeterdb.authz import Authorizer
from perimeterdb.config import Settings
from perimeterdb.dynamodb.catalog import Catalog
from perimeterdb.storage.sqlite import SQLiteEngine
from perimeterdb.world.identities import IdentityStore, NewAccessKey

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: SQLiteEngine
    identities: IdentityStore
    catalog: Catalog
    authorizer: Authorizer
    organizations: Any = None  # organizations.store.OrgStore
    audit: Any = None  # audit.log.AuditLog
    seen_generation: int = -1
    primary: bool = True  # the process that runs the background loops
    breakglass_outbox: Any = None  # breakglass.outbox.AlertOutbox: durable break-glass alerts

    def sync_caches(self) -> None:
        """Drop every metadata cache when any process (this one included) changed metadata since."""
        current = self.engine.generation.read()
        if current != self.seen_generation:
            self.seen_generation = current
            self.catalog.invalidate()
            self.identities.changed()
            self.authorizer.invalidate()
            if self.organizations is not None and hasattr(self.organizations, "invalidate"):
                self.organizations.invalidate()

    @property
    def background_starters(self) -> list[Callable[[], Awaitable[None]]]:
        """The loops the server runs beside requests: TTL expiry, and index backfills left pending."""
        from perimeterdb.dynamodb import indexes, ttl

        # Every process delivers queued break-glass alerts (one at a time per alert: a lease in its row).
        outbox = [self.breakglass_outbox.run] if self.breakglass_outbox is not None else []
        if not self.primary:
            return outbox
        return [lambda: ttl.run_expirer(self), lambda: indexes.resume_backfills(self.catalog, self.engine), *outbox]

    def close(self) -> None:
        if self.breakglass_outbox is not None:
            self.breakglass_outbox.stop()
        if self.audit is not None:
            self.audit.close()
        self.engine.close()


def open_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    first_start = not settings.database_path.exists()
    # Refuses (KeyFileError) a missing or foreign key file before anything is opened or created.
    box = SecretBox.for_data_dir(settings.secret_key_path, settings.data_dir, first_start=first_start)
    engine = SQLiteEngine(settings.database_path, durability=settings.durability)
    identities = IdentityStore(engine, box)
    catalog = Catalog(engine)
    from perimeterdb.audit import open_audit
    from perimeterdb.organizations.store import OrgStore
    from perimeterdb.organizations.view import OrganizationView

    organizations = OrgStore(engine)
    authorizer = Authorizer(identities, catalog, OrganizationView(organizations))
    audit = open_audit(settings, engine, identities)
    runtime = Runtime(settings, engine, identities, catalog, authorizer, organizations, audit)
    from perimeterdb.breakglass.outbox import AlertOutbox
    from perimeterdb.breakglass.review import remember

    runtime.breakglass_outbox = AlertOutbox(
        engine, settings.data_dir, audit=audit, session_rows=lambda i, a: remember(engine, i, a)
    )
    if getattr(audit, "break_glass", None) is not None:  # alerts of flagged audit records go to the outbox
        audit.break_glass.outbox = runtime.breakglass_outbox
    return runtime


def deliver_credentials(settings: Settings, key: NewAccessKey) -> None:
    """Hand the first start's administrator key pair over: printed once on stdout and kept nowhere
    (``--print-credentials-once``), or written to the credentials file (``--credentials-file``, default
    ``DATA_DIR/credentials``), which is then a usable secret (see ``warn_about_credentials``)."""
    if settings.print_credentials_once:
        print(
            "The administrator's access key (printed once, stored nowhere; keep it now):\n"
            f"[default]\naws_access_key_id = {key.access_key_id}\n"
            f"aws_secret_access_key = {key.secret_access_key}",
            flush=True,
        )
        return
    write_credentials_file(settings.credentials_path, key)


def warn_about_credentials(settings: Settings) -> None:
    """Say it at every start while the data directory holds the administrator's secret in plain text."""
    path = settings.data_dir / "credentials"
    if path.exists():
        log.warning(
            "%s holds the administrator's secret access key in plain text: a copy of the data directory with "
            "it is a usable secret. Move it out of the data directory (or delete it once the key is kept "
            "elsewhere); --print-credentials-once and --credentials-file avoid writing it there",
            path,
        )


def usage_line(settings: Settings) -> str:
    """The line the server prints at start: how to call it."""
    first = settings.listeners[0]
    host = f"[{first.host}]" if ":" in first.host else first.host
    command = f"aws dynamodb list-tables --endpoint-url http://{host}:{first.port} --region {settings.default_region}"
    if settings.credentials_path.exists():
        return f"AWS_SHARED_CREDENTIALS_FILE={settings.credentials_path} {command}"
    return f"{command}  # signed with the administrator's access key"


def write_credentials_file(path: Path, key: NewAccessKey) -> None:
    """Write the bootstrap key pair in the AWS shared-credentials format, readable by the owner only."""
    text = (
        "[default]\n"
        f"aws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
