"""Encryption of stored secrets (secret access keys) under a key file kept apart from the data.

A copy of the data directory alone must not let anyone sign as a user, so each secret is sealed with
AES-256-GCM under a 32-byte key read from a file of mode 0600. The key file defaults to a path beside the
data directory's database but can be put anywhere (``--key-file``), e.g. on a separate volume.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        mode = key_file.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(key_file, 0o600)
        key = key_file.read_bytes()
        if len(key) != 32:
            raise ValueError(f"key file {key_file} must hold exactly 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, token: str, *, context: str) -> str:
        raw = base64.b64decode(token)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
