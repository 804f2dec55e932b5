"""Passwords are stored as salted scrypt hashes only."""

from __future__ import annotations

from perimeterdb.auth import passwords


def test_hash_and_check() -> None:
    stored = passwords.hash_password("Tr0ub4dor&3")
    assert "Tr0ub4dor" not in stored and stored.startswith("scrypt$")
    assert passwords.check_password("Tr0ub4dor&3", stored)
    assert not passwords.check_password("Tr0ub4dor&4", stored)
    assert passwords.hash_password("Tr0ub4dor&3") != stored  # salted
