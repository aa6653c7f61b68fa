"""`copy --truncate` must not delete, change or orphan rows outside the plan.

The planned tables are emptied with DELETE FROM, referrers first. A table outside the plan whose
foreign key points at a planned table would lose its rows (ON DELETE CASCADE), have them changed
(SET NULL) or be left pointing at nothing — whether or not a Django model maps it. Pre-flight asks
the database catalog for every such key and refuses (exit status 2, nothing deleted) while the
outside table holds rows that refer to a planned table.

The outside tables are made by hand with raw SQL and dropped at the end of each test: the test
flush only knows Django's tables.
"""

import os
import subprocess
import sys
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connections

from dbcopy.dialects import dialect_for
from tests import helpers as h
from tests.copytest import models as m

AUTHOR = m.Author._meta.db_table
OUTSIDE = "legacy_fan"

# PostgreSQL, MariaDB and SQLite destinations, each fed by another vendor.
DESTINATIONS = [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")]


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------


def fk_type(alias, model):
    """The column type a foreign key to the model's primary key needs on alias (bigint, …)."""
    return model._meta.pk.rel_db_type(connections[alias])


def qualified(alias, *names):
    """Quote each part of a (schema.)table name for alias."""
    return ".".join(h.qn(alias, name) for name in names)


@contextmanager
def outside_table(alias, on_delete="CASCADE", name=OUTSIDE, schema=None):
    """Create a table no Django model maps, with an FK to copytest's author table; drop it on exit."""
    q = lambda ident: h.qn(alias, ident)  # noqa: E731
    table = qualified(alias, schema, name) if schema else qualified(alias, name)
    h.sql_for(
        alias,
        f"CREATE TABLE {table} ({q('id')} integer PRIMARY KEY, {q('author_id')} {fk_type(alias, m.Author)} NULL, "
        f"{q('note')} varchar(50), CONSTRAINT {q(name + '_author_fk')} FOREIGN KEY ({q('author_id')}) "
        f"REFERENCES {q(AUTHOR)} ({q('id')}) ON DELETE {on_delete})",
    )
    try:
        yield table
    finally:
        h.sql_for(alias, f"DROP TABLE IF EXISTS {table}")


def insert_fans(alias, table, author_ids):
    """One row per author id (None for a row that refers to nobody)."""
    with connections[alias].cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (id, author_id, note) VALUES (%s, %s, %s)",
            [(i + 1, author_id, f"fan {i}") for i, author_id in enumerate(author_ids)],
        )


def fans(alias, table):
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT id, author_id, note FROM {table} ORDER BY id")
        return cursor.fetchall()


def dest_authors(alias, n=3):
    return list(m.Author.objects.using(alias).order_by("pk").values_list("pk", flat=True)[:n])


def truncate_copy(source, dest, *labels):
    return h.dbcopy("copy", *(labels or ("copytest",)), source=source, dest=dest, truncate=True)


def assert_refused(result, *needles):
    assert result.returncode == 2, f"expected exit status 2 (pre-flight error):\n{result}"
    assert "Traceback" not in result.output, str(result)
    for needle in needles:
        assert needle.lower() in result.error.lower(), f"{needle!r} not in the error:\n{result}"


def rule_case(source, dest, rule, effect):
    return pytest.param(source, dest, rule, effect, id=f"{source}-{dest}-{rule}", marks=h.db_mark(source, dest))


def settings_module():
    return settings.SETTINGS_MODULE or "tests.settings.all_backends"


# ----------------------------------------------------------------------------------------
# Refusals
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", DESTINATIONS)
def test_outside_table_with_cascade_to_a_planned_table_refuses_truncate_and_deletes_nothing(source, dest):
    h.seed_core(source)
    h.seed_core(dest)
    with outside_table(dest, "CASCADE") as table:
        insert_fans(dest, table, dest_authors(dest) + [None])
        fans_before, counts_before = fans(dest, table), h.all_table_counts(dest)

        result = truncate_copy(source, dest)

        assert_refused(result, OUTSIDE, "author_id", AUTHOR, "copytest.Author", "ON DELETE CASCADE would delete")
        assert "drop its constraint" in result.error and "empty legacy_fan first" in result.error, result.error
        assert fans(dest, table) == fans_before, "rows of the outside table were deleted"
        assert h.all_table_counts(dest) == counts_before, "planned tables were emptied despite the refusal"


