"""JSON travels as its stored text, also in a field that is not a JSONField (Wagtail's StreamField)."""

import json

import pytest

from tests import helpers as h
from tests.copytest import models as m

LABEL = "copytest.StreamPage"


def stored_bodies(alias):
    """{pk: parsed body} straight from the table, bypassing the field's Python layer."""
    rows = h.raw_json_rows(alias, m.StreamPage, "body")
    return {pk: (None if is_null else parsed) for pk, is_null, parsed in rows}


@pytest.mark.parametrize("writer", ["fast", "bulk_create"])
@pytest.mark.parametrize("source,dest", [
    h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b"), h.pair("pg_a", "pg_b"),
])
def test_a_json_column_of_a_custom_field_is_copied_as_stored(source, dest, writer):
    h.seed_stream_pages(source)
    h.assert_ok(h.dbcopy("copy", LABEL, source=source, dest=dest, writer=writer))
    copied = stored_bodies(dest)
    assert copied == stored_bodies(source)
    assert not any("id" in block for block in copied[min(copied)]), "blocks were given ids on the way"


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_sync_of_a_custom_json_field_is_idempotent(source, dest, report_path):
    h.seed_stream_pages(source)
    first = h.dbcopy("sync", LABEL, source=source, dest=dest, report_json=report_path)
    h.assert_ok(first)
    second = h.dbcopy("sync", LABEL, source=source, dest=dest, report_json=report_path)
    h.assert_ok(second)
    entry = second.entry(LABEL)
    assert (entry["inserted"], entry["updated"]) == (0, 0), entry
    assert stored_bodies(dest) == stored_bodies(source)
    # A real change at the source is still seen, and only that one.
    page = m.StreamPage.objects.using(source).order_by("pk").first()
    m.StreamPage.objects.using(source).filter(pk=page.pk).update(title="renamed")
    third = h.dbcopy("sync", LABEL, source=source, dest=dest, report_json=report_path)
    assert third.entry(LABEL)["updated"] == 1
    assert json.dumps(stored_bodies(dest), sort_keys=True) == json.dumps(stored_bodies(source), sort_keys=True)
