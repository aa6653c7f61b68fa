"""Values are never silently changed: a value the destination would not keep is refused, a value the
source holds but cannot hand over names its row, and a row the destination's own schema refuses
names the field — exit status 1, model, pk and field in the message, the rows before it copied."""

import math
import re
from decimal import Decimal

import pytest

from tests import helpers as h
from tests.copytest import models as m

BAD_PK = 5
CHUNK = 2  # the bad row sits in the third chunk: rows 1-4 are copied before it
WRITERS = ["fast", "bulk_create"]
SPECIAL_FLOATS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def seed_alltypes(alias, **bad_values):
    for pk in range(1, 9):
        values = {"small": pk, "ratio": pk / 4, "amount": Decimal(pk), "text": f"row {pk}", "data": {"n": pk}}
        if pk == BAD_PK:
            values.update(bad_values)
        m.AllTypes.objects.using(alias).create(pk=pk, **values)


def seed_freetext(alias, bad_values):
    for pk in range(1, 9):
        values = {"title": f"row {pk}", "body": f"body of row {pk}"}
        if pk == BAD_PK:
            values.update(bad_values)
        m.FreeText.objects.using(alias).create(pk=pk, **values)


def copy(model, source, dest, report_path, **options):
    options.setdefault("chunk_size", CHUNK)
    return h.dbcopy("copy", h.label(model), source=source, dest=dest, report_json=report_path, **options)


def assert_refused(result, model, field, *phrases):
    """Exit status 1, no traceback, model, pk and field named, the report marks the model failed."""
    text = result.output
    assert result.returncode == 1, f"expected exit status 1:\n{result}"
    assert "Traceback" not in text, f"traceback printed:\n{result}"
    assert h.label(model) in text, f"model not named:\n{result}"
    assert re.search(rf"pk\s*=\s*{BAD_PK}\b", text), f"pk={BAD_PK} not named:\n{result}"
    assert re.search(rf"field '{field}'", text), f"field {field!r} not named:\n{result}"
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} missing from the message:\n{result}"
    assert result.entry(h.label(model))["status"] == "failed"


def assert_rows_before_kept(model, source, dest):
    """The rows before the bad one are at the destination, as the source holds them; the bad one is not."""
    copied = {row["id"]: row for row in h.table_rows(model, dest)}
    names = [field.attname for field in h.data_fields(model)]
    before = model._base_manager.using(source).filter(pk__lt=BAD_PK).values(*names)  # the bad row can't be read
    expected = {row["id"]: {name: h.normalize(value) for name, value in row.items()} for row in before}
    assert len(expected) == BAD_PK - 1
    assert {pk: copied.get(pk) for pk in expected} == expected
    assert BAD_PK not in copied, f"the refused row is at the destination: {copied[BAD_PK]!r}"


def ratios(alias):
    return dict(m.AllTypes.objects.using(alias).order_by("pk").values_list("pk", "ratio"))


def same_float(a, b):
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b


# --------------------------------------------------------------------------------------
# NaN and ±Infinity
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("special", SPECIAL_FLOATS)
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_float_specials_are_refused_where_mariadb_cannot_store_them(source, dest, special, writer, report_path):
    seed_alltypes(source, ratio=SPECIAL_FLOATS[special])
    result = copy(m.AllTypes, source, dest, report_path, writer=writer)
    assert_refused(result, m.AllTypes, "ratio", "clean the row", "choose a destination that stores it")
    assert_rows_before_kept(m.AllTypes, source, dest)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_nan_is_refused_where_sqlite_would_store_null(source, dest, writer, report_path):
    seed_alltypes(source, ratio=float("nan"))
    result = copy(m.AllTypes, source, dest, report_path, writer=writer)
    assert_refused(result, m.AllTypes, "ratio", "NaN", "choose a destination that stores it")
    assert_rows_before_kept(m.AllTypes, source, dest)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_infinities_are_kept_by_sqlite(source, dest, writer, report_path):
    # SQLite's REAL holds ±Infinity exactly (only NaN turns into NULL): nothing to refuse.
    seed_alltypes(source)
    m.AllTypes.objects.using(source).filter(pk=3).update(ratio=float("inf"))
    m.AllTypes.objects.using(source).filter(pk=6).update(ratio=float("-inf"))
    result = copy(m.AllTypes, source, dest, report_path, writer=writer)
    h.assert_ok(result)
    stored = ratios(dest)
    assert stored[3] == float("inf") and stored[6] == float("-inf")
    h.assert_tables_equal(source, dest, [m.AllTypes])


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b")])
def test_postgresql_keeps_nan_and_infinities(source, dest, writer, report_path):
    seed_alltypes(source)
    for pk, value in zip((2, 5, 7), SPECIAL_FLOATS.values()):
        m.AllTypes.objects.using(source).filter(pk=pk).update(ratio=value)
    result = copy(m.AllTypes, source, dest, report_path, writer=writer)
    h.assert_ok(result)
    expected, stored = ratios(source), ratios(dest)
    assert math.isnan(stored[2]) and stored[5] == float("inf") and stored[7] == float("-inf")
    assert stored.keys() == expected.keys()
    assert all(same_float(stored[pk], expected[pk]) for pk in expected), stored


