"""`dbcopy sync`: incremental copy on a cursor field (a DateTimeField), watermark taken from the
destination, lookback for late commits, full comparison of models without the field, deletes,
M2M links, and a database lock against overlapping runs.

Models (migration 0003): SyncBook (cursor created_at / updated_at, unique code, FK to the lookup
SyncAuthor, M2M to the lookup SyncTag), SyncChapter (child table without a cursor), SyncItem /
SyncGadget (MTI; the cursor lives in the parent table).

Timestamps are set explicitly with ``.update()`` (which bypasses auto_now) so that every
window boundary is known to the microsecond.
"""

import datetime as dt
import os
import re
import subprocess
import sys
import time

import pytest
from django.db import connections
from django.test import override_settings

from dbcopy import rows as rows_module
from tests import helpers as h
from tests.copytest import models as m

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
SECOND = dt.timedelta(seconds=1)
MICRO = dt.timedelta(microseconds=1)

BOOK_LABELS = ("copytest.SyncAuthor", "copytest.SyncTag", "copytest.SyncBook", "copytest.SyncChapter")
Through = m.SyncBook.tags.through
BOOK_MODELS = [m.SyncAuthor, m.SyncTag, m.SyncBook, Through, m.SyncChapter]
THROUGH = "copytest.SyncBook_tags"
LABELS_WITH_THROUGH = ("copytest.SyncBook", "copytest.SyncAuthor", "copytest.SyncTag", "copytest.SyncChapter", THROUGH)
BOOK = "copytest.SyncBook"
COUNT_KEYS = ("inserted", "updated", "deleted", "unchanged")

PYTHON = sys.executable


def settings_module():
    """The subprocesses run with this session's settings (tests.settings.all_backends by default)."""
    from django.conf import settings

    return settings.SETTINGS_MODULE or "tests.settings.all_backends"


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------


def sync(source, dest, *labels, **options):
    """`dbcopy sync` in-process; updated_at is the cursor unless the test says otherwise."""
    options.setdefault("since_field", "updated_at")
    return h.dbcopy("sync", *(labels or BOOK_LABELS), source=source, dest=dest, **options)


def counts(result, label):
    entry = result.entry(label)
    missing = [key for key in COUNT_KEYS if key not in entry]
    assert not missing, f"{label}: report entry lacks {missing}: {entry}\n{result}"
    return {key: entry[key] for key in COUNT_KEYS}


def expect_counts(result, label, **expected):
    """Check some of inserted / updated / deleted / unchanged (those not given must be 0,
    except unchanged, which is only checked when given)."""
    got = counts(result, label)
    want = {"inserted": 0, "updated": 0, "deleted": 0, **expected}
    if "unchanged" not in expected:
        got.pop("unchanged")
    assert got == want, f"{label}: expected {want}, got {got}\n{result}"


def watermark(result, label):
    """The entry's watermark as an aware datetime (a naive ISO string is taken as UTC)."""
    entry = result.entry(label)
    assert "watermark" in entry, f"{label}: report entry has no 'watermark': {entry}"
    value = entry["watermark"]
    if value is None:
        return None
    assert isinstance(value, str), f"{label}: watermark should be an ISO-8601 string, got {value!r}"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        pytest.fail(f"{label}: watermark {value!r} is not ISO-8601")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_book(alias, code, when, *, author, tags=(), title=None, pk=None, created=None):
    extra = {"pk": pk} if pk is not None else {}
    book = m.SyncBook.objects.using(alias).create(title=title or f"Title of {code}", code=code, author_id=author.pk, **extra)
    if tags:
        book.tags.add(*tags)
    m.SyncBook.objects.using(alias).filter(pk=book.pk).update(created_at=created or when, updated_at=when)
    return m.SyncBook.objects.using(alias).get(pk=book.pk)


def seed_books(alias, n=5, start=T0, step=HOUR, chapters=2):
    """3 authors, 5 tags, n books stamped start + i * step (created_at == updated_at), 2-3 tags
    and `chapters` chapters each."""
    authors = [m.SyncAuthor.objects.using(alias).create(name=f"Author {i}") for i in range(3)]
    tags = [m.SyncTag.objects.using(alias).create(name=f"tag-{i}") for i in range(5)]
    books = []
    for i in range(n):
        book = make_book(
            alias, f"B-{i:04d}", start + i * step, author=authors[i % 3], title=f"Book {i}",
            tags=[tag for j, tag in enumerate(tags) if (i + j) % 2 == 0],
        )
        for c in range(chapters):
            m.SyncChapter.objects.using(alias).create(book=book, number=c + 1, title=f"Chapter {i}.{c + 1}")
        books.append(book)
    return authors, tags, books


def book_rows(alias):
    return {
        pk: rest
        for pk, *rest in m.SyncBook.objects.using(alias).values_list("pk", "title", "code", "author_id", "created_at", "updated_at")
    }


def links(alias):
    return sorted(Through.objects.using(alias).values_list("syncbook_id", "synctag_id"))


def assert_books_equal(source, dest):
    h.assert_tables_equal(source, dest, BOOK_MODELS)


def sync_counts(alias):
    return h.row_counts(alias, BOOK_MODELS + [m.SyncItem, m.SyncGadget])


def assert_exit(result, code):
    assert result.returncode == code, f"expected exit status {code}:\n{result}"
    assert "Traceback" not in result.output, str(result)


