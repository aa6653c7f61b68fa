"""Streams from every source vendor: the source spells each row as the destination's loader reads it
(dialects/lines.py), PostgreSQL loads with its FK triggers off and checks each FK once, and anything
the pair cannot spell, or the destination refuses, takes the value-by-value path with the row named."""

import dataclasses

import pytest
from django.db import connections
from django.test import override_settings

from dbcopy.dialects import dialect_for, lines
from dbcopy.dialects import mysql as mysql_dialect
from dbcopy.dialects import postgresql as pg_dialect
from dbcopy.plan import build_plan
from dbcopy.runner import Runner
from tests import helpers as h
from tests.copytest import models as m
from tests.test_faults import CATEGORY, assert_categories_equal, kill_at_chunk, seed_categories
from tests.test_faults_load_data import TEXT, seed_texts

# Pairs whose tables stream through a line SELECT at the source (the PostgreSQL sources use COPY TO).
LINE_PAIRS = [
    h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "pg_b"), h.pair("mysql_a", "mysql_b"), h.pair("sqlite_a", "mysql_b"),
]
TO_POSTGRESQL = [h.pair("pg_a", "pg_b"), h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "pg_b")]


def make_orphan(alias, table, column, pk, value):
    """Point a row's FK at a row that does not exist, as a source with its checks off can hold."""
    vendor = h.alias_vendor(alias)
    off, on = {
        "postgresql": ("SET session_replication_role = replica", "SET session_replication_role = DEFAULT"),
        "mysql": ("SET foreign_key_checks = 0", "SET foreign_key_checks = 1"),
        "sqlite": ("PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"),
    }[vendor]
    with connections[alias].cursor() as cursor:
        cursor.execute(off)
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])
        cursor.execute(on)


