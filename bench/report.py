"""Render one run's results (the dict bench/run.py builds) as Markdown: bench/RESULTS.md."""

from __future__ import annotations

import math
from typing import Any

from common import BENCH

AUTHZ = "perimeterdb-authz"
ADMIN = "perimeterdb-admin"
ORDER = (AUTHZ, ADMIN, "moto", "dynalite", "raw-asgi")
SHORT = {
    AUTHZ: "pdb authz",
    ADMIN: "pdb admin",
    "moto": "moto",
    "dynalite": "dynalite",
    "raw-asgi": "raw ASGI",
}


def _num(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    r = a / b
    return f"{r:.2f}x" if r < 10 else f"{r:,.0f}x"


def _rps(row: dict[str, Any], name: str) -> float | None:
    cell = row.get(name) or {}
    return cell.get("rps")


def _cell(row: dict[str, Any], name: str) -> str:
    cell = row.get(name)
    if cell is None:
        return "-"
    if "skipped" in cell:
        return "skipped¹"
    text = _num(cell["rps"])
    return text + ("²" if "warning" in cell else "")


def _targets(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    tp = results.get("throughput", {})
    for op in ("GetItem", "PutItem"):
        row = tp.get(op, {})
        a, raw, moto = _rps(row, AUTHZ), _rps(row, "raw-asgi"), _rps(row, "moto")
        if a and raw:
            rows.append(
                (
                    f"{op} throughput (authz on) ≥ 50% of raw ASGI",
                    f"{a / raw:.0%}",
                    "yes" if a / raw >= 0.5 else "NO",
                    f"{a:,.0f} vs {raw:,.0f} req/s",
                )
            )
        if a and moto:
            rows.append(
                (
                    f"{op} throughput (authz on) ≥ 30x moto",
                    f"{a / moto:,.1f}x",
                    "yes" if a / moto >= 30 else "NO",
                    f"{a:,.0f} vs {moto:,.0f} req/s",
                )
            )
    row = tp.get("Query 10 items", {})
    a, moto = _rps(row, AUTHZ), _rps(row, "moto")
    if a and moto:
        rows.append(
            (
                "Query of 10 items (authz on) ≥ 300x moto",
                f"{a / moto:,.1f}x",
                "yes" if a / moto >= 300 else "NO",
                f"{a:,.0f} vs {moto:,.0f} req/s (moto's table: 2,000 items)",
            )
        )
    for name, row in results.get("half_load", {}).items():
        cell = row.get(AUTHZ) or {}
        if "p99_ms" in cell:
            rows.append(
                (
                    f"p99 ≤ 5 ms at half the saturating load: {name}",
                    f"{cell['p99_ms']:.2f} ms",
                    "yes" if cell["p99_ms"] <= 5 else "NO",
                    f"at {cell['rps']:,.0f} req/s (target {cell['target_rps']:,.0f})",
                )
            )
    for m in results.get("micro", []):
        if m["name"].startswith("policy decision") and "20 statements" in m["name"]:
            rows.append(
                (
                    "policy decision ≤ 20 µs (cached principal, 20 statements)",
                    f"{m['us']:.1f} µs",
                    "yes" if m["us"] <= 20 else "NO",
                    "bench/policy_decision.py",
                )
            )
    steps = (results.get("scaling") or {}).get("steps") or []
    if len(steps) >= 2:
        first, last = steps[0], steps[-1]
        growth = last["rss_mib"] / first["rss_mib"] - 1 if first["rss_mib"] else float("nan")
        rows.append(
            (
                f"memory flat (±10%) from {first['items']:,} to {last['items']:,} items",
                f"{growth:+.0%}",
                "yes" if abs(growth) <= 0.10 else "NO",
                f"RSS {first['rss_mib']:.0f} → {last['rss_mib']:.0f} MiB",
            )
        )
        bound = math.log(last["items"]) / math.log(first["items"])
        for kind in ("get", "query"):
            a, b = first[kind].get("p50_ms"), last[kind].get("p50_ms")
            if a and b:
                rows.append(
                    (
                        f"{'GetItem' if kind == 'get' else 'Query 10'} p50 grows ≤ log factor ({bound:.2f}x)",
                        f"{b / a:.2f}x",
                        "yes" if b / a <= bound else "NO",
                        f"{a:.2f} → {b:.2f} ms",
                    )
                )
    return rows


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    plan = results["plan"]
    out: list[str] = []
    w = out.append
    w("# perimeterdb benchmark results\n")
    w(
        f"Run {results.get('started')} in {results.get('elapsed_s', 0):.0f} s "
        f"({'quick smoke run' if plan['quick'] else 'full run'}).\n"
    )
    w("## Machine\n")
    w("| | |\n|---|---|")
    w(
        f"| cores | {m['cores']} (shared with other engineers' test suites: absolute figures vary ±30%, compare ratios) |"
    )
    w(f"| CPU | {m['cpu_model']} |")
    w(f"| Python | {m['python']} (SQLite {m['sqlite']}) |")
    w(f"| kernel | {m['kernel']} |")
    w(f"| Node | {m['node']} |")
    w(f"| wrk | {m['wrk']} |")
    w(f"| load average at start / end | {m['load_at_start']} / {results.get('load_at_end', '?')} |\n")
    w("## Reproduce\n")
    w("```")
    w("python3 bench/run.py            # full run, writes bench/RESULTS.md (+ RESULTS.json, profiles/)")
    w("python3 bench/run.py --quick    # smoke run, writes bench/RESULTS-quick.md")
    if results.get("argv"):
        w(f"# this report: python3 bench/run.py {' '.join(results['argv'])}")
    w("```")
    w(
        f"wrk: `wrk -t1 -c{plan['connections']} -d{plan['seconds']:.0f}s -s bench/replay.lua` replaying pre-signed "
        f"requests (re-signed before every run), {plan['warmup']:.0f} s warm-up before each measured run; the "
        "latency-at-half-load runs pace 4 connections to half of that system's saturated rate.\n"
    )
    workers = plan.get("workers", 1)
    w(
        f"Server processes: perimeterdb runs `serve --workers {workers}` (both configurations) and the raw "
        f"ASGI ceiling runs {workers} processes on its socket, so that the ratios compare like with like; "
        "moto and dynalite are single processes by design. Server CPU figures add up all the processes.\n"
    )

    w("## Systems\n")
    for name in ORDER:
        if name in results.get("systems", {}):
            w(f"- **{SHORT[name]}**: {results['systems'][name]}")
    authz = results.get("authz") or {}
    if authz:
        w("\nAuthorization fully on — what was configured (checked at run time):\n")
        for item in authz.get("on", []):
            w(f"- on: {item}")
        for item in authz.get("missing", []):
            w(f"- **missing**: {item}")
    for name, items in (results.get("notes") or {}).items():
        for item in items:
            w(f"- note ({name}): {item}")
    w(
        "- moto_server: moto from bench/.venv-peers, in memory. dynalite: LevelDB store on disk (no fsync). "
        "perimeterdb: SQLite, durability=full (fsync per group commit).\n"
    )

    targets = _targets(results)
    if targets:
        w("## Targets (ratios from this run)\n")
        w("| target | measured | met | detail |\n|---|---|---|---|")
        for t in targets:
            w(f"| {t[0]} | {t[1]} | {t[2]} | {t[3]} |")
        w("")

    tp = results.get("throughput") or {}
    if tp:
        names = [n for n in ORDER if n in results.get("systems", {})]
        w(f"## Throughput (req/s, wrk closed loop, {plan['connections']} connections, 1 KB items)\n")
        head = " | ".join(SHORT[n] for n in names)
        w(f"| workload | {head} | authz/raw | authz/moto | authz/dynalite | authz/admin |")
        w("|---|" + "---|" * (len(names) + 4))
        for workload, row in tp.items():
            cells = " | ".join(_cell(row, n) for n in names)
            a = _rps(row, AUTHZ)
            w(
                f"| {workload} | {cells} | {_ratio(a, _rps(row, 'raw-asgi'))} | {_ratio(a, _rps(row, 'moto'))} | "
                f"{_ratio(a, _rps(row, 'dynalite'))} | {_ratio(a, _rps(row, ADMIN))} |"
            )
        w(
            "\n¹ skipped: see below. ² more than 1% of requests failed. raw ASGI answers `{}` to the same "
            "GetItem/PutItem requests: the HTTP ceiling. BatchWriteItem writes 25 items per request and "
            "TransactWriteItems 4.\n"
        )
        skipped = [(wl, n, c["skipped"]) for wl, row in tp.items() for n, c in row.items() if "skipped" in c]
        for wl, n, why in skipped:
            w(f"- skipped: {wl} on {SHORT.get(n, n)}: `{why[:160]}`")
        warned = [(wl, n, c["warning"]) for wl, row in tp.items() for n, c in row.items() if "warning" in c]
        for wl, n, why in warned:
            w(f"- errors: {wl} on {SHORT.get(n, n)}: {why}")
        w("\n### Latency at saturation (p50 / p99 ms) and server CPU per request (µs)\n")
        w(f"| workload | {head} | CPU µs/req: " + " | ".join(SHORT[n] for n in names) + " |")
        w("|---|" + "---|" * (2 * len(names)))
        for workload, row in tp.items():
            lat = " | ".join(
                f"{row[n]['p50_ms']:.1f} / {row[n]['p99_ms']:.1f}" if "p50_ms" in row.get(n, {}) else "-"
                for n in names
            )
            cpu = " | ".join(_num(row.get(n, {}).get("server_cpu_us")) for n in names)
            w(f"| {workload} | {lat} | {cpu} |")
        w(
            "\nServer CPU per request is the server process's user+system time (all threads, from /proc) over the "
            "requests served; dynalite and moto are single processes too.\n"
        )

    hl = results.get("half_load") or {}
    if hl:
        w(
            "## Latency at half the saturating load (perimeterdb; raw ASGI at the same rate as the noise floor)\n"
        )
        w(
            "| workload | system | offered (target) req/s | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms |"
        )
        w("|---|---|---|---|---|---|---|---|")
        for workload, row in hl.items():
            for n, c in row.items():
                if "p99_ms" in c:
                    w(
                        f"| {workload} | {SHORT[n]} | {c['target_rps']:,.0f} | {c['rps']:,.0f} | {c['p50_ms']:.2f} | "
                        f"{c['p90_ms']:.2f} | {c['p99_ms']:.2f} | {c['p999_ms']:.2f} |"
                    )
        w("")

    two = results.get("two_processes") or {}
    if two:
        n = two.get("workers", 2)
        w(f"## One process against `serve --workers {n}` (GetItem, one data directory)\n")
        if "skipped" in two:
            w(f"- skipped: {two['skipped']}\n")
        else:
            w(f"| system | one process req/s | `--workers {n}` req/s (same wrk, same connections) | gain |")
            w("|---|---|---|---|")
            w(
                f"| pdb admin | {two['one_process_rps']:,.0f} | {two['two_processes_rps']:,.0f} | "
                f"{_ratio(two['two_processes_rps'], two['one_process_rps'])} |"
            )
            if "raw_one_process_rps" in two:
                w(
                    f"| raw ASGI | {two['raw_one_process_rps']:,.0f} | {two['raw_workers_rps']:,.0f} | "
                    f"{_ratio(two['raw_workers_rps'], two['raw_one_process_rps'])} |"
                )
                w(
                    f"\nWith one process each, GetItem as the bootstrap admin is "
                    f"{_pct(two['one_process_rps'], two['raw_one_process_rps'])} of the raw ASGI ceiling; "
                    f"with {n} each, {_pct(two['two_processes_rps'], two['raw_workers_rps'])}."
                )
            w(
                f"\nThe same data directory served by one process and by `--workers {n}` (processes sharing the "
                "listener and the storage, caches kept coherent by the shared generation). wrk needs CPU too, "
                "on the same cores. The throughput table above is measured with "
                f"`--workers {n}` for perimeterdb and {n} processes for the raw ASGI ceiling.\n"
            )

    boto = results.get("boto3") or {}
    if boto:
        procs = next(
            (c.get("processes") for row in boto.values() for c in row.values() if "processes" in c), "?"
        )
        w(f"## End to end with boto3 ({procs} client processes on the same 2 cores)\n")
        names = [n for n in ORDER if n != "raw-asgi" and n in results.get("systems", {})]
        w("| operation | " + " | ".join(f"{SHORT[n]} calls/s (p50/p99 ms)" for n in names) + " |")
        w("|---|" + "---|" * len(names))
        for op, row in boto.items():
            cells = []
            for n in names:
                c = row.get(n, {})
                cells.append(
                    f"{c['calls_per_s']:,.0f} ({c['p50_ms']:.1f}/{c['p99_ms']:.1f})"
                    if "calls_per_s" in c
                    else c.get("skipped", "-")[:60]
                )
            w(f"| {op} | " + " | ".join(cells) + " |")
        w(
            "\nOne boto3 call costs its client 1.7-2 ms of CPU (shared/reference/measurements.md), so here the "
            "clients, not the servers, are the bound for every fast system.\n"
        )

    micros = results.get("micro") or []
    if micros:
        w("## Micro-benchmarks (one process, best of 5 rounds)\n")
        w("| what | µs per operation | note |\n|---|---|---|")
        for mm in micros:
            w(f"| {mm['name']} | {_num(mm['us'], 1)} | {mm.get('note', '')} |")
        w("")

    sc = results.get("scaling") or {}
    if sc.get("steps") or sc.get("notes"):
        w("## Scaling (perimeterdb, bootstrap admin, table of 100 items per partition)\n")
        w(
            "| items | load s | DB files MiB | GetItem p50 / p99 ms | GetItem req/s | Query 10 p50 / p99 ms | Query req/s | "
            "RSS idle → after MiB |"
        )
        w("|---|---|---|---|---|---|---|---|")
        for s in sc.get("steps", []):
            g, q = s["get"], s["query"]
            w(
                f"| {s['items']:,} | {s['load_seconds']:.1f} | {s['db_mib']:,.0f} | {g['p50_ms']:.2f} / {g['p99_ms']:.2f} | "
                f"{g['rps']:,.0f} | {q['p50_ms']:.2f} / {q['p99_ms']:.2f} | {q['rps']:,.0f} | "
                f"{s['rss_start_mib']:.0f} → {s['rss_mib']:.0f} |"
            )
        for note in sc.get("notes", []):
            w(f"\n- {note}")
        w(
            "\nRows are written by a bulk loader through the storage engine (SQLiteEngine.atomic_sync, 4,000 rows "
            "per job, partitions in key order) while the server is stopped; each step restarts the server, warms "
            "it for 1 s and measures with wrk at 2 connections over random keys of the whole table. Load time is "
            "for that step's increment.\n"
        )

    prof = results.get("profile") or {}
    if prof:
        w("## Profile of perimeterdb, authorization fully on (py-spy, 200 Hz, under wrk load)\n")
        w(
            "Shares are of all samples of all the server's threads (idle excluded). *Inclusive* counts a function "
            "whenever it is on the stack. Collapsed stacks: bench/profiles/*.collapsed (flamegraph-ready).\n"
        )
        for workload, p in prof.items():
            if p.get("error"):
                w(f"- {workload}: {p['error']}")
                continue
            threads = ", ".join(f"{k or '?'} {v * 100 / p['samples']:.0f}%" for k, v in p["threads"].items())
            w(
                f"### {workload}: {p['samples']} samples ({p.get('idle_dropped', 0)} idle waits of the writer and checkpoint "
                f"threads dropped); threads: {threads}\n"
            )
            w("| inclusive % | function (perimeterdb and the server stack) |\n|---|---|")
            shown = 0
            for name, share in p["inclusive"]:
                if share < 2 or shown >= 28:
                    continue
                if any(
                    skip in name
                    for skip in (
                        "<module>",
                        "run_forever",
                        "_run_once",
                        "asyncio/runners",
                        "main (",
                        "serve (",
                        "run (asyncio",
                        "run (threading",
                        "_bootstrap",
                        "uvicorn/main",
                        "perimeterdb/cli.py",
                    )
                ):
                    continue
                w(f"| {share:.1f} | `{name}` |")
                shown += 1
            w("\n| self % | leaf function |\n|---|---|")
            for name, share in p["self"][:12]:
                w(f"| {share:.1f} | `{name}` |")
            w("\n| self % | by area |\n|---|---|")
            for name, share in p["areas"][:12]:
                w(f"| {share:.1f} | {name} |")
            w("")

    analysis = BENCH / "analysis.md"
    if analysis.exists():
        w(analysis.read_text())
    return "\n".join(out) + "\n"