def subprocess_env():
    env = dict(os.environ, DBCOPY_TEST_USE_TEST_NAMES="1", PYTHONUNBUFFERED="1", COLUMNS="200")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def describe(proc):
    return f"$ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def second_connection_lock(alias):
    """The destination's sync lock on a connection of its own (as another process would hold it)."""
    from dbcopy.dialects import dialect_for

    other = connections.create_connection(alias)
    return other, type(dialect_for(alias))(other).sync_lock()


def shift_content_type_ids(alias, names=("author", "book")):
    """Give copytest content types other ids on alias than on a freshly migrated database, as
    two real databases have (on the empty destination: cascades to its permissions only)."""
    from django.contrib.contenttypes.models import ContentType

    for name in names:
        ContentType.objects.using(alias).filter(app_label="copytest", model=name).delete()
        ContentType.objects.using(alias).create(app_label="copytest", model=name)
    ContentType.objects.clear_cache()


LOCK_MESSAGE = re.compile(r"another|already|running|in progress|lock", re.I)


# ----------------------------------------------------------------------------------------
# New rows, updated rows, a second run
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_rows_added_between_runs_are_inserted(source, dest, report_path):
    authors, tags, books = seed_books(source, n=4)
    first = sync(source, dest, since_field="created_at", report_json=report_path)
    h.assert_ok(first)
    assert first.report.get("command") == "sync", first.report
    # An empty destination: everything is copied.
    expect_counts(first, BOOK, inserted=4, unchanged=0)
    expect_counts(first, "copytest.SyncAuthor", inserted=3, unchanged=0)
    expect_counts(first, THROUGH, inserted=len(links(source)), unchanged=0)
    expect_counts(first, "copytest.SyncChapter", inserted=8, unchanged=0)
    assert watermark(first, BOOK) == T0 + 3 * HOUR
    assert watermark(first, "copytest.SyncAuthor") is None, "a model without the cursor has no watermark"
    assert_books_equal(source, dest)

    new_author = m.SyncAuthor.objects.using(source).create(name="Author new ✓")
    new_tag = m.SyncTag.objects.using(source).create(name="tag-new")
    links_before = len(links(source))
    new = [
        make_book(source, "N-1", T0 + 3 * HOUR + MINUTE, author=authors[1], tags=[tags[0]]),
        make_book(source, "N-2", T0 + 3 * HOUR + 2 * MINUTE, author=new_author, tags=[new_tag, tags[1]], title="Nouveau ✓"),
        make_book(source, "N-3", T0 + 5 * HOUR, author=new_author, created=T0 + 5 * HOUR - SECOND),
    ]
    second = sync(source, dest, since_field="created_at", report_json=report_path)
    h.assert_ok(second)
    # Book 3 (at the old watermark) is re-read inside the 10m lookback and found unchanged.
    expect_counts(second, BOOK, inserted=3, unchanged=1)
    expect_counts(second, "copytest.SyncAuthor", inserted=1, unchanged=3)
    expect_counts(second, "copytest.SyncTag", inserted=1, unchanged=5)
    expect_counts(second, THROUGH, inserted=len(links(source)) - links_before)
    assert watermark(second, BOOK) == T0 + 5 * HOUR - SECOND  # max(created_at)
    assert_books_equal(source, dest)
    for book in new:
        stored = m.SyncBook.objects.using(dest).get(pk=book.pk)
        assert (stored.code, stored.title, stored.author_id, stored.created_at, stored.updated_at) == (
            book.code, book.title, book.author_id, book.created_at, book.updated_at,
        )
    assert links(dest) == links(source)
    for word in ("inserted", "updated", "deleted", "unchanged"):
        assert word in second.output.lower(), f"the output should show rows {word}:\n{second}"


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")])
def test_updated_rows_are_recopied(source, dest, report_path):
    _, _, books = seed_books(source, n=5)
    h.assert_ok(sync(source, dest, report_json=report_path))
    assert_books_equal(source, dest)

    saved = m.SyncBook.objects.using(source).get(pk=books[1].pk)
    saved.title = "changed through save() ✓"
    saved.save(using=source)  # auto_now: updated_at becomes now
    saved.refresh_from_db(using=source)
    assert saved.updated_at > T0 + 10 * HOUR
    m.SyncBook.objects.using(source).filter(pk=books[2].pk).update(title="changed through update()", updated_at=T0 + 10 * HOUR)
    # Changed without touching the cursor, far outside the window: by design not seen.
    m.SyncBook.objects.using(source).filter(pk=books[0].pk).update(title="silent change")

    result = sync(source, dest, report_json=report_path)
    h.assert_ok(result)
    # Window: updated_at >= (T0 + 4h) - 10m -> book 4 (unchanged), books 1 and 2 (updated).
    expect_counts(result, BOOK, updated=2, unchanged=1)
    assert watermark(result, BOOK) == saved.updated_at

    src, dst = book_rows(source), book_rows(dest)
    assert dst[books[1].pk] == src[books[1].pk]
    assert dst[books[1].pk][0] == "changed through save() ✓" and dst[books[1].pk][4] == saved.updated_at
    assert dst[books[2].pk] == src[books[2].pk] and dst[books[2].pk][4] == T0 + 10 * HOUR
    assert dst[books[0].pk][0] == "Book 0", "a row whose cursor did not move was re-read outside the window"
    assert {k: v for k, v in dst.items() if k != books[0].pk} == {k: v for k, v in src.items() if k != books[0].pk}


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_unique_key_moved_to_a_new_row_updates_by_pk_never_merges(source, dest, report_path):
    """The code of an existing book is changed and a new book takes the old code: the old row
    is updated by its pk and the new one inserted (no upsert on the unique key)."""
    authors, _, books = seed_books(source, n=3, chapters=0)
    h.assert_ok(sync(source, dest, report_json=report_path))
    watermark_before = T0 + 2 * HOUR
    m.SyncBook.objects.using(source).filter(pk=books[2].pk).update(code="B-0002-old", title="renamed", updated_at=watermark_before + MINUTE)
    newcomer = make_book(source, "B-0002", watermark_before + 2 * MINUTE, author=authors[0], title="newcomer")

    result = sync(source, dest, report_json=report_path)
    h.assert_ok(result)
    expect_counts(result, BOOK, inserted=1, updated=1)
    dst = book_rows(dest)
    assert dst[books[2].pk][:2] == ["renamed", "B-0002-old"]
    assert newcomer.pk in dst and dst[newcomer.pk][:2] == ["newcomer", "B-0002"]
    assert_books_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b"), h.pair("mysql_a", "sqlite_b")])
