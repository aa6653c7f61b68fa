"""Rows the destination rejects: exit status 1, an error naming model, pk and field, the
report marks the model failed, rows copied before it stay, no traceback."""

import re
from decimal import Decimal

import pytest

from tests import helpers as h
from tests.copytest import models as m
from tests.copytest.fields import Money

BAD_PK = 5
CHUNK = 2  # the bad row sits in the third chunk: rows 1-4 were copied before it


def seed_freetext(alias, field, bad_value):
    for pk in range(1, 9):
        values = {"title": f"row {pk}", "body": f"body of row {pk} ✓"}
        if pk == BAD_PK:
            values[field] = bad_value
        m.FreeText.objects.using(alias).create(pk=pk, **values)
    return ["copytest.FreeText"]


def seed_alltypes(alias, field, bad_value):
    for pk in range(1, 9):
        values = {"small": pk, "data": {"n": pk}, "text": f"row {pk}"}
        if pk == BAD_PK:
            values[field] = bad_value
        m.AllTypes.objects.using(alias).create(pk=pk, **values)
    return ["copytest.AllTypes"]


def seed_books(alias, field, bad_value):
    pub = m.Publisher.objects.using(alias).create(name="pub")
    author = m.Author.objects.using(alias).create(name="author")
    for pk in range(1, 9):
        values = {"price": Money(Decimal(pk), "EUR")}
        if pk == BAD_PK:
            values[field] = bad_value
        m.Book.objects.using(alias).create(pk=pk, title=f"b{pk}", isbn=f"isbn{pk}", publisher=pub, author=author, **values)
    return ["copytest.Publisher", "copytest.Author", "copytest.Book"]


def to_utf8mb3(dest):
    h.sql_for(dest, "ALTER TABLE copytest_freetext MODIFY body longtext CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci NOT NULL")


def back_to_utf8mb4(dest):
    collation = h.connections[dest].settings_dict["TEST"]["COLLATION"]
    h.sql_for(dest, f"ALTER TABLE copytest_freetext MODIFY body longtext CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL")


CASES = [
    # (case id, source, dest, model, seeder, field, bad value)
    # SQLite never enforces max_length, nor integer ranges.
    ("overlong-string", "sqlite_a", "pg_b", m.FreeText, seed_freetext, "title", "far too long for ten"),
    ("overlong-string", "sqlite_a", "mysql_b", m.FreeText, seed_freetext, "title", "far too long for ten"),
    ("nul-in-text", "sqlite_a", "pg_b", m.FreeText, seed_freetext, "body", "before\x00after"),
    ("nul-in-text", "mysql_a", "pg_b", m.FreeText, seed_freetext, "body", "before\x00after"),
    ("4-byte-utf8-into-utf8mb3", "pg_a", "mysql_b", m.FreeText, seed_freetext, "body", "party 🎉 time"),
    ("4-byte-utf8-into-utf8mb3", "sqlite_a", "mysql_b", m.FreeText, seed_freetext, "body", "party 🎉 time"),
    # A custom field: the Python value is a Money object, its stored text is too long.
    ("overlong-custom-field", "sqlite_a", "pg_b", m.Book, seed_books, "price", Money(Decimal("12.34"), "EUR-" * 10)),
    # PostgreSQL's "smallint out of range" does not name the column.
    ("integer-out-of-range", "sqlite_a", "pg_b", m.AllTypes, seed_alltypes, "small", 40000),
    ("integer-out-of-range", "sqlite_a", "mysql_b", m.AllTypes, seed_alltypes, "small", 40000),
    # JSON holding a NUL character: stored as the escape \u0000, which jsonb refuses.
    ("nul-in-json", "sqlite_a", "pg_b", m.AllTypes, seed_alltypes, "data", {"k": "a\x00b"}),
]


@pytest.mark.parametrize(
    "case,source,dest,model,seeder,field,value",
    [
        pytest.param(*c, id=f"{c[0]}-{c[1]}-{c[2]}", marks=h.db_mark(c[1], c[2]))
        for c in CASES
    ],
)
def test_rejected_row_is_reported_precisely(case, source, dest, model, seeder, field, value, report_path):
    labels = seeder(source, field, value)
    assert getattr(model._base_manager.using(source).get(pk=BAD_PK), field) == value  # the source holds it
    if case == "4-byte-utf8-into-utf8mb3":
        to_utf8mb3(dest)
    try:
        result = h.dbcopy("copy", *labels, source=source, dest=dest, chunk_size=CHUNK, report_json=report_path)
        copied = {row[model._meta.pk.attname]: row for row in h.table_rows(model, dest)}
    finally:
        if case == "4-byte-utf8-into-utf8mb3":
            back_to_utf8mb4(dest)

    label = h.label(model)
    assert result.returncode == 1, f"expected exit status 1:\n{result}"
    assert "Traceback" not in result.output, f"traceback printed:\n{result}"
    text = result.output
    assert label in text, f"model label {label} not named:\n{result}"
    assert re.search(rf"pk\s*=\s*['\"]?{BAD_PK}\b", text), f"pk={BAD_PK} not named:\n{result}"
    assert re.search(rf"\b{field}\b", text), f"field {field!r} not named:\n{result}"

    assert result.report is not None, "no JSON report written"
    assert result.report["ok"] is False
    entry = result.entry(label)
    assert entry["status"] == "failed", entry
    assert entry["reason"], entry

    source_rows = {row[model._meta.pk.attname]: row for row in h.table_rows(model, source)}
    for pk in range(1, BAD_PK):
        assert copied.get(pk) == source_rows[pk], f"row pk={pk} (copied before the bad one) missing or different: {copied.get(pk)!r}"
    assert BAD_PK not in copied, f"the rejected row pk={BAD_PK} is on the destination: {copied[BAD_PK]!r}"