@pytest.mark.parametrize("source,dest", [*LINE_PAIRS, h.pair("pg_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_a_dangling_reference_rolls_the_stream_back_and_names_the_row(source, dest, report_path):
    """FK checks happen once per table (LOAD DATA, and PostgreSQL with its triggers off): an orphan in
    the source rolls the streamed table back, and the value-by-value path names the row."""
    h.seed_core(source)
    book = m.Book.objects.using(source).order_by("pk").first()
    make_orphan(source, "copytest_book", "publisher_id", book.pk, 999999)
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    assert result.returncode == 1, str(result)
    assert f"pk={book.pk}" in result.output and "'publisher'" in result.output, result.output
    assert result.entry("copytest.Book")["status"] == "failed"
    assert not m.Book.objects.using(dest).filter(publisher_id=999999).exists()
    # The other tables streamed, their FKs checked once each.
    assert result.entry("copytest.Publisher")["method"] == "stream"


@pytest.mark.parametrize("source,dest", TO_POSTGRESQL)
def test_postgresql_checks_each_foreign_key_once_where_the_role_may(source, dest, report_path):
    h.seed_core(source)
    dialect = dialect_for(dest)
    checks = dialect.load_checks("copytest_book")
    assert checks.once_per_table, checks.reason  # the tests connect as a superuser
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest)
    with connections[dest].cursor() as cursor:  # SET LOCAL: nothing of it outlives the table's transaction
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b")])
def test_a_role_that_may_not_switch_triggers_off_keeps_them(source, dest):
    with connections[dest].cursor() as cursor:
        cursor.execute("DROP ROLE IF EXISTS dbcopy_plain_role")
        cursor.execute("CREATE ROLE dbcopy_plain_role")
        cursor.execute("SET ROLE dbcopy_plain_role")
        try:
            checks = dialect_for(dest)._load_checks("copytest_book")
        finally:
            cursor.execute("RESET ROLE")
            cursor.execute("DROP ROLE dbcopy_plain_role")
    assert not checks.once_per_table
    assert "may not set session_replication_role" in checks.reason


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "pg_b")])
def test_a_trigger_of_the_destination_s_own_still_fires_for_every_row(source, dest, report_path):
    """Switching FK triggers off would switch the table's own triggers off too: they keep firing."""
    seed_categories(source, 300)
    with connections[dest].cursor() as cursor:
        cursor.execute("CREATE TABLE category_audit (id integer)")
        cursor.execute(
            "CREATE FUNCTION category_audit_row() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO category_audit VALUES (NEW.id); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER category_audit AFTER INSERT ON copytest_category "
            "FOR EACH ROW EXECUTE FUNCTION category_audit_row()"
        )
    try:
        checks = dialect_for(dest).load_checks("copytest_category")
        assert not checks.once_per_table and "triggers or rules" in checks.reason
        result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, report_json=report_path)
        h.assert_ok(result)
        assert result.entry(CATEGORY)["method"] == "stream"
        with connections[dest].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM category_audit")
            assert cursor.fetchone()[0] == 300
        assert_categories_equal(source, dest)
    finally:
        with connections[dest].cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS category_audit ON copytest_category")
            cursor.execute("DROP FUNCTION IF EXISTS category_audit_row()")
            cursor.execute("DROP TABLE IF EXISTS category_audit")


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("mysql_a", "pg_b")])
def test_a_table_the_pair_cannot_spell_exactly_takes_the_value_by_value_path(source, dest, report_path):
    """SQLite's text for a REAL keeps 15 digits: a float column is copied value by value, exactly."""
    h.seed_core(source)
    plan = build_plan(source, dest, ["copytest"])
    step = next(s for s in plan.steps if s.label == "copytest.AllTypes")
    sql = lines.line_select_sql(dialect_for(source), dialect_for(dest), step, dialect_for(dest).wire_kinds(step))
    if source == "sqlite_a":
        assert not sql and "FloatField" in sql.reason
    else:
        assert sql  # MariaDB prints a double in its shortest exact form
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    expected = "fast" if source == "sqlite_a" else "stream"
    assert result.entry("copytest.AllTypes")["method"] == expected
    h.assert_tables_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_datetimes_stored_in_another_zone_are_not_streamed(source, dest, report_path):
    h.seed_core(source)
    plan = build_plan(source, dest, ["copytest.AllTypes"])
    step = plan.steps[0]
    dest_dialect = dialect_for(dest)
    with override_settings(TIME_ZONE="Europe/Paris"):
        connections[dest].settings_dict["TIME_ZONE"] = "Europe/Paris"
        connections[dest].__dict__.pop("timezone_name", None)
        try:
            sql = lines.line_select_sql(dialect_for(source), dest_dialect, step, dest_dialect.wire_kinds(step))
        finally:
            connections[dest].settings_dict["TIME_ZONE"] = None
            connections[dest].__dict__.pop("timezone_name", None)
    assert not sql and "Europe/Paris" in sql.reason


@pytest.mark.parametrize("killed", ["mysql_a", "pg_b"])
@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b")])
def test_killed_connection_mid_line_stream_restarts_the_table(source, dest, killed, monkeypatch, report_path):
    """A MariaDB source read through an unbuffered cursor, or the COPY it feeds, killed mid-table: the
    table's one transaction rolls back and the retry streams it again, on fresh connections."""
    monkeypatch.setattr(pg_dialect, "_STREAM_REPORT_EVERY", 50)
    monkeypatch.setattr(lines, "FETCH_ROWS", 100)
    # 30 MB of rows: more than the socket buffers hold, so the source is still sending when it is killed.
    seed_texts(source)
    state = kill_at_chunk(monkeypatch, TEXT, killed, chunk=2)
    result = h.dbcopy("copy", TEXT, source=source, dest=dest, report_json=report_path)
    assert state["killed"] == 1
    h.assert_ok(result)
    assert h.diff_tables(m.FreeText, source, dest) == []
    row = result.entry(TEXT)
    assert row["method"] == "stream" and row["retries"] >= 1, row


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b"), h.pair("mysql_a", "mysql_b")])
def test_interrupt_during_a_line_stream_rolls_the_table_back(source, dest, monkeypatch, report_path):
    monkeypatch.setattr(pg_dialect, "_STREAM_REPORT_EVERY", 50)
    monkeypatch.setattr(lines, "FETCH_ROWS", 100)
    seed_categories(source, 3000)
    original = Runner.progress
    sent = []

    def progress(self, event, step, **data):
        if event == "chunk" and step is not None and step.label == CATEGORY and not sent and data["copied"]:
            self.stop_signal = 2  # SIGINT: what the handler does
            sent.append(data["copied"])
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    result = h.dbcopy("copy", CATEGORY, source=source, dest=dest, report_json=report_path)
    assert result.returncode == 130, result
    assert "Traceback" not in result.output
    assert m.Category.objects.using(dest).count() == 0
    assert result.entry(CATEGORY)["status"] == "interrupted"
    h.assert_ok(h.dbcopy("copy", CATEGORY, source=source, dest=dest, resume=True))
    assert_categories_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("mysql_a", "mysql_b")])