@pytest.mark.parametrize(
    "source,dest,rule,effect",
    [
        rule_case("pg_a", "sqlite_b", "SET NULL", "set author_id to NULL"),
        rule_case("sqlite_a", "mysql_b", "RESTRICT", "refuse the delete"),
        rule_case("mysql_a", "pg_b", "NO ACTION", "refuse the delete"),
    ],
)
def test_every_on_delete_rule_refuses_and_is_named(source, dest, rule, effect):
    h.seed_core(source)
    h.seed_core(dest)
    with outside_table(dest, rule) as table:
        insert_fans(dest, table, dest_authors(dest))
        fans_before, counts_before = fans(dest, table), h.all_table_counts(dest)

        result = truncate_copy(source, dest)

        assert_refused(result, OUTSIDE, "author_id", AUTHOR, f"ON DELETE {rule}", effect)
        assert fans(dest, table) == fans_before
        assert h.all_table_counts(dest) == counts_before


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_outside_table_in_another_schema_is_named_with_its_schema(source, dest):
    """PostgreSQL: a referrer off the search path, even one named like a planned table, is not emptied."""
    h.seed_core(source)
    h.seed_core(dest)
    schema = "legacy_trunc"
    h.sql_for(dest, f"CREATE SCHEMA {h.qn(dest, schema)}")
    try:
        # Same name as a planned table in the search path: emptying public.copytest_book leaves it alone.
        with outside_table(dest, "CASCADE", name=m.Book._meta.db_table, schema=schema) as table:
            insert_fans(dest, table, dest_authors(dest))
            fans_before, counts_before = fans(dest, table), h.all_table_counts(dest)

            result = truncate_copy(source, dest)

            assert_refused(result, f"table {schema}.{m.Book._meta.db_table}", "ON DELETE CASCADE", AUTHOR)
            assert fans(dest, table) == fans_before
            assert h.all_table_counts(dest) == counts_before
    finally:
        h.sql_for(dest, f"DROP SCHEMA IF EXISTS {h.qn(dest, schema)} CASCADE")


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_outside_table_in_another_mysql_database_is_named_with_its_database(source, dest):
    """InnoDB lets a table of another database on the server refer to ours."""
    h.seed_core(source)
    h.seed_core(dest)
    other = f"{connections[dest].settings_dict['NAME']}_outside"
    h.sql_for(dest, f"CREATE DATABASE {h.qn(dest, other)} CHARACTER SET utf8mb4")
    try:
        database = connections[dest].settings_dict["NAME"]
        table = qualified(dest, other, OUTSIDE)
        h.sql_for(
            dest,
            f"CREATE TABLE {table} (id integer PRIMARY KEY, author_id {fk_type(dest, m.Author)} NULL, note varchar(50), "
            f"FOREIGN KEY (author_id) REFERENCES {qualified(dest, database, AUTHOR)} (id) ON DELETE CASCADE)",
        )
        insert_fans(dest, table, dest_authors(dest))
        fans_before, counts_before = fans(dest, table), h.all_table_counts(dest)

        result = truncate_copy(source, dest)

        assert_refused(result, f"table {other}.{OUTSIDE}", "ON DELETE CASCADE would delete", AUTHOR)
        assert fans(dest, table) == fans_before
        assert h.all_table_counts(dest) == counts_before
    finally:
        h.sql_for(dest, f"DROP DATABASE IF EXISTS {h.qn(dest, other)}")


