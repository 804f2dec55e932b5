"""The long fuzzing run: every atheris target of fuzz/run.py in turn, sharing ``--minutes`` between them.

    .venv/bin/python soak/fuzz_all.py --minutes 30 [--targets expressions,sigv4] [--jobs 1]

Each target keeps its corpus in fuzz/corpus/TARGET (not committed), so later runs start where earlier ones
stopped. Prints one line per target and a total: executions, findings (contract breaks, written to
fuzz/findings/) and crashes (a target process that died on its own). Exit status 1 when anything was found.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = [
    "expressions",
    "expressions-raw",
    "values",
    "requests",
    "json-raw",
    "sigv4",
    "sigv4-raw",
    "policies",
    "policies-raw",
    "world",
    "world-raw",
]
_DONE = re.compile(r"^Done (\d+) runs in", re.MULTILINE)


def run_target(target: str, seconds: int) -> tuple[int, list[str], bool]:
    corpus = ROOT / "fuzz" / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-m",
        "fuzz.run",
        target,
        str(corpus),
        f"-max_total_time={seconds}",
        "-rss_limit_mb=3072",
        "-timeout=30",
        "-print_final_stats=1",
        f"-artifact_prefix={ROOT / 'fuzz' / 'findings'}/{target}-",
    ]
    (ROOT / "fuzz" / "findings").mkdir(exist_ok=True)
    proc = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=seconds + 300
    )
    output = proc.stdout + proc.stderr
    match = _DONE.search(output)
    execs = int(match.group(1)) if match else _stat(output, "stat::number_of_executed_units")
    findings = [line for line in output.splitlines() if line.startswith("FINDING ")]
    crashed = match is None
    if crashed:
        (ROOT / "fuzz" / "findings" / f"{target}-crash-{int(time.time())}.log").write_text(output[-20000:])
    return execs, findings, crashed


def _stat(output: str, name: str) -> int:
    match = re.search(rf"^{re.escape(name)}:\s+(\d+)", output, re.MULTILINE)
    return int(match.group(1)) if match else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, required=True, help="total time, shared between the targets")
    parser.add_argument("--targets", default=",".join(TARGETS))
    args = parser.parse_args()
    chosen = [t for t in args.targets.split(",") if t]
    unknown = set(chosen) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    seconds = max(5, int(args.minutes * 60 / len(chosen)))
    total_execs = 0
    total_findings = 0
    crashes = 0
    for target in chosen:
        execs, findings, crashed = run_target(target, seconds)
        total_execs += execs
        total_findings += len(findings)
        crashes += crashed
        print(
            f"{target:16} {seconds:5d} s  execs={execs:9d}  findings={len(findings)}"
            + ("  CRASHED (see fuzz/findings/)" if crashed else ""),
            flush=True,
        )
        for line in findings:
            print("    " + line, flush=True)
    print(f"TOTAL execs={total_execs} findings={total_findings} crashes={crashes} targets={len(chosen)}")
    return 1 if total_findings or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
