"""How much tampering ``perimeterdb audit verify`` detects: random single-byte changes and the other edits.

    .venv/bin/python soak/audit_tamper.py [--records 3000] [--trials 2000] [--seed 1] [--file-bytes 65536]

Writes a sealed audit log (``AuditLog``: realistic CloudTrail-shaped records of two writers, several files
each, closed so that every record is under a signed digest), then, one trial at a time, changes it and
runs the verifier (``audit.chain.verify_directory``, what ``audit verify`` runs), and restores it:

- ``byte``: one byte of a random log or digest file, at a random offset, replaced by a different value;
- ``delete-line``, ``swap-lines``, ``truncate`` (a random cut, at a line end or not), ``delete-file`` (a log
  file or a digest), ``duplicate-line``.

Prints, for each kind, "detected X of N (P %)". ``tests/audit/test_tamper_soak.py`` runs it small in CI.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perimeterdb.audit import chain  # noqa: E402
from perimeterdb.audit.log import AuditLog  # noqa: E402

KINDS = ("byte", "delete-line", "swap-lines", "duplicate-line", "truncate", "delete-file")


def write_log(directory: Path, records: int, file_bytes: int, seed: int) -> AuditLog:
    """Two writers (two server runs), ``records`` records in all; returns the last log (for its key)."""
    rng = random.Random(seed)
    log = None
    for run in range(2):
        log = AuditLog(directory, max_bytes=file_bytes, digest_interval=3600)
        for i in range(records // 2):
            log.write(
                {
                    "eventVersion": "1.08",
                    "eventTime": f"2026-01-0{run + 1}T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
                    "eventSource": "dynamodb.amazonaws.com",
                    "eventName": rng.choice(["GetItem", "PutItem", "Query"]),
                    "awsRegion": "us-east-1",
                    "sourceIPAddress": f"10.77.1.{rng.randrange(2, 250)}",
                    "userAgent": "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 lang/python#3.11.9",
                    "userIdentity": {
                        "type": "IAMUser",
                        "arn": f"arn:aws:iam::222222222222:user/u{i % 7}",
                        "accessKeyId": f"AKIA{i % 7:016d}",
                    },
                    "requestParameters": {"tableName": "orders", "key": {"pk": {"S": f"customer#{i:05d}"}}},
                    "requestID": f"REQ{run}{i:08d}",
                    "additionalEventData": {
                        "decisions": [{"action": "dynamodb:GetItem", "decision": "Allow"}]
                    },
                }
            )
        log.close()
    assert log is not None
    return log


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def tamper(kind: str, directory: Path, rng: random.Random) -> Callable[[], None]:
    """Apply one edit of ``kind``; return the function that undoes it."""
    logs = sorted(p for p in directory.iterdir() if chain.LOG_FILE.match(p.name))
    digests = sorted((directory / chain.DIGEST_DIR).iterdir())
    if kind == "delete-file":
        victim = rng.choice(logs + digests)
    elif kind == "byte":
        # Log files in proportion to their size, digests as often as a log file: both are attacked.
        victim = rng.choice(logs + digests)
    else:
        victim = rng.choice([p for p in logs if len(_lines(p.read_bytes())) >= 2])
    original = victim.read_bytes()

    def undo() -> None:
        victim.write_bytes(original)

    if kind == "delete-file":
        victim.unlink()
        return undo
    data = bytearray(original)
    lines = _lines(original)
    if kind == "byte":
        at = rng.randrange(len(data))
        data[at] = (data[at] + rng.randrange(1, 256)) % 256
        new = bytes(data)
    elif kind == "delete-line":
        del lines[rng.randrange(len(lines))]
        new = b"".join(lines)
    elif kind == "swap-lines":
        i = rng.randrange(len(lines) - 1)
        j = rng.randrange(i + 1, len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        new = b"".join(lines)
    elif kind == "duplicate-line":
        i = rng.randrange(len(lines))
        lines.insert(i + 1, lines[i])
        new = b"".join(lines)
    elif kind == "truncate":
        new = original[: rng.randrange(len(original))]
    else:
        raise ValueError(kind)
    victim.write_bytes(new)
    return undo


def run(
    records: int, trials: int, seed: int, file_bytes: int, kinds: tuple[str, ...] = KINDS
) -> dict[str, tuple[int, int]]:
    """{kind: (detected, tried)}."""
    rng = random.Random(seed)
    out: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="audit-tamper-") as tmp:
        directory = Path(tmp)
        log = write_log(directory, records, file_bytes, seed)
        key = log._key.public_key()
        clean = chain.verify_directory(directory, key)
        assert clean.ok and clean.records == records // 2 * 2, clean.problems[:3]
        for n in range(trials):
            kind = kinds[n % len(kinds)] if kinds != ("byte",) else "byte"
            undo = tamper(kind, directory, rng)
            try:
                detected = not chain.verify_directory(directory, key).ok
            finally:
                undo()
            hit, tried = out.get(kind, (0, 0))
            out[kind] = (hit + int(detected), tried + 1)
        assert chain.verify_directory(directory, key).ok, "every edit was undone"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument(
        "--trials", type=int, default=2000, help="single-byte changes (and as many of each other edit / 5)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--file-bytes", type=int, default=64 * 1024)
    args = parser.parse_args()
    start = time.perf_counter()
    results = run(args.records, args.trials, args.seed, args.file_bytes, ("byte",))
    results.update(
        run(
            args.records,
            max(len(KINDS), args.trials // 5 * (len(KINDS) - 1)),
            args.seed + 1,
            args.file_bytes,
            KINDS[1:],
        )
    )
    for kind, (hit, tried) in results.items():
        print(f"{kind:15s} detected {hit} of {tried} ({100.0 * hit / tried:.1f} %)")
    print(f"({args.records} records per log, seed {args.seed}, {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
