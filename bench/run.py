#!/usr/bin/env python
"""Benchmark dbcopy against dumpdata | loaddata, the classic bulk_create loop and raw COPY | COPY, and its sync.

    make bench-all                                        # .venv/bin/python bench/run.py
    SCALE=1 METHODS=dbcopy-fast,raw-copy TARGETS=pg .venv/bin/python bench/run.py
    SCALE=0.1 METHODS=dbcopy-fast,export-import .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --scale 0.05 --methods dumpdata,dbcopy-fast --repeat 3
    make bench                                            # --methods peers --scale 0.1
    SCALE=0.1 METHODS=peers .venv/bin/python bench/run.py --repeat 3

Builds a persistent-identifier registry on PostgreSQL (SCALE=1: 550k identifiers, 550k target URLs,
880k admin log entries), then copies it to each target once per method. Every method runs as its own
subprocess, timed and measured with os.wait4 (peak RSS of the largest process of a pipeline), on a
freshly migrated destination; afterwards every table is counted on both sides and a method whose
counts differ, or that exits non-zero, is marked FAILED. Prints a Markdown table with the ratios to
dbcopy fast; logs, reports and results.json go to bench/out/.

The `export-import` method (file_bench.py) is two timed commands per route: `dbcopy export` to a file and
`dbcopy import` of it into each target, against `dumpdata` to a JSON file and `loaddata` of it, measured in
the same run; it prints the end-to-end ratio and the files' sizes.

The `peers` method (peers.py) compares dbcopy with the specialised tool of four vendor pairs — pgloader
(MariaDB → PostgreSQL, SQLite → PostgreSQL), pgcopydb and raw binary COPY (PostgreSQL → PostgreSQL),
mydumper + myloader and mysqldump | mysql (MariaDB → MariaDB) — from a MariaDB and a SQLite copy of the
source; it prints each tool's median time ÷ dbcopy's.

The `sync` method (sync_bench.py) runs after the others, as it changes the source: a copy, a quiet
`dbcopy sync --since-field updated_at --deletes`, ~1 % of the rows changed, the sync again, timed
against the copy and verified row by row.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import dataset  # noqa: E402
import file_bench  # noqa: E402
import peers  # noqa: E402
import sync_bench  # noqa: E402
from dataset import SOURCE  # noqa: E402
from harness import OUT_DIR, REPO_DIR, log_tail, measure, migrate, reset, stamp_check  # noqa: E402
from methods import raw_copy  # noqa: E402

METHODS = {
    "dumpdata": "dumpdata | loaddata",
    "classic": "classic bulk_create loop",
    "dbcopy-bulk": "dbcopy --writer bulk_create",
    "dbcopy-fast": "dbcopy fast",
    "raw-copy": "raw COPY | COPY",
    "export-import": "dbcopy export → file → import, against dumpdata → file → loaddata (file_bench.py)",
    "peers": "dbcopy against pgloader, pgcopydb, mydumper and mysqldump on four vendor pairs (peers.py)",
    "sync": "dbcopy sync (sync_bench.py)",
}
TARGETS = {"pg": "PostgreSQL → PostgreSQL", "mariadb": "PostgreSQL → MariaDB"}
ONLY_POSTGRES = {"raw-copy"}
OWN_PHASES = {"export-import", "peers", "sync"}  # not one timed command: file_bench.py, peers.py, sync_bench.py
CHUNK_SIZE = 2000  # the classic loop's page; dbcopy's default chunk is the same


def main():
    """Build the dataset, run every chosen method on every chosen target, print and save the results."""
    args = parse_args()
    OUT_DIR.mkdir(exist_ok=True)
    compile_python()
    print_header(args)
    version = dbcopy_version()
    counts, seconds = build_source(args.scale)
    tables = dataset.source_tables()
    source_rows = dataset.count_rows(SOURCE, tables)
    source_stamps = dataset.timestamps(SOURCE)
    total = sum(source_rows.values())
    print(f"Source built in {seconds:.0f} s: {', '.join(f'{n:,} {k}' for k, n in counts.items())}; "
          f"{total:,} rows in {len(tables)} tables.\n", flush=True)
    results, files, peer_results, sync = [], None, None, None
    try:
        for target in args.targets:
            for method in args.methods:
                if method in OWN_PHASES or (method in ONLY_POSTGRES and not dataset.is_postgres(target)):
                    continue
                result = run_method(method, target, args, tables, source_rows, source_stamps, total)
                results.append(result)
        if "export-import" in args.methods:
            files = file_bench.run(args.targets, tables, TARGETS, keep=args.keep)
        if "peers" in args.methods:
            peer_results = peers.run(args.pairs, args.repeat, tables)
        if "sync" in args.methods:  # last: it changes the source
            sync = sync_bench.run(args.targets, args.scale, tables, TARGETS)
    finally:
        if not args.keep:
            for alias in (SOURCE, *TARGETS):
                dataset.drop(alias)
            peers.drop_sources()
    if results:
        print_table(results, args)
    if files:
        file_bench.print_results(files, TARGETS, command_line())
    if peer_results:
        peers.print_results(peer_results, args.scale, command_line())
    if sync:
        sync_bench.print_results(sync, TARGETS, command_line())
    if dbcopy_version() != version:
        print(f"\n**dbcopy changed during the run** ({version[0]} → {dbcopy_version()[0]}): rerun before comparing.")
    print_targets(results)
    if files:
        file_bench.print_targets(files, TARGETS)
    if peer_results:
        peers.print_targets(peer_results)
    if sync:
        sync_bench.print_targets(sync, TARGETS)
    (OUT_DIR / "results.json").write_text(json.dumps(
        {"command": command_line(), "scale": args.scale, "source_rows": source_rows, "results": results,
         "files": files, "peers": peer_results, "sync": sync}, indent=2
    ))
    failed = (any(r["status"] != "ok" for r in results) or (files and file_bench.failed(files))
              or (peer_results and peers.failed(peer_results)) or (sync and sync_bench.failed(sync)))
    sys.exit(1 if failed else 0)


def parse_args():
    """Read the options; SCALE, METHODS, TARGETS, PAIRS and REPEAT in the environment are the defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("SCALE") or 0.05),
                        help="fraction of the full dataset (env SCALE, default 0.05)")
    parser.add_argument("--methods", default=os.environ.get("METHODS") or ",".join(METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)} (env METHODS, default all)")
    parser.add_argument("--targets", default=os.environ.get("TARGETS") or ",".join(TARGETS),
                        help=f"comma-separated, from {', '.join(TARGETS)} (env TARGETS, default both)")
    parser.add_argument("--pairs", default=os.environ.get("PAIRS") or ",".join(peers.PAIRS),
                        help=f"the peers method's vendor pairs, comma-separated, from {', '.join(peers.PAIRS)} "
                             "(env PAIRS, default all)")
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT") or 1),
                        help="runs per method; the fastest is reported (peers: the median), with the largest peak "
                             "RSS (env REPEAT)")
    parser.add_argument("--keep", action="store_true", help="keep the databases after the run")
    parser.add_argument("--profile", action="store_true",
                        help="run the dbcopy methods under cProfile (slower) into bench/out/TARGET-METHOD.prof")
    args = parser.parse_args()
    args.methods = _choices(parser, "methods", args.methods, METHODS)
    args.targets = _choices(parser, "targets", args.targets, TARGETS)
    args.pairs = _choices(parser, "pairs", args.pairs, peers.PAIRS)
    if args.scale <= 0 or args.repeat < 1:
        parser.error("--scale must be positive and --repeat at least 1")
    return args