def test_second_run_changes_nothing(source, dest, report_path):
    """Every copytest model (all the copy traps) synced, then synced again: nothing written."""
    h.seed_core(source)
    if not m.SyncBook.objects.using(source).exists():
        seed_books(source, n=6, step=MINUTE)
    if not m.SyncItem.objects.using(source).exists():
        m.SyncItem.objects.using(source).create(name="plain item")
        m.SyncGadget.objects.using(source).create(name="gadget", color="blue")

    shift_content_type_ids(dest)  # TaggedItem's content type ids differ between the two
    first = sync(source, dest, "copytest", report_json=report_path)
    h.assert_ok(first)
    h.assert_tables_equal(source, dest)

    second = sync(source, dest, "copytest", report_json=report_path)
    h.assert_ok(second)
    assert second.report["ok"] is True
    problems = []
    for entry in second.report["models"]:
        if entry["status"] == "skipped":
            continue
        required = {"model", "table", "dest", "source_rows", "dest_rows", "copied_rows", "status", "reason", "seconds",
                    *COUNT_KEYS, "watermark"}
        if not required <= set(entry):
            problems.append(f"{entry.get('model')}: missing keys {sorted(required - set(entry))}")
            continue
        written = {k: entry[k] for k in ("inserted", "updated", "deleted") if entry[k]}
        if written:
            problems.append(f"{entry['model']}: second run wrote {written}")
        if entry["model"].startswith("copytest.") and entry["watermark"] is None and entry["unchanged"] != entry["source_rows"]:
            problems.append(f"{entry['model']}: compared in full, expected unchanged={entry['source_rows']}, got {entry['unchanged']}")
    assert not problems, "\n".join(problems) + f"\n{second}"
    # Inside the lookback window the rows are re-read and counted unchanged.
    assert counts(second, BOOK)["unchanged"] == m.SyncBook.objects.using(source).count()
    h.assert_tables_equal(source, dest)


