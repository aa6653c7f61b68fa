"""Faults as input: killed connections, signals, SIGKILL and --resume, locks, pre-flight of options.

Backends are killed from a second connection, as an operator, a failover or an OOM killer would:
``pg_terminate_backend()`` on PostgreSQL, ``KILL`` on MariaDB, at a chosen chunk of a chosen table
(a hook on the runner's progress events). Signals go to a real ``python -m django dbcopy``
subprocess. Every test then looks at what the destination holds, row by row.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
from django.db import connections

from dbcopy.dialects import lines
from dbcopy.dialects import postgresql as pg_dialect
from dbcopy.dialects import sqlite_stream
from dbcopy.runner import Runner
from tests import helpers as h
from tests.copytest import models as m

PYTHON = sys.executable
CATEGORY = "copytest.Category"


def settings_module():
    from django.conf import settings

    return settings.SETTINGS_MODULE or "tests.settings.all_backends"


def subprocess_env():
    env = dict(os.environ, DBCOPY_TEST_USE_TEST_NAMES="1", PYTHONUNBUFFERED="1", COLUMNS="200")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def describe(proc, stdout=None, stderr=None):
    out = proc.stdout if stdout is None else stdout
    err = proc.stderr if stderr is None else stderr
    return f"$ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"


# ----------------------------------------------------------------------------------------
# Killing backends
# ----------------------------------------------------------------------------------------


def backend_id(alias):
    """Return the server's id for this thread's connection of the alias (PostgreSQL pid, MariaDB thread)."""
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    return raw.get_backend_pid() if h.alias_vendor(alias) == "postgresql" else raw.thread_id()


def started_backend_id(alias, started):
    """Return the server id of this thread's connection, as read when the step started if it is still
    the same connection: a stream's reading thread may be inside a fetch on it now, and mysqlclient
    refuses a second thread's call (thread_id() included) while one runs."""
    if started and connections[alias].connection is started["raw"]:
        return started["backend"]
    return backend_id(alias)


def kill_backend(alias, backend):
    """Kill a server connection from a second connection of our own."""
    connection = connections[alias]
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        cursor = other.cursor()
        if h.alias_vendor(alias) == "postgresql":
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
            assert cursor.fetchone()[0] is True, f"could not terminate backend {backend}"
        else:
            cursor.execute(f"KILL {int(backend)}")
    finally:
        other.close()


def kill_at_chunk(monkeypatch, label, alias, chunk=2, backends=None):
    """Kill server connections of the alias when the step `label` reports its `chunk`-th chunk (once).

    backends: a function returning the server ids to kill; by default this thread's connection.
    """
    original = Runner.progress
    state = {"chunks": 0, "killed": 0}
    started = {}
    backends = backends or (lambda: [started_backend_id(alias, started)])

    def progress(self, event, step, **data):
        if event == "start" and step is not None and step.label == label:
            started.update(raw=connections[alias].connection, backend=backend_id(alias))
        if event == "chunk" and step is not None and step.label == label and not state["killed"]:
            state["chunks"] += 1
            if state["chunks"] >= chunk:
                for backend in backends():
                    kill_backend(alias, backend)
                    state["killed"] += 1
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    return state


def seed_categories(alias, n):
    """A self-referencing tree whose parents mostly have *higher* ids (the deferred-FK pass sets them)."""
    rows = [m.Category(pk=i, name=f"category {i:05d}") for i in range(1, n + 1)]
    m.Category.objects.using(alias).bulk_create(rows, batch_size=2000)
    for start in range(1, n + 1, 500):
        batch = list(range(start, min(start + 500, n + 1)))
        for pk in batch:
            parent = pk + 7 if pk + 7 <= n else None
            if pk % 10 == 0:
                parent = pk - 3 if pk > 3 else None
            m.Category.objects.using(alias).filter(pk=pk).update(parent_id=parent)


def assert_categories_equal(source, dest):
    assert h.diff_tables(m.Category, source, dest) == []


