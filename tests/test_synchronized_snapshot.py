"""A MariaDB source with --jobs workers: every worker's connection begins its snapshot while the server
holds its commits (BACKUP STAGE BLOCK_COMMIT), so all of them read one moment, as one connection would."""

import threading
import time

import pytest
from django.db import connections

from dbcopy.dialects import dialect_for
from dbcopy.runner import Runner, default_jobs
from tests import helpers as h
from tests.copytest import models as m
from tests.test_faults import CATEGORY, seed_categories


def commit_from_elsewhere(alias, sql):
    """Run one statement and commit it on a connection of its own (another application)."""
    connection = connections[alias]
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.cursor().execute(sql)
        other.commit()
    finally:
        other.close()


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("mysql_a", "mysql_b")])
def test_workers_read_the_one_moment_the_run_began_at(source, dest, monkeypatch, report_path):
    seed_categories(source, 300)
    for i in range(5):
        m.Tag.objects.using(source).create(name=f"tag {i}")
    jobs, why = default_jobs(source)
    assert jobs == 2 or jobs > 1, why  # the machines have 2 cores or more
    original = Runner.progress
    written, lock = [], threading.Lock()

    def progress(self, event, step, **data):
        with lock:  # two workers start tables at once
            if event == "start" and not written:  # the workers' snapshots began before the first table
                commit_from_elsewhere(source, "INSERT INTO copytest_tag (name) VALUES ('written during the copy')")
                written.append(step.label)
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    result = h.dbcopy("copy", CATEGORY, "copytest.Tag", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    assert written, "the hook never wrote"
    assert result.report["consistent"] is True, result.report.get("snapshot")
    assert "begun by every worker" in result.output
    # Neither worker saw the row committed after the run began.
    assert m.Tag.objects.using(dest).count() == 5
    assert not m.Tag.objects.using(dest).filter(name="written during the copy").exists()
    assert m.Category.objects.using(dest).count() == 300


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b")])
def test_commits_wait_while_the_workers_begin(source, dest):
    dialect = dialect_for(source)
    assert dialect.can_hold_commits()
    committed = []

    def writer():
        commit_from_elsewhere(source, "INSERT INTO copytest_tag (name) VALUES ('held')")
        committed.append(time.monotonic())

    with dialect.commits_held():
        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(1.0)
        released = time.monotonic()
        assert not committed, "a commit went through while commits were held"
    thread.join(30)
    assert committed and committed[0] >= released
    assert m.Tag.objects.using(source).filter(name="held").count() == 1


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_a_source_that_cannot_begin_snapshots_together_defaults_to_one_worker(source, dest):
    jobs, why = default_jobs(source)
    assert jobs == 1 and "belongs to one connection" in why