@pytest.mark.parametrize("source,dest", DESTINATIONS)
def test_model_referrers_are_reported_once_and_those_without_constraint_too(source, dest):
    """Planning only copytest.Author: Book's FK is both in the catalog and in the models (one
    message), LooseRef's FK has db_constraint=False (no catalog entry, still a message)."""
    h.seed_core(source)
    h.seed_core(dest)
    counts_before = h.all_table_counts(dest)

    result = truncate_copy(source, dest, "copytest.Author")

    assert_refused(result, "copytest.Book (copytest_book)", "copytest.LooseRef (copytest_looseref)")
    assert result.error.count("but copytest.Book (copytest_book)") == 1, result.error
    assert result.error.count("but copytest.LooseRef (copytest_looseref)") == 1, result.error
    loose = next(line for line in result.error.splitlines() if "copytest.LooseRef (" in line)
    assert "no database constraint" in loose and "add copytest.LooseRef to the labels" in loose, loose
    assert "drop its constraint" not in loose, loose
    book = next(line for line in result.error.splitlines() if "copytest.Book (" in line)
    assert "add copytest.Book to the labels" in book and "author_id" in book, book
    assert h.all_table_counts(dest) == counts_before


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "sqlite_b")])
def test_command_line_refuses_with_exit_status_2(source, dest):
    """`dbcopy copy copytest --truncate --no-input` as a user types it."""
    h.seed_core(source)
    h.seed_core(dest)
    with outside_table(dest, "CASCADE") as table:
        insert_fans(dest, table, dest_authors(dest))
        fans_before, counts_before = fans(dest, table), h.all_table_counts(dest)
        env = dict(os.environ, DBCOPY_TEST_USE_TEST_NAMES="1", PYTHONUNBUFFERED="1", COLUMNS="200")
        env.pop("DJANGO_SETTINGS_MODULE", None)
        proc = subprocess.run(
            [sys.executable, "-m", "django", "dbcopy", "copy", "copytest", "--source", source, "--dest", dest,
             "--truncate", "--no-input", "--settings", settings_module()],
            cwd=h.REPO_DIR, env=env, capture_output=True, text=True, timeout=240,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 2, output
        assert OUTSIDE in output and "ON DELETE CASCADE" in output and "Traceback" not in output, output
        assert fans(dest, table) == fans_before
        assert h.all_table_counts(dest) == counts_before


# ----------------------------------------------------------------------------------------
# Referrers that hold nothing to lose
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", ["empty", "all NULL"])
@pytest.mark.parametrize("source,dest", DESTINATIONS)
def test_outside_table_without_referring_rows_lets_truncate_go_ahead(source, dest, rows):
    h.seed_core(source)
    h.seed_core(dest)
    with outside_table(dest, "CASCADE") as table:
        if rows == "all NULL":
            insert_fans(dest, table, [None, None, None])
        fans_before = fans(dest, table)

        result = truncate_copy(source, dest)

        h.assert_ok(result)
        h.assert_tables_equal(source, dest)
        assert fans(dest, table) == fans_before


# ----------------------------------------------------------------------------------------
# The dialect method on its own
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", [pytest.param(a, marks=h.db_mark(a)) for a in ("pg_b", "mysql_b", "sqlite_b")])
@pytest.mark.skipif(not m.HAS_COMPOSITE_PK, reason="composite primary keys need Django 5.2")
def test_foreign_key_referrers_reads_columns_rules_and_composite_keys_from_the_catalog(alias):
    q = lambda ident: h.qn(alias, ident)  # noqa: E731
    enrollment = m.Enrollment._meta.db_table
    term_type = m.Enrollment._meta.get_field("term").db_type(connections[alias])
    with outside_table(alias, "CASCADE"):
        composite = (
            f"CREATE TABLE {q('legacy_grade')} ({q('id')} integer PRIMARY KEY, "
            f"{q('person_id')} {fk_type(alias, m.Person)} NULL, {q('term')} {term_type} NULL, "
            f"CONSTRAINT {q('legacy_grade_enrollment_fk')} FOREIGN KEY ({q('person_id')}, {q('term')}) "
            f"REFERENCES {q(enrollment)} ({q('person_id')}, {q('term')}) ON DELETE SET NULL)"
        )
        h.sql_for(alias, composite)
        try:
            dialect = dialect_for(alias)
            found = dialect.foreign_key_referrers([AUTHOR, enrollment])
            by_table = {}
            for referrer in found:
                by_table.setdefault(referrer.table, []).append(referrer)

            (fan,) = by_table[OUTSIDE]
            assert (fan.columns, fan.referenced_table, fan.on_delete, fan.schema) == (("author_id",), AUTHOR, "CASCADE", None)
            (grade,) = by_table["legacy_grade"]
            assert (grade.columns, grade.referenced_table, grade.on_delete) == (("person_id", "term"), enrollment, "SET NULL")
            assert any(r.columns == ("author_id",) and r.referenced_table == AUTHOR for r in by_table[m.Book._meta.db_table])
            # db_constraint=False: no constraint in the catalog.
            assert m.LooseRef._meta.db_table not in by_table
            # Only keys on the tables asked about.
            assert {r.referenced_table for r in found} == {AUTHOR, enrollment}
            assert all(r.referenced_table == AUTHOR for r in dialect.foreign_key_referrers([AUTHOR]))
        finally:
            h.sql_for(alias, f"DROP TABLE IF EXISTS {q('legacy_grade')}")
