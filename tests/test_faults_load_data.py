"""Faults on the PostgreSQL → MariaDB stream: COPY TO STDOUT feeding LOAD DATA LOCAL through a FIFO.

Three connections carry one table: the PostgreSQL source (read by a producer thread), the LOAD DATA
connection (a second MariaDB connection, run on a thread of its own) and the destination's own
connection (the main thread, which reports progress and watches the load). Each is killed from a
connection of our own while a table is being loaded; then the destination must hold the whole table
exactly once, or none of it. Signals go to a real ``python -m django dbcopy`` subprocess, and to
this process while the source stalls.

The table is copytest.FreeText with 10 kB bodies (about 30 MB, far more than the FIFO and socket
buffers hold). In-process, the producer is paced to about a thousand rows a second, so a kill at
the first progress report lands mid-load on any machine; the subprocess gets a bigger table.
"""

import os
import re
import shlex
import signal
import subprocess
import threading
import time

import pytest
from django.db import connections

from dbcopy.dialects import lines
from dbcopy.dialects import mysql as my_dialect
from dbcopy.runner import Runner
from tests import helpers as h
from tests.copytest import models as m
from tests.test_faults import (
    PYTHON, describe, entry, kill_at_chunk, kill_backend, settings_module, subprocess_env,
)

TEXT = "copytest.FreeText"
ROWS = 3000
# Generous: the client of a killed LOAD DATA used to wait until TCP gave up (107 s measured here);
# now it takes seconds.
BOUNDED_SECONDS = 60


@pytest.fixture(autouse=True)
def paced_source(monkeypatch):
    """Hand the rows to LOAD DATA at about a thousand a second (a slow source), so a table is still
    loading when the hooks below strike."""
    write = my_dialect._Rewriter.write

    def paced(self, data):
        time.sleep(0.001)
        return write(self, data)

    monkeypatch.setattr(my_dialect._Rewriter, "write", paced)
    # The MariaDB and SQLite sources' lines (a block of 5 rows each) at the same pace.
    blocks = lines.LineFeed.blocks

    def paced_blocks(self):
        for block in blocks(self):
            time.sleep(0.005)
            yield block

    monkeypatch.setattr(lines, "FETCH_ROWS", 5)
    monkeypatch.setattr(lines.LineFeed, "blocks", paced_blocks)


def seed_texts(alias, n=ROWS):
    """Rows of about 10 kB each, all different, with characters LOAD DATA must not misread."""
    filler = "tab\there, back\\slash, new\nline, ünïcødé ✓ — " * 250
    for start in range(1, n + 1, 500):
        rows = [m.FreeText(pk=i, title=f"t{i:05d}", body=f"{i:05d} {filler}"[:10_000])
                for i in range(start, min(start + 500, n + 1))]
        m.FreeText.objects.using(alias).bulk_create(rows)


def assert_texts_equal(source, dest):
    assert h.diff_tables(m.FreeText, source, dest) == []


def loading_connections(dest):
    """Return the server ids of connections running LOAD DATA into the destination's database."""
    connection = connections[dest]
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        cursor = other.cursor()
        cursor.execute(
            "SELECT ID FROM information_schema.PROCESSLIST "
            "WHERE DB = %s AND INFO LIKE 'LOAD DATA%%' AND COMMAND <> 'Killed'",
            [connection.settings_dict["NAME"]],
        )
        return [row[0] for row in cursor.fetchall()]
    finally:
        other.close()


def kill_loader_at_chunk(monkeypatch, label, dest, chunk=1):
    """Kill the LOAD DATA connection when the step `label` reports its `chunk`-th progress (once)."""
    return kill_at_chunk(monkeypatch, label, dest, chunk, backends=lambda: loading_connections(dest))


def reading_connections(source):
    """Return the server ids of MariaDB connections reading a table's lines (dialects/lines.py); the
    driver refuses to name its own connection while an unbuffered result is being read."""
    connection = connections[source]
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        cursor = other.cursor()
        cursor.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND INFO LIKE 'SELECT CAST(CONCAT_WS%%'",
            [connection.settings_dict["NAME"]],
        )
        return [row[0] for row in cursor.fetchall()]
    finally:
        other.close()


def kill_during_load(monkeypatch, side, source, dest):
    """Arm the kill of one side ("loader", "source" or "dest") at the table's first progress report."""
    if side == "loader":
        return kill_loader_at_chunk(monkeypatch, TEXT, dest)
    if side == "source" and h.alias_vendor(source) == "mysql":
        return kill_at_chunk(monkeypatch, TEXT, source, chunk=1, backends=lambda: reading_connections(source))
    return kill_at_chunk(monkeypatch, TEXT, source if side == "source" else dest, chunk=1)


def timed_copy(*labels, **options):
    started = time.monotonic()
    result = h.dbcopy("copy", *labels, **options)
    return result, time.monotonic() - started


