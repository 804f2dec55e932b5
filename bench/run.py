#!/usr/bin/env python3
"""perimeterdb benchmarks: every system, every workload, micro-benchmarks, scaling and a profile, in one run.

    python3 bench/run.py            the full run (about 10 minutes on 2 cores), writes bench/RESULTS.md
    python3 bench/run.py --quick    a short smoke run (about 2 minutes), writes bench/RESULTS-quick.md

It installs what it needs when missing (wrk from Debian, moto[server] and py-spy in bench/.venv-peers,
dynalite under bench/node_modules), starts every system on 127.0.0.1, and stops them at the end. All
load loops are bounded in time (wrk -d, boto3 deadlines) and in count (boto3 call budgets).
See bench/README.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_VENV_PYTHON = _ROOT / ".venv" / "bin" / "python"


def _reexec_in_project_venv() -> None:
    """Run under the project's virtualenv (perimeterdb, boto3); build it with dev.py when missing."""
    if Path(sys.prefix).resolve() == (_ROOT / ".venv").resolve():
        return
    if not _VENV_PYTHON.exists():
        sys.path.insert(0, str(_ROOT))
        import dev

        dev.ensure_venv("test")
    os.execv(str(_VENV_PYTHON), [str(_VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _reexec_in_project_venv()

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import boto3_driver  # noqa: E402
import micro  # noqa: E402
import profiling  # noqa: E402
import report  # noqa: E402
import scaling  # noqa: E402
import world_setup  # noqa: E402
import wrk_driver  # noqa: E402
from authz_setup import configure, world_file_support  # noqa: E402
from common import BENCH, ensure_dynalite, ensure_peers_venv, ensure_wrk, log, machine_info, rss_mib  # noqa: E402
from presign import send_once, sign_all, write_request_file  # noqa: E402
from systems import System, seed, start_dynalite, start_moto, start_perimeterdb, start_raw_asgi  # noqa: E402
from workloads import WORKLOADS, Workload, bodies  # noqa: E402

AUTHZ = "perimeterdb-authz"
ADMIN = "perimeterdb-admin"


@dataclass
class Plan:
    quick: bool
    seconds: float
    warmup: float
    connections: int
    boto_seconds: float
    boto_processes: int
    micro_scale: float
    scale_sizes: list[int]
    scale_budget: float
    scale_seconds: float
    profile_seconds: float
    half_load_seconds: float
    workloads: list[str] = field(default_factory=list)
    workers: int = 2


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        plan = Plan(True, 2, 0.5, 16, 2, 2, 0.1, [10_000], 30, 1.5, 3, 2)
    else:
        plan = Plan(False, 5, 1, 16, 5, 2, 1.0, [10_000, 100_000, 1_000_000], 240, 4, 6, 5)
    if args.seconds:
        plan.seconds = args.seconds
    plan.workers = max(1, args.workers)
    if args.scale_sizes:
        plan.scale_sizes = [int(x) for x in args.scale_sizes.split(",")]
    plan.workloads = [
        w.name for w in WORKLOADS if not args.workloads or w.operation in args.workloads.split(",")
    ]
    return plan


# --- one measurement ---------------------------------------------------------------------------------------


def measure(
    system: System,
    workload: Workload,
    plan: Plan,
    work: Path,
    *,
    template: System | None = None,
    rate: float | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """Sign the workload's requests for ``system``, check one, replay them with wrk; a dict for the report."""
    source = template or system
    raw = sign_all(system.host, workload.operation, bodies(workload), source.creds)
    path = work / f"{system.name}-{workload.operation}.bin"
    write_request_file(path, raw)
    if template is None:
        status, body = send_once(system.port, raw[0])
        if status != 200:
            return {"skipped": f"HTTP {status}: {body[:200].decode(errors='replace')}"}
    try:
        if rate:
            result = wrk_driver.run_at_rate(
                system.port,
                path,
                target_rps=rate,
                seconds=seconds or plan.half_load_seconds,
                server_pid=system.process.pid,
            )
        else:
            wrk_driver.run(system.port, path, seconds=plan.warmup, connections=plan.connections)
            result = wrk_driver.run(
                system.port,
                path,
                seconds=seconds or plan.seconds,
                connections=plan.connections,
                server_pid=system.process.pid,
            )
    except Exception as exc:
        return {"skipped": f"wrk failed: {exc}"}
    out: dict[str, Any] = result.as_dict()
    out["items_per_s"] = result.rps * workload.items_per_request
    if result.error_share > 0.01:
        out["warning"] = f"{result.errors} of {result.requests} requests failed"
    return out


# --- the run ------------------------------------------------------------------------------------------------


def start_authz(work: Path, notes: dict[str, list[str]], workers: int) -> System:
    """From the bench world file when the build supports it; else plain, configured through the APIs."""
    label = "perimeterdb, authorization fully on"
    missing = world_file_support(need_example=False)
    if missing is None:
        try:
            system, key = world_setup.start(work, AUTHZ, label, _workers_args(workers))
            system.world_key = key
            return system
        except Exception as exc:
            notes.setdefault(AUTHZ, []).append(
                f"starting from the bench world file failed: {str(exc)[-300:]}"
            )
            shutil.rmtree(work / AUTHZ, ignore_errors=True)
    return start_perimeterdb(work, AUTHZ, label, _workers_args(workers))


def _workers_args(workers: int) -> list[str]:
    return ["--workers", str(workers)] if workers > 1 else []


def start_systems(
    work: Path, notes: dict[str, list[str]], only: set[str] | None, workers: int
) -> dict[str, System]:
    """perimeterdb (both configurations) and the raw ASGI ceiling run ``workers`` processes each: every
    core, and the same count for the ceiling so that the ratio compares like with like."""
    systems: dict[str, System] = {}
    starters = (
        (AUTHZ, lambda: start_authz(work, notes, workers)),
        (
            ADMIN,
            lambda: start_perimeterdb(work, ADMIN, "perimeterdb, bootstrap admin", _workers_args(workers)),
        ),
        ("moto", lambda: start_moto(work)),
        ("dynalite", lambda: start_dynalite(work)),
        ("raw-asgi", lambda: start_raw_asgi(work, workers)),
    )
    for name, start in starters:
        if only and name not in only:
            continue
        try:
            systems[name] = start()
        except Exception as exc:
            notes.setdefault(name, []).append(f"could not start: {exc}")
            log(f"{name} could not start: {exc}")
    return systems


def prepare(systems: dict[str, System], notes: dict[str, list[str]]) -> dict[str, Any]:
    authz_info: dict[str, Any] = {}
    for name, system in list(systems.items()):
        if name == "raw-asgi":
            continue
        try:
            if name == AUTHZ:
                config = None
                if system.world_key:
                    try:
                        config = world_setup.configure(system, system.world_key)
                    except Exception as exc:
                        notes.setdefault(name, []).append(
                            f"the bench world did not work ({type(exc).__name__}: {str(exc)[:300]}); "
                            "configured through the APIs on the public listener instead"
                        )
                        system.port = system.public_port or system.port
                if config is None:
                    config = configure(system)
                system.creds = config.creds
                authz_info = {"on": config.on, "missing": config.missing, "account": config.account}
            else:
                seed(system)
        except Exception as exc:
            notes.setdefault(name, []).append(f"setup failed: {type(exc).__name__}: {exc}")
            log(f"{name}: setup failed: {exc}")
            system.stop()
            del systems[name]
    return authz_info


def run_throughput(systems: dict[str, System], plan: Plan, work: Path) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for workload in WORKLOADS:
        if workload.name not in plan.workloads:
            continue
        row: dict[str, Any] = {}
        for name, system in systems.items():
            if name == "raw-asgi":
                if workload.operation not in ("GetItem", "PutItem"):
                    continue
                template = systems.get(ADMIN) or systems.get(AUTHZ)
                if template is None:
                    continue
                row[name] = measure(system, workload, plan, work, template=template)
            else:
                row[name] = measure(system, workload, plan, work)
            got = row[name]
            log(
                f"{workload.name:28s} {name:18s} "
                + (
                    f"{got['rps']:8.0f} req/s p99 {got['p99_ms']:.1f} ms"
                    if "rps" in got
                    else got["skipped"][:100]
                )
            )
        table[workload.name] = row
    return table


def run_half_load(
    systems: dict[str, System], plan: Plan, work: Path, saturated: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for workload in WORKLOADS:
        if workload.name not in plan.workloads:
            continue
        row: dict[str, Any] = {}
        for name in (AUTHZ, ADMIN):
            if name not in systems:
                continue
            if name == ADMIN and workload.operation not in ("GetItem", "PutItem"):
                continue
            sat = saturated.get(workload.name, {}).get(name, {})
            if "rps" not in sat:
                continue
            target = sat["rps"] / 2
            got = measure(systems[name], workload, plan, work, rate=target)
            got["target_rps"] = target
            row[name] = got
            if "rps" in got:
                log(
                    f"half load {workload.name:28s} {name:18s} {got['rps']:7.0f}/{target:.0f} req/s p99 {got['p99_ms']:.2f} ms"
                )
        raw = systems.get("raw-asgi")
        template = systems.get(AUTHZ)
        if raw and template and workload.operation in ("GetItem", "PutItem") and "rps" in row.get(AUTHZ, {}):
            # The same paced load on the empty handler: the p99 this shared machine gives anything.
            got = measure(raw, workload, plan, work, template=template, rate=row[AUTHZ]["target_rps"])
            got["target_rps"] = row[AUTHZ]["target_rps"]
            row["raw-asgi"] = got
        out[workload.name] = row
    return out


def run_two_processes(systems: dict[str, System], plan: Plan, work: Path) -> dict[str, Any]:
    """GetItem from one ``serve`` process on the admin system's data directory, against the admin system
    itself (``--workers N``, N = plan.workers), and the same for the raw ASGI ceiling.

    Each pair is loaded by the same wrk (same connections), so the ratio is what the extra workers buy on
    this machine, where wrk itself also needs CPU.
    """
    admin = systems.get(ADMIN)
    if admin is None or admin.data_dir is None or plan.workers <= 1:
        return {}
    workload = next(w for w in WORKLOADS if w.operation == "GetItem")
    single = raw_single = None
    try:
        single = start_perimeterdb(work, "perimeterdb-admin-1p", "one process", [], data_dir=admin.data_dir)
        single.creds = admin.creds
        files = []
        for system in (single, admin):
            path = work / f"two-{system.port}.bin"
            write_request_file(path, sign_all(system.host, "GetItem", bodies(workload), admin.creds))
            files.append(path)
        one = wrk_driver.run(single.port, files[0], seconds=plan.seconds, connections=plan.connections)
        many = wrk_driver.run(admin.port, files[1], seconds=plan.seconds, connections=plan.connections)
        log(
            f"workers: {one.rps:.0f} req/s with one process, {many.rps:.0f} req/s with --workers {plan.workers}"
        )
        out: dict[str, Any] = {
            "workers": plan.workers,
            "one_process_rps": one.rps,
            "two_processes_rps": many.rps,
            "errors": one.errors + many.errors,
        }
        raw = systems.get("raw-asgi")
        if raw is not None:
            raw_single = start_raw_asgi(work / "raw-1p", 1)
            path = work / "two-raw.bin"
            write_request_file(path, sign_all(raw.host, "GetItem", bodies(workload), admin.creds))
            raw_one = wrk_driver.run(
                raw_single.port, path, seconds=plan.seconds, connections=plan.connections
            )
            raw_many = wrk_driver.run(raw.port, path, seconds=plan.seconds, connections=plan.connections)
            out["raw_one_process_rps"] = raw_one.rps
            out["raw_workers_rps"] = raw_many.rps
            log(f"raw ASGI: {raw_one.rps:.0f} req/s with one process, {raw_many.rps:.0f} with {plan.workers}")
        return out
    except Exception as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    finally:
        for system in (single, raw_single):
            if system is not None:
                system.stop()


def run_boto(systems: dict[str, System], plan: Plan) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for operation in ("GetItem", "PutItem"):
        row: dict[str, Any] = {}
        for name, system in systems.items():
            if name == "raw-asgi":
                continue
            try:
                r = boto3_driver.run(
                    system.endpoint,
                    system.creds,
                    operation,
                    processes=plan.boto_processes,
                    seconds=plan.boto_seconds,
                )
                row[name] = {
                    "calls_per_s": r.rate,
                    "p50_ms": r.p50_ms,
                    "p99_ms": r.p99_ms,
                    "errors": r.errors,
                    "processes": r.processes,
                }
                log(f"boto3 {operation} {name:18s} {r.rate:7.0f} calls/s")
            except Exception as exc:
                row[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
        out[operation] = row
    return out


def run_profiles(system: System, plan: Plan, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by_name: dict[str, Workload] = {}
    for w in WORKLOADS:
        by_name.setdefault(w.operation, w)  # Query: the 10-item one
    for operation in ("GetItem", "PutItem", "Query"):
        workload = by_name[operation]
        if workload.name not in plan.workloads:
            continue
        path = work / f"profile-{operation}.bin"
        write_request_file(path, sign_all(system.host, operation, bodies(workload), system.creds))
        holder: dict[str, Any] = {}

        def load(path: Path = path, holder: dict[str, Any] = holder) -> None:
            holder["wrk"] = wrk_driver.run(
                system.port, path, seconds=plan.profile_seconds + 2, connections=plan.connections
            )

        prof = profiling.record_during(
            system.process.pid,
            plan.profile_seconds,
            work / f"profile-{operation}.txt",
            threading.Thread(target=load),
        )
        if (work / f"profile-{operation}.txt").exists():
            shutil.copy(work / f"profile-{operation}.txt", BENCH / "profiles" / f"{operation}.collapsed")
        out[workload.name] = {
            "error": prof.error,
            "samples": prof.samples,
            "idle_dropped": prof.idle,
            "threads": dict(prof.by_thread.most_common()),
            "self": [(k, prof.share(prof.self_time, k)) for k, _ in prof.self_time.most_common(25)],
            "inclusive": [(k, prof.share(prof.inclusive, k)) for k, _ in prof.inclusive.most_common(60)],
            "areas": [(k, prof.share(prof.by_area, k)) for k, _ in prof.by_area.most_common(20)],
            "rps_while_profiled": holder["wrk"].rps if "wrk" in holder else None,
        }
        log(f"profiled {operation}: {prof.samples} samples {prof.error or ''}")
    return out


def run_all(
    args: argparse.Namespace,
    plan: Plan,
    skip: set[str],
    work: Path,
    results: dict[str, Any],
    notes: dict[str, list[str]],
    started: float,
) -> None:
    only = set(args.systems.split(",")) if args.systems else None
    systems = start_systems(work, notes, only, plan.workers)
    try:
        results["authz"] = prepare(systems, notes)
        results["systems"] = {n: s.label for n, s in systems.items()}
        if "throughput" not in skip:
            results["throughput"] = run_throughput(systems, plan, work)
            if "halfload" not in skip:
                results["half_load"] = run_half_load(systems, plan, work, results["throughput"])
        if "twoproc" not in skip:
            results["two_processes"] = run_two_processes(systems, plan, work)
        if "profile" not in skip and AUTHZ in systems:
            results["profile"] = run_profiles(systems[AUTHZ], plan, work)
        if "boto3" not in skip:
            results["boto3"] = run_boto(systems, plan)
        results["rss_after_load_mib"] = {
            n: rss_mib(s.process.pid) for n, s in systems.items() if s.process.alive()
        }
    finally:
        for system in systems.values():
            system.stop()
    if "micro" not in skip:
        log("micro-benchmarks")
        results["micro"] = [asdict(m) for m in micro.run_all(plan.micro_scale)]
    if "scaling" not in skip:
        try:
            rep = scaling.run(
                work, plan.scale_sizes, load_budget=plan.scale_budget, seconds=plan.scale_seconds
            )
            results["scaling"] = {"steps": [asdict(s) for s in rep.steps], "notes": rep.notes}
        except Exception as exc:
            results["scaling"] = {"steps": [], "notes": [f"scaling failed: {type(exc).__name__}: {exc}"]}
    results["elapsed_s"] = time.time() - started
    results["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    output = (
        Path(args.output) if args.output else BENCH / ("RESULTS-quick.md" if plan.quick else "RESULTS.md")
    )
    output.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    output.write_text(report.render(results))
    log(f"wrote {output} in {results['elapsed_s']:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about 2 minutes)")
    parser.add_argument("--seconds", type=float, help="seconds per measured wrk run (default 5, quick 2)")
    parser.add_argument(
        "--systems",
        help="comma-separated subset of: " + ",".join([AUTHZ, ADMIN, "moto", "dynalite", "raw-asgi"]),
    )
    parser.add_argument("--workloads", help="comma-separated operations, e.g. GetItem,Query")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes for perimeterdb and the raw ASGI ceiling (default: one per core)",
    )
    parser.add_argument("--scale-sizes", help="comma-separated item counts (default 10000,100000,1000000)")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to skip: throughput,halfload,twoproc,boto3,micro,scaling,profile",
    )
    parser.add_argument(
        "--output", help="the report to write (default bench/RESULTS.md, quick: bench/RESULTS-quick.md)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (data, logs, request files)"
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="only re-render a report from a run's .json (e.g. after editing bench/analysis.md)",
    )
    args = parser.parse_args()
    if args.render:
        source = Path(args.render)
        source.with_suffix(".md").write_text(report.render(json.loads(source.read_text())))
        log(f"wrote {source.with_suffix('.md')}")
        return 0
    plan = make_plan(args)
    skip = set(filter(None, args.skip.split(",")))
    started = time.time()
    notes: dict[str, list[str]] = {}
    for problem in (ensure_wrk(), ensure_peers_venv(), ensure_dynalite()):
        if problem:
            notes.setdefault("install", []).append(problem)
            log(problem)
    (BENCH / "profiles").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="perimeterdb-bench-"))
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "machine": asdict(machine_info()),
        "notes": notes,
        "argv": sys.argv[1:],
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    try:
        run_all(args, plan, skip, work, results, notes, started)
    finally:
        if args.keep:
            log(f"scratch kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
