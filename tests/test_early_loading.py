"""A table whose destination checks its foreign keys once, after loading (MariaDB's LOAD DATA with
foreign_key_checks off, PostgreSQL with its FK triggers off), starts loading while the tables it refers
to still load: only the check and the commit wait for them. If one of them fails, or a signal comes,
the waiting table is rolled back and says why."""

import signal
import threading

import pytest

from dbcopy.engine import CopyStrategy
from dbcopy.runner import Runner
from tests import helpers as h
from tests.copytest import models as m

PARENT, CHILD = "copytest.Publisher", "copytest.Book"
EARLY_PAIRS = [h.pair("pg_a", "pg_b"), h.pair("mysql_a", "mysql_b"), h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")]


@pytest.fixture
def parent_held_until_child_loaded(monkeypatch):
    """Hold the parent table back until the child has loaded its rows and waits to check them, so the
    child demonstrably loads before its parent is committed; return what the child saw then."""
    child_waits = threading.Event()
    seen = []
    run, await_parents = CopyStrategy.run, Runner.await_parents

    def held_run(self, step, result):
        if step.label == PARENT and not child_waits.wait(30):
            raise AssertionError(f"{CHILD} did not start loading while {PARENT} was still to load")
        return run(self, step, result)

    def watched_await(self, step, stopped=lambda: False):
        if step.label == CHILD and step in self.early:
            seen.append({"parents_done": self.early[step] <= self.units_done})
            child_waits.set()
            if getattr(self, "interrupt_while_waiting", False):
                self.stop_signal = signal.SIGINT  # what the SIGINT handler does
        return await_parents(self, step, stopped)

    monkeypatch.setattr(CopyStrategy, "run", held_run)
    monkeypatch.setattr(Runner, "await_parents", watched_await)
    return seen


@pytest.mark.parametrize("source,dest", EARLY_PAIRS)
def test_a_table_loads_before_the_table_it_refers_to_is_committed(source, dest, parent_held_until_child_loaded,
                                                                   report_path):
    h.seed_core(source)
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, jobs=4, report_json=report_path)
    h.assert_ok(result)
    assert parent_held_until_child_loaded == [{"parents_done": False}]
    assert result.entry(CHILD)["method"] == "stream", result.entry(CHILD)
    h.assert_tables_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_a_table_loaded_early_is_rolled_back_when_its_parent_fails(source, dest, parent_held_until_child_loaded,
                                                                    report_path):
    h.seed_core(source)
    bad = m.Publisher.objects.using(source).order_by("pk").last().pk
    m.Publisher.objects.using(source).filter(pk=bad).update(name="x" * 300)  # SQLite keeps what varchar(100) refuses
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, jobs=4, report_json=report_path)
    assert result.returncode == 1, result
    assert parent_held_until_child_loaded == [{"parents_done": False}]
    publisher, book = result.entry(PARENT), result.entry(CHILD)
    assert publisher["status"] == "failed" and f"pk={bad}" in publisher["reason"], publisher
    assert book["status"] == "blocked" and PARENT in book["reason"], book
    assert book["copied_rows"] == 0 and m.Book.objects.using(dest).count() == 0  # its loaded rows rolled back
    assert result.entry("copytest.Review")["status"] == "blocked"
    assert result.entry("copytest.Tag")["status"] == "ok"  # independent tables went on


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b"), h.pair("mysql_a", "mysql_b")])
def test_an_interrupt_while_a_table_waits_for_its_parent_rolls_it_back_and_resume_finishes(
        source, dest, parent_held_until_child_loaded, monkeypatch, report_path):
    h.seed_core(source)
    monkeypatch.setattr(Runner, "interrupt_while_waiting", True, raising=False)
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, jobs=4, report_json=report_path)
    assert result.returncode == 128 + signal.SIGINT, result
    assert result.entry(CHILD)["status"] == "interrupted", result.entry(CHILD)
    assert m.Book.objects.using(dest).count() == 0  # loaded, never committed
    monkeypatch.setattr(Runner, "interrupt_while_waiting", False, raising=False)
    resumed = h.dbcopy("copy", "copytest", source=source, dest=dest, jobs=4, resume=True, report_json=report_path)
    h.assert_ok(resumed)
    h.assert_tables_equal(source, dest)
