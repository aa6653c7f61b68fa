"""Big tables split into key ranges for --jobs, the default --jobs, and the fixed costs of a run.

A table of DBCOPY_SPLIT_ROWS rows or more (lowered here to a few rows) is copied as up to --jobs key
ranges at once, each its own stream or chunks and transactions; the reports still show one entry per
table, a refused row still fails its table alone and is named, and --resume continues every range.
"""

import os
import signal
import subprocess
import sys

import pytest
from django.test import override_settings

from dbcopy.plan import build_plan, key_ranges
from dbcopy.runner import MAX_DEFAULT_JOBS, Runner, default_jobs
from tests import helpers as h
from tests.copytest import models as m
from tests.test_faults import (CATEGORY, assert_categories_equal, describe, kill_at_chunk, seed_categories,
                               settings_module, subprocess_env)

PYTHON = sys.executable
# Tables of this many source rows or more are split (seed_core's Book has 14, Author 10, Category 9).
SPLIT_ROWS = 5
SPLIT_PAIRS = [h.pair("pg_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "pg_b")]
# Between these vendors whole tables (and key ranges) stream database to database.
STREAMING = {("pg_a", "pg_b"), ("pg_a", "mysql_b"), ("mysql_a", "pg_b"), ("sqlite_a", "pg_b")}


def split_copy(source, dest, *labels, **options):
    """Run `dbcopy copy` with tables of SPLIT_ROWS rows or more split into key ranges."""
    with override_settings(DBCOPY_SPLIT_ROWS=SPLIT_ROWS):
        return h.dbcopy("copy", *(labels or ("copytest",)), source=source, dest=dest, **options)


def one_entry_per_model(report):
    labels = [(entry["model"], entry["dest"]) for entry in report["models"]]
    assert len(labels) == len(set(labels)), labels


@pytest.mark.parametrize("source,dest", SPLIT_PAIRS)
def test_a_split_table_copies_identically_and_reports_one_entry_per_table(source, dest, report_path):
    h.seed_core(source)
    result = split_copy(source, dest, jobs=3, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest)
    one_entry_per_model(result.report)
    book = result.entry("copytest.Book")
    # LOAD DATA into one table holds its AUTO-INC lock: a table streaming into MariaDB loads whole.
    ranges = 1 if h.alias_vendor(dest) == "mysql" else 3
    assert book["key_ranges"] == ranges, book
    assert book["copied_rows"] == book["source_rows"] == book["dest_rows"] == m.Book.objects.using(source).count()
    # A self-referencing table: its ranges insert the parents as NULL, one pass per table sets them.
    category = result.entry(CATEGORY)
    assert category["key_ranges"] == ranges and category["status"] == "ok", category
    assert result.entry("copytest.Publisher")["key_ranges"] == 1  # 3 rows: copied whole
    assert result.report["jobs"] == 3
    if (source, dest) in STREAMING:
        assert book["method"] == "stream", book


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "mysql_b")])
def test_a_table_streaming_into_mariadb_loads_whole_and_the_plan_says_so(source, dest, report_path):
    h.seed_core(source)
    with override_settings(DBCOPY_SPLIT_ROWS=SPLIT_ROWS):
        plan = h.dbcopy("plan", "copytest.Book", source=source, dest=dest, jobs=3, verbosity=2)
    assert "split into" not in plan.output, plan.output
    result = split_copy(source, dest, jobs=3, report_json=report_path)
    h.assert_ok(result)
    book = result.entry("copytest.Book")
    assert (book["key_ranges"], book["method"]) == (1, "stream"), book
    h.assert_tables_equal(source, dest)
    # Value by value the rows go in as INSERTs, which take no lock on the whole table: split.
    chunked = split_copy(source, dest, jobs=3, writer="bulk_create", truncate=True, report_json=report_path)
    h.assert_ok(chunked)
    assert chunked.entry("copytest.Book")["key_ranges"] == 3
    h.assert_tables_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_the_chunked_writers_read_only_their_key_range(source, dest, report_path):
    h.seed_core(source)
    result = split_copy(source, dest, jobs=2, writer="bulk_create", chunk_size=3, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest)
    book = result.entry("copytest.Book")
    assert (book["key_ranges"], book["method"], book["copied_rows"]) == (2, "bulk_create", 14), book


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b")])
def test_the_plan_says_which_tables_are_split_and_how_many_workers_run(source, dest):
    h.seed_core(source)
    with override_settings(DBCOPY_SPLIT_ROWS=SPLIT_ROWS):
        plan = h.dbcopy("plan", "copytest", source=source, dest=dest, jobs=3, verbosity=2)
    h.assert_ok(plan)
    lines = {line.split("│")[2].strip(): line for line in plan.stdout.splitlines() if line.count("│") > 6}
    assert "split into 3 key ranges" in lines["copytest.Book"]
    assert "key ranges" not in lines["copytest.Publisher"]
    assert "Workers: --jobs 3 (as given)" in plan.stdout


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_a_refused_row_in_one_key_range_fails_only_its_table_and_names_the_row(source, dest, report_path):
    h.seed_core(source)
    books = list(m.Book.objects.using(source).order_by("pk").values_list("pk", flat=True))
    bad = books[-2]  # in the last range; SQLite keeps a title PostgreSQL refuses (varchar(200))
    m.Book.objects.using(source).filter(pk=bad).update(title="x" * 300)
    result = split_copy(source, dest, jobs=3, report_json=report_path)
    assert result.returncode == 1, result
    one_entry_per_model(result.report)
    book = result.entry("copytest.Book")
    assert book["status"] == "failed" and book["key_ranges"] == 3, book
    assert f"pk={bad}" in book["reason"] and "pk >" in book["reason"], book["reason"]
    # The other ranges, and the rows before the refused one in its range, were committed.
    assert book["copied_rows"] == book["dest_rows"] == len(books) - 2, book
    assert result.entry("copytest.Review")["status"] == "blocked"
    assert result.entry("copytest.Author")["status"] == "ok" and result.entry("copytest.Author")["key_ranges"] == 3
    assert "copytest.Book" in result.error