def test_a_refused_value_falls_back_and_the_source_snapshot_survives(source, dest, report_path):
    """The destination refuses a row mid-stream; the rest of the source's unbuffered result is read
    off, so the value-by-value path reads the same snapshot on the same connection and names the row."""
    h.seed_core(source)
    text = m.FreeText.objects.using(source).create(title="nul", body="a\x00b")
    result = h.dbcopy("copy", "copytest.FreeText", source=source, dest=dest, report_json=report_path)
    if h.alias_vendor(dest) == "postgresql":
        assert result.returncode == 1, str(result)
        assert f"pk={text.pk}" in result.output, result.output
        assert result.report["consistent"] is True, result.report.get("snapshot")
    else:  # MariaDB keeps NUL characters
        h.assert_ok(result)
        assert result.entry("copytest.FreeText")["method"] == "stream"
        assert m.FreeText.objects.using(dest).get(pk=text.pk).body == "a\x00b"


@pytest.mark.parametrize("source,dest", LINE_PAIRS)
def test_every_column_type_streams_as_the_reference_writer_stores_it(source, dest, report_path):
    """Every AllTypes column but the float (which SQLite cannot spell exactly) through the line stream:
    the destination then holds what `--writer bulk_create` stores, value for value."""
    for row in h.alltypes_rows():
        m.AllTypes.objects.using(source).create(**row)
    reference = h.dbcopy("copy", "copytest.AllTypes", source=source, dest=dest, writer="bulk_create")
    h.assert_ok(reference)
    columns = [f.column for f in m.AllTypes._meta.concrete_fields if f.name != "ratio"]
    stored_by_reference = h.raw_rows(dest, "copytest_alltypes", columns, ["id"])
    m.AllTypes.objects.using(dest).all().delete()

    step = build_plan(source, dest, ["copytest.AllTypes"]).steps[0]
    step = dataclasses.replace(step, fields=tuple(f for f in step.fields if f.name != "ratio"))
    source_dialect, dest_dialect = dialect_for(source), dialect_for(dest)
    assert lines.line_select_sql(source_dialect, dest_dialect, step, dest_dialect.wire_kinds(step))
    copied = dest_dialect.stream_table(step, source_dialect, on_rows=lambda rows: None)
    assert copied == len(stored_by_reference) > 5
    assert h.raw_rows(dest, "copytest_alltypes", columns, ["id"]) == stored_by_reference