# ----------------------------------------------------------------------------------------
# Deletes
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_deletes_only_with_the_option_in_reverse_dependency_order(source, dest, report_path):
    authors, tags, books = seed_books(source, n=6)
    h.assert_ok(sync(source, dest, report_json=report_path))
    after_first = sync_counts(dest)

    m.SyncBook.objects.using(source).get(pk=books[2].pk).delete()  # its chapters and links go too
    m.SyncAuthor.objects.using(source).get(pk=authors[0].pk).delete()  # books 0 and 3 with it
    m.SyncTag.objects.using(source).get(pk=tags[4].pk).delete()  # only links point at it
    now_source = sync_counts(source)
    gone = {label: after_first[label] - now_source[label] for label in after_first}
    assert gone["copytest.SyncBook"] == 3 and gone["copytest.SyncChapter"] == 6 and gone[THROUGH] > 0

    kept = sync(source, dest, report_json=report_path)
    assert_exit(kept, 1)
    assert "--deletes" in kept.output
    # Checked softly, so that the run with --deletes below is judged too.
    problems = []
    after_kept = sync_counts(dest)
    if after_kept != after_first:
        problems.append(f"rows were deleted without --deletes: {after_first} -> {after_kept}")
    for label in LABELS_WITH_THROUGH:
        entry = kept.entry(label)
        if entry["deleted"] != 0 or entry["status"] != "mismatch" or "--deletes" not in (entry["reason"] or ""):
            problems.append(f"without --deletes, {label}: expected deleted=0, status mismatch, reason naming --deletes; got {entry}")
        elif (entry["source_rows"], entry["dest_rows"]) != (now_source[label], after_first[label]):
            problems.append(f"without --deletes, {label}: expected source/dest rows {(now_source[label], after_first[label])}; got {entry}")

    deleted = sync(source, dest, deletes=True, report_json=report_path)
    h.assert_ok(deleted)
    for label in LABELS_WITH_THROUGH:
        expect_counts(deleted, label, deleted=after_kept[label] - now_source[label])
        assert deleted.entry(label)["status"] == "ok"
    assert_books_equal(source, dest)
    assert not m.SyncBook.objects.using(dest).filter(pk__in=[books[0].pk, books[2].pk, books[3].pk]).exists()
    assert not m.SyncAuthor.objects.using(dest).filter(pk=authors[0].pk).exists()
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------
# Watermark, lookback, keyset on (cursor, pk)
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b"), h.pair("mysql_a", "sqlite_b")])
def test_late_commit_inside_lookback_is_caught_older_one_is_not(source, dest, report_path):
    authors, _, _ = seed_books(source, n=3, chapters=0)  # T0, T0+1h, T0+2h
    first = sync(source, dest, lookback="10m", report_json=report_path)
    h.assert_ok(first)
    mark = T0 + 2 * HOUR
    assert watermark(first, BOOK) == mark

    # Committed late, stamped before the destination's watermark.
    boundary = make_book(source, "LATE-AT-BOUNDARY", mark - 10 * MINUTE, author=authors[0])  # >= is inclusive
    inside = make_book(source, "LATE-INSIDE", mark - 10 * MINUTE + MICRO, author=authors[1])
    recent = make_book(source, "LATE-RECENT", mark - SECOND, author=authors[2])
    outside = make_book(source, "LATE-OUTSIDE", mark - 10 * MINUTE - MICRO, author=authors[0])

    second = sync(source, dest, lookback="10m", report_json=report_path)
    # The one outside the window is missed by design, and the counts say so.
    assert_exit(second, 1)
    expect_counts(second, BOOK, inserted=3, unchanged=1)
    assert second.entry(BOOK)["status"] == "mismatch"
    assert watermark(second, BOOK) == mark
    dest_codes = set(m.SyncBook.objects.using(dest).values_list("code", flat=True))
    assert {boundary.code, inside.code, recent.code} <= dest_codes
    assert outside.code not in dest_codes
    for book in (boundary, inside, recent):
        assert book_rows(dest)[book.pk] == book_rows(source)[book.pk]

    short = sync(source, dest, lookback="30s", report_json=report_path)
    assert_exit(short, 1)
    expect_counts(short, BOOK)
    assert outside.code not in set(m.SyncBook.objects.using(dest).values_list("code", flat=True))

    wide = sync(source, dest, lookback="2h", report_json=report_path)
    h.assert_ok(wide)
    expect_counts(wide, BOOK, inserted=1)
    assert_books_equal(source, dest)

    again = sync(source, dest, lookback="1d", report_json=report_path)
    h.assert_ok(again)
    expect_counts(again, BOOK, unchanged=m.SyncBook.objects.using(source).count())


@pytest.mark.parametrize("key_chunks", [1, rows_module.WINDOW_KEY_CHUNKS])
@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "mysql_b"), h.pair("pg_a", "sqlite_b")])
def test_rows_sharing_a_timestamp_across_chunk_boundaries(source, dest, report_path, key_chunks, monkeypatch):
    """chunk_size=2 and 6-7 rows on one timestamp, pks not in insertion order: keyset paging
    on (cursor, pk) must see every one of them, on the first run and on an incremental one, whether
    the window's keys are read a page of one chunk at a time or many."""
    monkeypatch.setattr(rows_module, "WINDOW_KEY_CHUNKS", key_chunks)
    author = m.SyncAuthor.objects.using(source).create(name="only author")
    for pk in (5, 2, 9, 1, 7, 3):
        make_book(source, f"A-{pk}", T0, author=author, pk=pk)
    make_book(source, "A-4", T0 - SECOND, author=author, pk=4)
    labels = ("copytest.SyncAuthor", "copytest.SyncBook")

    first = sync(source, dest, *labels, chunk_size=2, report_json=report_path)
    h.assert_ok(first)
    expect_counts(first, BOOK, inserted=7)
    assert sorted(book_rows(dest)) == [1, 2, 3, 4, 5, 7, 9]

    later = T0 + HOUR
    for pk in (20, 12, 30, 11, 25, 14, 40):
        make_book(source, f"B-{pk}", later, author=author, pk=pk)
    for pk in (15, 13):
        make_book(source, f"C-{pk}", later + MICRO, author=author, pk=pk)
    make_book(source, "D-50", later - MICRO, author=author, pk=50)

    second = sync(source, dest, *labels, chunk_size=2, report_json=report_path)
    h.assert_ok(second)
    # Window from T0 - 10m: the 7 old rows are re-read (unchanged), the 10 new ones inserted.
    expect_counts(second, BOOK, inserted=10, unchanged=7)
    assert watermark(second, BOOK) == later + MICRO
    assert book_rows(dest) == book_rows(source)
    assert_books_equal(source, dest)

    third = sync(source, dest, *labels, chunk_size=2, report_json=report_path)
    h.assert_ok(third)
    expect_counts(third, BOOK, unchanged=10)  # everything stamped from later - 1us on


# ----------------------------------------------------------------------------------------
# Timestamps, per-model cursor setting, MTI
# ----------------------------------------------------------------------------------------