def assert_no_stream_threads_left():
    left = [t.name for t in threading.enumerate() if t.name.startswith(("dbcopy-load-data", "dbcopy-copy-out"))]
    assert left == [], f"threads of an aborted stream are still running: {left}"


# ----------------------------------------------------------------------------------------
# A connection killed mid-load: retried, the table loaded exactly once
# ----------------------------------------------------------------------------------------



def assert_stream_retried_in_time(result, seconds, source, dest, report_path):
    """The killed load was retried as a stream, within the bound, and left the tables equal and no thread behind."""
    h.assert_ok(result)
    assert_texts_equal(source, dest)
    _, row = entry(report_path, TEXT)
    assert row["method"] == "stream" and row["retries"] >= 1, row
    assert seconds < BOUNDED_SECONDS, f"the killed load was noticed after {seconds:.0f} s"
    assert_no_stream_threads_left()


@pytest.mark.parametrize("source,dest,side", [
    *(pytest.param("pg_a", "mysql_b", side, id=f"pg_a-mysql_b-{side}", marks=h.db_mark("pg_a", "mysql_b"))
      for side in ("loader", "source", "dest")),
    # The source's own SELECT spells the lines (dialects/lines.py), read through an unbuffered cursor.
    *(pytest.param("mysql_a", "mysql_b", side, id=f"mysql_a-mysql_b-{side}", marks=h.db_mark("mysql_a", "mysql_b"))
      for side in ("loader", "source", "dest")),
    pytest.param("sqlite_a", "mysql_b", "loader", id="sqlite_a-mysql_b-loader", marks=h.db_mark("sqlite_a", "mysql_b")),
])
def test_connection_killed_mid_load_is_noticed_and_the_table_streamed_again(source, dest, side, monkeypatch, report_path):
    seed_texts(source)
    state = kill_during_load(monkeypatch, side, source, dest)
    result, seconds = timed_copy(TEXT, source=source, dest=dest, report_json=report_path)
    assert state["killed"] == 1, f"the hook never killed the {side} connection"
    h.assert_ok(result)
    assert_texts_equal(source, dest)  # no row twice, none missing, every byte
    data, row = entry(report_path, TEXT)
    assert row["method"] == "stream" and row["retries"] >= 1, row
    assert data["retries"] >= 1
    retried = [line for line in result.output.splitlines() if "retry 1 of" in line]
    assert retried, result.output
    if side == "source":
        assert f"reading '{source}'" in retried[0], retried[0]  # the source is named as the side that failed
    else:
        assert f"into '{dest}'" in retried[0], retried[0]
    assert seconds < BOUNDED_SECONDS, f"noticing the killed {side} connection took {seconds:.0f} s"


