"""Session credentials: the token is checked, expiry is enforced, secrets never show in reprs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from perimeterdb.errors import ApiError
from perimeterdb.sts.sessions import mint
from perimeterdb.world.identities import SESSIONS, IdentityStore
from tests.sts.conftest import run


def _mint(store: IdentityStore, duration: int = 900) -> object:
    principal = {
        "arn": "arn:aws:sts::111111111111:assumed-role/r/s",
        "principal_arn": "arn:aws:iam::111111111111:role/r",
        "account": "111111111111",
        "kind": "AssumedRole",
        "userid": "AROAX:s",
        "role_name": "r",
        "session_name": "s",
        "tags": [["k", "v"]],
    }
    now = datetime.now(UTC).timestamp()
    return run(
        mint(
            store, account="111111111111", kind="AssumeRole", principal=principal, duration=duration, now=now
        )
    )


def test_session_round_trip(store: IdentityStore) -> None:
    creds = _mint(store)
    record = run(store.credential(creds.access_key_id))  # type: ignore[attr-defined]
    assert record is not None
    assert record.token_matches(creds.session_token)  # type: ignore[attr-defined]
    assert not record.token_matches(creds.session_token[:-1] + "x")  # type: ignore[attr-defined]
    assert record.principal.kind == "AssumedRole" and record.principal.tags == (("k", "v"),)
    assert record.principal.token_issue_time is not None and record.principal.session_kind == "AssumeRole"
    assert creds.secret_access_key not in repr(creds) and creds.session_token not in repr(creds)  # type: ignore[attr-defined]


def test_stored_session_holds_no_clear_secrets(store: IdentityStore) -> None:
    creds = _mint(store)
    stored = run(store.get_global(SESSIONS, creds.access_key_id))  # type: ignore[attr-defined]
    text = repr(stored)
    assert creds.secret_access_key not in text and creds.session_token not in text  # type: ignore[attr-defined]


def test_expired_session_fails_verification(store: IdentityStore) -> None:
    from perimeterdb.auth import verify

    creds = _mint(store, duration=900)
    record = run(store.credential(creds.access_key_id))  # type: ignore[attr-defined]
    assert record is not None and record.expires_at is not None
    later = datetime.fromtimestamp(record.expires_at, UTC) + timedelta(seconds=1)
    claim = verify.SignatureClaim(
        verify.sigv4.CredentialScope(
            creds.access_key_id,
            later.strftime("%Y%m%d"),
            "us-east-1",
            "sts",  # type: ignore[attr-defined]
            "aws4_request",
        ),
        ("host",),
        "0" * 64,
        later.strftime("%Y%m%dT%H%M%SZ"),
        creds.session_token,
        False,  # type: ignore[attr-defined]
    )
    parts = verify.HttpRequestParts("POST", "/", [], {"host": ["x"]}, b"")
    with pytest.raises(ApiError) as exc:
        verify.verify(parts, claim, record, service="sts", now=later)
    assert exc.value.code == "ExpiredTokenException"
