"""The peers bench: dbcopy against the specialised tool of each vendor pair, every tool at its defaults.

run.py runs it when METHODS includes `peers` (`make bench`: SCALE=0.1 METHODS=peers), on its PostgreSQL source:

1. set-up, not timed: the MariaDB source `dbcopy_bench_my_src` (utf8mb4) and the SQLite source
   bench/out/peers-src.sqlite3 are migrated and filled from the PostgreSQL source with `dbcopy copy`, then
   proved equal to it with `dbcopy compare --checksum` and row counts;
2. for each pair, round (--repeat) and method: a freshly dropped, created and migrated destination (not
   timed), the method timed as its own subprocess (harness.measure: monotonic clock, peak RSS of the
   largest process), then verified (not timed): exit status, every table's count and every column of
   every row against the PostgreSQL source (content.py, which does not use dbcopy) — the three sources
   hold the same rows; and, as remarks, sequences/AUTO_INCREMENT left at or below the largest id and
   constraints, indexes or trigger states that differ from the migrated schema (peer_checks.py);
3. per pair: each method's median seconds and largest peak RSS, time ÷ dbcopy's (≥ 1.0: dbcopy at least
   as fast), and the targets: every peer ÷ dbcopy ≥ 1.0, PG→PG dbcopy within 1.3× of raw binary COPY|COPY,
   dbcopy's peak RSS < 150 MB, every dbcopy copy identical.

A peer missing from PATH is reported as not installed; a peer whose copy differs is reported with what
differs and still timed, but its ratio is not held against dbcopy. DBCOPY_ARGS (e.g. "--jobs 2") adds
options to every dbcopy run, for experiments; the measurement runs dbcopy at its defaults.
"""

import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial

import content
import dataset
import peer_checks
from dataset import SOURCE
from harness import MANAGE, OUT_DIR, REPO_DIR, checkpoint, log_tail, measure, migrate, reset
from methods import peer_raw_binary, peer_tools

MAX_RSS_MB = 150
RAW_CEILING = 1.3  # dbcopy's time ÷ raw binary COPY|COPY's on PG→PG, at most
SOURCES = {"mariadb_src": "MariaDB", "sqlite_src": "SQLite"}  # filled from SOURCE before the pairs run


@dataclass(frozen=True)
class Method:
    """One way of copying a pair: dbcopy, a peer (held to dbcopy's time) or a limit (what dbcopy is held to)."""

    label: str
    role: str  # "dbcopy", "peer" or "limit"
    tools: tuple  # executables it needs on PATH


@dataclass(frozen=True)
class Pair:
    """A source and a destination alias of project/settings.py, and the methods compared on them."""

    name: str
    source: str
    dest: str
    methods: tuple


METHODS = {
    "dbcopy": Method("dbcopy copy", "dbcopy", ()),
    "pgloader": Method("pgloader (data only)", "peer", ("pgloader",)),
    # pgloader's documented remedy for "Heap exhausted", which its defaults meet at 10× (SBCL's 1 GB heap).
    "pgloader-prefetch": Method("pgloader, prefetch rows = 10000", "peer", ("pgloader",)),
    "pgcopydb": Method("pgcopydb copy table-data", "peer", ("pgcopydb", "psql")),
    "raw-binary": Method("raw binary COPY | COPY", "limit", ("psql",)),
    "mydumper": Method("mydumper + myloader", "peer", ("mydumper", "myloader", "mysql")),
    "mysqldump": Method("mysqldump | mysql", "peer", ("mysqldump", "mysql")),
}
PAIRS = {
    "mariadb-pg": Pair("MariaDB → PostgreSQL", "mariadb_src", "pg", ("dbcopy", "pgloader", "pgloader-prefetch")),
    "sqlite-pg": Pair("SQLite → PostgreSQL", "sqlite_src", "pg", ("dbcopy", "pgloader", "pgloader-prefetch")),
    "pg-pg": Pair("PostgreSQL → PostgreSQL", SOURCE, "pg", ("dbcopy", "pgcopydb", "raw-binary")),
    "mariadb-mariadb": Pair("MariaDB → MariaDB", "mariadb_src", "mariadb", ("dbcopy", "mydumper", "mysqldump")),
}
VERSIONS = {  # how each peer says its version, and the line of its answer that holds it
    "pgloader": (["pgloader", "--version"], "version"),
    "pgcopydb": (["pgcopydb", "--version"], "pgcopydb version"),
    "mydumper": (["mydumper", "--version"], "mydumper"),
    "mysqldump": (["mysqldump", "--version"], "Ver"),
}
ERROR_LINE = re.compile(r"\b(ERROR|FATAL|CRITICAL|KABOOM)\b")


