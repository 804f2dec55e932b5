"""Sample a running server with py-spy while wrk loads it, and sum the samples by function.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;... count``), one line per distinct
stack, with a leading thread frame (``--threads``). A function's *self* share counts the samples where it is
the leaf; its *inclusive* share counts the samples where it is anywhere on the stack (once per sample).
Shares are of all samples of all threads, so the event loop thread and the SQLite writer thread compare.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from common import PEERS_VENV, ROOT

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass
class Profile:
    samples: int = 0
    by_thread: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    by_area: Counter[str] = field(default_factory=Counter)  # self time by package area
    idle: int = 0  # samples dropped as waits (see idle_leaves)
    error: str | None = None

    def share(self, counter: Counter[str], key: str) -> float:
        return 100.0 * counter[key] / self.samples if self.samples else 0.0


def _short(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})", path


def _area(path: str) -> str:
    if path.startswith("perimeterdb/"):
        parts = path.split("/")
        return "/".join(parts[:2]) if len(parts) > 2 else path
    if not path:
        return "native/other"
    return path.split("/", 1)[0]


_IDLE_WAITS = ("Condition.wait (threading.py", "Event.wait (threading.py")


def idle_leaves() -> set[str]:
    """Leaf frames that are waits, not work: the SQLite writer thread blocked on its empty queue.

    py-spy does not see a thread blocked in ``SimpleQueue.get()`` as idle, so without this the writer
    thread would look busy whenever it waits for the next write. (The checkpoint thread's sleep between
    passes, an ``Event.wait``, is recognised in ``parse`` by ``_IDLE_WAITS``.)
    """
    source = ROOT / "perimeterdb" / "storage" / "sqlite.py"
    leaves = set()
    try:
        for number, text in enumerate(source.read_text().splitlines(), start=1):
            if "self._queue.get()" in text:
                leaves.add(f"SQLiteEngine._writer_loop (perimeterdb/storage/sqlite.py:{number})")
    except OSError:
        pass
    return leaves


def parse(text: str, idle: set[str] | None = None) -> Profile:
    prof = Profile()
    idle = idle if idle is not None else idle_leaves()
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        stack, count = m.group(1), int(m.group(2))
        frames = stack.split(";")
        leaf_frame = frames[-1].strip() if frames else ""
        if leaf_frame in idle or (
            leaf_frame.startswith(_IDLE_WAITS) and any("_checkpoint_loop" in f for f in frames)
        ):
            prof.idle += count
            continue
        process = ""
        while frames and frames[0].startswith("process"):  # --subprocesses: "process P:cmd;process C:cmd;..."
            process = frames[0].split(":", 1)[0] + " "
            frames = frames[1:]
        thread = process + frames[0] if frames and frames[0].startswith("thread") else "?"
        if thread != "?":
            frames = frames[1:]
        prof.samples += count
        prof.by_thread[re.sub(r"0x[0-9a-f]+", "", thread).strip()] += count
        if not frames:
            continue
        named = [_short(f) for f in frames]
        leaf, leaf_path = named[-1]
        prof.self_time[leaf] += count
        prof.by_area[_area(leaf_path)] += count
        for name in {n for n, _ in named}:
            prof.inclusive[name] += count
    return prof


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> Profile:
    """py-spy for ``seconds`` on ``pid`` (run it while the load runs)."""
    spy = PEERS_VENV / "bin" / "py-spy"
    if not spy.exists():
        return Profile(error="py-spy is not installed in bench/.venv-peers")
    cmd = [
        str(spy),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--threads",
        "--subprocesses",  # serve --workers N: the workers are the supervisor's children
        "--output",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not out.exists():
        return Profile(error=f"py-spy failed: {done.stderr[-400:]}")
    return parse(out.read_text())


def record_during(pid: int, seconds: float, out: Path, load: threading.Thread) -> Profile:
    """Start ``load`` (a thread running wrk), sample while it runs, then wait for it."""
    load.start()
    try:
        return record(pid, seconds, out)
    finally:
        load.join(timeout=seconds + 120)
