"""PostgreSQL → SQLite and MariaDB → SQLite stream whole tables (the source spells each value as Django's
SQLite backend stores it, one executemany() per batch, one transaction per table) and store exactly
what the reference bulk_create writer stores; a value or a row the stream cannot take sends the table
value by value, which stores, refuses or names it as always."""

import dataclasses
import datetime as dt
import signal
import sqlite3
import uuid
from contextlib import closing
from decimal import Decimal

import pytest
from django.db import connections

from dbcopy.dialects import dialect_for, sqlite_stream
from dbcopy.plan import build_plan
from dbcopy.runner import Runner
from tests import helpers as h
from tests.copytest import models as m
from tests.test_faults_load_data import seed_texts
from tests.test_faults import kill_at_chunk

PAIRS = [h.pair("pg_a", "sqlite_b"), h.pair("mysql_a", "sqlite_b")]
UTC = dt.timezone.utc


def awkward_rows(vendor):
    """AllTypes rows at the edges of every spelling: fractions of a second that are 0 or not, years
    below 1000, IPv6 in the forms Django rewrites, decimals at their limits, special floats."""
    rows = [
        dict(moment=dt.datetime(2020, 5, 17, 8, 0, 0, tzinfo=h.PARIS), clock=dt.time(0, 0), day=dt.date(1, 1, 1),
             duration=dt.timedelta(0), amount=Decimal("0.0000"), ratio=-0.0, ip="::1", text="whole seconds"),
        dict(moment=dt.datetime(999, 12, 31, 23, 59, 59, 10, tzinfo=UTC), clock=dt.time(12, 0, 0, 500000),
             day=dt.date(9999, 12, 31), duration=dt.timedelta(days=999_999, microseconds=999_999),
             amount=Decimal("-9999999999.9999"), ratio=1e-300, ip="2001:0DB8:0000:0000:0000:0000:0000:0001",
             text="year 999"),
        dict(moment=dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), clock=dt.time(23, 59, 59, 999999),
             duration=-dt.timedelta(days=3, seconds=1), amount=Decimal("0.0001"), ratio=-1e-300,
             ip="::ffff:10.0.0.1", text="upper limits", big=2**63 - 1, pbig=2**63 - 1, small=-(2**15)),
        dict(moment=dt.datetime(2024, 2, 29, 12, 30, 15, 100000, tzinfo=h.KOLKATA), ratio=5e-324, amount=Decimal("1.5"),
             ip="1.2.3.4", uuid=uuid.UUID(int=0), blob=b"\x00", data={"k": [None, True, 1.5e300, "\t\n\\"]},
             text="tab\tnew\nline\r\\back\\slash 😀", label="\\N"),
        dict(ratio=1e308, ip="2001:db8:0:0:1:0:0:1", data="", text="", label="", flag=True, maybe=False),
    ]
    if vendor == "mysql":  # PostgreSQL refuses NUL in text
        rows.append(dict(text="nul\x00inside", label="nul\x00"))
    else:  # MariaDB refuses infinities
        rows.append(dict(ratio=float("inf"), text="infinity"))
        rows.append(dict(ratio=float("-inf"), text="-infinity"))
    return rows


def seed(alias):
    h.seed_core(alias)
    for row in awkward_rows(connections[alias].vendor):
        m.AllTypes.objects.using(alias).create(**row)


def stored(alias):
    """Every copytest table as the SQLite file holds it: each value with its storage class, read with no
    converter in between (Django's would parse '…00.000000' and '…00' into the same datetime)."""
    tables = {}
    with closing(sqlite3.connect(connections[alias].settings_dict["NAME"])) as db:
        for model in h.copytest_models():
            columns = ", ".join(f'typeof("{f.column}"), "{f.column}"' for f in h.data_fields(model))
            rows = db.execute(f'SELECT {columns} FROM "{model._meta.db_table}"').fetchall()
            tables[h.label(model)] = sorted(rows, key=repr)
    return tables


