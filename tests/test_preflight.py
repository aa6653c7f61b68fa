"""Pre-flight errors: exit status 2 and nothing written anywhere.

Also the write modes: a destination holding rows needs --truncate or --append.
"""

import re

import pytest

from tests import helpers as h
from tests.copytest import models as m


def assert_preflight_error(result, *needles):
    assert result.returncode == 2, f"expected exit status 2 (pre-flight error):\n{result}"
    assert "Traceback" not in result.output, str(result)
    text = result.output
    for needle in needles:
        options = needle if isinstance(needle, tuple) else (needle,)
        assert any(o.lower() in text.lower() for o in options), f"none of {options!r} in the error output:\n{result}"


@pytest.mark.parametrize("alias", [pytest.param(a, marks=h.db_mark(a)) for a in ("sqlite_a", "pg_a", "mysql_a")])
def test_same_alias_as_source_and_dest_is_refused(alias):
    h.seed_core(alias)
    before = h.row_counts(alias)
    result = h.dbcopy("copy", "copytest", source=alias, dest=alias, truncate=True)
    assert_preflight_error(result)
    assert h.row_counts(alias) == before


@pytest.mark.parametrize("alias", [pytest.param(a, marks=pytest.mark.unguarded_db(a)) for a in ("sqlite_a", "pg_a", "mysql_a")])
def test_same_database_given_as_url_is_refused(alias):
    """--dest as a URL that names the source's own database must be caught too, before
    --truncate empties the source."""
    from tests.test_urls import url_for

    h.seed_core(alias)
    before = h.row_counts(alias)
    result = h.dbcopy("copy", "copytest", source=alias, dest=url_for(alias), truncate=True)
    assert_preflight_error(result)
    assert h.row_counts(alias) == before


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_unknown_alias_is_refused(source, dest):
    h.seed_core(source)
    before = h.all_table_counts(dest)
    assert_preflight_error(h.dbcopy("copy", "copytest", source="no_such_alias", dest=dest), "no_such_alias")
    assert_preflight_error(h.dbcopy("copy", "copytest", source=source, dest="no_such_alias"), "no_such_alias")
    assert_preflight_error(h.dbcopy("compare", "copytest", source="no_such_alias", dest=dest), "no_such_alias")
    assert h.all_table_counts(dest) == before


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "sqlite_b")])
def test_unknown_label_is_refused(source, dest):
    h.seed_core(source)
    before = h.all_table_counts(dest)
    assert_preflight_error(h.dbcopy("copy", "copytest.NoSuchModel", source=source, dest=dest), "NoSuchModel")
    assert_preflight_error(h.dbcopy("copy", "no_such_app", source=source, dest=dest), "no_such_app")
    assert h.all_table_counts(dest) == before


def rename_table(alias, old, new):
    h.sql_for(alias, f"ALTER TABLE {h.qn(alias, old)} RENAME TO {h.qn(alias, new)}")


def rename_column(alias, table, old, new):
    h.sql_for(alias, f"ALTER TABLE {h.qn(alias, table)} RENAME COLUMN {h.qn(alias, old)} TO {h.qn(alias, new)}")


@pytest.mark.parametrize(
    "source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")]
)
def test_missing_destination_table_says_to_migrate(source, dest):
    h.seed_core(source)
    table = m.Tag._meta.db_table
    rename_table(dest, table, "copytest_tag_hidden")
    try:
        before = h.all_table_counts_except(dest, {m.Tag, m.Book.tags.through, m.Reserved})
        result = h.dbcopy("copy", "copytest", source=source, dest=dest)
        assert_preflight_error(result, "migrate", "--database", dest)
        assert h.all_table_counts_except(dest, {m.Tag, m.Book.tags.through, m.Reserved}) == before, "rows were written"
    finally:
        rename_table(dest, "copytest_tag_hidden", table)