def run(pairs, repeat, tables):
    """Build the other sources, time every method of every pair `repeat` times; return the summary."""
    print(f"Peers: {'; '.join(peer_versions())}", flush=True)
    if dbcopy_args():
        print(f"DBCOPY_ARGS: {shlex.join(dbcopy_args())} (added to every dbcopy run)", flush=True)
    source_rows = dataset.count_rows(SOURCE, tables)
    setup = build_sources(pairs, tables, source_rows)
    summary = {"pairs": [], "setup": setup, "repeat": repeat, "dbcopy_args": dbcopy_args(),
               "source_rows": sum(source_rows.values())}
    for pair_key in pairs:
        summary["pairs"].append(run_pair(pair_key, repeat, tables, source_rows))
    return summary


def peer_versions():
    """Return each peer's name and version as it states them (or 'not installed')."""
    versions = []
    for tool, (argv, marker) in VERSIONS.items():
        if not shutil.which(tool):
            versions.append(f"{tool} not installed")
            continue
        completed = subprocess.run(argv, capture_output=True, text=True)
        lines = (completed.stdout + completed.stderr).splitlines()
        line = next((line for line in lines if marker in line), lines[0] if lines else "?")
        versions.append(line.split(" INFO ")[-1].strip())
    return versions


def dbcopy_args():
    """Return the extra dbcopy options of DBCOPY_ARGS (none: dbcopy at its defaults)."""
    return shlex.split(os.environ.get("DBCOPY_ARGS", ""))


def build_sources(pairs, tables, source_rows):
    """Migrate and fill the MariaDB and SQLite sources the pairs read from; prove them equal to SOURCE."""
    needed = [alias for alias in SOURCES if any(PAIRS[key].source == alias for key in pairs)]
    setup = {}
    for alias in needed:
        seconds = fill_source(alias)
        compare = [*MANAGE, "dbcopy", "compare", "--source", SOURCE, "--dest", alias, "--checksum", "-v", "1"]
        _, _, compared = measure(compare, OUT_DIR / f"peers-setup-{alias}-compare.log")
        counts = dataset.count_rows(alias, tables)
        if compared or counts != source_rows:
            log_tail(OUT_DIR / f"peers-setup-{alias}-compare.log")
            sys.exit(f"The {SOURCES[alias]} source differs from the PostgreSQL source (compare exit {compared})")
        print(f"{SOURCES[alias]} source {alias} filled in {seconds:.1f} s and equal to the PostgreSQL source "
              f"(dbcopy compare --checksum, {sum(counts.values()):,} rows)", flush=True)
        setup[alias] = {"fill_seconds": seconds, "rows": sum(counts.values())}
    checkpoint(SOURCE)
    return setup


def fill_source(alias):
    """Recreate, migrate and fill the alias from SOURCE with dbcopy; return the seconds the copy took.

    If the default writer fails (dbcopy's fast paths are what the bench measures, and may be broken in a
    working copy), fill it with the reference writer, bulk_create, and say so: the pairs can still run.
    """
    log_path = OUT_DIR / f"peers-setup-{alias}.log"
    for writer in ([], ["--writer", "bulk_create"]):
        dataset.recreate(alias)
        migrate(alias)
        copy = [*MANAGE, "dbcopy", "copy", "--source", SOURCE, "--dest", alias, "--no-input", "-v", "1", *writer]
        seconds, _, status = measure(copy, log_path)
        if not status:
            return seconds
        log_tail(log_path)
        print(f"{shlex.join(copy)} exited {status} while filling the {SOURCES[alias]} source", flush=True)
    sys.exit(f"Could not fill the {SOURCES[alias]} source; see {log_path.relative_to(REPO_DIR)}")