def _choices(parser, option, value, allowed):
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        parser.error(f"--{option}: choose from {', '.join(allowed)} (got {value!r})")
    return [item for item in allowed if item in chosen]  # the table's order, whatever the user's


def command_line():
    """Return the command line of this run, with the environment variables that steer it."""
    names = ("SCALE", "METHODS", "TARGETS", "PAIRS", "REPEAT", "DBCOPY_ARGS")
    steering = [f"{name}={os.environ[name]}" for name in names if os.environ.get(name)]
    return shlex.join([*steering, sys.executable, *sys.argv])


def compile_python():
    """Byte-compile dbcopy and the bench project once, before any timing.

    An installed package has its bytecode (pip compiles it; a checkout writes it on its first run),
    but with PYTHONDONTWRITEBYTECODE set, as on some CI machines, every timed command would compile
    dbcopy's modules again: about 0.1 s a run that no user pays and the peers, compiled programs, do not.
    """
    import compileall

    for folder in (REPO_DIR / "dbcopy", REPO_DIR / "bench"):
        compileall.compile_dir(folder, quiet=1)


def print_header(args):
    """Print what was run, when, where and against which versions."""
    import django

    versions = []
    for alias in (SOURCE, "mariadb"):
        connection = dataset.connect(alias, server=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            versions.append(cursor.fetchone()[0].split(" on ")[0].split(",")[0])
        connection.close()
    print(f"Command: {command_line()}")
    print(f"Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; dbcopy at {dbcopy_version()[0]}")
    print(f"Machine: {os.cpu_count()} CPUs, {platform.platform()}; Python {platform.python_version()}, "
          f"Django {django.get_version()}; {versions[0]}; MariaDB {versions[1]}")
    pairs = f"; pairs {', '.join(args.pairs)}" if "peers" in args.methods else ""
    print(f"Scale {args.scale}; methods {', '.join(args.methods)}; targets {', '.join(args.targets)}{pairs}; "
          f"repeat {args.repeat}\n", flush=True)


def dbcopy_version():
    """Return the checkout's commit (noting uncommitted changes in dbcopy/) and a digest of dbcopy's code."""
    commit = _output(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "dbcopy"])
    digest = hashlib.sha256()
    for path in sorted((REPO_DIR / "dbcopy").rglob("*.py")):
        digest.update(path.read_bytes())
    return commit + (" + uncommitted changes in dbcopy/" if dirty else ""), digest.hexdigest()


