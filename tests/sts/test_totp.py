"""TOTP against RFC 6238 appendix B (SHA-1 seed "12345678901234567890", 8 digits)."""

from __future__ import annotations

from perimeterdb.auth import totp

SEED = b"12345678901234567890"


def test_rfc6238_vectors() -> None:
    for when, code in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ]:
        assert totp.hotp(SEED, when // 30, digits=8) == code


def test_matching_step_window() -> None:
    now = 1_700_000_000.0
    code = totp.totp(SEED, now - 30)
    assert totp.matching_step(SEED, code, now) == totp.time_step(now) - 1
    assert totp.matching_step(SEED, totp.totp(SEED, now - 120), now) is None
    assert totp.matching_step(SEED, "12345", now) is None