def methods(result):
    return {e["model"]: e["method"] for e in result.report["models"] if e["status"] == "ok"}


def assert_same_as_bulk_create(source, dest, report_path, labels=("copytest",)):
    """Copy with bulk_create, then with the fast writer into the emptied destination: the same values
    stored. Return the fast copy's Result."""
    reference = h.dbcopy("copy", *labels, source=source, dest=dest, writer="bulk_create", report_json=report_path)
    h.assert_ok(reference)
    by_reference = stored(dest)
    fast = h.dbcopy("copy", *labels, source=source, dest=dest, truncate=True, report_json=report_path)
    h.assert_ok(fast)
    by_fast = stored(dest)
    for label, rows in by_reference.items():
        assert by_fast[label] == rows, f"{label}: the stream stored other values than bulk_create"
    return fast


@pytest.mark.parametrize("source,dest", PAIRS)
def test_streams_store_what_bulk_create_stores(source, dest, report_path):
    seed(source)
    fast = assert_same_as_bulk_create(source, dest, report_path)
    h.assert_tables_equal(source, dest)
    streamed = methods(fast)
    for label in ("copytest.Book", "copytest.Category", "copytest.AllTypes", "copytest.Ticket",
                  "copytest.StreamPage", "copytest.Book_tags", "copytest.Pizzeria", "copytest.Note"):
        assert streamed[label] == "stream", (label, streamed[label])
    # Content type ids are translated inside the source's SELECT.
    assert streamed["copytest.TaggedItem"] == "stream"
    assert fast.report["ok"] is True


def store_behind_the_orms_back(alias, sql, params=()):
    """Write a value Django never would (another application, a restore, checks switched off)."""
    with connections[alias].cursor() as cursor:
        if connections[alias].vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(sql, params)
            cursor.execute("SET session_replication_role = DEFAULT")
        else:
            cursor.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES', SESSION foreign_key_checks = 0")
            try:
                cursor.execute(sql, params)
            finally:
                cursor.execute("SET SESSION sql_mode = 'STRICT_TRANS_TABLES', SESSION foreign_key_checks = 1")


# Values the stream cannot spell as Django's path stores them, which that path reads as something
# else: psycopg2 counts a month as 30 days (extract() 30, a year 365.25), reads 24:00 as 00:00 and
# infinities as the ends of Python's calendar; mysqlclient reads zero and impossible dates as None.
def unspellable(source, assignment, name):
    return pytest.param(source, "sqlite_b", assignment, id=f"{source}-{name}", marks=h.db_mark(source, "sqlite_b"))


UNSPELLABLE = [
    unspellable("pg_a", "duration = interval '1 year 2 mons 3 days'", "months"),
    unspellable("pg_a", "clock = '24:00:00'", "24h"),
    unspellable("pg_a", "day = 'infinity'", "infinity"),
    unspellable("pg_a", "moment = '-infinity'", "-infinity"),
    unspellable("mysql_a", "day = '0000-00-00'", "zero-date"),
    unspellable("mysql_a", "day = '0000-01-01'", "year-zero"),
    unspellable("mysql_a", "day = '2020-01-00'", "zero-day"),
    unspellable("mysql_a", "moment = '2021-02-30 10:00:00'", "february-30"),
]


@pytest.mark.parametrize("source,dest,assignment", UNSPELLABLE)
def test_a_value_the_stream_cannot_spell_sends_its_table_value_by_value(source, dest, assignment, report_path):
    for row in awkward_rows(connections[source].vendor):
        m.AllTypes.objects.using(source).create(**row)
    m.Tag.objects.using(source).create(name="an ordinary table")
    row = m.AllTypes.objects.using(source).order_by("pk")[2]
    store_behind_the_orms_back(source, f"UPDATE copytest_alltypes SET {assignment} WHERE id = %s", [row.pk])
    fast = assert_same_as_bulk_create(source, dest, report_path, labels=["copytest.AllTypes", "copytest.Tag"])
    assert fast.entry("copytest.AllTypes")["method"] == "fast"
    assert fast.entry("copytest.Tag")["method"] == "stream"