# --------------------------------------------------------------------------------------
# Values an SQLite source holds but cannot hand over
# --------------------------------------------------------------------------------------


def write_raw(alias, column, sql_value, params=()):
    """Store a value behind the ORM's back, as a legacy application or another tool would."""
    with h.connections[alias].cursor() as cursor:
        cursor.execute(f"UPDATE copytest_alltypes SET {column} = {sql_value} WHERE id = %s", [*params, BAD_PK])


UNREADABLE = [
    # (case id, column, SQL value, field, phrases the message must hold)
    ("invalid-utf8", "text", "CAST(X'80ff' AS TEXT)", "text", ["not valid UTF-8"]),
    ("decimal-beyond-max-digits", "amount", "123456789012.5", "amount", ["123456789012.5", "max_digits=14"]),
    ("unparseable-datetime", "moment", "'not a date'", "moment", ["'not a date'", "not a valid date and time"]),
    ("impossible-datetime", "moment", "'2021-02-30 10:00:00'", "moment", ["2021-02-30", "not a valid date and time"]),
    ("unparseable-date", "day", "'31/12/1999'", "day", ["'31/12/1999'", "not a valid date"]),
    ("unparseable-time", "clock", "'25:99'", "clock", ["'25:99'", "not a valid time"]),
]


@pytest.mark.parametrize(
    "case,column,sql_value,field,phrases,source,dest",
    [
        pytest.param(*case, source, dest, id=f"{case[0]}-{source}-{dest}", marks=h.db_mark(source, dest))
        for case in UNREADABLE
        for source, dest in (("sqlite_a", "pg_b"), ("sqlite_a", "sqlite_b"))
    ],
)
def test_unreadable_source_value_names_its_row(case, column, sql_value, field, phrases, source, dest, report_path):
    seed_alltypes(source)
    write_raw(source, column, sql_value)
    result = copy(m.AllTypes, source, dest, report_path)
    assert_refused(result, m.AllTypes, field, f"from '{source}'", "clean the row at the source", *phrases)
    assert f"to '{dest}'" not in result.output, "the source's fault is phrased as the destination refusing"
    assert_rows_before_kept(m.AllTypes, source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_unreadable_value_found_in_the_first_chunk_and_in_a_bulk_create_copy(source, dest, report_path):
    seed_alltypes(source)
    write_raw(source, "amount", "123456789012.5")
    result = copy(m.AllTypes, source, dest, report_path, writer="bulk_create", chunk_size=100)
    assert_refused(result, m.AllTypes, "amount", "max_digits=14")
    assert m.AllTypes.objects.using(dest).count() == 0  # the whole table is one chunk


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_sync_names_an_unreadable_source_row(source, dest, report_path):
    seed_alltypes(source)
    write_raw(source, "text", "CAST(X'80ff' AS TEXT)")
    result = h.dbcopy("sync", "copytest.AllTypes", source=source, dest=dest, chunk_size=CHUNK, report_json=report_path)
    assert_refused(result, m.AllTypes, "text", f"from '{source}'", "not valid UTF-8")
    assert BAD_PK not in set(m.AllTypes.objects.using(dest).values_list("pk", flat=True))


@h.db_mark("sqlite_a")
def test_a_read_error_that_is_not_about_a_value_is_raised_unchanged():
    from django.db import OperationalError

    from dbcopy.exceptions import SourceRowError
    from dbcopy.rows import RowReader

    # The unmanaged model's table does not exist: the database error must come through as it is.
    model = m.LegacyReport
    reader = RowReader(model, "sqlite_a", model._meta.concrete_fields)
    with pytest.raises(OperationalError, match="no such table") as raised:
        list(reader.chunks(10))
    assert not isinstance(raised.value, SourceRowError)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("sqlite_a", "sqlite_b")])