ODD_TIMES = [
    dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2024, 10, 27, 0, 30, 0, 500000, tzinfo=UTC),  # 02:30 CEST in Paris ...
    dt.datetime(2024, 10, 27, 1, 30, 0, 250001, tzinfo=UTC),  # ... and 02:30 CET, an hour later
    dt.datetime(2021, 3, 28, 1, 30, 15, 123456, tzinfo=UTC),  # the night Paris skips an hour
]


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_timestamps_are_copied_as_stored_and_sync_fields_setting_applies(source, dest, report_path):
    author = m.SyncAuthor.objects.using(source).create(name="a")
    books = [
        make_book(source, f"T-{i}", when, author=author, created=when - dt.timedelta(days=3, microseconds=7))
        for i, when in enumerate(ODD_TIMES)
    ]
    h.seed_notes(source, 4)
    labels = ("copytest.SyncAuthor", "copytest.SyncBook", "copytest.Note")

    with override_settings(DBCOPY_SYNC_FIELDS={"copytest.Note": "modified"}):
        first = sync(source, dest, *labels, report_json=report_path)
        h.assert_ok(first)
        expected = [(b.pk, b.created_at, b.updated_at) for b in books]
        assert sorted(m.SyncBook.objects.using(dest).values_list("pk", "created_at", "updated_at")) == expected
        assert sorted(m.Note.objects.using(dest).values_list("pk", "created", "modified", "day")) == sorted(
            m.Note.objects.using(source).values_list("pk", "created", "modified", "day")
        )
        h.assert_tables_equal(source, dest, [m.SyncBook, m.Note])
        # The setting made Note.modified its cursor.
        max_modified = max(m.Note.objects.using(source).values_list("modified", flat=True))
        assert watermark(first, "copytest.Note") == max_modified
        assert watermark(first, BOOK) == max(ODD_TIMES)

        # auto_now fields: the source's value arrives, the destination does not re-stamp.
        note = m.Note.objects.using(source).order_by("pk").first()
        m.Note.objects.using(source).filter(pk=note.pk).update(text="edited", modified=max_modified + MICRO)
        book = m.SyncBook.objects.using(source).get(pk=books[0].pk)
        book.title = "saved now"
        book.save(using=source)
        book.refresh_from_db(using=source)

        second = sync(source, dest, *labels, report_json=report_path)
        h.assert_ok(second)
        expect_counts(second, "copytest.Note", updated=1)
        expect_counts(second, BOOK, updated=1)
        stored_note = m.Note.objects.using(dest).get(pk=note.pk)
        assert (stored_note.text, stored_note.modified, stored_note.created) == ("edited", max_modified + MICRO, note.created)
        stored_book = m.SyncBook.objects.using(dest).get(pk=book.pk)
        assert (stored_book.title, stored_book.created_at, stored_book.updated_at) == ("saved now", book.created_at, book.updated_at)
        h.assert_tables_equal(source, dest, [m.SyncBook, m.Note])


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_mti_child_is_synced_on_the_parents_cursor(source, dest, report_path):
    labels = ("copytest.SyncItem", "copytest.SyncGadget")
    created = []
    for i in range(6):
        if i in (0, 2):
            obj = m.SyncItem.objects.using(source).create(name=f"item {i}")
        else:
            obj = m.SyncGadget.objects.using(source).create(name=f"gadget {i}", color=f"colour {i}")
        m.SyncItem.objects.using(source).filter(pk=obj.pk).update(updated_at=T0 + i * HOUR)
        created.append(obj)
    g1, g3 = created[1], created[3]

    first = sync(source, dest, *labels, report_json=report_path)
    h.assert_ok(first)
    h.assert_tables_equal(source, dest, [m.SyncItem, m.SyncGadget])
    assert watermark(first, "copytest.SyncGadget") == T0 + 5 * HOUR, "an MTI child with the cursor on its parent is a cursor model"
    assert watermark(first, "copytest.SyncItem") == T0 + 5 * HOUR

    gadget = m.SyncGadget.objects.using(source).get(pk=g3.pk)
    gadget.color = "red"
    gadget.save(using=source)  # parent's updated_at becomes now, child's color changes
    gadget.refresh_from_db(using=source)
    # A child column changed without moving the parent's cursor (far outside the window).
    m.SyncGadget.objects.using(source).filter(pk=g1.pk).update(color="silent")
    new_gadget = m.SyncGadget.objects.using(source).create(name="gadget new", color="green")
    m.SyncItem.objects.using(source).create(name="item new")

    second = sync(source, dest, *labels, report_json=report_path)
    h.assert_ok(second)
    expect_counts(second, "copytest.SyncItem", inserted=2, updated=1, unchanged=1)
    expect_counts(second, "copytest.SyncGadget", inserted=1, updated=1)
    stored = m.SyncGadget.objects.using(dest).get(pk=g3.pk)
    assert (stored.color, stored.updated_at) == ("red", gadget.updated_at)
    assert m.SyncGadget.objects.using(dest).get(pk=new_gadget.pk).color == "green"
    assert m.SyncGadget.objects.using(dest).get(pk=g1.pk).color == "colour 1", "the child was compared in full, not on the cursor"
    h.assert_tables_equal(source, dest, [m.SyncItem])
    assert watermark(second, "copytest.SyncGadget") == max(
        m.SyncGadget.objects.using(source).values_list("updated_at", flat=True)
    )