def entry(report_path, label):
    data = json.loads(report_path.read_text())
    return data, next(e for e in data["models"] if e["model"] == label)


# ----------------------------------------------------------------------------------------
# Retries after a killed connection
# ----------------------------------------------------------------------------------------


def kill_case(source, dest, killed, writer):
    side = "source" if killed == source else "dest"
    return pytest.param(source, dest, killed, writer, id=f"{source}-{dest}-kill-{side}-{writer}", marks=h.db_mark(source, dest))


@pytest.mark.parametrize("source,dest,killed,writer", [
    kill_case("pg_a", "sqlite_b", "pg_a", "fast"),
    kill_case("pg_a", "pg_b", "pg_a", "bulk_create"),
    kill_case("pg_a", "pg_b", "pg_b", "bulk_create"),
    kill_case("mysql_a", "pg_b", "mysql_a", "fast"),
    kill_case("mysql_a", "pg_b", "pg_b", "fast"),
    kill_case("sqlite_a", "mysql_b", "mysql_b", "bulk_create"),  # its stream: test_faults_load_data.py
    kill_case("pg_a", "mysql_b", "mysql_b", "bulk_create"),
])
def test_killed_connection_mid_table_is_retried_from_the_last_committed_key(source, dest, killed, writer, monkeypatch, report_path):
    # Where the fast writer streams the table, it reports progress as often as chunks of 50 would.
    monkeypatch.setattr(lines, "FETCH_ROWS", 50)
    monkeypatch.setattr(pg_dialect, "_STREAM_REPORT_EVERY", 50)
    monkeypatch.setattr(sqlite_stream, "BATCH_ROWS", 50)
    monkeypatch.setattr(sqlite_stream, "STREAM_REPORT_EVERY", 50)
    seed_categories(source, 600)
    state = kill_at_chunk(monkeypatch, CATEGORY, killed, chunk=3)
    # One worker: the hook kills the connection of the thread that reports, which then reads on.
    result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, chunk_size=50, writer=writer, jobs=1,
                      report_json=report_path)
    assert state["killed"] == 1, "the hook never killed the connection"
    h.assert_ok(result)
    assert_categories_equal(source, dest)  # no row twice, none missing, every parent set
    data, row = entry(report_path, CATEGORY)
    assert row["retries"] >= 1, row
    assert data["retries"] >= 1
    assert "retry" in result.output.lower()
    # PostgreSQL's exported snapshot outlives a reader; MariaDB's dies with the connection that held it.
    assert data["consistent"] is (h.alias_vendor(source) == "postgresql" or killed != source), data["snapshot"]


@pytest.mark.parametrize("killed", ["pg_a", "pg_b"])
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b")])
def test_killed_connection_mid_stream_restarts_the_table(source, dest, killed, monkeypatch, report_path):
    """PostgreSQL to PostgreSQL streams COPY into COPY in one transaction: a fault rolls the table back
    and the retry streams it again, never on the dead connection."""
    monkeypatch.setattr(pg_dialect, "_STREAM_REPORT_EVERY", 50)
    seed_categories(source, 3000)
    state = kill_at_chunk(monkeypatch, CATEGORY, killed, chunk=1)
    # One worker: the killed connection is the one the deferred-FK pass uses next (the default is
    # min(4, cores) from PostgreSQL, whose workers close theirs at the end of each table).
    result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, jobs=1, report_json=report_path)
    assert state["killed"] == 1
    h.assert_ok(result)
    assert_categories_equal(source, dest)
    data, row = entry(report_path, CATEGORY)
    assert row["method"] == "stream" and row["retries"] >= 1, row


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b", "sqlite_a")])
def test_lasting_source_fault_fails_the_step_names_the_source_and_the_rest_goes_on(source, dest, monkeypatch, report_path):
    """With no retries left, a killed source fails its step: the message says the source failed (not a
    refused row) and where; independent steps are copied; the copied rows keep their parents."""
    seed_categories(source, 400)
    for i in range(5):
        m.Tag.objects.using(source).create(name=f"tag {i}")
    kill_at_chunk(monkeypatch, CATEGORY, source, chunk=2)
    result = h.dbcopy("copy", CATEGORY, "copytest.Tag", source=source, dest=dest, chunk_size=50, retries=0,
                      writer="bulk_create", report_json=report_path)
    assert result.returncode == 1, result
    assert "Traceback" not in result.output
    data, row = entry(report_path, CATEGORY)
    assert row["status"] == "failed", row
    assert re.search(rf"reading '{source}' after pk=100 failed", row["reason"]), row["reason"]
    assert "refuse" not in row["reason"]
    assert m.Category.objects.using(dest).count() == 100  # the two committed chunks stay
    tag = next(e for e in data["models"] if e["model"] == "copytest.Tag")
    assert tag["status"] == "ok" and m.Tag.objects.using(dest).count() == 5
    # Rows the copy kept are exact, except the self-references a failed table cannot complete.
    kept = dict(m.Category.objects.using(dest).values_list("pk", "name"))
    assert kept == dict(m.Category.objects.using(source).filter(pk__lte=100).values_list("pk", "name"))