# Addresses as the source prints them, and as Django stores them in SQLite (clean_ipv6_address).
ADDRESSES = {
    "postgresql": [("::2:3", "::0.2.0.3", "::2:3"), ("::102:304", "::1.2.3.4", "::102:304"),
                   ("10.1.0.0/16", "10.1.0.0/16", "10.1.0.0/16"), ("::ffff:1.2.3.4", "::ffff:1.2.3.4", "::ffff:1.2.3.4")],
    "mysql": [("2001:0DB8:0::0001", "2001:0DB8:0::0001", "2001:db8::1"), ("::0.2.0.3", "::0.2.0.3", "::2:3"),
              ("", "", None), ("1.2.3.4", "1.2.3.4", "1.2.3.4")],
}


@pytest.mark.parametrize("source,dest", PAIRS)
def test_addresses_are_stored_as_django_rewrites_them(source, dest, report_path):
    addresses = ADDRESSES[connections[source].vendor]
    with connections[source].cursor() as cursor:  # as another application would write them
        for pk, (written, _, _) in enumerate(addresses, start=1):
            cursor.execute("INSERT INTO copytest_alltypes (id, flag, text, label, ip) VALUES (%s, %s, '', '', %s)",
                           [pk, False, written])
    assert list(m.AllTypes.objects.using(source).order_by("pk").values_list("ip", flat=True)) == [
        read for _, read, _ in addresses
    ]
    fast = assert_same_as_bulk_create(source, dest, report_path, labels=["copytest.AllTypes"])
    assert fast.entry("copytest.AllTypes")["method"] == "stream"
    assert list(m.AllTypes.objects.using(dest).order_by("pk").values_list("ip", flat=True)) == [
        kept for _, _, kept in addresses
    ]


@pytest.mark.parametrize("column", ["ratio", "amount"])
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_nan_sends_the_table_value_by_value_which_refuses_it(source, dest, column, report_path):
    # SQLite would store a float NaN as NULL, a numeric NaN as the text 'NaN': the stream must not,
    # the value-by-value path refuses the row and names it.
    m.AllTypes.objects.using(source).create(pk=1, ratio=1.5, amount=Decimal("1.5"), text="fine")
    m.AllTypes.objects.using(source).create(pk=2, text="nan")
    store_behind_the_orms_back(source, f"UPDATE copytest_alltypes SET {column} = 'NaN' WHERE id = 2")
    result = h.dbcopy("copy", "copytest.AllTypes", source=source, dest=dest, chunk_size=1, report_json=report_path)
    assert result.returncode == 1, str(result)
    assert "pk=2" in result.output and f"'{column}'" in result.output and "streaming failed" not in result.output
    assert list(m.AllTypes.objects.using(dest).values_list("pk", flat=True)) == [1]


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_dangling_foreign_key_fails_the_stream_and_names_the_row(source, dest, report_path):
    h.seed_core(source)
    book = m.Book.objects.using(source).order_by("pk")[3]
    store_behind_the_orms_back(source, "UPDATE copytest_book SET publisher_id = 999999 WHERE id = %s", [book.pk])
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    assert result.returncode == 1, str(result)
    # SQLite checks the deferred foreign keys at the commit: the table goes back to chunks, which name the row.
    assert "streaming failed" in result.output and "FOREIGN KEY" in result.output, result.output
    assert f"Could not copy copytest.Book pk={book.pk} to 'sqlite_b'" in result.output, result.output
    assert "Traceback" not in result.output
    assert result.entry("copytest.Book")["status"] == "failed"
    assert not m.Book.objects.using(dest).filter(publisher_id=999999).exists()
    assert result.entry("copytest.Author")["method"] == "stream"