def drop_sources():
    """Drop the MariaDB and SQLite sources."""
    for alias in SOURCES:
        dataset.drop(alias)


def run_pair(pair_key, repeat, tables, source_rows):
    """Run every method of the pair `repeat` times, rounds interleaved; return the pair's results."""
    pair = PAIRS[pair_key]
    print(f"\n{pair.name} ({pair.source} → {pair.dest})", flush=True)
    installed = {method: _missing(method) for method in pair.methods}
    runs = {method: [] for method in pair.methods if not installed[method]}
    for round_number in range(repeat):
        for method in runs:
            runs[method].append(run_once(pair_key, method, round_number, repeat, tables, source_rows))
    results = []
    for method in pair.methods:
        if installed[method]:
            print(f"  {METHODS[method].label}: not installed ({', '.join(installed[method])} not on PATH)")
            results.append({"method": method, "label": METHODS[method].label, "role": METHODS[method].role,
                            "status": "not installed", "missing": installed[method]})
        else:
            results.append(summarise(method, runs[method]))
    return {"pair": pair_key, "name": pair.name, "source": pair.source, "dest": pair.dest, "methods": results}


def _missing(method):
    return [tool for tool in METHODS[method].tools if not shutil.which(tool)]


def command(pair_key, method):
    """Return the argv that copies the pair's source into its destination with this method."""
    pair, name = PAIRS[pair_key], f"{pair_key}-{method}"
    if method == "dbcopy":
        report = OUT_DIR / f"peers-{name}.json"
        return [*MANAGE, "dbcopy", "copy", "--source", pair.source, "--dest", pair.dest, "--no-input",
                "--report-json", str(report.relative_to(REPO_DIR)), "-v", "1", *dbcopy_args()]
    if method == "raw-binary":
        script = OUT_DIR / f"peers-{name}.sh"
        script.write_text(peer_raw_binary.script(pair.source, pair.dest))
        return ["bash", str(script)]
    build = {"pgloader": peer_tools.pgloader, "pgcopydb": peer_tools.pgcopydb, "mydumper": peer_tools.mydumper,
             "mysqldump": peer_tools.mysqldump,
             "pgloader-prefetch": partial(peer_tools.pgloader, prefetch_rows=10_000)}[method]
    return build(pair.source, pair.dest, OUT_DIR, name)


def run_once(pair_key, method, round_number, repeat, tables, source_rows):
    """Reset the destination, run the method timed, verify the copy; return the run's figures."""
    pair, name = PAIRS[pair_key], f"{pair_key}-{method}"
    reset(pair.dest)
    work_dir = peer_tools.work_dir(OUT_DIR, name)
    shutil.rmtree(work_dir, ignore_errors=True)
    schema_before = peer_checks.schema(pair.dest)
    argv = command(pair_key, method)
    suffix = f" (run {round_number + 1}/{repeat})" if repeat > 1 else ""
    print(f"  {METHODS[method].label}{suffix}\n    $ {_shown(argv)}", flush=True)
    if round_number == 0:
        _print_script(argv)
    log_path = OUT_DIR / f"peers-{name}.log"
    seconds, rss, status = measure(argv, log_path)
    shutil.rmtree(work_dir, ignore_errors=True)  # a dump can be large; it has done its work
    run = {"seconds": seconds, "rss_mb": rss, "exit": status, "command": _shown(argv)}
    started = time.perf_counter()
    run.update(verify(pair.dest, status, tables, source_rows, schema_before, log_path))
    run["verify_seconds"] = time.perf_counter() - started
    verdict = "identical" if not run["problems"] else "NOT IDENTICAL: " + "; ".join(run["problems"])
    remarks = f"; remarks: {'; '.join(run['remarks'])}" if run["remarks"] else ""
    rows = sum(source_rows.values())
    print(f"    {seconds:.2f} s, {rows / seconds:,.0f} rows/s, peak RSS {rss:.0f} MB, exit {status}; {verdict} "
          f"(verified in {run['verify_seconds']:.1f} s){remarks}", flush=True)
    if run["problems"]:
        log_tail(log_path, lines=8)
    return run


