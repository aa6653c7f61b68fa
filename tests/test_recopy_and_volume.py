"""Copying again with --truncate replaces everything; a few thousand rows with the default
chunk size."""

import datetime as dt

import pytest

from tests import helpers as h
from tests.copytest import models as m


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")])
def test_second_copy_with_truncate_replaces_everything(source, dest, report_path):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))

    # The source moves on...
    m.Review.objects.using(source).filter(stars=1).delete()
    first_book = m.Book.objects.using(source).order_by("pk").first()
    m.Book.objects.using(source).filter(pk=first_book.pk).update(title="retitled")
    first_book.tags.clear()
    root = m.Category.objects.using(source).get(pk=m.Category.objects.using(source).order_by("-pk").first().pk)
    m.Category.objects.using(source).create(name="new child", parent=root)
    m.Article.all_objects.using(source).update(is_active=False)
    m.Token.objects.using(source).filter(label="token 3").delete()
    h.seed_notes(source, 2)
    # ...and the destination has rows of its own that must go.
    m.Tag.objects.using(dest).create(name="only on dest")
    m.Secret.objects.using(dest).all().delete()

    result = h.dbcopy("copy", "copytest", source=source, dest=dest, truncate=True, chunk_size=4, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest)
    assert result.report["ok"] is True
    # The destination is still usable.
    m.Category.objects.using(dest).create(name="after", parent_id=root.pk)
    m.Note.objects.using(dest).create(text="after")


ROWS = 3000


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")])
def test_a_few_thousand_rows_with_default_chunk_size(source, dest, report_path):
    m.Tag.objects.using(source).bulk_create(m.Tag(name=f"bulk tag {i:05d}") for i in range(ROWS))
    base = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    m.Note.objects.using(source).bulk_create(m.Note(text=f"n{i}") for i in range(ROWS))
    m.Note.objects.using(source).update(created=base, modified=base)
    m.AllTypes.objects.using(source).bulk_create(
        m.AllTypes(big=i * 1_000_003, moment=base + dt.timedelta(seconds=i, microseconds=i), text=f"row {i}", blob=bytes([i % 256]) * (i % 50))
        for i in range(ROWS)
    )
    result = h.dbcopy("copy", "copytest.Tag", "copytest.Note", "copytest.AllTypes", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest, [m.Tag, m.Note, m.AllTypes])
    for label in ("copytest.Tag", "copytest.Note", "copytest.AllTypes"):
        assert result.entry(label)["copied_rows"] == ROWS


BLOB = 2_500_000  # bytes per row; far below InnoDB's per-row redo-log limit


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("sqlite_a", "mysql_b")])
def test_chunk_larger_than_max_allowed_packet(source, dest, report_path):
    """The default chunk holds more bytes than MySQL's max_allowed_packet: the copy must
    split its INSERTs, not send one statement the server refuses."""
    from django.db import connections

    with connections[dest].cursor() as cursor:
        cursor.execute("SELECT @@max_allowed_packet")
        packet = int(cursor.fetchone()[0])
    rows = min(40, packet * 5 // 4 // BLOB + 1)
    assert rows * BLOB > packet, "precondition: the chunk must exceed max_allowed_packet"
    m.AllTypes.objects.using(source).bulk_create(
        m.AllTypes(blob=bytes([i]) * BLOB, text=f"row {i} " + "x" * 1000, label=str(i)) for i in range(rows)
    )
    result = h.dbcopy("copy", "copytest.AllTypes", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    src = list(m.AllTypes.objects.using(source).order_by("pk").values_list("pk", "label", "text", "blob"))
    dst = list(m.AllTypes.objects.using(dest).order_by("pk").values_list("pk", "label", "text", "blob"))
    assert [(a, b, c, bytes(d)) for a, b, c, d in dst] == [(a, b, c, bytes(d)) for a, b, c, d in src]
