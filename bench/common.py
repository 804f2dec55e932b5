"""Shared plumbing for the benchmark harness: paths, processes, ports, /proc readings and installers.

Nothing here measures anything; it finds or installs the tools (wrk, the peers' virtualenv, dynalite) and
starts and stops processes by their own pid (never by name).
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
PEERS_VENV = BENCH / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
NODE_MODULES = BENCH / "node_modules"
DYNALITE_CLI = NODE_MODULES / "dynalite" / "cli.js"
PEER_PACKAGES = ("moto[server]", "py-spy")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# The test support's port picker (below the ephemeral range), shared rather than written again.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests.support.server import free_port  # noqa: E402, F401 (re-exported to the harness)


def descendants(pid: int) -> list[int]:
    """The process and every live process below it (``serve --workers N`` forks its workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process, its threads and its live child processes."""
    total = 0
    for member in descendants(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its live child processes."""
    total = 0
    found = False
    for member in descendants(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
                found = True
    return total / 1024 if found else float("nan")


@dataclass(frozen=True)
class MachineInfo:
    cores: int
    cpu_model: str
    python: str
    kernel: str
    sqlite: str
    node: str
    wrk: str
    load_at_start: str


def machine_info() -> MachineInfo:
    import sqlite3

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = _version(["node", "--version"])
    wrk_text = _version(["wrk", "--version"])
    return MachineInfo(
        cores=os.cpu_count() or 0,
        cpu_model=model,
        python=platform.python_version(),
        kernel=platform.release(),
        sqlite=sqlite3.sqlite_version,
        node=node,
        wrk=wrk_text.split(" Copyright")[0],
        load_at_start=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "unknown"


# --- installers ------------------------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """wrk from Debian, installed once if missing. Returns a note when it cannot be had."""
    if shutil.which("wrk"):
        return None
    log("wrk is missing: apt-get update && apt-get install -y wrk")
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], check=True, timeout=300, capture_output=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"wrk could not be installed: {exc}"
    return None if shutil.which("wrk") else "wrk could not be installed"


def ensure_peers_venv() -> str | None:
    """moto_server and py-spy in bench/.venv-peers, so the project's venv stays clean."""
    if (PEERS_VENV / "bin" / "moto_server").exists() and (PEERS_VENV / "bin" / "py-spy").exists():
        return None
    log(f"creating {PEERS_VENV} with {', '.join(PEER_PACKAGES)}")
    try:
        if not PEERS_PYTHON.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True, timeout=300)
        subprocess.run(
            [str(PEERS_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_PACKAGES],
            check=True,
            timeout=600,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the peers' virtualenv could not be built: {exc}"
    return None


def ensure_dynalite() -> str | None:
    """dynalite from npm under bench/node_modules (bench/package.json pins it)."""
    if DYNALITE_CLI.exists():
        return None
    if not shutil.which("npm"):
        return "npm is missing, so dynalite is not measured"
    log("installing dynalite with npm under bench/node_modules")
    try:
        subprocess.run(
            ["npm", "install", "--prefix", str(BENCH), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
            timeout=600,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"dynalite could not be installed: {exc}"
    return None if DYNALITE_CLI.exists() else "dynalite did not install"


# --- processes -------------------------------------------------------------------------------------------


@dataclass
class Process:
    """A child process in a session of its own; stopped by its pid only."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(
            self.args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=self.cwd
        )
        out.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def wait_for_port(port: int, proc: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not open port {port}: {proc.tail()}")