def test_default_jobs_reads_one_snapshot_or_stays_one():
    cores = os.cpu_count() or 1
    assert default_jobs("pg_a")[0] == min(MAX_DEFAULT_JOBS, cores)
    # MariaDB's workers begin their snapshots together (test_synchronized_snapshot.py).
    assert default_jobs("mysql_a")[0] == min(MAX_DEFAULT_JOBS, cores)
    jobs, why = default_jobs("sqlite_a")
    assert jobs == 1 and "--jobs N" in why, why


@pytest.mark.parametrize("source,dest,expected", [
    pytest.param("pg_a", "mysql_b", min(MAX_DEFAULT_JOBS, os.cpu_count() or 1), marks=h.db_mark("pg_a", "mysql_b"), id="pg"),
    pytest.param("mysql_a", "pg_b", min(MAX_DEFAULT_JOBS, os.cpu_count() or 1), marks=h.db_mark("mysql_a", "pg_b"), id="mysql"),
    pytest.param("sqlite_a", "pg_b", 1, marks=h.db_mark("sqlite_a", "pg_b"), id="sqlite"),
])
def test_without_jobs_a_copy_takes_the_default_and_keeps_one_snapshot(source, dest, expected, report_path):
    h.seed_core(source)
    plan = h.dbcopy("plan", "copytest", source=source, dest=dest)
    h.assert_ok(plan)
    assert f"Workers: --jobs {expected} (the default" in plan.stdout, plan.stdout[-800:]
    assert "Source snapshot: consistent" in plan.stdout
    result = split_copy(source, dest, report_json=report_path)
    h.assert_ok(result)
    assert result.report["jobs"] == expected and result.report["consistent"] is True, result.report
    h.assert_tables_equal(source, dest)
    timings = result.report["timings"]
    assert list(timings) == ["connect", "plan", "preflight", "copy", "reconcile"], timings
    assert all(seconds >= 0 for seconds in timings.values())


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_an_explicit_jobs_wins_over_the_default(source, dest, report_path):
    h.seed_core(source)
    result = split_copy(source, dest, jobs=2, report_json=report_path)
    h.assert_ok(result)
    assert result.report["jobs"] == 2 and result.report["consistent"] is False
    assert "key range" in result.report["snapshot"]
    assert result.entry("copytest.Book")["key_ranges"] == 2
    h.assert_tables_equal(source, dest)


# ----------------------------------------------------------------------------------------
# Faults: retries, interrupts and --resume of a split table
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "pg_b")])
def test_a_killed_connection_retries_its_key_range_alone(source, dest, monkeypatch, report_path):
    seed_categories(source, 120)
    state = kill_at_chunk(monkeypatch, CATEGORY, dest, chunk=3)
    with override_settings(DBCOPY_SPLIT_ROWS=50):
        result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, jobs=2, writer="bulk_create", chunk_size=10,
                          report_json=report_path)
    assert state["killed"] >= 1  # two workers may both reach the chunk before the first kill is counted
    h.assert_ok(result)
    category = result.entry(CATEGORY)
    assert category["retries"] >= 1 and category["key_ranges"] == 2, category
    assert_categories_equal(source, dest)


