"""Sync costs what changed: tables without a cursor and rows gone from the source are found by range
digests, and only the ranges whose digests differ are read (issue 9, point 3)."""

from collections import Counter

import pytest
from django.db.models import Value
from django.db.models.functions import Concat

from dbcopy import digest as digest_module
from dbcopy.rows import RowReader
from tests import helpers as h
from tests.copytest import models as m
from tests.test_sync import BOOK, BOOK_LABELS, assert_books_equal, expect_counts, seed_books, sync

PAIRS = [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b"), h.pair("pg_a", "pg_b")]
NO_CURSOR = ("copytest.SyncAuthor", "copytest.SyncTag", "copytest.SyncChapter", "copytest.SyncBook_tags")


@pytest.fixture
def rows_read(monkeypatch):
    """Count the rows every RowReader fetches, by (alias, model label)."""
    counts = Counter()
    fetch = RowReader.fetch

    def counting_fetch(self, alias, qs, size=None, keys=None):
        rows = fetch(self, alias, qs, size, keys)
        counts[(alias, self.model._meta.label)] += len(rows)
        return rows

    monkeypatch.setattr(RowReader, "fetch", counting_fetch)
    return counts


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_quiet_sync_reads_no_row_outside_the_cursor_window(source, dest, rows_read, report_path):
    seed_books(source, n=30, chapters=3)
    h.assert_ok(sync(source, dest, deletes=True))
    rows_read.clear()
    quiet = sync(source, dest, deletes=True, report_json=report_path)
    h.assert_ok(quiet)
    for label in (*BOOK_LABELS, "copytest.SyncBook_tags"):
        expect_counts(quiet, label)
    for label in NO_CURSOR:
        assert rows_read[(source, label)] == 0 and rows_read[(dest, label)] == 0, (label, dict(rows_read))
    # The books: the cursor window only (the newest book, stamped an hour after the one before it).
    assert rows_read[(source, BOOK)] <= 2, dict(rows_read)
    assert rows_read[(dest, BOOK)] <= 2, dict(rows_read)
    # Every unchanged row is still counted: proven equal by its range's digest.
    assert quiet.entry("copytest.SyncChapter")["unchanged"] == 90, quiet.entry("copytest.SyncChapter")


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_sync_finds_changes_in_tables_without_a_timestamp(source, dest, rows_read, report_path):
    authors, tags, books = seed_books(source, n=30, chapters=3)
    h.assert_ok(sync(source, dest, deletes=True))
    m.SyncTag.objects.using(source).filter(pk=tags[2].pk).update(name="renamed at the source")
    chapter = m.SyncChapter.objects.using(source).order_by("pk")[10]
    chapter.delete(using=source)
    m.SyncAuthor.objects.using(source).create(name="new author")
    books[4].tags.remove(tags[0])  # a link gone; the book's own row is unchanged
    rows_read.clear()
    changed = sync(source, dest, deletes=True, report_json=report_path)
    h.assert_ok(changed)
    expect_counts(changed, "copytest.SyncTag", updated=1)
    expect_counts(changed, "copytest.SyncAuthor", inserted=1)
    expect_counts(changed, "copytest.SyncChapter", deleted=1)
    assert_books_equal(source, dest)
    # Tables nobody touched were not read at all.
    assert rows_read[(source, "copytest.SyncBook")] <= 2, dict(rows_read)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_differences_in_big_tables_are_found_in_their_ranges_only(source, dest, rows_read, report_path):
    """Enough rows for several buckets: a change reads its own range's rows, not the table's."""
    m.SyncAuthor.objects.using(source).create(name="prolific")
    tags = [m.SyncTag(name=f"tag {i:05d}") for i in range(9000)]
    m.SyncTag.objects.using(source).bulk_create(tags, batch_size=500)
    labels = ("copytest.SyncTag", "copytest.SyncAuthor")
    h.assert_ok(sync(source, dest, *labels, since_field=None, deletes=True))
    first, last = m.SyncTag.objects.using(source).order_by("pk")[:2], m.SyncTag.objects.using(source).latest("pk")
    m.SyncTag.objects.using(source).filter(pk=first[1].pk).update(name="changed")
    m.SyncTag.objects.using(source).filter(pk=last.pk).delete()
    rows_read.clear()
    result = sync(source, dest, *labels, since_field=None, deletes=True, report_json=report_path)
    h.assert_ok(result)
    expect_counts(result, "copytest.SyncTag", updated=1, deleted=1)
    # The digests name the two rows: only they are read (and looked up on the other side).
    assert rows_read[(source, "copytest.SyncTag")] <= 4, dict(rows_read)
    assert rows_read[(dest, "copytest.SyncTag")] <= 4, dict(rows_read)
    h.assert_tables_equal(source, dest, [m.SyncTag, m.SyncAuthor])


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("pg_a", "pg_b")])
def test_changes_spread_over_a_table_are_found_bucket_by_bucket(source, dest, rows_read, report_path):
    """More differing ranges than one query ORs together: they are selected by bucket number."""
    m.SyncTag.objects.using(source).bulk_create([m.SyncTag(name=f"tag {i:05d}") for i in range(6000)], batch_size=500)
    h.assert_ok(sync(source, dest, "copytest.SyncTag", since_field=None, deletes=True))
    pks = list(m.SyncTag.objects.using(source).order_by("pk").values_list("pk", flat=True))
    changed, deleted = pks[::100], pks[7::233]  # far apart: more ranges than one OR takes (MAX_RANGES)
    m.SyncTag.objects.using(source).filter(pk__in=changed).update(name=Concat("name", Value(" changed")))
    m.SyncTag.objects.using(source).filter(pk__in=deleted).delete()
    rows_read.clear()
    result = sync(source, dest, "copytest.SyncTag", since_field=None, deletes=True, report_json=report_path)
    h.assert_ok(result)
    still_there = len(set(changed) - set(deleted))
    expect_counts(result, "copytest.SyncTag", updated=still_there, deleted=len(deleted))
    h.assert_tables_equal(source, dest, [m.SyncTag])
    assert rows_read[(source, "copytest.SyncTag")] <= 2 * (len(changed) + len(deleted)), dict(rows_read)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("pg_a", "pg_b"), h.pair("mysql_a", "pg_b")])
