#!/usr/bin/env python3
"""Quickstart runner: needs only Python 3.11+. It makes ./.venv, installs perimeterdb into it, then

python3 dev.py serve [perimeterdb serve options]   starts the server (127.0.0.1:8000, ./perimeterdb-data)
python3 dev.py test [pytest options]               installs the test tools and runs the whole suite
python3 dev.py COMMAND [options]                   any other perimeterdb command (simulate, world, audit, ...)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv(extra: str) -> None:
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Reinstall only when the project's dependencies changed.
    stamp = VENV / f".installed-{extra or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extra}]" if extra else "."
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", target],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(digest)


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    rest = sys.argv[2:]
    if command == "serve":
        ensure_venv("")
        os.execv(str(BIN / "perimeterdb"), [str(BIN / "perimeterdb"), "serve", *rest])
    if command == "test":
        ensure_venv("test")
        result = subprocess.run([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT)
        return result.returncode
    if command in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    # Anything else is a perimeterdb command: run it from the venv, so that it needs no install on PATH.
    ensure_venv("")
    os.execv(str(BIN / "perimeterdb"), [str(BIN / "perimeterdb"), command, *rest])


if __name__ == "__main__":
    sys.exit(main())
