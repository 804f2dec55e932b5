"""soak/audit_tamper.py, small: every random single-byte change and every other edit is detected."""

from __future__ import annotations

from soak import audit_tamper


def test_every_single_byte_change_is_detected() -> None:
    results = audit_tamper.run(records=200, trials=60, seed=7, file_bytes=8 * 1024, kinds=("byte",))
    assert results == {"byte": (60, 60)}


def test_every_line_and_file_edit_is_detected() -> None:
    kinds = audit_tamper.KINDS[1:]
    results = audit_tamper.run(records=200, trials=5 * len(kinds), seed=8, file_bytes=8 * 1024, kinds=kinds)
    assert results == {kind: (5, 5) for kind in kinds}
