"""The audit digest signing key: an Ed25519 key beside the key file that seals secrets, made on first use.

32 raw bytes, mode 0600, never logged; the public key (hex) is written beside it for verifiers that must
not hold the private key. docs/audit.md says where it lives and why.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from perimeterdb.audit import chain

log = logging.getLogger(__name__)

KEY_NAME = "audit-digest.key"
PUBLIC_KEY_NAME = "audit-digest.pub"


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The digest signing key at ``path`` (32 raw bytes, 0600), made on first use. Never logged. The public
    key is written beside it (``audit-digest.pub``, hex) for verifiers that must not hold the private key."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, raw)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process made one meanwhile: then use that one
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        raw = path.read_bytes()
        pub = path.with_name(PUBLIC_KEY_NAME)
        pub.write_text(chain.public_key_hex(Ed25519PrivateKey.from_private_bytes(raw).public_key()) + "\n")
        log.warning("created the audit digest signing key %s (keep it with the secret key file)", path)
    if len(raw) != 32:
        raise ValueError(f"{path} is not an audit digest signing key (32 bytes)")
    if path.stat().st_mode & 0o077:
        try:
            os.chmod(path, 0o600)
        except OSError:
            log.warning("%s is readable by others than its owner and cannot be made 0600", path)
    return Ed25519PrivateKey.from_private_bytes(raw)


def default_key_path(directory: Path) -> Path:
    """Where a log opened without ``signing_key`` finds its key: the server's default place (beside
    ``DATA_DIR/secret.key``, the log being ``DATA_DIR/audit``) when that is where the key is or would be;
    else inside the log directory. A server started with ``--key-file`` elsewhere keeps its key there: a
    tool writing to its log must pass that ``signing_key``, or its digests will not verify."""
    beside = directory.parent / KEY_NAME
    if beside.exists() or (directory.parent / "secret.key").exists():
        return beside
    return directory / KEY_NAME


class MissingSigningKey(Exception):
    """An operator tool was about to write to the server's log without the server's signing key."""


def operator_key_path(data_dir: Path, key_file: str | None) -> Path:
    """The signing key a command-line tool must use to add a record to the server's log: beside
    ``--key-file`` when the server was given one, else beside ``DATA_DIR/secret.key``. It is never made
    here: a tool that made its own key would write digests that ``audit verify`` rejects."""
    path = (Path(key_file).parent if key_file else data_dir) / KEY_NAME
    if not path.exists():
        raise MissingSigningKey(
            f"the audit signing key {path} is not there: pass the --key-file the server was started with"
        )
    return path
