"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), as IAM virtual MFA devices use them.

IAM's virtual devices use HMAC-SHA1, 6 digits and a 30-second step; the seed is handed to the user as a
base32 string (``Base32StringSeed``) or an ``otpauth://`` QR code. Pure functions, no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time

STEP_SECONDS = 30
DIGITS = 6
SEED_BYTES = 40  # IAM seeds decode to 40 bytes (a 64-character base32 string)


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def seed_base32(seed: bytes) -> str:
    return base64.b32encode(seed).decode()


def hotp(seed: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 section 5.3: dynamic truncation of HMAC-SHA1(seed, counter)."""
    mac = hmac.new(seed, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def totp(seed: bytes, now: float | None = None) -> str:
    return hotp(seed, time_step(now))


def matching_step(seed: bytes, code: str, now: float | None = None, *, window: int = 1) -> int | None:
    """The time step whose code equals ``code`` within ``window`` steps of now, or ``None``.

    Callers remember the last accepted step and refuse a step at or before it, so a code works only once.
    """
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = time_step(now)
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(hotp(seed, step), code):
            return step
    return None


def otpauth_uri(seed: bytes, label: str, issuer: str = "perimeterdb") -> str:
    from urllib.parse import quote

    return (
        f"otpauth://totp/{quote(issuer)}:{quote(label)}?secret={seed_base32(seed)}"
        f"&issuer={quote(issuer)}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
    )