# ----------------------------------------------------------------------------------------
# Signals and SIGKILL on the real command line, then --resume
# ----------------------------------------------------------------------------------------


def copy_argv(source, dest, *extra):
    return [
        PYTHON, "-m", "django", "dbcopy", "copy", CATEGORY, "copytest.Tag", "--settings", settings_module(),
        "--source", source, "--dest", dest, "--no-input", "--chunk-size", "100", "--writer", "bulk_create",
        "-v", "2", *extra,
    ]


def start_and_signal(argv, signum, after_rows=300):
    """Start the command, wait until it has copied `after_rows` of Category, send the signal; return
    (process, stdout, stderr)."""
    proc = subprocess.Popen(argv, cwd=h.REPO_DIR, env=subprocess_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    pattern = re.compile(rf"^\s+{re.escape(CATEGORY)}: ([\d,]+) rows")
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        seen.append(line)
        found = pattern.match(line)
        if found and int(found.group(1).replace(",", "")) >= after_rows:
            proc.send_signal(signum)
            break
        assert time.monotonic() < deadline, "the copy never reached the table"
    out, err = proc.communicate(timeout=120)
    return proc, "".join(seen) + out, err


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_signal_stops_after_the_chunk_prints_the_resume_command_and_resume_finishes(source, dest, signum, code):
    seed_categories(source, 20000)
    m.Tag.objects.using(source).create(name="after the categories")
    proc, out, err = start_and_signal(copy_argv(source, dest), signum)
    text = out + err
    assert proc.returncode == code, describe(proc, out, err)
    assert "Traceback" not in text, describe(proc, out, err)
    copied = m.Category.objects.using(dest).count()
    assert 0 < copied < 20000 and copied % 100 == 0, f"{copied} rows: not whole chunks of an interrupted table"
    assert m.Tag.objects.using(dest).count() == 0, "a step after the interrupt was started"
    found = re.search(r"To continue: (.+)", text)
    assert found, describe(proc, out, err)
    command = found.group(1).strip()
    assert "--resume" in command and "--truncate" not in command

    # A plain re-run refuses and says what to do.
    again = subprocess.run(copy_argv(source, dest), cwd=h.REPO_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert again.returncode == 2, describe(again)
    assert "--resume" in again.stderr + again.stdout and "--truncate" in again.stderr + again.stdout

    assert command.startswith("python -m django dbcopy copy "), command  # the way this run was started
    argv = [PYTHON, *shlex.split(command)[1:]]
    resumed = subprocess.run(argv, cwd=h.REPO_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, describe(resumed)
    assert_categories_equal(source, dest)
    assert h.diff_tables(m.Tag, source, dest) == []


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_sigkill_mid_table_then_resume_copies_every_row_once(source, dest, tmp_path):
    """SIGKILL gives the process no say: the destination holds whole committed chunks, some parents
    still NULL, no sequence reset. --resume continues after the last copied key and finishes."""
    seed_categories(source, 20000)
    m.Tag.objects.using(source).create(name="after the categories")
    proc, out, err = start_and_signal(copy_argv(source, dest), signal.SIGKILL, after_rows=500)
    assert proc.returncode == -signal.SIGKILL
    copied = m.Category.objects.using(dest).count()
    assert 0 < copied < 20000, f"{copied} rows copied: the kill did not land mid-table"

    compare = h.dbcopy("compare", CATEGORY, source=source, dest=dest)
    assert compare.returncode == 1, compare  # counts differ: the table is not called "ok"

    report = tmp_path / "resume.json"
    resumed = subprocess.run(copy_argv(source, dest, "--resume", "--report-json", str(report)),
                             cwd=h.REPO_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, describe(resumed)
    assert_categories_equal(source, dest)
    assert h.diff_tables(m.Tag, source, dest) == []
    _, row = entry(report, CATEGORY)
    assert row["resumed_rows"] == copied and row["copied_rows"] == 20000 - copied, row
    # The sequence was reset: a new row gets a fresh id.
    new = m.Category.objects.using(dest).create(name="new")
    assert new.pk > 20000


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_resume_of_a_finished_copy_fills_only_what_is_missing(source, dest, report_path):
    """Deferred references left NULL by an interrupted run are found by compare and set by --resume."""
    seed_categories(source, 300)
    h.assert_ok(h.dbcopy("copy", CATEGORY, source=source, dest=dest))
    m.Category.objects.using(dest).update(parent=None)  # as if the run died before its deferred-FK pass
    compare = h.dbcopy("compare", CATEGORY, source=source, dest=dest, report_json=report_path)
    assert compare.returncode == 1, compare
    _, row = entry(report_path, CATEGORY)
    assert row["status"] == "mismatch" and "no parent yet" in row["reason"], row
    resumed = h.dbcopy("copy", CATEGORY, source=source, dest=dest, resume=True, report_json=report_path)
    h.assert_ok(resumed)
    assert_categories_equal(source, dest)
    _, row = entry(report_path, CATEGORY)
    assert row["copied_rows"] == 0 and row["resumed_rows"] == 300, row


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_resume_refuses_a_destination_that_is_not_a_prefix_of_the_source(source, dest):
    seed_categories(source, 50)
    m.Category.objects.using(dest).create(pk=40, name="written by someone else")
    result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, resume=True)
    assert result.returncode == 1, result
    assert "--truncate" in result.output and CATEGORY in result.output
    assert list(m.Category.objects.using(dest).values_list("pk", flat=True)) == [40]


# ----------------------------------------------------------------------------------------
# Consistent snapshot
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest,jobs,consistent", [
    pytest.param("pg_a", "sqlite_b", 2, True, marks=h.db_mark("pg_a", "sqlite_b"), id="pg-jobs2"),
    pytest.param("mysql_a", "sqlite_b", 1, True, marks=h.db_mark("mysql_a", "sqlite_b"), id="mysql-jobs1"),
    # MariaDB's workers begin their snapshots while the server holds its commits.
    pytest.param("mysql_a", "pg_b", 2, True, marks=h.db_mark("mysql_a", "pg_b"), id="mysql-jobs2"),
    pytest.param("sqlite_a", "pg_b", 1, True, marks=h.db_mark("sqlite_a", "pg_b"), id="sqlite-jobs1"),
    pytest.param("sqlite_a", "pg_b", 2, False, marks=h.db_mark("sqlite_a", "pg_b"), id="sqlite-jobs2"),
])
def test_plan_and_report_say_whether_the_source_was_read_in_one_snapshot(source, dest, jobs, consistent, report_path):
    h.seed_core(source)
    plan = h.dbcopy("plan", "copytest", source=source, dest=dest, jobs=jobs)
    h.assert_ok(plan)
    assert ("Source snapshot: consistent" in plan.stdout) is consistent, plan.stdout[-500:]
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, jobs=jobs, report_json=report_path)
    h.assert_ok(result)
    assert result.report["consistent"] is consistent, result.report["snapshot"]
    h.assert_tables_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b"), h.pair("mysql_a", "sqlite_b")])