def seed_categories(alias, n):
    """A self-referencing tree whose parents mostly have higher ids (set afterwards by the deferred pass)."""
    m.Category.objects.using(alias).bulk_create([m.Category(pk=i, name=f"category {i:05d}") for i in range(1, n + 1)])
    for pk in range(1, n - 7, 10):
        m.Category.objects.using(alias).filter(pk=pk).update(parent_id=pk + 7)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_interrupt_during_a_stream_rolls_the_table_back(source, dest, monkeypatch, report_path):
    monkeypatch.setattr(sqlite_stream, "STREAM_REPORT_EVERY", 50)
    monkeypatch.setattr(sqlite_stream, "BATCH_ROWS", 50)
    seed_categories(source, 3000)
    m.Tag.objects.using(source).create(name="after the categories")
    original = Runner.progress
    sent = []

    def progress(self, event, step, **data):
        if event == "chunk" and step is not None and step.label == "copytest.Category" and not sent:
            self.stop_signal = signal.SIGINT  # what the handler does
            sent.append(data["copied"])
        return original(self, event, step, **data)

    monkeypatch.setattr(Runner, "progress", progress)
    result = h.dbcopy("copy", "copytest.Category", "copytest.Tag", source=source, dest=dest, report_json=report_path)
    assert result.returncode == 130, result
    assert "Traceback" not in result.output
    assert 0 < sent[0] < 3000, sent  # it arrived mid-stream
    assert m.Category.objects.using(dest).count() == 0
    assert m.Tag.objects.using(dest).count() == 0
    assert result.entry("copytest.Category")["status"] == "interrupted"
    monkeypatch.setattr(Runner, "progress", original)
    resumed = h.dbcopy("copy", "copytest.Category", "copytest.Tag", source=source, dest=dest, resume=True,
                       report_json=report_path)
    h.assert_ok(resumed)
    assert resumed.entry("copytest.Category")["method"] == "stream"
    h.assert_tables_equal(source, dest, [m.Category, m.Tag])


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_key_range_step_streams_only_its_rows(source, dest):
    tags = [m.Tag.objects.using(source).create(name=f"tag {i}") for i in range(10)]
    step = build_plan(source, dest, labels=("copytest.Tag",)).steps[0]
    reports = []
    copied = dialect_for(dest).stream_table(
        dataclasses.replace(step, key_range=(tags[2].pk, tags[6].pk)), dialect_for(source), reports.append
    )
    assert copied == 4 and reports[-1] == 4
    expected = [(t.pk, t.name) for t in tags[3:7]]
    assert list(m.Tag.objects.using(dest).order_by("pk").values_list("pk", "name")) == expected
    copied = dialect_for(dest).stream_table(
        dataclasses.replace(step, key_range=(tags[6].pk, None)), dialect_for(source), reports.append
    )
    assert copied == 3 and m.Tag.objects.using(dest).count() == 7


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_source_connection_killed_mid_stream_is_retried(source, dest, monkeypatch, report_path):
    """The stream is one transaction: the fault rolls the table back and the retry streams it again on a
    new connection (for MariaDB, a new snapshot: the old one died with its connection)."""
    monkeypatch.setattr(sqlite_stream, "STREAM_REPORT_EVERY", 50)
    monkeypatch.setattr(sqlite_stream, "BATCH_ROWS", 50)
    # 30 MB of rows: more than the socket buffers hold, so the source is still sending when it is killed.
    seed_texts(source)
    state = kill_at_chunk(monkeypatch, "copytest.FreeText", source, chunk=3)
    result = h.dbcopy("copy", "copytest.FreeText", source=source, dest=dest, report_json=report_path)
    assert state["killed"] == 1, "the hook never killed the connection"
    h.assert_ok(result)
    h.assert_tables_equal(source, dest, [m.FreeText])
    entry = result.entry("copytest.FreeText")
    assert entry["method"] == "stream" and entry["retries"] >= 1, entry
    assert result.report["consistent"] is (connections[source].vendor == "postgresql"), result.report["snapshot"]
