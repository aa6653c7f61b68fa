"""Schemas that differ between vendors by design, not by drift.

* SQLite provides `rowid` without listing it: a model that declares it (Wagtail's search index on
  SQLite) is copied, not refused for lacking the column.
* A full-text index table that an app creates on one vendor only is skipped, with the reason and
  what rebuilds it, instead of being refused.
* A FK to a multi-table-inheritance child holds the parent's id: its column type is found through
  the parent link, so PostgreSQL → MariaDB still streams it.
"""

import pytest
from django.test import override_settings

from dbcopy.dialects import dialect_for
from dbcopy.storage import column_type_field
from tests import helpers as h
from tests.copytest import models as m

INDEX = m.SearchIndexEntry
INDEX_LABEL = "copytest.SearchIndexEntry"
BODIES = ["first entry", "second, with ünïcode", "third 😀"]


def create_fts_table(alias):
    h.sql_for(alias, f"CREATE VIRTUAL TABLE {INDEX._meta.db_table} USING fts5(body)")


def drop_table(alias):
    h.sql_for(alias, f"DROP TABLE IF EXISTS {INDEX._meta.db_table}")


@pytest.fixture
def index_tables():
    """Create the hand-made index tables a test asks for and drop them afterwards (flush skips unmanaged tables)."""
    created = []

    def create(alias, sql=None):
        created.append(alias)
        if sql is None:
            create_fts_table(alias)
        else:
            h.sql_for(alias, sql)

    yield create
    for alias in created:
        drop_table(alias)


def seed_index(alias):
    # Rowids with gaps: the copy must keep them, as the index refers to its entries by rowid.
    for rowid, body in zip((3, 7, 40), BODIES):
        h.sql_for(alias, f"INSERT INTO {INDEX._meta.db_table} (rowid, body) VALUES ({rowid}, '{body}')")


def index_rows(alias):
    return list(INDEX.objects.using(alias).order_by("entry").values_list("entry", "body"))


def copy_index(source, dest, report_path, *more_labels, **options):
    return h.dbcopy(
        "copy", INDEX_LABEL, *more_labels, source=source, dest=dest, include_unmanaged=True,
        report_json=report_path, **options,
    )


# --- implicit columns ----------------------------------------------------------------------------


@h.db_mark("sqlite_a")
def test_sqlite_names_rowid_implicit_except_on_a_without_rowid_table(index_tables):
    dialect = dialect_for("sqlite_a")
    index_tables("sqlite_a")
    assert {"rowid", "oid", "_rowid_"} <= set(dialect.implicit_column_names(INDEX._meta.db_table))
    assert dialect.is_search_index(INDEX._meta.db_table)
    assert not dialect.is_search_index(m.Book._meta.db_table)
    assert "rowid" in dialect.implicit_column_names(m.Book._meta.db_table)
    drop_table("sqlite_a")
    index_tables("sqlite_a", f"CREATE TABLE {INDEX._meta.db_table} (id INTEGER PRIMARY KEY, body TEXT) WITHOUT ROWID")
    assert not dialect.implicit_column_names(INDEX._meta.db_table)
    assert not dialect.is_search_index(INDEX._meta.db_table)


@pytest.mark.parametrize("alias", [pytest.param(a, marks=h.db_mark(a)) for a in ("pg_a", "mysql_a")])
def test_server_databases_provide_no_implicit_columns(alias):
    dialect = dialect_for(alias)
    assert not dialect.implicit_column_names(m.Book._meta.db_table)
    assert not dialect.is_search_index(m.Book._meta.db_table)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "sqlite_b")])
def test_a_model_declaring_sqlite_s_rowid_is_copied_not_refused(source, dest, index_tables, report_path):
    index_tables(source)
    index_tables(dest)
    seed_index(source)
    result = copy_index(source, dest, report_path)
    h.assert_ok(result)
    assert "lacks column" not in result.output, result.output
    assert result.entry(INDEX_LABEL)["status"] == "ok"
    assert index_rows(dest) == [(3, BODIES[0]), (7, BODIES[1]), (40, BODIES[2])] == index_rows(source)
    # The copied index still answers full-text queries.
    with h.connections[dest].cursor() as cursor:
        cursor.execute(f"SELECT rowid FROM {INDEX._meta.db_table} WHERE {INDEX._meta.db_table} MATCH 'second'")
        assert cursor.fetchall() == [(7,)]


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "sqlite_b")])
def test_a_without_rowid_table_lacking_the_declared_rowid_is_still_drift(source, dest, index_tables, report_path):
    index_tables(source)
    seed_index(source)
    index_tables(dest, f"CREATE TABLE {INDEX._meta.db_table} (body TEXT PRIMARY KEY) WITHOUT ROWID")
    result = copy_index(source, dest, report_path)
    assert result.returncode == 2, str(result)
    assert "lacks column(s) rowid" in result.output and f"'{dest}'" in result.output, result.output
    assert f"Schema drift in '{source}'" not in result.output, result.output
    assert index_rows(source) and not h.raw_rows(dest, INDEX._meta.db_table, ["body"], ["body"])