# ----------------------------------------------------------------------------------------
# Models without the cursor field, --cursor-only, --full-refresh, M2M
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b")])
def test_models_without_the_field_are_compared_in_full(source, dest, report_path):
    authors, tags, books = seed_books(source, n=4)
    h.assert_ok(sync(source, dest, report_json=report_path))

    m.SyncTag.objects.using(source).filter(pk=tags[1].pk).update(name="tag-1 renamed")
    m.SyncTag.objects.using(source).create(name="tag-new")
    m.SyncAuthor.objects.using(source).filter(pk=authors[2].pk).update(name="Author 2 renamed ✓")
    chapter = m.SyncChapter.objects.using(source).filter(book=books[0]).order_by("pk").first()
    m.SyncChapter.objects.using(source).filter(pk=chapter.pk).update(title="retitled")
    m.SyncChapter.objects.using(source).create(book=books[1], number=3, title="added")

    result = sync(source, dest, report_json=report_path)
    h.assert_ok(result)
    expect_counts(result, "copytest.SyncTag", inserted=1, updated=1, unchanged=4)
    expect_counts(result, "copytest.SyncAuthor", updated=1, unchanged=2)
    expect_counts(result, "copytest.SyncChapter", inserted=1, updated=1, unchanged=7)
    expect_counts(result, BOOK)
    assert watermark(result, "copytest.SyncTag") is None
    assert m.SyncTag.objects.using(dest).get(pk=tags[1].pk).name == "tag-1 renamed"
    assert m.SyncAuthor.objects.using(dest).get(pk=authors[2].pk).name == "Author 2 renamed ✓"
    assert m.SyncChapter.objects.using(dest).get(pk=chapter.pk).title == "retitled"
    assert_books_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_generic_fk_compared_in_full_when_content_type_ids_differ(source, dest, report_path):
    """TaggedItem has no cursor: compared in full, its content type ids translated by natural
    key, the destination's own ids (which differ from the source's) taken as they are."""
    from django.contrib.contenttypes.models import ContentType

    shift_content_type_ids(dest)
    ct_author = ContentType.objects.db_manager(source).get_for_model(m.Author)
    ct_book = ContentType.objects.db_manager(source).get_for_model(m.Book)
    assert ct_author.pk != ContentType.objects.db_manager(dest).get_for_model(m.Author).pk
    items = [
        m.TaggedItem.objects.using(source).create(content_type=ct, object_id=100 + i, label=f"tagged {i}")
        for i, ct in enumerate([ct_author, ct_book, ct_book, ct_author])
    ]
    first = sync(source, dest, "copytest.TaggedItem", since_field=None, report_json=report_path)
    h.assert_ok(first)
    h.assert_tables_equal(source, dest, [m.TaggedItem])

    again = sync(source, dest, "copytest.TaggedItem", since_field=None, report_json=report_path)
    h.assert_ok(again)
    expect_counts(again, "copytest.TaggedItem", unchanged=4)

    m.TaggedItem.objects.using(source).filter(pk=items[0].pk).update(content_type=ct_book)
    m.TaggedItem.objects.using(source).filter(pk=items[1].pk).update(label="relabelled")
    changed = sync(source, dest, "copytest.TaggedItem", since_field=None, report_json=report_path)
    h.assert_ok(changed)
    expect_counts(changed, "copytest.TaggedItem", updated=2, unchanged=2)
    h.assert_tables_equal(source, dest, [m.TaggedItem])
    stored = m.TaggedItem.objects.using(dest).get(pk=items[0].pk)
    assert (stored.content_type.app_label, stored.content_type.model) == ("copytest", "book")


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_cursor_only_skips_models_without_the_field(source, dest, report_path):
    authors, tags, books = seed_books(source, n=3)
    h.assert_ok(sync(source, dest, report_json=report_path))

    m.SyncTag.objects.using(source).filter(pk=tags[0].pk).update(name="tag-0 renamed")
    m.SyncAuthor.objects.using(source).filter(pk=authors[0].pk).update(name="Author 0 renamed")
    m.SyncChapter.objects.using(source).filter(book=books[0]).update(title="retitled")
    new = make_book(source, "NEW", T0 + 3 * HOUR, author=authors[1], tags=[tags[1], tags[3]])

    result = sync(source, dest, cursor_only=True, report_json=report_path)
    h.assert_ok(result)
    for label in ("copytest.SyncAuthor", "copytest.SyncTag", "copytest.SyncChapter"):
        assert result.entry(label)["status"] == "skipped", f"{label}: {result.entry(label)}"
    assert result.entry(BOOK)["status"] == "ok"
    assert result.entry(THROUGH)["status"] == "ok", "the M2M through table of a cursor model is kept"
    expect_counts(result, BOOK, inserted=1)
    expect_counts(result, THROUGH, inserted=2)
    assert book_rows(dest)[new.pk] == book_rows(source)[new.pk]
    assert links(dest) == links(source)
    # The skipped models were not touched.
    assert m.SyncTag.objects.using(dest).get(pk=tags[0].pk).name == "tag-0"
    assert m.SyncAuthor.objects.using(dest).get(pk=authors[0].pk).name == "Author 0"
    assert set(m.SyncChapter.objects.using(dest).filter(book_id=books[0].pk).values_list("title", flat=True)) == {"Chapter 0.1", "Chapter 0.2"}
    # The output names the models left out, not just how many.
    unnamed = [label for label in ("copytest.SyncAuthor", "copytest.SyncTag", "copytest.SyncChapter") if label not in result.output]
    assert not unnamed and "skipped" in result.output.lower(), f"the output should list {unnamed} as skipped:\n{result}"


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_full_refresh_ignores_the_watermark(source, dest, report_path):
    _, _, books = seed_books(source, n=4)
    h.assert_ok(sync(source, dest, report_json=report_path))
    m.SyncBook.objects.using(source).filter(pk=books[0].pk).update(title="silently changed")

    plain = sync(source, dest, report_json=report_path)
    h.assert_ok(plain)
    expect_counts(plain, BOOK, unchanged=1)
    assert m.SyncBook.objects.using(dest).get(pk=books[0].pk).title == "Book 0"

    refresh = sync(source, dest, full_refresh=[BOOK], report_json=report_path)
    h.assert_ok(refresh)
    expect_counts(refresh, BOOK, updated=1, unchanged=3)
    assert m.SyncBook.objects.using(dest).get(pk=books[0].pk).title == "silently changed"
    assert_books_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("sqlite_a", "pg_b")])
