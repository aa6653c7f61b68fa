"""The fast writers (COPY, LOAD DATA, executemany, streaming) store exactly what the reference
bulk_create writer stores; --jobs copies in parallel with the same result."""

import pytest
from django.db import connections

from tests import helpers as h
from tests.copytest import models as m

WRITER_PAIRS = [
    h.pair("pg_a", "pg_b"),
    h.pair("pg_a", "mysql_b"),
    h.pair("sqlite_a", "pg_b"),
    h.pair("mysql_a", "pg_b"),
    h.pair("mysql_a", "mysql_b"),
    h.pair("mysql_a", "sqlite_b"),
    h.pair("sqlite_a", "mysql_b"),
]
# Whole tables stream database to database between these vendors.
STREAMING = {
    ("pg_a", "pg_b"), ("pg_a", "mysql_b"), ("sqlite_a", "pg_b"), ("mysql_a", "pg_b"), ("mysql_a", "mysql_b"), ("sqlite_a", "mysql_b"),
    ("pg_a", "sqlite_b"), ("mysql_a", "sqlite_b"),
}


def snapshot(alias):
    return {h.label(model): h.raw_table_rows(alias, model) for model in h.copytest_models()}


@pytest.mark.parametrize("source,dest", WRITER_PAIRS)
def test_fast_and_bulk_create_writers_store_identical_values(source, dest, report_path):
    h.seed_core(source)
    reference = h.dbcopy("copy", "copytest", source=source, dest=dest, writer="bulk_create", report_json=report_path)
    h.assert_ok(reference)
    assert {e["method"] for e in reference.report["models"] if e["status"] == "ok"} <= {"bulk_create", "remap"}
    stored_by_reference = snapshot(dest)

    fast = h.dbcopy("copy", "copytest", source=source, dest=dest, truncate=True, report_json=report_path)
    h.assert_ok(fast)
    stored_by_fast = snapshot(dest)
    for label, rows in stored_by_reference.items():
        assert stored_by_fast[label] == rows, f"{label}: the fast writer stored {stored_by_fast[label]}, not {rows}"
    h.assert_tables_equal(source, dest)

    methods = {e["model"]: e["method"] for e in fast.report["models"] if e["status"] == "ok"}
    if (source, dest) in STREAMING:
        assert methods["copytest.Book"] == "stream" and methods["copytest.Category"] == "stream", fast.output
        # Content type ids are translated inside the source's SELECT.
        assert methods["copytest.TaggedItem"] == "stream"
    else:
        assert methods["copytest.Book"] == "fast"


TRICKY_TEXT = [
    "form\ffeed", "vertical\vtab", "tab\there", "new\nline", "carriage\rreturn", "back\\slash",
    "\\N", "\\f literal", "ends with \\", "emoji 😀 and ünïcode", "quote ' and \"", "", "\x1a ctrl-z",
]


@pytest.mark.parametrize("source,dest", [
    h.pair("pg_a", "mysql_b"), h.pair("pg_a", "pg_b"), h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "pg_b"),
    h.pair("mysql_a", "mysql_b"), h.pair("sqlite_a", "mysql_b"),
])
def test_streaming_keeps_every_character(source, dest, report_path):
    for number, text in enumerate(TRICKY_TEXT):
        m.FreeText.objects.using(source).create(title=str(number), body=text)
    m.FreeText.objects.using(source).create(title="null-ish", body="\\N\t\\\\N")
    result = h.dbcopy("copy", "copytest.FreeText", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    assert result.entry("copytest.FreeText")["method"] == "stream"
    expected = list(m.FreeText.objects.using(source).order_by("pk").values_list("pk", "title", "body"))
    assert list(m.FreeText.objects.using(dest).order_by("pk").values_list("pk", "title", "body")) == expected


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_load_data_warning_falls_back_and_names_the_row(source, dest, report_path):
    good = m.FreeText.objects.using(source).create(title="fits", body="ok")
    bad = m.FreeText.objects.using(source).create(title="0123456789", body="ok")
    # LOAD DATA LOCAL would truncate with a mere warning; the copy must refuse instead.
    with connections[dest].cursor() as cursor:
        cursor.execute("ALTER TABLE copytest_freetext MODIFY title varchar(5) NOT NULL")
    try:
        result = h.dbcopy("copy", "copytest.FreeText", source=source, dest=dest, report_json=report_path)
        assert result.returncode == 1, str(result)
        assert f"pk={bad.pk}" in result.output and "'title'" in result.output, result.output
        assert "Traceback" not in result.output
        assert result.entry("copytest.FreeText")["status"] == "failed"
        # Nothing truncated slipped in: only the row that fits was kept.
        assert list(m.FreeText.objects.using(dest).values_list("pk", "title")) == [(good.pk, "fits")]
    finally:
        with connections[dest].cursor() as cursor:
            cursor.execute("ALTER TABLE copytest_freetext MODIFY title varchar(10) NOT NULL")


@pytest.mark.parametrize(
    "source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "sqlite_b")]
)
def test_parallel_jobs_copy_the_same_data(source, dest, report_path):
    h.seed_core(source)
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, jobs=4, chunk_size=5, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest)
    assert result.report["ok"] is True


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("pg_a", "pg_b")])
def test_dangling_content_type_id_is_named_not_streamed(source, dest, report_path):
    h.seed_core(source)
    tagged = m.TaggedItem.objects.using(source).order_by("pk").first()
    with connections[source].cursor() as cursor:  # an id no content type has (as db_constraint=False allows)
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE copytest_taggeditem SET content_type_id = 999999 WHERE id = %s", [tagged.pk])
        cursor.execute("SET session_replication_role = DEFAULT")
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    assert result.returncode == 1, str(result)
    assert f"pk={tagged.pk}" in result.output and "content_type" in result.output, result.output
    assert result.entry("copytest.TaggedItem")["status"] == "failed"


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_load_data_without_fk_checks_still_refuses_orphans(source, dest, report_path):
    # LOAD DATA runs with foreign_key_checks off and verifies the table before committing.
    h.seed_core(source)
    book = m.Book.objects.using(source).order_by("pk").first()
    with connections[source].cursor() as cursor:  # an orphan, as a source with checks off can hold
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE copytest_book SET publisher_id = 999999 WHERE id = %s", [book.pk])
        cursor.execute("SET session_replication_role = DEFAULT")
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    assert result.returncode == 1, str(result)
    assert f"pk={book.pk}" in result.output and "'publisher'" in result.output, result.output
    assert result.entry("copytest.Book")["status"] == "failed"
    assert not m.Book.objects.using(dest).filter(publisher_id=999999).exists()
