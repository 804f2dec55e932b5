"""Encryption of stored secrets (secret access keys) under a key file kept apart from the data.

A copy of the data directory alone must not let anyone sign as a user, so each secret is sealed with
AES-256-GCM under a 32-byte key read from a file of mode 0600. The key file defaults to a path beside the
data directory's database but can be put anywhere (``--key-file``), e.g. on a separate volume.

The key file must be the one the stored secrets were sealed under. On the first start the data directory
gets ``secret.check``: an HMAC-SHA256 of a fixed label under the key (it says nothing about the key, and
lets every later start recognise it). ``SecretBox.for_data_dir`` refuses to start (``KeyFileError``, one
line saying what to do) when the key file is missing from a data directory that already holds sealed
secrets, or does not match the check; it makes a new key only on a first start. Without this, a volume
that failed to mount meant a fresh key, silently, and every stored secret unusable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CHECK_FILE", "KeyFileError", "SecretBox", "UnsealError"]

CHECK_FILE = "secret.check"
_CHECK_LABEL = b"perimeterdb secret.key check v1"


class KeyFileError(Exception):
    """The key file cannot be used with this data directory: the server must not start. ``str()`` is the
    one-line message for the operator."""


class UnsealError(Exception):
    """A sealed secret did not open under the key (wrong key, or a damaged record)."""


def _check_value(key: bytes) -> str:
    return hmac.new(key, _CHECK_LABEL, hashlib.sha256).hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class SecretBox:
    def __init__(self, key_file: Path, *, create: bool = True) -> None:
        self.key_file = key_file
        if not key_file.exists():
            if not create:
                raise KeyFileError(f"the key file {key_file} does not exist")
            _write_private(key_file, secrets.token_bytes(32))
        try:
            mode = key_file.stat().st_mode & 0o777
            if mode & 0o077:
                os.chmod(key_file, 0o600)
            key = key_file.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"the key file {key_file} cannot be read ({exc.strerror or exc})") from None
        if len(key) != 32:
            raise KeyFileError(f"the key file {key_file} must hold exactly 32 bytes (it holds {len(key)})")
        self._aead = AESGCM(key)
        self.check_value = _check_value(key)
        self.new_check: Path | None = None  # the check file this start wrote (see IdentityStore.bootstrap)

    @classmethod
    def for_data_dir(cls, key_file: Path, data_dir: Path, *, first_start: bool) -> SecretBox:
        """The box for a server's data directory, refusing a missing or foreign key file (see the module
        docstring). ``first_start``: the data directory holds no data yet (no database)."""
        check = data_dir / CHECK_FILE
        has_check = check.exists()
        if not key_file.exists() and (has_check or not first_start):
            raise KeyFileError(
                f"the key file {key_file} is missing, but {data_dir} holds secrets sealed under it: mount the "
                "volume that holds it, pass --key-file FILE, or restore it from a backup (refusing to start; "
                "a new key would make every stored secret unusable)"
            )
        box = cls(key_file, create=True)
        if has_check:
            if not hmac.compare_digest(check.read_text().strip().encode(), box.check_value.encode()):
                raise KeyFileError(
                    f"the key file {key_file} does not match the secrets sealed in {data_dir} ({CHECK_FILE}): "
                    "pass --key-file with the key this data directory was created with, or restore it "
                    "(refusing to start)"
                )
        else:
            _write_private(check, (box.check_value + "\n").encode())
            box.new_check = check
        return box

    def mismatch(self) -> KeyFileError:
        """The error for a data directory from before ``secret.check`` whose sealed secrets do not open."""
        where = "the data directory"
        if self.new_check is not None:
            where = str(self.new_check.parent)
            self.new_check.unlink(missing_ok=True)  # the next start checks again
        return KeyFileError(
            f"the key file {self.key_file} does not open the secrets sealed in {where}: pass --key-file "
            "with the key this data directory was created with, or restore it (refusing to start)"
        )

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, token: str, *, context: str) -> str:
        """The secret; ``UnsealError`` when it does not open under this key (never another exception)."""
        try:
            raw = base64.b64decode(token, validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError, TypeError) as exc:
            raise UnsealError(f"sealed secret for {context!r} does not open: {type(exc).__name__}") from None