def test_rows_committed_at_the_source_during_the_copy_are_not_half_seen(source, dest, monkeypatch, report_path):
    """A writer commits at the source between two tables of the copy: the copy reads the snapshot of
    its start, so the destination and the reconciliation both show the data as it was."""
    h.seed_core(source)
    original = Runner.progress
    wrote = []

    def progress(self, event, step, **data):
        if event == "start" and step is not None and step.label == "copytest.Book" and not wrote:
            other = connections.create_connection(source)
            try:
                author = m.Author.objects.using(source).first()
                with other.cursor() as cursor:
                    q = other.ops.quote_name
                    cursor.execute(f"UPDATE {q(m.Author._meta.db_table)} SET {q('name')} = %s WHERE {q('id')} = %s",
                                   ["renamed during the copy", author.pk])
                wrote.append(author.pk)
            finally:
                other.close()
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    before = list(m.Author.objects.using(source).values_list("name", flat=True).order_by("pk"))
    labels = ("copytest.Author", "copytest.Publisher", "copytest.Currency", "copytest.Tag", "copytest.Book")
    result = h.dbcopy("copy", *labels, source=source, dest=dest, report_json=report_path)
    assert wrote
    h.assert_ok(result)
    assert list(m.Author.objects.using(dest).values_list("name", flat=True).order_by("pk")) == before
    assert result.report["consistent"] is True


