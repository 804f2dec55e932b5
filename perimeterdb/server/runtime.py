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

        if not self.primary:
            return []
        return [lambda: ttl.run_expirer(self), lambda: indexes.resume_backfills(self.catalog, self.engine)]

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()
        self.engine.close()


def open_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    engine = SQLiteEngine(settings.database_path, durability=settings.durability)
    box = SecretBox(settings.secret_key_path)
    identities = IdentityStore(engine, box)
    catalog = Catalog(engine)
    from perimeterdb.audit import open_audit
    from perimeterdb.organizations.store import OrgStore
    from perimeterdb.organizations.view import OrganizationView

    organizations = OrgStore(engine)
    authorizer = Authorizer(identities, catalog, OrganizationView(organizations))
    audit = open_audit(settings, engine, identities)
    return Runtime(settings, engine, identities, catalog, authorizer, organizations, audit)


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
