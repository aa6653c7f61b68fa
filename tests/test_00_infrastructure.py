"""Control tests for the suite itself (no dbcopy involved).

If one of these fails, the failure of a copy test on the same backend says nothing about
dbcopy: the backend cannot even store the seeded values.
"""

import pytest
from django.db import connections

from tests import helpers as h
from tests.copytest import models as m


@pytest.mark.parametrize(
    "alias", [pytest.param(a, marks=h.db_mark(a)) for a in ("sqlite_a", "pg_a", "mysql_a")]
)
def test_seed_round_trips_on_backend(alias):
    seed = h.seed_core(alias)
    # Every model got rows (the unmanaged/proxy ones are not in copytest_models()).
    empty = [label for label, n in seed.counts.items() if n == 0]
    assert not empty, f"seed left tables empty: {empty}"
    # AllTypes values read back exactly as written (JSON null is read back as None).
    expected = h.alltypes_rows()
    got = list(m.AllTypes.objects.using(alias).order_by("pk").values())
    assert len(got) == len(expected)
    for want, row in zip(expected, got):
        for name, value in want.items():
            if name == "data" and not isinstance(value, (dict, list, str, int, type(None))):
                value = None  # Value(None, JSONField()) -> JSON null -> None in Python
            assert h.normalize(row[name]) == value, (alias, name, row[name], value)
    # JSON null and SQL NULL are distinguishable in storage.
    raw = {pk: (is_null, parsed) for pk, is_null, parsed in h.raw_json_rows(alias, m.AllTypes, "data")}
    pks = list(m.AllTypes.objects.using(alias).order_by("pk").values_list("pk", flat=True))
    assert raw[pks[1]] == (False, None), "JSON null must be stored as JSON, not SQL NULL"
    assert raw[pks[2]] == (True, None)
    # The no-nullable-edge cycle exists and is consistent.
    assert sorted(m.Chicken.objects.using(alias).values_list("pk", "egg_id")) == [(501, 701), (502, 702), (503, 703)]
    # Soft-deleted rows exist but the default manager hides them.
    assert m.Article.all_objects.using(alias).count() == 10
    assert m.Article.objects.using(alias).count() < 10
    # Notes were pushed into the past.
    assert sorted(m.Note.objects.using(alias).values_list("created", flat=True)) == sorted(h.NOTE_TIMES)
    # The post_save receiver wrote side rows while seeding.
    assert m.AuditLog.objects.using(alias).count() == m.Author.objects.using(alias).count()


@pytest.mark.parametrize(
    "alias", [pytest.param(a, marks=h.db_mark(a)) for a in ("sqlite_b", "pg_b", "mysql_b")]
)
def test_fresh_test_database_has_migrate_made_rows_only(alias):
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    assert ContentType.objects.using(alias).filter(app_label="copytest", model="book").exists()
    assert Permission.objects.using(alias).filter(codename="add_book").exists()
    assert all(n == 0 for n in h.row_counts(alias).values())
    if h.alias_vendor(alias) == "mysql":
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT @@character_set_database, @@collation_database")
            assert cursor.fetchone() == ("utf8mb4", connections[alias].settings_dict["TEST"]["COLLATION"])