@pytest.mark.parametrize("source,dest", [
    *LINE_PAIRS, h.pair("pg_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("pg_a", "sqlite_b"), h.pair("mysql_a", "sqlite_b"),
])
def test_the_stream_plan_says_how_each_table_streams_or_why_not(source, dest):
    plan = build_plan(source, dest, ["copytest"])
    source_dialect, dest_dialect = dialect_for(source), dialect_for(dest)
    how = {step.label: dest_dialect.stream_plan(step, source_dialect) for step in plan.steps}
    book = how["copytest.Book"]
    if dest == "sqlite_b":
        assert book and "executemany" in book.how, book
        return
    assert book and ("COPY FROM STDIN" in book.how or "LOAD DATA" in book.how), book
    assert "anti-join" in book.how
    if dest == "mysql_b":
        assert "loads whole, never in key ranges" in book.how, book
    if source == "sqlite_a":
        assert not how["copytest.AllTypes"] and "ratio (FloatField)" in how["copytest.AllTypes"].how
    if (source, dest) == ("pg_a", "pg_b"):
        assert "(binary)" in book.how


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_plan_at_v2_and_the_json_report_say_each_table_s_path(source, dest, report_path):
    h.seed_core(source)
    plan = h.dbcopy("plan", "copytest.Book", "copytest.AllTypes", source=source, dest=dest, verbosity=2)
    h.assert_ok(plan)
    text = " ".join(plan.stdout.split())
    assert "copytest.Book → 'pg_b': stream: SQLite SELECT spelling COPY lines → COPY FROM STDIN" in text, plan.stdout
    assert "one anti-join per foreign key" in text
    assert "copytest.AllTypes → 'pg_b': chunks: ratio (FloatField) has no exact spelling from sqlite" in text
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    book, alltypes = result.entry("copytest.Book"), result.entry("copytest.AllTypes")
    assert book["method"] == "stream" and "COPY FROM STDIN" in book["path"], book
    assert alltypes["method"] == "fast" and "FloatField" in alltypes["path"], alltypes


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("mysql_a", "mysql_b")])
def test_text_in_a_character_set_whose_characters_hold_a_backslash_byte_streams_exactly(source, dest, report_path):
    """The line SELECT escapes text byte by byte, which is exact in UTF-8 only: a Shift JIS column, where
    表 is the bytes 0x95 0x5C (a backslash), is converted to utf8mb4 first."""
    names = ["表", "表\\", "ソ\t表\n", "a\\b表\r", "能"]
    table, column = h.qn(source, m.Tag._meta.db_table), h.qn(source, "name")
    h.sql_for(source, f"ALTER TABLE {table} MODIFY {column} varchar(50) CHARACTER SET sjis NOT NULL")
    try:
        m.Tag.objects.using(source).bulk_create(m.Tag(name=name) for name in names)
        with connections[source].cursor() as cursor:
            cursor.execute(f"SELECT HEX({column}) FROM {table} WHERE {column} = %s", ["表"])
            assert cursor.fetchone()[0] == "955C"  # stored in Shift JIS, as the test means
        result = h.dbcopy("copy", "copytest.Tag", source=source, dest=dest, report_json=report_path)
        h.assert_ok(result)
        assert result.entry("copytest.Tag")["method"] == "stream"
        assert sorted(m.Tag.objects.using(dest).values_list("name", flat=True)) == sorted(names)
    finally:
        h.sql_for(source, f"ALTER TABLE {table} MODIFY {column} varchar(50) NOT NULL")


# ----------------------------------------------------------------------------------------
# MariaDB's bulk insert into an empty table, and the FK check that reads the table just loaded
# ----------------------------------------------------------------------------------------


def test_bulk_insert_is_taken_only_from_the_mariadb_releases_that_fixed_it():
    fixed = mysql_dialect._fixed_bulk_insert
    assert [fixed(v) for v in [(10, 6, 20), (10, 11, 10), (10, 11, 11), (10, 11, 19), (11, 0, 6)]] == [
        False, False, True, True, False]
    assert [fixed(v) for v in [(11, 4, 4), (11, 4, 5), (11, 7, 1), (11, 7, 2), (12, 0, 1)]] == [
        False, True, False, True, True]


TITLE_COLUMN = "title varchar(10) NOT NULL COLLATE {}"