# ----------------------------------------------------------------------------------------
# Overlap and options checked before anything is written
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "pg_b")])
def test_second_copy_into_a_locked_destination_exits_3_and_writes_nothing(source, dest):
    from dbcopy.dialects import dialect_for

    h.seed_core(source)
    other = connections.create_connection(dest)
    lock = type(dialect_for(dest))(other).sync_lock()
    try:
        assert lock.acquire()
        result = h.dbcopy("copy", "copytest", source=source, dest=dest, truncate=True)
        assert result.returncode == 3, result
        assert "Another dbcopy copy or sync is writing" in result.output
        assert m.Book.objects.using(dest).count() == 0
    finally:
        lock.release()
        other.close()


@h.db_mark("sqlite_a", "sqlite_b")
def test_truncate_without_a_terminal_asks_for_no_input(tmp_path):
    proc = subprocess.run(
        [PYTHON, "-m", "django", "dbcopy", "copy", "copytest", "--settings", settings_module(),
         "--source", "sqlite_a", "--dest", "sqlite_b", "--truncate"],
        cwd=h.REPO_DIR, env=subprocess_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, describe(proc)
    assert "--no-input" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "sqlite_b")])
def test_unwritable_report_path_is_refused_before_copying(source, dest, tmp_path):
    h.seed_core(source)
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=tmp_path / "missing" / "r.json")
    assert result.returncode == 2, result
    assert "--report-json" in result.output
    assert m.Book.objects.using(dest).count() == 0


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_copy_prints_the_cross_database_warnings_plan_prints(source, dest):
    h.seed_core(source)
    plan = h.dbcopy("plan", "copytest.Book", source=source, dest=dest)
    warnings = [line for line in plan.stdout.splitlines() if line.startswith("warning:")]
    assert warnings, plan.stdout
    result = h.dbcopy("copy", "copytest.Book", source=source, dest=dest)
    for warning in warnings:
        assert warning in result.stdout


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b")])
def test_interrupt_during_a_stream_rolls_the_table_back(source, dest, monkeypatch, report_path):
    """The signal handler only sets a flag; the stream notices it at its next progress report, aborts the
    COPY, and the destination keeps nothing of that table."""
    monkeypatch.setattr(pg_dialect, "_STREAM_REPORT_EVERY", 50)
    monkeypatch.setattr(pg_dialect, "_COPY_BLOCK", 4096)  # several reads for this small table
    seed_categories(source, 3000)
    m.Tag.objects.using(source).create(name="after the categories")
    original = Runner.progress
    sent = []

    def progress(self, event, step, **data):
        if event == "chunk" and step is not None and step.label == CATEGORY and not sent:
            self.stop_signal = signal.SIGINT  # what the handler does
            sent.append(data["copied"])
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    # One worker: with two, the other may copy the tags before the signal, as it should.
    result = h.dbcopy("copy", CATEGORY, "copytest.Tag", source=source, dest=dest, jobs=1, report_json=report_path)
    assert result.returncode == 130, result
    assert "Traceback" not in result.output
    assert 0 < sent[0] < 3000, sent  # it arrived mid-stream
    assert m.Category.objects.using(dest).count() == 0
    assert m.Tag.objects.using(dest).count() == 0
    data, row = entry(report_path, CATEGORY)
    assert row["status"] == "interrupted" and data["interrupted_by"] == "SIGINT", row
    assert "--resume" in result.output
    h.assert_ok(h.dbcopy("copy", CATEGORY, "copytest.Tag", source=source, dest=dest, resume=True))
    assert_categories_equal(source, dest)