def test_digests_in_slices_join_the_source_snapshot(source, dest, monkeypatch, report_path):
    """Every table digested in three key slices at once on each side (a PostgreSQL source's slices
    join the run's exported snapshot; a MariaDB source, whose snapshot is its connection's, is not sliced)."""
    monkeypatch.setattr(digest_module, "SLICED_ROWS", 1)
    monkeypatch.setattr(digest_module, "SLICES", 3)
    authors, tags, books = seed_books(source, n=30, chapters=3)
    h.assert_ok(sync(source, dest, deletes=True))
    m.SyncTag.objects.using(source).filter(pk=tags[1].pk).update(name="renamed")
    m.SyncChapter.objects.using(source).order_by("pk")[20].delete(using=source)
    result = sync(source, dest, deletes=True, report_json=report_path)
    h.assert_ok(result)
    expect_counts(result, "copytest.SyncTag", updated=1)
    expect_counts(result, "copytest.SyncChapter", deleted=1)
    assert result.report["consistent"] is True, result.report
    assert_books_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_the_reconciliation_counts_again_only_tables_the_sync_changed(source, dest, monkeypatch, report_path):
    """The digests count both sides; a table the sync inserted into or deleted from is counted again."""
    from dbcopy import reconcile as reconcile_module

    counted = Counter()
    count = reconcile_module.count

    def counting(model, alias):
        counted[(alias, model._meta.label)] += 1
        return count(model, alias)

    monkeypatch.setattr(reconcile_module, "count", counting)
    seed_books(source, n=30, chapters=3)
    h.assert_ok(sync(source, dest, deletes=True))
    counted.clear()
    h.assert_ok(sync(source, dest, deletes=True, report_json=report_path))
    assert not [key for key in counted if key[0] == dest], dict(counted)

    m.SyncChapter.objects.using(source).order_by("pk")[3].delete(using=source)
    m.SyncAuthor.objects.using(source).create(name="new author")
    m.SyncTag.objects.using(dest).create(name="only at the destination")  # not this run's write
    counted.clear()
    changed = sync(source, dest, deletes=True, report_json=report_path)
    h.assert_ok(changed)
    expect_counts(changed, "copytest.SyncChapter", deleted=1)
    expect_counts(changed, "copytest.SyncAuthor", inserted=1)
    expect_counts(changed, "copytest.SyncTag", deleted=1)
    assert {(dest, "copytest.SyncChapter"), (dest, "copytest.SyncAuthor"), (dest, "copytest.SyncTag")} <= set(counted)
    for label in ("copytest.SyncChapter", "copytest.SyncAuthor", "copytest.SyncTag"):
        entry = changed.entry(label)
        assert entry["dest_rows"] == entry["source_rows"] == label_count(source, label), entry


def label_count(alias, label):
    model = {"copytest.SyncChapter": m.SyncChapter, "copytest.SyncAuthor": m.SyncAuthor, "copytest.SyncTag": m.SyncTag}[label]
    return model.objects.using(alias).count()


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("sqlite_a", "mysql_b")])
def test_rows_changed_at_the_destination_are_updated_back_in_batches_with_every_type(source, dest, report_path):
    """MariaDB updates a chunk in one statement (the rows joined as a derived table): every kind of
    value, NULL in the first row of a batch included, arrives as the source holds it."""
    for row in h.alltypes_rows():
        m.AllTypes.objects.using(source).create(**row)
    label = "copytest.AllTypes"
    h.assert_ok(h.dbcopy("copy", label, source=source, dest=dest))
    fields = [f.attname for f in m.AllTypes._meta.concrete_fields if not f.primary_key]
    # Every row differs: one NULL-heavy row first, then values no source row holds.
    m.AllTypes.objects.using(dest).update(text="changed at the destination", label="x", small=-1, big=None)
    changed = h.dbcopy("sync", label, source=source, dest=dest, report_json=report_path)
    h.assert_ok(changed)
    expect_counts(changed, label, updated=m.AllTypes.objects.using(source).count())
    assert alltypes(source, fields) == alltypes(dest, fields)


def alltypes(alias, fields):
    rows = m.AllTypes.objects.using(alias).order_by("pk").values_list("pk", *fields)
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]