@pytest.mark.parametrize("duplicate", ["title 7", "TITLE 7"], ids=["same", "same-for-the-collation"])
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "mysql_b"), h.pair("sqlite_a", "mysql_b")])
def test_a_duplicate_only_the_destination_refuses_rolls_the_bulk_insert_back_and_names_the_row(
    source, dest, duplicate, report_path
):
    """An empty table loads by bulk insert (unique_checks off, indexes built by sorting); a duplicate in
    a unique index the destination alone has, even one only its collation sees, still fails the load,
    and the value-by-value path names it."""
    connection = connections[dest]
    loader = dialect_for(dest)._loading_connection()
    try:
        if connection.mysql_is_mariadb and mysql_dialect._fixed_bulk_insert(connection.mysql_version):
            assert loader.bulk_insert, "this server should take the bulk insert: the test would prove nothing"
    finally:
        loader.close()
    texts = [m.FreeText(pk=pk, title=f"title {pk}", body=f"body {pk}") for pk in range(1, 41)]
    texts.append(m.FreeText(pk=41, title=duplicate, body="the same title as row 7"))
    m.FreeText.objects.using(source).bulk_create(texts)
    # mysql_b is binary; a case-insensitive column, as most MariaDB databases have, makes "TITLE 7" collide.
    h.sql_for(dest, f"ALTER TABLE copytest_freetext MODIFY {TITLE_COLUMN.format('utf8mb4_general_ci')}")
    h.sql_for(dest, "CREATE UNIQUE INDEX copytest_freetext_title_by_hand ON copytest_freetext (title)")
    try:
        result = h.dbcopy("copy", "copytest.FreeText", source=source, dest=dest, report_json=report_path)
        assert result.returncode == 1, str(result)
        assert "streaming failed" in result.output, result.output  # the bulk insert was tried first
        assert "copytest.FreeText pk=41" in result.output and "Traceback" not in result.output, result.output
        assert result.entry("copytest.FreeText")["status"] == "failed"
        assert not m.FreeText.objects.using(dest).filter(pk=41).exists()
        kept = dict(m.FreeText.objects.using(dest).values_list("pk", "title"))
        assert kept == {pk: f"title {pk}" for pk in range(1, 41)}  # the rows before it, as always
    finally:
        h.sql_for(dest, "DROP INDEX copytest_freetext_title_by_hand ON copytest_freetext")
        h.sql_for(dest, f"ALTER TABLE copytest_freetext MODIFY {TITLE_COLUMN.format('utf8mb4_bin')}")


@pytest.mark.parametrize("primary_key", [True, False], ids=["primary-key", "no-primary-key"])
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_the_fk_check_after_a_load_finds_an_orphan_with_or_without_a_primary_key(source, dest, primary_key):
    """The check scans the loaded table by its primary key (FORCE INDEX), and by whatever the server
    picks where the table has none (a legacy table)."""
    dialect = dialect_for(dest)
    key = "id bigint PRIMARY KEY" if primary_key else "id bigint"
    h.sql_for(dest, "DROP TABLE IF EXISTS legacy_child")
    h.sql_for(dest, f"CREATE TABLE legacy_child ({key}, tag_id bigint, FOREIGN KEY (tag_id) REFERENCES copytest_tag (id))")
    try:
        tag = m.Tag.objects.using(dest).create(name="present")
        loader = dialect._loading_connection()
        try:
            cursor = loader.cursor()
            cursor.execute(f"INSERT INTO legacy_child VALUES (1, {tag.pk}), (2, NULL), (3, {tag.pk + 1000})")
            step = dataclasses.make_dataclass("Step", ["table", "key_range", "label"])("legacy_child", None, "legacy")
            with pytest.raises(mysql_dialect.LoadDataWarning, match=rf"tag_id = {tag.pk + 1000}\) to a row of copytest_tag"):
                dialect._verify_references(cursor, step)
            cursor.execute("DELETE FROM legacy_child WHERE id = 3")
            dialect._verify_references(cursor, step)  # nothing dangles now
        finally:
            loader.rollback()
            loader.close()
    finally:
        h.sql_for(dest, "DROP TABLE IF EXISTS legacy_child")