# --- a search index on one vendor only -----------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_an_index_table_only_the_source_holds_is_skipped_with_how_to_rebuild_it(
    source, dest, index_tables, report_path
):
    index_tables(source)
    seed_index(source)
    m.FreeText.objects.using(source).create(title="copied", body="alongside the index")
    result = copy_index(source, dest, report_path, "copytest.FreeText")
    h.assert_ok(result)
    entry = result.entry(INDEX_LABEL)
    assert entry["status"] == "skipped", entry
    reason = " ".join(str(v) for v in entry.values())
    assert "search index" in reason and "only at the source" in reason, entry
    assert "rebuild" in reason and INDEX_LABEL in reason and "own command" in reason, entry
    assert INDEX_LABEL in result.output and "rebuild" in result.output
    h.assert_tables_equal(source, dest, [m.FreeText])
    assert m.FreeText.objects.using(dest).count() == 1


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_an_index_table_only_the_destination_holds_is_skipped_with_how_to_rebuild_it(
    source, dest, index_tables, report_path
):
    index_tables(dest)
    m.FreeText.objects.using(source).create(title="copied", body="to a database with an index")
    plan = h.dbcopy("plan", INDEX_LABEL, "copytest.FreeText", source=source, dest=dest, include_unmanaged=True)
    h.assert_ok(plan)
    assert "only at the destination" in plan.output and "rebuild" in plan.output, plan.output
    result = copy_index(source, dest, report_path, "copytest.FreeText")
    h.assert_ok(result)
    entry = result.entry(INDEX_LABEL)
    assert entry["status"] == "skipped", entry
    assert "only at the destination" in " ".join(str(v) for v in entry.values()), entry
    h.assert_tables_equal(source, dest, [m.FreeText])


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_an_ordinary_table_missing_at_the_destination_is_still_refused(source, dest, index_tables, report_path):
    # The same model over a plain table is no search index: its absence is a migration to apply.
    index_tables(source, f"CREATE TABLE {INDEX._meta.db_table} (rowid INTEGER PRIMARY KEY, body TEXT)")
    result = copy_index(source, dest, report_path)
    assert result.returncode == 2, str(result)
    assert INDEX._meta.db_table in result.output and "does not exist" in result.output, result.output


# --- a FK to a multi-table-inheritance child ----------------------------------------------------


def test_a_fk_to_an_mti_child_resolves_to_the_root_primary_key():
    field = m.Booking._meta.get_field("restaurant")
    assert field.target_field.get_internal_type() == "OneToOneField"
    assert column_type_field(field) is m.Place._meta.pk
    assert column_type_field(m.Pizzeria._meta.get_field("restaurant_ptr")) is m.Place._meta.pk
    assert column_type_field(m.Place._meta.get_field("name")) is m.Place._meta.get_field("name")


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_a_fk_to_an_mti_child_streams_from_postgresql_to_mariadb(source, dest, report_path):
    restaurants = [
        m.Restaurant.objects.using(source).create(name="Trattoria", serves_pizza=True, rating="4.5"),
        m.Pizzeria.objects.using(source).create(name="Napoli", serves_pizza=True, oven="wood"),
    ]
    m.Place.objects.using(source).create(name="Just a place")
    for i, restaurant in enumerate(restaurants * 3):
        m.Booking.objects.using(source).create(restaurant=restaurant, guests=i + 1)
    models = [m.Place, m.Restaurant, m.Pizzeria, m.Booking]
    result = h.dbcopy("copy", *[h.label(x) for x in models], source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    assert result.entry("copytest.Booking")["method"] == "stream", result.entry("copytest.Booking")
    h.assert_tables_equal(source, dest, models)
    assert m.Booking.objects.using(dest).count() == 6


# --- a search index shaped per vendor (Wagtail's index entries: text on SQLite, tsvector on PostgreSQL)


@pytest.mark.parametrize("source,dest,same_vendor", [
    pytest.param("sqlite_a", "pg_b", False, id="sqlite_a-pg_b", marks=h.db_mark("sqlite_a", "pg_b")),
    pytest.param("pg_a", "pg_b", True, id="pg_a-pg_b", marks=h.db_mark("pg_a", "pg_b")),
])
def test_a_search_index_shaped_per_vendor_is_skipped_across_vendors_only(source, dest, same_vendor, report_path):
    h.seed_stream_pages(source)
    m.FreeText.objects.using(source).create(title="copied", body="either way")
    # StreamPage stands in for an index model here (Wagtail's IndexEntry is in the default list).
    indexes = {"copytest.StreamPage": "python manage.py rebuild_pages"}
    with override_settings(DBCOPY_SEARCH_INDEX_MODELS=indexes):
        result = h.dbcopy("copy", "copytest.StreamPage", "copytest.FreeText", source=source, dest=dest,
                          report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest, [m.FreeText])
    entry = result.entry("copytest.StreamPage")
    if same_vendor:
        assert entry["status"] == "ok", entry
        h.assert_tables_equal(source, dest, [m.StreamPage])
    else:
        assert entry["status"] == "skipped", entry
        reason = " ".join(str(v) for v in entry.values())
        assert "per database vendor" in reason and "`python manage.py rebuild_pages`" in reason, entry
        assert not m.StreamPage.objects.using(dest).exists()