# ----------------------------------------------------------------------------------------
# Which errors are worth a retry: real errors from the real servers
# ----------------------------------------------------------------------------------------


def provoke_deadlock(alias):
    """Make the server pick a deadlock victim between two connections; return the victim's error."""
    import threading

    from django.db import DatabaseError

    a, b = m.Tag.objects.using(alias).create(name="dl-a").pk, m.Tag.objects.using(alias).create(name="dl-b").pk
    table, q = m.Tag._meta.db_table, connections[alias].ops.quote_name
    update = f"UPDATE {q(table)} SET {q('name')} = {q('name')} WHERE {q('id')} = %s"
    errors, barrier = [], threading.Barrier(2)

    def worker(mine, theirs):
        connection = connections.create_connection(alias)  # wrappers belong to the thread that made them
        try:
            connection.set_autocommit(False)
            with connection.cursor() as cursor:
                cursor.execute(update, [mine])
                barrier.wait(timeout=10)
                cursor.execute(update, [theirs])
            connection.commit()
        except DatabaseError as exc:
            errors.append(exc)
            connection.rollback()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(a, b)), threading.Thread(target=worker, args=(b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("alias", [pytest.param(a, marks=h.db_mark("pg_a", "mysql_a")) for a in ("pg_a", "mysql_a")])
def test_a_real_deadlock_is_transient_and_a_refused_row_is_not(alias):
    from django.db import IntegrityError, transaction

    from dbcopy.dialects import dialect_for

    dialect = dialect_for(alias)
    assert dialect.is_transient_error(provoke_deadlock(alias))
    m.Tag.objects.using(alias).create(name="unique")
    with pytest.raises(IntegrityError) as refused:
        with transaction.atomic(using=alias):
            m.Tag.objects.using(alias).create(name="unique")
    assert not dialect.is_transient_error(refused.value)
    # The other vendor's dialect never claims this one's errors (a step has two sides).
    other = dialect_for("mysql_a" if alias == "pg_a" else "pg_a")
    assert not other.is_transient_error(refused.value)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_the_lock_outlives_a_killed_writer_connection(source, dest, monkeypatch):
    """The destination lock has a connection of its own: killing (and replacing) the connection the
    copy writes with does not let a second run in."""
    from dbcopy.dialects import dialect_for

    seed_categories(source, 300)
    original = Runner.progress
    probes = []

    def progress(self, event, step, **data):
        if event == "chunk" and step is not None and step.label == CATEGORY and len(probes) < 2:
            if not probes:
                kill_backend(dest, backend_id(dest))
            other = connections.create_connection(dest)
            try:
                probe = type(dialect_for(dest))(other).sync_lock()
                taken = probe.acquire()
                if taken:
                    probe.release()
                probes.append(taken)
            finally:
                other.close()
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, chunk_size=50)
    h.assert_ok(result)
    assert probes == [False, False], "another run could take the destination's lock"
    assert_categories_equal(source, dest)