def test_m2m_changes_are_propagated(source, dest, report_path):
    _, tags, books = seed_books(source, n=4)
    h.assert_ok(sync(source, dest, report_json=report_path))
    stamps = book_rows(source)

    book = m.SyncBook.objects.using(source).get(pk=books[0].pk)
    missing = [t for t in tags if t.pk not in set(book.tags.values_list("pk", flat=True))]
    book.tags.add(missing[0])
    assert book_rows(source) == stamps, "tags.add() must not touch updated_at"
    added = sync(source, dest, report_json=report_path)
    h.assert_ok(added)
    expect_counts(added, THROUGH, inserted=1)
    assert links(dest) == links(source)
    assert (books[0].pk, missing[0].pk) in links(dest)

    other = m.SyncBook.objects.using(source).get(pk=books[1].pk)
    dropped = other.tags.order_by("pk").first()
    other.tags.remove(dropped)
    assert book_rows(source) == stamps, "tags.remove() must not touch updated_at"
    removed = sync(source, dest, deletes=True, report_json=report_path)
    h.assert_ok(removed)
    expect_counts(removed, THROUGH, deleted=1)
    assert (books[1].pk, dropped.pk) not in links(dest)
    assert links(dest) == links(source)
    assert_books_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_m2m_link_removed_and_added_again_converges(source, dest, report_path):
    """The re-added link has a new through pk but the same (book, tag) pair as the row still
    at the destination: with --deletes one run must end with exactly the source's rows."""
    _, _, books = seed_books(source, n=3)
    h.assert_ok(sync(source, dest, report_json=report_path))
    book = m.SyncBook.objects.using(source).get(pk=books[0].pk)
    tag = book.tags.order_by("pk").first()
    old_pk = Through.objects.using(source).get(syncbook=book, synctag=tag).pk
    book.tags.remove(tag)
    book.tags.add(tag)
    new_pk = Through.objects.using(source).get(syncbook=book, synctag=tag).pk
    assert new_pk != old_pk

    result = sync(source, dest, deletes=True, report_json=report_path)
    h.assert_ok(result)
    expect_counts(result, THROUGH, inserted=1, deleted=1)
    assert sorted(Through.objects.using(dest).values_list("pk", "syncbook_id", "synctag_id")) == sorted(
        Through.objects.using(source).values_list("pk", "syncbook_id", "synctag_id")
    )


@pytest.mark.django_db(transaction=True, databases=["sqlite_a", "sqlite_b", "pg_b"])
def test_without_dest_the_router_decides_per_model(settings, report_path):
    """SplitRouterAllowingSource: Note -> pg_b, the other copytest models -> sqlite_b."""
    source = "sqlite_a"
    seed_books(source, n=3)
    h.seed_notes(source, 3)
    settings.DATABASE_ROUTERS = ["tests.copytest.routers.SplitRouterAllowingSource"]
    settings.DBCOPY_SYNC_FIELDS = {"copytest.Note": "modified"}
    labels = (*BOOK_LABELS, "copytest.Note")

    first = h.dbcopy("sync", *labels, source=source, since_field="updated_at", report_json=report_path)
    h.assert_ok(first)
    assert "pg_b" in str(first.entry("copytest.Note")["dest"]), first.entry("copytest.Note")
    assert "sqlite_b" in str(first.entry(BOOK)["dest"]), first.entry(BOOK)
    h.assert_tables_equal(source, "pg_b", [m.Note])
    assert_books_equal(source, "sqlite_b")
    assert m.Note.objects.using("sqlite_b").count() == 0 and m.SyncBook.objects.using("pg_b").count() == 0

    note = m.Note.objects.using(source).order_by("pk").first()
    latest = max(m.Note.objects.using(source).values_list("modified", flat=True))
    m.Note.objects.using(source).filter(pk=note.pk).update(text="routed edit", modified=latest + SECOND)
    new = make_book(source, "ROUTED", T0 + 5 * HOUR, author=m.SyncAuthor.objects.using(source).first())

    second = h.dbcopy("sync", *labels, source=source, since_field="updated_at", report_json=report_path)
    h.assert_ok(second)
    expect_counts(second, "copytest.Note", updated=1)
    expect_counts(second, BOOK, inserted=1)
    assert m.Note.objects.using("pg_b").get(pk=note.pk).text == "routed edit"
    assert m.SyncBook.objects.using("sqlite_b").filter(pk=new.pk).exists()
    h.assert_tables_equal(source, "pg_b", [m.Note])
    assert_books_equal(source, "sqlite_b")
    assert m.Note.objects.using("sqlite_b").count() == 0 and m.SyncBook.objects.using("pg_b").count() == 0


