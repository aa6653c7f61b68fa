"""Values travel as stored: a custom field's Python layer is never involved (issue 8, point 2).

copytest.Ticket has a primary key whose field reads a WrappedId it then refuses (as django-hashid-field
does with int lookups off) and an encrypted-style text that gets a new ciphertext on every save
(django-fernet-fields); TicketNote has a FK to the wrapped key and a sealed text. Through the
fields' own from_db_value()/get_prep_value() the copy fails, or stores other ciphertexts.
"""

import pytest
from django.db import connections
from django.test import override_settings

from tests import helpers as h
from tests.copytest import models as m
from tests.copytest.fields import WrappedId

LABELS = ("copytest.Ticket", "copytest.TicketNote")
PAIRS = [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b"), h.pair("pg_a", "pg_b")]


def stored(alias, model):
    """Every row's ids and texts as the database holds them, by raw SQL, sorted by id (datetimes
    come back in each driver's own form: they are compared through the ORM)."""
    connection = connections[alias]
    q = connection.ops.quote_name
    columns = [f.column for f in model._meta.concrete_fields if f.get_internal_type() != "DateTimeField"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(map(q, columns))} FROM {q(model._meta.db_table)} ORDER BY {q('id')}")
        return [dict(zip(columns, row)) for row in cursor.fetchall()]


def assert_stored_alike(source, dest):
    for model in (m.Ticket, m.TicketNote):
        assert stored(dest, model) == stored(source, model), model._meta.label
    # The same texts read back through the field, and the wrapped key reads as it did.
    read = ("id", "secret", "follows", "updated_at")
    source_tickets = list(m.Ticket.objects.using(source).order_by("id").values_list(*read))
    assert list(m.Ticket.objects.using(dest).order_by("id").values_list(*read)) == source_tickets
    assert isinstance(source_tickets[0][0], WrappedId)


@pytest.mark.parametrize("writer", ["fast", "bulk_create"])
@pytest.mark.parametrize("source,dest", PAIRS)
def test_custom_fields_travel_as_stored(source, dest, writer):
    ids = h.seed_tickets(source)
    # Another key in this process: a copy that decrypted or encrypted anything would fail or differ.
    with override_settings(COPYTEST_SEAL_KEY="not the key the rows were sealed with"):
        result = h.dbcopy("copy", *LABELS, source=source, dest=dest, writer=writer)
    h.assert_ok(result)
    assert_stored_alike(source, dest)
    assert len(stored(dest, m.Ticket)) == len(ids)
    assert stored(dest, m.Ticket)[-1]["follows_id"] == ids[-2]  # the self-reference, set after the rows


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "pg_b")])
def test_sync_of_custom_fields_is_idempotent_and_sees_changes(source, dest, report_path):
    ids = h.seed_tickets(source)
    with override_settings(COPYTEST_SEAL_KEY="another key"):
        h.assert_ok(h.dbcopy("sync", *LABELS, source=source, dest=dest, report_json=report_path))
        again = h.dbcopy("sync", *LABELS, source=source, dest=dest, report_json=report_path)
    h.assert_ok(again)
    for label in LABELS:
        entry = again.entry(label)
        assert (entry["inserted"], entry["updated"], entry["deleted"]) == (0, 0, 0), entry

    # A new secret (a new ciphertext), a new ticket, and a ticket deleted with its notes.
    m.Ticket.objects.using(source).filter(id=ids[0]).update(secret="changed at the source")
    m.Ticket.objects.using(source).create(id=999, title="new", follows_id=ids[0])
    m.Ticket.objects.using(source).filter(follows_id=ids[3]).update(follows_id=None)
    # The ORM's delete collector looks related rows up by the WrappedId: it fails on this field.
    m.TicketNote.objects.using(source).filter(ticket_id=ids[3])._raw_delete(source)
    m.Ticket.objects.using(source).filter(id=ids[3])._raw_delete(source)
    with override_settings(COPYTEST_SEAL_KEY="another key"):
        changed = h.dbcopy("sync", *LABELS, source=source, dest=dest, deletes=True, report_json=report_path)
    h.assert_ok(changed)
    tickets = changed.entry("copytest.Ticket")
    assert (tickets["inserted"], tickets["deleted"]) == (1, 1), tickets
    assert tickets["updated"] == 1, tickets  # the new secret (self-references are set apart)
    assert_stored_alike(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_a_destination_holding_some_source_tickets_is_named_not_crashed_on(source, dest):
    ids = h.seed_tickets(source)
    m.Ticket.objects.using(dest).create(id=ids[0], title="already there")
    result = h.dbcopy("copy", *LABELS, source=source, dest=dest)
    assert result.returncode == 2, result
    assert "copytest_ticket" in result.error and "--resume" in result.error and "--truncate" in result.error, result.error
    assert "Traceback" not in result.output
