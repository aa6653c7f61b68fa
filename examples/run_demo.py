#!/usr/bin/env python
"""Split the trading-platform monolith into per-service databases with dbcopy, end to end.

Run it from anywhere (the Makefile runs `make demo`):

    python examples/run_demo.py

It deletes and recreates examples/var/, migrates and seeds the monolith, migrates each
service database, then runs `dbcopy plan`, `dbcopy copy` and `dbcopy compare` with the
monolith as source and no --dest, so the project's router decides where each model goes.
The same split runs once more for one service through a file (`dbcopy export` from the
monolith, `dbcopy import` into a second, fresh marketdata database), and `dbcopy compare
--checksum` proves both routes gave the same database. Then the monolith moves on
(`demo_activity`: new orders, fills, reads, deletes, edits) and `dbcopy sync` brings the
service databases back in step, twice: the second run must find nothing to do. Every step
is a real `manage.py` command, printed before it runs; the first one that fails stops the
demo with its exit status, and so does a summary check that fails.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
VAR_DIR = EXAMPLES_DIR / "var"
MONOLITH = VAR_DIR / "monolith.sqlite3"
ACTIVITY_REPORT = VAR_DIR / "activity-report.json"
SYNC_REPORT = VAR_DIR / "sync-report.json"
RESYNC_REPORT = VAR_DIR / "resync-report.json"
SERVICES = ["users", "marketdata", "trading", "portfolio", "notifications"]
# The service split a second time through a file, into a database of its own (see settings.py).
FILE_SERVICE = "marketdata"
FILE_DATABASE = "marketdata_from_file"
DUMP = VAR_DIR / f"{FILE_SERVICE}.dbcopy"
FILE_COMPARE_REPORT = VAR_DIR / "file-compare-report.json"

# Tables whose created_at/updated_at the summary compares between monolith and service.
STAMPED_TABLES = {
    "users": "users_trader",
    "marketdata": "marketdata_instrument",
    "trading": "trading_order",
    "portfolio": "portfolio_position",
    "notifications": "notifications_notification",
}


def main():
    """Run every step of the demo and print a summary of the split."""
    started = time.monotonic()
    reset_var_dir()
    banner("1. The monolith: migrate and fill it with fake trading data")
    manage("migrate", "--no-input", "--verbosity", "0")
    manage("seed_demo")
    banner("2. The service databases: create their tables (each gets only its own apps)")
    migrations = [("migrate", "--database", db, "--no-input", "--verbosity", "0") for db in [*SERVICES, FILE_DATABASE]]
    manage_at_once(*migrations)  # independent processes: together they take half the time
    banner("3. Plan the copy: the router picks each model's destination")
    manage("dbcopy", "plan", "--source", "default")
    banner("4. Copy the monolith into the service databases")
    manage("dbcopy", "copy", "--source", "default", "--no-input", "--report-json", "var/copy-report.json")
    banner("5. Compare source and destinations row by row")
    manage("dbcopy", "compare", "--source", "default", "--report-json", "var/compare-report.json")
    banner(f"6. The same split through a file, for one service ({FILE_SERVICE}): export, then import")
    dump = str(DUMP.relative_to(EXAMPLES_DIR))
    manage("dbcopy", "export", FILE_SERVICE, "--source", "default", "-o", dump)
    manage("dbcopy", "import", dump, "--dest", FILE_DATABASE)
    manage("dbcopy", "compare", FILE_SERVICE, "--source", FILE_SERVICE, "--dest", FILE_DATABASE, "--checksum",
           "--report-json", str(FILE_COMPARE_REPORT.relative_to(EXAMPLES_DIR)))
    banner("7. The platform moves on: five minutes of orders, fills, reads and edits in the monolith")
    manage("demo_activity", "--report-json", "var/activity-report.json")
    banner("8. Sync: bring the service databases back in step with the monolith")
    sync = ["dbcopy", "sync", "--source", "default", "--since-field", "updated_at", "--deletes"]
    manage(*sync, "--report-json", "var/sync-report.json")
    banner("9. Sync again straight away: nothing is left to do")
    manage(*sync, "--report-json", "var/resync-report.json")
    banner("10. Compare once more")
    manage("dbcopy", "compare", "--source", "default")
    banner("Summary")
    print_row_counts()
    print_timestamp_check()
    failures = print_file_route() + print_sync_summary() + print_equality_check()
    if failures:
        print(f"\nDemo failed: {'; '.join(failures)}.", file=sys.stderr)
        sys.exit(1)
    print(f"\nDemo finished in {time.monotonic() - started:.1f}s. Databases and reports are in {VAR_DIR}.")


def reset_var_dir():
    """Delete the databases of a previous run so the demo always starts from nothing."""
    shutil.rmtree(VAR_DIR, ignore_errors=True)
    VAR_DIR.mkdir(parents=True)


def banner(title):
    """Print a section title."""
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}", flush=True)


def manage(*args):
    """Print and run `python manage.py ARGS` in examples/; exit with its status if it fails."""
    manage_at_once(args)


def manage_at_once(*commands):
    """Print and run `python manage.py ARGS` for each ARGS, all at the same time, in examples/.

    Wait for every one; exit with the status of the first that failed. One command runs alone.
    """
    step_started = time.monotonic()
    together = len(commands) > 1
    processes = []
    for args in commands:
        print(f"\n$ python manage.py {' '.join(args)}{' &' if together else ''}", end="", flush=True)
        # No pipes: the command writes straight to this terminal, so its output streams
        # and its colours and width match what the user would see running it by hand.
        # The demo's own settings, whatever DJANGO_SETTINGS_MODULE the caller's shell exports.
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tradingplatform.settings"}
        processes.append((args, subprocess.Popen([sys.executable, "manage.py", *args], cwd=EXAMPLES_DIR, env=env)))
    print("\n$ wait" if together else "", flush=True)
    failed = [(args, status) for args, process in processes if (status := process.wait()) != 0]
    if failed:
        args, status = failed[0]
        print(f"\nDemo stopped: `manage.py {' '.join(args)}` exited with status {status}.", file=sys.stderr)
        sys.exit(status)
    print(f"  ({time.monotonic() - step_started:.1f}s)", flush=True)


def user_tables(db):
    """Return the names of the application tables of an open SQLite database."""
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite_%' AND name != 'django_migrations' ORDER BY name"
    )
    return [name for (name,) in rows]


def count_rows(path):
    """Return {table: row count} of the SQLite database at path."""
    with sqlite3.connect(path) as db:
        return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in user_tables(db)}


def print_row_counts():
    """Print each service database's tables and row counts next to the monolith's."""
    monolith = count_rows(MONOLITH)
    copied = 0
    for service in SERVICES:
        counts = count_rows(VAR_DIR / f"{service}.sqlite3")
        print(f"\n{service}.sqlite3 ({len(counts)} tables)")
        for table, count in counts.items():
            mark = "" if count == monolith.get(table) else f"   (monolith: {monolith.get(table)})"
            print(f"  {table:<40} {count:>6}{mark}")
            copied += count
    total = sum(monolith.values())
    print(f"\nmonolith.sqlite3: {total} rows in {len(monolith)} tables; service databases: {copied} rows")
    print("(more, because every service database keeps its own copy of django_content_type).")


def stamps(path, table):
    """Return {id: (created_at, updated_at)} of table in the SQLite database at path."""
    with sqlite3.connect(path) as db:
        return {row[0]: row[1:] for row in db.execute(f'SELECT id, created_at, updated_at FROM "{table}"')}


def print_timestamp_check():
    """Show that auto_now/auto_now_add columns kept their stored past values in the copy."""
    print("\nauto_now_add / auto_now columns after the copy and the sync (they must not hold the copy time):")
    for service, table in STAMPED_TABLES.items():
        before = stamps(MONOLITH, table)
        after = stamps(VAR_DIR / f"{service}.sqlite3", table)
        same = sum(after.get(pk) == value for pk, value in before.items())
        latest = max((created for created, _ in after.values()), default="-")
        print(f"  {table:<28} {same:>5}/{len(before)} rows identical, latest created_at {latest}")
    before, after = stamps(MONOLITH, "trading_order"), stamps(VAR_DIR / "trading.sqlite3", "trading_order")
    pk = min(before)
    print(f"  e.g. trading_order id={pk}  monolith: {before[pk]}")
    print(f"  {'':<26}trading:  {after.get(pk)}")


def print_file_route():
    """Print what travelled through the file in step 6 and check the compare found both databases equal."""
    report = json.loads(FILE_COMPARE_REPORT.read_text())
    rows = sum(m["source_rows"] or 0 for m in report["models"])
    print(f"\nThrough a file (step 6): var/{DUMP.name}, {DUMP.stat().st_size:,} bytes for {rows:,} rows "
          f"in {len(report['models'])} tables.")
    differ = [m["model"] for m in report["models"] if (m.get("content") or {}).get("status") != "equal"]
    if differ or not report["ok"]:
        print(f"  {FILE_DATABASE} and {FILE_SERVICE} differ: {', '.join(differ) or 'row counts'}.")
        return [f"the database imported from the file differs from the direct copy ({', '.join(differ)})"]
    print(f"  {FILE_DATABASE}, imported from it, equals {FILE_SERVICE}, copied directly: row counts and "
          "content checksums.")
    return []


WHAT = ("inserted", "updated", "deleted")


def changed_models(report):
    """Return the rows of a sync report for models the sync inserted, updated or deleted rows of."""
    return [m for m in report["models"] if any(m.get(what) for what in WHAT)]


def print_sync_summary():
    """Print what the first sync wrote per model next to what the activity changed; check the second sync."""
    failures = []
    first = json.loads(SYNC_REPORT.read_text())
    activity = json.loads(ACTIVITY_REPORT.read_text())["models"]
    changed = changed_models(first)
    print(f"\nWhat the sync wrote (var/{SYNC_REPORT.name}):")
    print(f"  {'model':<32} {'database':<14} {'inserted':>8} {'updated':>8} {'deleted':>8}  watermark now")
    for m in changed:
        cells = " ".join(f"{m[what] or '':>8}" for what in WHAT)
        how = m["watermark"] or "(compared in full)"
        print(f"  {m['model']:<32} {m['dest']:<14} {cells}  {how}")
    synced = [m for m in first["models"] if m.get("inserted") is not None]
    unchanged = sum(m["unchanged"] or 0 for m in synced)
    print(f"  {len(synced) - len(changed)} more models had nothing to write; {unchanged:,} rows compared equal.")
    totals = {what: sum(m[what] or 0 for m in synced) for what in WHAT}
    print("  total: " + ", ".join(f"{n:,} {what}" for what, n in totals.items()))

    wrote = {m["model"]: {what: m[what] or 0 for what in WHAT} for m in changed}
    expected = {label: counts for label, counts in activity.items() if any(counts.values())}
    if wrote == expected:
        print(f"  That is exactly what demo_activity changed in the monolith (var/{ACTIVITY_REPORT.name}), model by model.")
    else:
        for label in sorted(set(wrote) | set(expected)):
            if wrote.get(label) != expected.get(label):
                print(f"  {label}: demo_activity changed {fmt(expected.get(label))}, the sync wrote {fmt(wrote.get(label))}")
        failures.append("the sync did not write what the activity changed")

    second = json.loads(RESYNC_REPORT.read_text())
    again = changed_models(second)
    rows = sum(m["unchanged"] or 0 for m in second["models"] if m.get("inserted") is not None)
    if again:
        names = ", ".join(f"{m['model']} {fmt(m)}" for m in again)
        print(f"\nThe second sync wrote rows again ({names}): it should have found nothing to do.")
        return [*failures, "the second sync was not idempotent"]
    print(f"\nThe second sync (var/{RESYNC_REPORT.name}) compared {rows:,} rows and wrote none.")
    return failures


def fmt(counts):
    """Return '40 inserted, 25 updated, 0 deleted' for a dict of counts (or 'nothing')."""
    if not counts or not any(counts.get(what) for what in WHAT):
        return "nothing"
    return ", ".join(f"{counts.get(what) or 0} {what}" for what in WHAT)


def table_rows(path, table):
    """Return every row of table in the SQLite database at path, as a multiset."""
    with sqlite3.connect(path) as db:
        return Counter(db.execute(f'SELECT * FROM "{table}"'))


def print_equality_check():
    """Compare every table of every service database with the monolith's, column by column.

    Raw ids compare equal even in the content-type columns: every database's `migrate` created
    the same content types in the same order (dbcopy would translate them if they differed).
    """
    changed = {(m["dest"], m["table"]) for m in changed_models(json.loads(SYNC_REPORT.read_text()))}
    print("\nService databases against the monolith, every column of every row, after the sync:")
    failures, others = [], 0
    for service in SERVICES:
        path = VAR_DIR / f"{service}.sqlite3"
        with sqlite3.connect(path) as db:
            tables = user_tables(db)
        for table in tables:
            source, copy = table_rows(MONOLITH, table), table_rows(path, table)
            differ = sum(((source - copy) + (copy - source)).values())
            if differ:
                failures.append(f"{service}.{table} differs from the monolith in {differ} rows")
            if (service, table) in changed or differ:
                verdict = "identical" if not differ else f"DIFFERS in {differ} rows"
                print(f"  {service + '.' + table:<48} {sum(source.values()):>6} rows {verdict}")
            else:
                others += 1
    print(f"  and the {others} tables the sync had nothing to write to: identical as well.")
    return failures


if __name__ == "__main__":
    main()