def interrupt_at_chunk(monkeypatch, label, chunk):
    """Ask the run to stop, as Ctrl-C does, when the step `label` reports its `chunk`-th chunk."""
    original = Runner.progress
    state = {"chunks": 0}

    def progress(self, event, step, **data):
        if event == "chunk" and step is not None and step.label == label:
            state["chunks"] += 1
            if state["chunks"] == chunk:
                self.stop_signal = signal.SIGINT
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_resume_continues_every_key_range_of_an_interrupted_split_table(source, dest, monkeypatch, report_path):
    seed_categories(source, 200)
    interrupt_at_chunk(monkeypatch, CATEGORY, chunk=7)
    options = dict(jobs=2, writer="bulk_create", chunk_size=10, report_json=report_path)
    with override_settings(DBCOPY_SPLIT_ROWS=50):
        stopped = h.dbcopy("copy", CATEGORY, source=source, dest=dest, **options)
        assert stopped.returncode == 128 + signal.SIGINT, stopped
        entry = stopped.entry(CATEGORY)
        assert entry["status"] == "interrupted" and "key ranges" in entry["reason"], entry
        assert 0 < m.Category.objects.using(dest).count() < 200
        monkeypatch.undo()
        resumed = h.dbcopy("copy", CATEGORY, source=source, dest=dest, resume=True, **options)
    h.assert_ok(resumed)
    entry = resumed.entry(CATEGORY)
    assert entry["key_ranges"] == 2 and entry["resumed_rows"] > 0, entry
    assert entry["copied_rows"] + entry["resumed_rows"] == 200, entry
    assert_categories_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b")])
def test_resume_takes_each_key_range_as_it_finds_it(source, dest, report_path):
    """One range complete, one half copied, one not started (ranges commit apart, out of key order)."""
    seed_categories(source, 90)
    step = build_plan(source, dest, [CATEGORY]).steps[0]
    ranges = key_ranges(step, 3, 90)
    assert len(ranges) == 3
    rows = list(m.Category.objects.using(source).order_by("pk").values_list("pk", "name"))
    first, second = ([r for r in rows if _in_range(r[0], key_range)] for key_range in ranges[:2])
    written = first + second[:len(second) // 2]
    # As a copy writes them: the self-references are set by the pass after every range.
    m.Category.objects.using(dest).bulk_create([m.Category(pk=pk, name=name) for pk, name in written])
    with override_settings(DBCOPY_SPLIT_ROWS=50):
        result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, resume=True, jobs=3, report_json=report_path)
    h.assert_ok(result)
    entry = result.entry(CATEGORY)
    assert (entry["resumed_rows"], entry["copied_rows"], entry["key_ranges"]) == (len(written), 90 - len(written), 3)
    assert_categories_equal(source, dest)


def _in_range(pk, key_range):
    low, high = key_range
    return (low is None or pk > low) and (high is None or pk <= high)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_resume_refuses_a_key_range_with_a_gap(source, dest, report_path):
    """The range is left as it is and named; the table's other ranges go on (each range is on its own)."""
    seed_categories(source, 90)
    # Rows 1-10 and 20-25 of the first range (pk <= 30): not what an interrupted copy leaves.
    kept = [pk for pk in range(1, 26) if pk <= 10 or pk >= 20]
    m.Category.objects.using(dest).bulk_create([m.Category(pk=pk, name=f"category {pk:05d}") for pk in kept])
    with override_settings(DBCOPY_SPLIT_ROWS=50):
        result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, resume=True, jobs=3, writer="bulk_create",
                          report_json=report_path)
    assert result.returncode == 1, result
    reason = result.entry(CATEGORY)["reason"]
    assert reason.startswith("pk <= 30: ") and "--resume cannot tell" in reason and "--truncate" in reason, reason
    assert list(m.Category.objects.using(dest).filter(pk__lte=30).values_list("pk", flat=True).order_by("pk")) == kept
    assert m.Category.objects.using(dest).filter(pk__gt=30).count() == 60


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_resume_of_split_ranges_copied_whole_refuses_rather_than_skipping_rows(source, dest):
    """Ranges commit apart: with --jobs 1 the table is resumed whole, and rows after its would-be
    boundary show that the destination is no prefix of the source."""
    seed_categories(source, 90)
    # The first range half copied, the second complete (of ranges pk <= 45, pk > 45).
    written = [pk for pk in range(1, 91) if pk <= 20 or pk > 45]
    m.Category.objects.using(dest).bulk_create([m.Category(pk=pk, name=f"category {pk:05d}") for pk in written])
    result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, resume=True, jobs=1)
    assert result.returncode == 1, result
    assert "--resume cannot tell" in result.output, result
    assert m.Category.objects.using(dest).count() == len(written)


# ----------------------------------------------------------------------------------------
# The command as typed: -v 2 shows where the time went
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b")])
def test_verbosity_2_prints_the_timings_of_every_phase(source, dest):
    h.seed_core(source)
    proc = subprocess.run(
        [PYTHON, "-m", "django", "dbcopy", "copy", "copytest", "--settings", settings_module(), "--source", source,
         "--dest", dest, "--no-input", "-v", "2"],
        cwd=h.REPO_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, describe(proc)
    line = next((line for line in proc.stdout.splitlines() if line.startswith("Timings: ")), "")
    phases = [part.split()[0] for part in line.removeprefix("Timings: ").split(", ")]
    assert phases == ["setup", "connect", "plan", "preflight", "copy", "reconcile", "total"], describe(proc)
    assert "Workers: --jobs" in proc.stdout
