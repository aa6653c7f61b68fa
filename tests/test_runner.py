"""One runner for copy and sync: plan shows what a sync reads, sync takes --jobs, statuses are data."""

import pytest

from tests import helpers as h
from tests.copytest import models as m
from tests.test_sync import BOOK_LABELS, BOOK_MODELS, assert_books_equal, seed_books, sync


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_plan_with_sync_options_shows_which_models_a_sync_reads_by_cursor(source, dest):
    seed_books(source, n=3)
    result = h.dbcopy("plan", *BOOK_LABELS, "copytest.SyncItem", source=source, dest=dest,
                      since_field="updated_at", full_refresh=["copytest.SyncAuthor"])
    h.assert_ok(result)
    lines = {line.split("│")[2].strip(): line for line in result.stdout.splitlines() if line.count("│") > 6}
    assert "by cursor updated_at" in lines["copytest.SyncBook"]
    assert "by cursor updated_at" in lines["copytest.SyncBook_tags"]  # a link table follows its model
    assert "in full" in lines["copytest.SyncChapter"]  # no updated_at field
    assert "in full" in lines["copytest.SyncAuthor"]  # --full-refresh
    assert "Plan: sync from" in result.stdout
    # A plan writes nothing.
    assert all(model._base_manager.using(dest).count() == 0 for model in BOOK_MODELS)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_plan_with_cursor_only_lists_the_models_a_sync_leaves_out(source, dest):
    seed_books(source, n=2)
    result = h.dbcopy("plan", *BOOK_LABELS, source=source, dest=dest, since_field="updated_at", cursor_only=True)
    h.assert_ok(result)
    assert "skipped copytest.SyncChapter" in result.stdout and "--cursor-only" in result.stdout


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_sync_runs_tables_in_parallel_with_jobs(source, dest, report_path):
    seed_books(source, n=12)
    first = sync(source, dest, jobs=3, report_json=report_path)
    h.assert_ok(first)
    assert_books_equal(source, dest)
    m.SyncBook.objects.using(source).filter(pk=m.SyncBook.objects.using(source).order_by("pk").first().pk).delete()
    second = sync(source, dest, jobs=3, deletes=True, report_json=report_path)
    h.assert_ok(second)
    assert_books_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_steps_that_depend_on_a_failed_step_are_blocked_not_skipped(source, dest, report_path):
    h.seed_core(source)
    m.Publisher.objects.using(source).filter(pk=m.Publisher.objects.using(source).order_by("pk").first().pk).update(name="x" * 300)
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    assert result.returncode == 1, result
    assert result.entry("copytest.Publisher")["status"] == "failed"
    book = result.entry("copytest.Book")
    assert book["status"] == "blocked" and "copytest.Publisher" in book["reason"], book
    assert result.entry("copytest.Tag")["status"] == "ok"  # independent steps went on


@pytest.mark.unguarded_db("sqlite_b")
def test_an_unmigrated_source_is_a_clear_error_in_plan(tmp_path):
    import sqlite3

    empty = tmp_path / "legacy.sqlite3"
    sqlite3.connect(empty).execute("CREATE TABLE unrelated (id integer)").connection.close()
    for subcommand in ("plan", "copy"):
        result = h.dbcopy(subcommand, "copytest", source=f"sqlite:///{empty}", dest="sqlite_b")
        assert result.returncode == 2, result
        assert "has no table copytest_" in result.output and "migrations" in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_sync_fields_for_models_outside_the_labels_are_not_an_error(source, dest):
    """DBCOPY_SYNC_FIELDS is project-wide; a sync of some apps must not call the others uninstalled."""
    from django.test import override_settings

    seed_books(source, n=2)
    with override_settings(DBCOPY_SYNC_FIELDS={"copytest.SyncItem": "updated_at", "admin.LogEntry": "action_time"}):
        h.assert_ok(sync(source, dest))
        typo = h.dbcopy("plan", *BOOK_LABELS, source=source, dest=dest, since_field="updated_at")
        h.assert_ok(typo)
    with override_settings(DBCOPY_SYNC_FIELDS={"copytest.NoSuchModel": "updated_at"}):
        refused = h.dbcopy("plan", *BOOK_LABELS, source=source, dest=dest, since_field="updated_at")
    assert refused.returncode == 2 and "copytest.NoSuchModel" in refused.output, refused


@pytest.mark.parametrize("killed", ["source", "dest"])
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "pg_b")])
def test_sync_retries_a_killed_connection_and_converges(source, dest, killed, monkeypatch, report_path):
    """Sync goes through the same runner: a connection killed mid-table is retried and the table
    compared again, so nothing is written twice and nothing is missed."""
    from tests.test_faults import kill_at_chunk

    seed_books(source, n=30)
    h.assert_ok(sync(source, dest, chunk_size=5))
    m.SyncBook.objects.using(source).update(title="changed at the source")
    m.SyncBook.objects.using(source).filter(pk__in=list(m.SyncBook.objects.using(source).values_list("pk", flat=True)[:3])).delete()
    state = kill_at_chunk(monkeypatch, "copytest.SyncBook", source if killed == "source" else dest, chunk=2)
    # Compared in full: QuerySet.update() leaves updated_at alone, so the window would not see the change.
    result = sync(source, dest, chunk_size=5, deletes=True, full_refresh=["copytest.SyncBook"], report_json=report_path)
    assert state["killed"] == 1
    h.assert_ok(result)
    assert_books_equal(source, dest)
    assert result.entry("copytest.SyncBook")["retries"] >= 1
    assert result.entry("copytest.SyncBook")["deleted"] == 3
    again = sync(source, dest, chunk_size=5, full_refresh=["copytest.SyncBook"], report_json=report_path)
    h.assert_ok(again)
    assert (again.entry("copytest.SyncBook")["inserted"], again.entry("copytest.SyncBook")["updated"]) == (0, 0)