def test_invalid_json_at_the_source_is_named_as_the_source_s_fault(source, dest, report_path):
    seed_alltypes(source)
    # Legacy files hold JSON columns without Django's JSON_VALID check.
    h.sql_for(source, "PRAGMA ignore_check_constraints = ON")
    try:
        write_raw(source, "data", "'{\"broken\": '")
    finally:
        h.sql_for(source, "PRAGMA ignore_check_constraints = OFF")
    result = copy(m.AllTypes, source, dest, report_path)
    assert_refused(result, m.AllTypes, "data", "not valid JSON", "clean the row at the source")
    assert_rows_before_kept(m.AllTypes, source, dest)


# --------------------------------------------------------------------------------------
# Limits of the destination's own schema, which the model does not know about
# --------------------------------------------------------------------------------------

ALTER_COLUMN = {
    "postgresql": "ALTER TABLE {table} ALTER COLUMN {column} TYPE {type}",
    "mysql": "ALTER TABLE {table} MODIFY {column} {type} {null}",
}


def alter_column(alias, table, column, type_, null="NULL"):
    template = ALTER_COLUMN[h.alias_vendor(alias)]
    h.sql_for(alias, template.format(table=table, column=column, type=type_, null=null))


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_destination_column_narrower_than_the_model_is_named(source, dest, report_path):
    seed_freetext(source, {"title": "eight ch"})  # within max_length=10, not within varchar(5)
    alter_column(dest, "copytest_freetext", "title", "varchar(5)", "NOT NULL")
    try:
        result = copy(m.FreeText, source, dest, report_path)
        assert_refused(result, m.FreeText, "title", "the destination column is varchar(5)", "max_length=10")
        assert_rows_before_kept(m.FreeText, source, dest)
    finally:
        m.FreeText.objects.using(dest).all().delete()
        alter_column(dest, "copytest_freetext", "title", "varchar(10)", "NOT NULL")


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_destination_numeric_narrower_than_the_model_is_named(source, dest, report_path):
    seed_alltypes(source, amount=Decimal("123456.5"))  # fits numeric(14,4), not numeric(8,4)
    alter_column(dest, "copytest_alltypes", "amount", "numeric(8,4)")
    try:
        result = copy(m.AllTypes, source, dest, report_path)
        assert_refused(result, m.AllTypes, "amount", "numeric(8,4)", "max_digits=14")
        assert_rows_before_kept(m.AllTypes, source, dest)
    finally:
        m.AllTypes.objects.using(dest).all().delete()
        alter_column(dest, "copytest_alltypes", "amount", "numeric(14,4)")


HAND_MADE_INDEX = "copytest_freetext_title_by_hand"


def drop_hand_made_index(alias):
    on_table = " ON copytest_freetext" if h.alias_vendor(alias) == "mysql" else ""
    h.sql_for(alias, f"DROP INDEX {HAND_MADE_INDEX}{on_table}")


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("pg_a", "sqlite_b")])
def test_unique_index_the_model_lacks_is_named(source, dest, report_path):
    seed_freetext(source, {"title": "row 2"})  # the same title as row 2
    h.sql_for(dest, f"CREATE UNIQUE INDEX {HAND_MADE_INDEX} ON copytest_freetext (title)")
    try:
        result = copy(m.FreeText, source, dest, report_path)
        assert_refused(result, m.FreeText, "title", "not in the model", "drop the index at the destination or dedupe")
        assert_rows_before_kept(m.FreeText, source, dest)
    finally:
        drop_hand_made_index(dest)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "mysql_b")])
def test_row_beyond_max_allowed_packet_names_its_largest_field(source, dest, writer, report_path):
    with h.connections[dest].cursor() as cursor:
        cursor.execute("SELECT @@max_allowed_packet")
        packet = cursor.fetchone()[0]
    if packet > 64 * 1024 * 1024:
        pytest.skip(f"max_allowed_packet is {packet} bytes: a row beyond it is too big for a test")
    seed_freetext(source, {"body": "x" * (packet + 1024)})
    result = copy(m.FreeText, source, dest, report_path, writer=writer)
    if writer == "fast":
        # LOAD DATA streams a file: no statement, so no packet limit, and the row arrives whole.
        h.assert_ok(result)
        assert result.entry(h.label(m.FreeText))["method"] == "stream"
        assert len(m.FreeText.objects.using(dest).get(pk=BAD_PK).body) == packet + 1024
        return
    assert_refused(result, m.FreeText, "body", "max_allowed_packet", "DBCOPY_MAX_STATEMENT_BYTES")
    assert_rows_before_kept(m.FreeText, source, dest)