def _output(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_source(scale):
    """Recreate, migrate and fill the source; return the generated row counts and the seconds it took."""
    started = time.perf_counter()
    dataset.recreate(SOURCE)
    migrate(SOURCE)
    counts = dataset.generate(scale)
    return counts, time.perf_counter() - started


def method_command(method, target, profile=False):
    """Return the argv that copies the source into the target with this method."""
    manage = [sys.executable, "bench/manage.py"]
    if profile and method.startswith("dbcopy"):
        manage[1:1] = ["-m", "cProfile", "-o", f"bench/out/{target}-{method}.prof"]
    if method == "dumpdata":
        dump = [*manage, "dumpdata", "--database", SOURCE, "--natural-foreign", "--natural-primary",
                "-e", "contenttypes", "-e", "auth.permission"]
        load = [*manage, "loaddata", "--database", target, "--format", "json", "-"]
        return ["bash", "-c", f"set -o pipefail; {shlex.join(dump)} | {shlex.join(load)}"]
    if method == "classic":
        return [sys.executable, "bench/methods/classic_loop.py", "--source", SOURCE, "--dest", target,
                "--chunk-size", str(CHUNK_SIZE)]
    if method in ("dbcopy-bulk", "dbcopy-fast"):
        writer = "bulk_create" if method == "dbcopy-bulk" else "fast"
        report = OUT_DIR / f"{target}-{method}.json"
        return [*manage, "dbcopy", "copy", "--source", SOURCE, "--dest", target, "--no-input",
                "--writer", writer, "--report-json", str(report.relative_to(REPO_DIR)), "-v", "1"]
    if method == "raw-copy":
        script = OUT_DIR / f"{target}-raw-copy.sh"
        script.write_text(raw_copy.script(SOURCE, target))
        return ["bash", str(script.relative_to(REPO_DIR))]
    raise ValueError(method)


def run_method(method, target, args, tables, source_rows, source_stamps, total):
    """Run one method on one target args.repeat times, verifying each run; return the summary."""
    runs = []
    for attempt in range(args.repeat):
        reset(target)
        argv = method_command(method, target, args.profile)
        suffix = f" (run {attempt + 1}/{args.repeat})" if args.repeat > 1 else ""
        print(f"{TARGETS[target]}: {METHODS[method]}{suffix}\n  $ {shlex.join(argv)}", flush=True)
        log_path = OUT_DIR / f"{target}-{method}.log"
        seconds, rss, status = measure(argv, log_path)
        run = {"seconds": seconds, "rss_mb": rss, "exit": status}
        run.update(verify(target, status, tables, source_rows, source_stamps))
        runs.append(run)
        verdict = "ok" if not run["problems"] else "FAILED: " + "; ".join(run["problems"])
        print(f"  {seconds:.1f} s, {total / seconds:,.0f} rows/s, peak RSS {rss:.0f} MB, "
              f"timestamps {run['stamps']}; {verdict}", flush=True)
        if run["problems"]:
            log_tail(log_path)
    best = min(runs, key=lambda run: run["seconds"])
    problems = sorted({problem for run in runs for problem in run["problems"]})
    return {
        "target": target, "method": method,
        "command": shlex.join("python" if part == sys.executable else part for part in argv),
        "seconds": best["seconds"], "rows": total, "rows_per_s": total / best["seconds"],
        "rss_mb": max(run["rss_mb"] for run in runs), "runs": runs,
        "status": "FAILED" if problems else "ok", "problems": problems,
        "stamps": ", ".join(sorted({run["stamps"] for run in runs})),
    }


def verify(target, status, tables, source_rows, source_stamps):
    """Return the run's problems (exit status, tables whose counts differ) and what became of the timestamps."""
    problems = [f"exit {status}"] if status != 0 else []
    dest_rows = dataset.count_rows(target, tables)
    differ = [f"{t} {source_rows[t]}≠{dest_rows[t]}" for t in tables if dest_rows[t] != source_rows[t]]
    if differ:
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        problems.append("counts " + ", ".join(differ[:3]) + more)
    return {"problems": problems, "stamps": stamp_check(dataset.timestamps(target), source_stamps)}


def print_table(results, args):
    """Print the results as a Markdown table, with every time and peak RSS relative to dbcopy fast."""
    print(f"\n## Results (SCALE={args.scale:g}{f', best of {args.repeat}' if args.repeat > 1 else ''})\n")
    print(f"`{command_line()}`\n")
    print("| target | method | seconds | rows/s | peak RSS MB | time ÷ fast | RSS ÷ fast | timestamps | verified |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    for result in results:
        fast = _find(results, result["target"], "dbcopy-fast")
        time_ratio = f"{result['seconds'] / fast['seconds']:.2f}×" if fast else "–"
        rss_ratio = f"{result['rss_mb'] / fast['rss_mb']:.2f}×" if fast else "–"
        verified = "ok" if result["status"] == "ok" else "**FAILED** (" + "; ".join(result["problems"]) + ")"
        name = METHODS[result["method"]].replace("|", "\\|")  # a bare | would split the Markdown cell
        print(f"| {TARGETS[result['target']]} | {name} | {result['seconds']:.1f} | "
              f"{result['rows_per_s']:,.0f} | {result['rss_mb']:.0f} | {time_ratio} | {rss_ratio} | "
              f"{result['stamps']} | {verified} |")
    print(f"\n{results[0]['rows'] if results else 0:,} rows per copy. Timestamps: the identifiers' min/max "
          "created_at and updated_at (auto_now_add/auto_now) compared with the source: kept, µs lost (within "
          "1 ms) or re-stamped.")


def _find(results, target, method):
    return next((r for r in results if r["target"] == target and r["method"] == method and r["status"] == "ok"), None)


def print_targets(results):
    """Check the performance targets dbcopy is held to, where this run measured both sides."""
    checks = []
    fast_pg, raw = _find(results, "pg", "dbcopy-fast"), _find(results, "pg", "raw-copy")
    if fast_pg and raw:
        ratio = fast_pg["seconds"] / raw["seconds"]
        checks.append((ratio <= 1.5, f"PG→PG dbcopy fast within 1.5× of raw COPY|COPY: {ratio:.2f}×"))
    fast_my = _find(results, "mariadb", "dbcopy-fast")
    for method, needed in (("dumpdata", 20), ("classic", 4)):
        other = _find(results, "mariadb", method)
        if fast_my and other:
            speedup = other["seconds"] / fast_my["seconds"]
            checks.append((speedup >= needed, f"PG→MariaDB dbcopy fast ≥ {needed}× faster than {METHODS[method]}: "
                                              f"{speedup:.1f}×"))
    for result in results:
        if result["method"].startswith("dbcopy"):
            label = f"{TARGETS[result['target']]} {METHODS[result['method']]}"
            checks.append((result["rss_mb"] < 150, f"{label}: peak RSS < 150 MB: {result['rss_mb']:.0f} MB"))
            exits = ", ".join(str(run["exit"]) for run in result["runs"])
            checks.append((result["status"] == "ok", f"{label}: reconciles exactly (exit {exits})"))
    if checks:
        print("\n## Targets\n")
        for met, text in checks:
            print(f"- {'met' if met else '**MISSED**'}: {text}")


if __name__ == "__main__":
    main()