# ----------------------------------------------------------------------------------------
# Usage errors
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_bad_lookback_and_non_datetime_cursor_exit_2(source, dest, report_path):
    seed_books(source, n=2)
    h.seed_notes(source, 2)
    problems = []
    for lookback in ("10", "10x", "m", "-5m", "1w", "1.5h", "ten minutes"):
        result = sync(source, dest, lookback=lookback)
        if result.returncode != 2 or "Traceback" in result.output:
            problems.append(f"--lookback {lookback!r}: expected exit 2\n{result}")
        elif "lookback" not in result.output.lower():
            problems.append(f"--lookback {lookback!r}: the message should name --lookback\n{result}")
    cases = [
        ("--since-field published (DateField)", dict(since_field="published"), {}, ("copytest.SyncBook", "published")),
        ("--since-field title (CharField)", dict(since_field="title"), {}, ("copytest.SyncBook", "title")),
        ("DBCOPY_SYNC_FIELDS Note.day", {}, {"copytest.Note": "day"}, ("copytest.Note", "day")),
    ]
    for name, options, setting, needles in cases:
        with override_settings(DBCOPY_SYNC_FIELDS=setting):
            result = h.dbcopy("sync", *BOOK_LABELS, "copytest.Note", source=source, dest=dest, **options)
        if result.returncode != 2 or "Traceback" in result.output:
            problems.append(f"{name}: expected exit 2\n{result}")
        elif not all(n.lower() in result.output.lower() for n in needles):
            problems.append(f"{name}: the message should name {needles}\n{result}")
    assert not problems, "\n\n".join(problems)
    assert all(n == 0 for n in sync_counts(dest).values()), "a refused sync wrote rows"
    assert m.Note.objects.using(dest).count() == 0


# ----------------------------------------------------------------------------------------
# Overlapping runs: the destination's lock, exit 3
# ----------------------------------------------------------------------------------------


def sync_argv(source, dest, report):
    return [
        PYTHON, "-m", "django", "dbcopy", "sync", *BOOK_LABELS, "--settings", settings_module(),
        "--source", source, "--dest", dest, "--since-field", "updated_at", "--report-json", str(report),
    ]


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_overlapping_sync_on_the_command_line_exits_3(source, dest, tmp_path):
    """Another sync holds the destination's lock (on its own connection); `python -m django
    dbcopy sync` in a second process gives up promptly with exit 3 and writes nothing."""
    seed_books(source, n=3)
    argv = sync_argv(source, dest, tmp_path / "report.json")
    other, lock = second_connection_lock(dest)
    try:
        assert lock.acquire() is True, "could not take the free lock"
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=h.REPO_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - started
        assert proc.returncode == 3, describe(proc)
        text = proc.stdout + proc.stderr
        assert "Traceback" not in text, describe(proc)
        assert LOCK_MESSAGE.search(text), f"the message should say another sync is running:\n{describe(proc)}"
        assert elapsed < 30, f"the refused run took {elapsed:.1f}s"
        assert all(n == 0 for n in sync_counts(dest).values()), "the refused run wrote rows"
    finally:
        lock.release()
        other.close()

    proc = subprocess.run(argv, cwd=h.REPO_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, describe(proc)
    assert_books_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "pg_b")])
def test_overlapping_sync_in_process_exits_3(source, dest, report_path):
    seed_books(source, n=3)
    other, lock = second_connection_lock(dest)
    try:
        assert lock.acquire() is True, "could not take the free lock"
        started = time.monotonic()
        refused = sync(source, dest, report_json=report_path)
        elapsed = time.monotonic() - started
        assert_exit(refused, 3)
        assert LOCK_MESSAGE.search(refused.output), f"the message should say another sync is running:\n{refused}"
        assert elapsed < 30, f"the refused run took {elapsed:.1f}s"
        assert all(n == 0 for n in sync_counts(dest).values()), "the refused run wrote rows"
    finally:
        lock.release()
        other.close()
    h.assert_ok(sync(source, dest, report_json=report_path))
    assert_books_equal(source, dest)


HOLDER = r"""
import sys
import django
django.setup()
from dbcopy.dialects import dialect_for
lock = dialect_for(sys.argv[1]).sync_lock()
print("acquired" if lock.acquire() else "busy", flush=True)
sys.stdin.readline()
lock.release()
"""


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "sqlite_b")])
def test_overlapping_sync_on_sqlite_exits_3(source, dest, report_path):
    """SQLite: the lock is a file lock next to the database file, held here by another process."""
    seed_books(source, n=3)
    env = dict(subprocess_env(), DJANGO_SETTINGS_MODULE=settings_module())
    holder = subprocess.Popen(
        [PYTHON, "-c", HOLDER, dest], cwd=h.REPO_DIR, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        line = holder.stdout.readline().strip()
        assert line == "acquired", f"lock holder: {line!r}\n{holder.stderr.read() if holder.poll() is not None else ''}"
        started = time.monotonic()
        refused = sync(source, dest, report_json=report_path)
        elapsed = time.monotonic() - started
        assert_exit(refused, 3)
        assert LOCK_MESSAGE.search(refused.output), f"the message should say another sync is running:\n{refused}"
        assert elapsed < 30, f"the refused run took {elapsed:.1f}s"
        assert all(n == 0 for n in sync_counts(dest).values()), "the refused run wrote rows"
    finally:
        if holder.poll() is None:
            holder.stdin.write("\n")
            holder.stdin.flush()
        holder.wait(timeout=30)
    h.assert_ok(sync(source, dest, report_json=report_path))
    assert_books_equal(source, dest)