@pytest.mark.parametrize("side", ["loader", "source", "dest"])
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_without_retries_a_fault_mid_load_fails_the_step_and_keeps_none_of_the_table(source, dest, side, monkeypatch, report_path):
    seed_texts(source)
    for i in range(3):
        m.Tag.objects.using(source).create(name=f"tag {i}")
    state = kill_during_load(monkeypatch, side, source, dest)
    result, seconds = timed_copy(TEXT, "copytest.Tag", source=source, dest=dest, retries=0, report_json=report_path)
    assert state["killed"] == 1
    assert result.returncode == 1, result
    assert "Traceback" not in result.output, result.output
    data, row = entry(report_path, TEXT)
    assert row["status"] == "failed", row
    assert TEXT in row["reason"] and "refuse" not in row["reason"], row["reason"]
    assert (f"reading '{source}'" if side == "source" else f"into '{dest}'") in row["reason"], row["reason"]
    assert m.FreeText.objects.using(dest).count() == 0, "half a table was committed"
    tag = next(e for e in data["models"] if e["model"] == "copytest.Tag")
    assert tag["status"] == "ok" and m.Tag.objects.using(dest).count() == 3  # independent steps go on
    assert seconds < BOUNDED_SECONDS


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_loader_killed_while_the_source_stalls_is_noticed_without_waiting_for_the_source(source, dest, monkeypatch, report_path):
    """A KILLed LOAD DATA client learns of it only when it next writes. While the source sends nothing
    (a lock, a slow plan) that can take forever: the server must be asked instead."""
    seed_texts(source)
    stalled = threading.Event()
    write = my_dialect._Rewriter.write

    def stalling_write(self, data):
        # The first stream stalls mid-table for up to two minutes, or until it is stopped.
        if self.producer.rows >= 200 and not stalled.is_set():
            stalled.set()
            deadline = time.monotonic() + 120
            while not self.producer.stopping and time.monotonic() < deadline:
                time.sleep(0.05)
        return write(self, data)

    monkeypatch.setattr(my_dialect._Rewriter, "write", stalling_write)
    original = Runner.progress
    killed = []

    def progress(self, event, step, **data):
        if event == "chunk" and stalled.is_set() and not killed:
            for loader in loading_connections(dest):
                kill_backend(dest, loader)
                killed.append(loader)
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    result, seconds = timed_copy(TEXT, source=source, dest=dest, report_json=report_path)
    assert killed, "the hook never killed the LOAD DATA connection"
    assert_stream_retried_in_time(result, seconds, source, dest, report_path)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_loader_killed_while_the_server_does_not_read_is_noticed_in_seconds(source, dest, monkeypatch, report_path):
    """The stall measured on these servers: LOAD DATA waits for a row lock, so the client's socket
    buffer fills; KILL then closes the server's end with a zero receive window, and the client's
    send() waits in TCP's persist state until the server's orphaned socket expires (minutes)."""
    seed_texts(source)
    connection = connections[dest]
    blocker = connection.get_new_connection(connection.get_connection_params())
    blocker.autocommit(False)
    blocker.cursor().execute("INSERT INTO copytest_freetext (id, title, body) VALUES (1500, 'lock', '')")
    original = Runner.progress
    seen, killed = [], []

    def progress(self, event, step, **data):
        if event == "chunk" and not killed:
            previous = seen[-1] if seen else None
            seen.append(data["copied"])
            stuck = data["copied"] == previous and data["copied"] > 1500  # waiting for the lock
            if stuck:
                for loader in loading_connections(dest):
                    kill_backend(dest, loader)
                    killed.append(loader)
                blocker.rollback()  # the retry finds no lock
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    try:
        result, seconds = timed_copy(TEXT, source=source, dest=dest, report_json=report_path)
    finally:
        blocker.rollback()
        blocker.close()
    assert killed, f"the load never waited for the lock: {seen}"
    assert_stream_retried_in_time(result, seconds, source, dest, report_path)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_signal_while_the_source_stalls_rolls_the_load_back(source, dest, monkeypatch, report_path):
    """LOAD DATA keeps the loading thread in C; the main thread still handles the signal and the
    stream is cut even though no row is moving."""
    seed_texts(source)
    write = my_dialect._Rewriter.write
    signalled = []

    def stalling_write(self, data):
        if self.producer.rows >= 200:
            if not signalled:
                signalled.append(True)
                os.kill(os.getpid(), signal.SIGINT)  # handled by the runner in the main thread
            deadline = time.monotonic() + 120
            while not self.producer.stopping and time.monotonic() < deadline:
                time.sleep(0.05)
        return write(self, data)

    monkeypatch.setattr(my_dialect._Rewriter, "write", stalling_write)
    result, seconds = timed_copy(TEXT, source=source, dest=dest, report_json=report_path)
    assert signalled
    assert result.returncode == 130, result
    assert "Traceback" not in result.output
    _, row = entry(report_path, TEXT)
    assert row["status"] == "interrupted", row
    assert m.FreeText.objects.using(dest).count() == 0
    assert seconds < BOUNDED_SECONDS


# ----------------------------------------------------------------------------------------
# SIGINT to the real command during LOAD DATA, then the printed resume command
# ----------------------------------------------------------------------------------------


def copy_argv(source, dest, *extra):
    return [
        PYTHON, "-m", "django", "dbcopy", "copy", TEXT, "--settings", settings_module(),
        "--source", source, "--dest", dest, "--no-input", "-v", "2", *extra,
    ]


def signal_during_load(argv, dest, signum):
    """Start the command, send the signal once its LOAD DATA runs; return (process, stdout, stderr)."""
    proc = subprocess.Popen(argv, cwd=h.REPO_DIR, env=subprocess_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not loading_connections(dest):
            assert proc.poll() is None, "the command ended before loading anything"
            assert time.monotonic() < deadline, "the command never started LOAD DATA"
            time.sleep(0.02)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=BOUNDED_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc, out, err


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_signal_during_load_data_rolls_the_table_back_and_resume_finishes(source, dest, signum, code):
    seed_texts(source, 10_000)  # about 100 MB: the real command loads it for seconds, unpaced
    proc, out, err = signal_during_load(copy_argv(source, dest), dest, signum)
    text = out + err
    assert proc.returncode == code, describe(proc, out, err)
    assert "Traceback" not in text, describe(proc, out, err)
    assert m.FreeText.objects.using(dest).count() == 0, "rows of the interrupted load were kept"
    assert loading_connections(dest) == [], "the LOAD DATA outlived the command"
    found = re.search(r"To continue: (.+)", text)
    assert found, describe(proc, out, err)
    command = found.group(1).strip()
    assert command.startswith("python -m django dbcopy copy ") and "--resume" in command, command

    resumed = subprocess.run([PYTHON, *shlex.split(command)[1:]], cwd=h.REPO_DIR, env=subprocess_env(),
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, describe(resumed)
    assert_texts_equal(source, dest)

