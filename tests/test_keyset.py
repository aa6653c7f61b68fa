"""Keyset paging with tiny chunks over primary keys whose database order is not Python's:
mixed-case / non-ASCII CharField pks (mysql_a sorts with utf8mb4_unicode_ci), UUIDs
(native UUID type on PostgreSQL and MariaDB >= 10.7), a OneToOneField pk, a composite pk."""

import pytest

from tests import helpers as h
from tests.copytest import models as m

LABELS = [
    "copytest.Sku", "copytest.Token", "copytest.TokenUse", "copytest.Author", "copytest.AuthorProfile",
    "copytest.Person", "copytest.Currency", "copytest.CamelCase", "copytest.LooseRef", "copytest.AuditLog",
]
if m.HAS_COMPOSITE_PK:
    LABELS.append("copytest.Enrollment")


def models_of(labels):
    from django.apps import apps

    return [apps.get_model(label) for label in labels]


@pytest.mark.parametrize(
    "source,dest", [h.pair("mysql_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("sqlite_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")]
)
@pytest.mark.parametrize("chunk_size", [1, 2, 7])
def test_tiny_chunks_over_unusual_keys(source, dest, chunk_size, report_path):
    h.seed_core(source)
    db_order = list(m.Sku.objects.using(source).order_by("pk").values_list("pk", flat=True))
    if source == "mysql_a":
        assert db_order != sorted(db_order), "precondition: mysql_a should not sort like Python"

    result = h.dbcopy("copy", *LABELS, source=source, dest=dest, chunk_size=chunk_size, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest, models_of(LABELS))
    for label in LABELS:
        entry = result.entry(label)
        assert entry["copied_rows"] == entry["source_rows"] == entry["dest_rows"], entry