def _shown(argv):
    return shlex.join("python" if part == sys.executable else part for part in argv)


def _print_script(argv, shown=8):
    """Print the bash script or pgloader command file a method runs, so the log shows the exact commands."""
    if argv[0] not in ("bash", "pgloader"):
        return
    lines = open(argv[-1]).read().splitlines()
    for line in lines[:shown]:
        print(f"      {line if len(line) <= 400 else line[:400] + ' …'}")
    if len(lines) > shown:
        print(f"      … {len(lines) - shown} more lines in {argv[-1]}")


def verify(dest, status, tables, source_rows, schema_before, log_path):
    """Return the run's problems (exit, counts, values against the PostgreSQL source) and remarks."""
    problems = [f"exit {status}"] if status else []
    dest_rows = dataset.count_rows(dest, tables)
    counted = [table for table in tables if dest_rows[table] != source_rows[table]]
    if counted:
        problems.append("counts " + ", ".join(f"{t} {source_rows[t]:,}≠{_count(dest_rows[t])}" for t in counted))
    try:
        found, compared = content.differences(SOURCE, dest, tables)
    except Exception as exc:  # noqa: BLE001 - a crashed peer can leave rows content.py cannot even read
        found, compared = {}, 0
        problems.append(f"values not comparable ({type(exc).__name__}: {exc})")
    values = [f"{table} {_rows(differing)} (first: {', '.join(map(str, first))})"
              for table, (differing, first) in found.items() if table not in counted]
    if values:
        problems.append("values differ: " + "; ".join(values))
    remarks = []
    lags = peer_checks.sequence_lags(dest, tables)
    if lags:
        tables_lagging = f"{len(lags)} table{'s' if len(lags) > 1 else ''}"
        remarks.append(f"sequences not moved past the copied ids ({tables_lagging}: {', '.join(lags[:2])}"
                       f"{' …' if len(lags) > 2 else ''})")
    remarks += peer_checks.schema_changes(schema_before, peer_checks.schema(dest))
    error = first_error(log_path)
    if problems and error:
        problems.append(f"its log: {error}")
        if not status:
            remarks.append("exit 0 despite errors in its log")
    return {"problems": problems, "remarks": remarks, "rows_compared": compared}


def _rows(number):
    return "all rows" if number is None else f"{number:,} row{'s' if number != 1 else ''}"


def _count(value):
    return "missing" if value is None else f"{value:,}"


def first_error(log_path, width=160):
    """Return the log's first line that reports an error, shortened, or None."""
    for line in log_path.read_text(errors="replace").splitlines():
        if ERROR_LINE.search(line):
            line = line.strip()
            return line if len(line) <= width else line[:width] + "…"
    return None


def summarise(method, runs):
    """Return one method's figures over its runs: median seconds, largest peak RSS, every problem and remark."""
    problems = sorted({problem for run in runs for problem in run["problems"]})
    return {
        "method": method, "label": METHODS[method].label, "role": METHODS[method].role,
        "command": runs[0]["command"], "seconds": statistics.median(run["seconds"] for run in runs),
        "rss_mb": max(run["rss_mb"] for run in runs), "runs": runs,
        "status": "FAILED" if problems else "ok", "problems": problems,
        "remarks": sorted({remark for run in runs for remark in run["remarks"]}),
    }


def dbcopy_result(pair):
    """Return the pair's dbcopy result, or None when it was not measured."""
    return next((m for m in pair["methods"] if m["method"] == "dbcopy" and "seconds" in m), None)


def ratio(result, pair):
    """Return the method's median time ÷ dbcopy's on the same pair (None when either is missing)."""
    dbcopy = dbcopy_result(pair)
    if dbcopy is None or "seconds" not in result:
        return None
    return result["seconds"] / dbcopy["seconds"]


