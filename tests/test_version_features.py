"""Django-version-dependent model features, focused (the matrix covers them too)."""

import pytest

from tests import helpers as h
from tests.copytest import models as m


@pytest.mark.skipif(not m.HAS_GENERATED_FIELD, reason="GeneratedField needs Django >= 5.0")
@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")])
def test_generated_field_is_recomputed_by_the_destination(source, dest, report_path):
    for w, hgt in ((2, 3), (5, 5), (0, 9), (12, 11), (7, 1)):
        m.Rectangle.objects.using(source).create(width=w, height=hgt)
    result = h.dbcopy("copy", "copytest.Rectangle", source=source, dest=dest, chunk_size=2, report_json=report_path)
    h.assert_ok(result)
    rows = h.raw_rows(dest, m.Rectangle._meta.db_table, ["id", "width", "height", "area"], ["id"])
    assert rows == h.raw_rows(source, m.Rectangle._meta.db_table, ["id", "width", "height", "area"], ["id"])
    assert all(area == w * hgt for _, w, hgt, area in rows)
    # The column stays generated: a change on the destination recomputes it.
    first = rows[0][0]
    m.Rectangle.objects.using(dest).filter(pk=first).update(width=100)
    assert m.Rectangle.objects.using(dest).get(pk=first).area == 100 * rows[0][2]


@pytest.mark.skipif(not m.HAS_COMPOSITE_PK, reason="CompositePrimaryKey needs Django >= 5.2")
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b"), h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_composite_primary_key_in_small_chunks(source, dest, report_path):
    people = [m.Person.objects.using(source).create(name=f"p{i}") for i in range(4)]
    terms = ["2024-A", "2024-B", "2025-A", "a-lower", "Z-upper"]
    for i, person in enumerate(people):
        for term in terms[: 2 + i]:
            m.Enrollment.objects.using(source).create(person=person, term=term, grade="AB"[i % 2])
    n = m.Enrollment.objects.using(source).count()
    result = h.dbcopy("copy", "copytest.Person", "copytest.Enrollment", source=source, dest=dest, chunk_size=3, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest, [m.Person, m.Enrollment])
    assert result.entry("copytest.Enrollment")["copied_rows"] == n