@pytest.mark.parametrize(
    "source,dest", [h.pair("pg_a", "sqlite_b"), h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b")]
)
def test_renamed_destination_column_is_reported_as_drift(source, dest):
    h.seed_core(source)
    table = m.Book._meta.db_table
    rename_column(dest, table, "title", "title_old")
    try:
        before = h.all_table_counts(dest)
        result = h.dbcopy("copy", "copytest", source=source, dest=dest)
        assert_preflight_error(result, table, "title")
        assert h.all_table_counts(dest) == before, "rows were written"
    finally:
        rename_column(dest, table, "title_old", "title")


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_extra_not_null_destination_column_is_reported_as_drift(source, dest):
    """A destination column the models don't know, NOT NULL without default: every insert
    would fail, so pre-flight must name it."""
    h.seed_core(source)
    table = m.Publisher._meta.db_table
    h.sql_for(dest, f"ALTER TABLE {h.qn(dest, table)} ADD COLUMN {h.qn(dest, 'legacy_code')} integer NOT NULL")
    try:
        before = h.all_table_counts(dest)
        result = h.dbcopy("copy", "copytest", source=source, dest=dest)
        assert_preflight_error(result, table, "legacy_code")
        assert h.all_table_counts(dest) == before, "rows were written"
    finally:
        h.sql_for(dest, f"ALTER TABLE {h.qn(dest, table)} DROP COLUMN {h.qn(dest, 'legacy_code')}")


def seed_dest_tags(alias):
    return [m.Tag.objects.using(alias).create(pk=900_000 + i, name=f"dest-only-{i}") for i in range(3)]


@pytest.mark.parametrize(
    "source,dest", [h.pair("sqlite_a", "mysql_b"), h.pair("mysql_a", "pg_b"), h.pair("pg_a", "sqlite_b")]
)
def test_destination_with_rows_needs_truncate_or_append_then_truncate_replaces(source, dest):
    h.seed_core(source)
    seed_dest_tags(dest)
    before = h.all_table_counts(dest)

    refused = h.dbcopy("copy", "copytest", source=source, dest=dest)
    assert_preflight_error(refused, ("copytest.Tag", m.Tag._meta.db_table))
    assert re.search(r"--truncate|--append", refused.output), f"the error should name --truncate / --append:\n{refused}"
    assert h.all_table_counts(dest) == before, "rows were written despite the pre-flight error"
    assert sorted(m.Tag.objects.using(dest).values_list("name", flat=True)) == [f"dest-only-{i}" for i in range(3)]

    replaced = h.dbcopy("copy", "copytest", source=source, dest=dest, truncate=True)
    h.assert_ok(replaced)
    h.assert_tables_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b"), h.pair("sqlite_a", "pg_b")])
def test_append_adds_to_existing_rows(source, dest, report_path):
    src_tags = [m.Tag.objects.using(source).create(pk=100 + i, name=f"source-{i}") for i in range(5)]
    dest_tags = seed_dest_tags(dest)
    result = h.dbcopy("copy", "copytest.Tag", source=source, dest=dest, append=True, report_json=report_path)
    expected = sorted([(t.pk, t.name) for t in src_tags + dest_tags])
    assert sorted(m.Tag.objects.using(dest).values_list("pk", "name")) == expected
    # After the append a new row still gets a fresh pk.
    new = m.Tag.objects.using(dest).create(name="after append")
    assert new.pk not in {pk for pk, _ in expected}
    # The rows that were there before are not a difference: a successful append exits 0.
    h.assert_ok(result)
    entry = result.entry("copytest.Tag")
    assert entry["copied_rows"] == 5 and entry["source_rows"] == 5, entry
    assert entry["status"] == "ok", entry


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "sqlite_b")])
def test_exclude_leaves_models_out(source, dest, report_path):
    h.seed_core(source)
    result = h.dbcopy(
        "copy", "copytest", source=source, dest=dest, exclude=["copytest.Secret", "copytest.FreeText"], report_json=report_path
    )
    h.assert_ok(result)
    assert m.Secret.objects.using(dest).count() == 0
    assert m.FreeText.objects.using(dest).count() == 0
    for entry in result.report["models"]:
        if entry["model"] in ("copytest.Secret", "copytest.FreeText"):
            assert entry["status"] == "skipped" and entry["copied_rows"] in (0, None), entry
    h.assert_tables_equal(source, dest, [mo for mo in h.copytest_models() if mo not in (m.Secret, m.FreeText)])


@pytest.mark.parametrize("alias", [pytest.param(a, marks=h.db_mark(a)) for a in ("sqlite_a", "pg_a", "mysql_a")])
def test_the_columns_of_all_tables_in_one_query_are_what_django_introspects_per_table(alias):
    """Pre-flight asks the catalog once per database; it must see what Django's introspection sees."""
    from django.db import connections

    from dbcopy.dialects import dialect_for

    dialect = dialect_for(alias)
    tables = sorted(model._meta.db_table for model in h.copytest_models())
    h.sql_for(alias, "ALTER TABLE copytest_tag ADD COLUMN added_by_hand integer")
    # PostgreSQL keeps a dropped column in its catalog, marked dropped.
    h.sql_for(alias, "ALTER TABLE copytest_tag ADD COLUMN dropped_by_hand integer")
    h.sql_for(alias, "ALTER TABLE copytest_tag DROP COLUMN dropped_by_hand")
    try:
        with connections[alias].cursor() as cursor:
            expected = {
                table: [c.name for c in connections[alias].introspection.get_table_description(cursor, table)]
                for table in tables
            }
        assert dialect.column_names_of(tables) == expected
        assert "added_by_hand" in expected["copytest_tag"] and "dropped_by_hand" not in expected["copytest_tag"]
        assert dialect.column_names_of([]) == {}
    finally:
        h.sql_for(alias, "ALTER TABLE copytest_tag DROP COLUMN added_by_hand")