def print_results(summary, scale, command_line):
    """Print every pair's methods as a Markdown table, each time relative to dbcopy's on the same pair."""
    runs = summary["repeat"]
    print(f"\n## dbcopy against its peers (SCALE={scale:g}{f', median of {runs} runs' if runs > 1 else ''})\n")
    extra = f" (DBCOPY_ARGS={shlex.join(summary['dbcopy_args'])})" if summary["dbcopy_args"] else ""
    print(f"`{command_line}`{extra}\n")
    print("| pair | method | seconds | rows/s | peak RSS MB | time ÷ dbcopy | copy | remarks |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    rows = summary["source_rows"]
    for pair in summary["pairs"]:
        for result in pair["methods"]:
            label = result["label"].replace("|", "\\|")
            if result["status"] == "not installed":
                print(f"| {pair['name']} | {label} | – | – | – | – | not installed | |")
                continue
            value = ratio(result, pair)
            shown = f"{value:.2f}×" if value is not None and result["method"] != "dbcopy" else "–"
            copy = "identical" if result["status"] == "ok" else "**not identical** (" + "; ".join(
                result["problems"]).replace("|", "\\|") + ")"
            print(f"| {pair['name']} | {label} | {result['seconds']:.2f} | {rows / result['seconds']:,.0f} | "
                  f"{result['rss_mb']:.0f} | {shown} | {copy} | {'; '.join(result['remarks'])} |")
    print(f"\n{rows:,} rows per copy. time ÷ dbcopy ≥ 1.0: dbcopy at least as fast. Copy: counts and every column "
          "of every row against the PostgreSQL source (content.py). Remarks: sequences or AUTO_INCREMENT left at "
          "or below the largest copied id; constraints, indexes or trigger states that differ from the migrated "
          "destination's.")


def print_targets(summary):
    """Check the targets: each peer ÷ dbcopy ≥ 1.0, PG→PG within 1.3× of raw binary COPY, RSS, identical copies."""
    print("\n## Peers targets\n")
    for pair in summary["pairs"]:
        dbcopy = dbcopy_result(pair)
        for result in pair["methods"]:
            if result["role"] == "peer":
                print(f"- {_peer_check(pair, result, dbcopy)}")
            elif result["role"] == "limit":
                print(f"- {_limit_check(pair, result, dbcopy)}")
        if dbcopy:
            print(f"- {_verdict(dbcopy['rss_mb'] < MAX_RSS_MB)}: {pair['name']} dbcopy peak RSS < {MAX_RSS_MB} MB: "
                  f"{dbcopy['rss_mb']:.0f} MB")
            exits = ", ".join(str(run["exit"]) for run in dbcopy["runs"])
            print(f"- {_verdict(dbcopy['status'] == 'ok')}: {pair['name']} dbcopy copy identical (exit {exits})"
                  + ("" if dbcopy["status"] == "ok" else ": " + "; ".join(dbcopy["problems"])))


def _peer_check(pair, result, dbcopy):
    what = f"{pair['name']} {result['label']} ÷ dbcopy ≥ 1.0"
    if result["status"] == "not installed":
        return f"not measured: {what} ({', '.join(result['missing'])} not installed)"
    value = ratio(result, pair)
    if dbcopy is None or dbcopy["status"] != "ok":
        return f"**MISSED**: {what}: dbcopy's copy failed"
    if result["status"] != "ok":
        return f"not comparable: {what}: {value:.2f}×, but the peer's copy is not identical"
    return f"{_verdict(value >= 1.0)}: {what}: {value:.2f}×"


def _limit_check(pair, result, dbcopy):
    what = f"{pair['name']} dbcopy within {RAW_CEILING}× of {result['label']}"
    if result["status"] == "not installed" or result["status"] != "ok" or dbcopy is None:
        return f"not measured: {what} ({result['status']})"
    value = dbcopy["seconds"] / result["seconds"]
    return f"{_verdict(value <= RAW_CEILING)}: {what}: {value:.2f}× (raw ÷ dbcopy {1 / value:.2f}×)"


def _verdict(met):
    return "met" if met else "**MISSED**"


def failed(summary):
    """Tell whether a dbcopy run failed or copied differently (a peer's failure is a finding, not the bench's)."""
    return any(result["role"] == "dbcopy" and result["status"] != "ok"
               for pair in summary["pairs"] for result in pair["methods"])
