"""Destinations whose migrations seed rows (Wagtail's root page, site, locale…): one obvious flag."""

import pytest

from tests import helpers as h
from tests.copytest import models as m


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_rows_a_data_migration_made_are_named_as_such_and_truncate_replaces_them(source, dest):
    for pk, name in ((1, "Root"), (2, "Home"), (3, "About")):
        m.Category.objects.using(source).create(pk=pk, name=f"{name} (edited at the source)")
    for pk, name in ((1, "Root"), (2, "Welcome to your new site")):  # what the app's migration seeds
        m.Category.objects.using(dest).create(pk=pk, name=name)
    refused = h.dbcopy("copy", "copytest.Category", source=source, dest=dest)
    assert refused.returncode == 2, refused
    assert "migrations seem to have created" in refused.output and "--truncate" in refused.output
    assert sorted(m.Category.objects.using(dest).values_list("name", flat=True)) == ["Root", "Welcome to your new site"]
    h.assert_ok(h.dbcopy("copy", "copytest.Category", source=source, dest=dest, truncate=True))
    assert h.diff_tables(m.Category, source, dest) == []


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "sqlite_b")])
def test_rows_the_source_does_not_have_are_not_called_seeds(source, dest):
    m.Category.objects.using(source).create(pk=1, name="Root")
    m.Category.objects.using(dest).create(pk=1, name="Root")
    m.Category.objects.using(dest).create(pk=99, name="written at the destination")
    refused = h.dbcopy("copy", "copytest.Category", source=source, dest=dest)
    assert refused.returncode == 2, refused
    assert "migrations seem" not in refused.output
    assert "--resume" in refused.output and "--append" in refused.output
