"""Label handling and edge cases: lower-case model names, overlapping labels, excluding
a whole app, an empty source, primary keys 0 and negative."""

import pytest
from django.contrib.auth.models import Group, User

from tests import helpers as h
from tests.copytest import models as m


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_lower_case_model_names_are_accepted(source, dest, report_path):
    """Like dumpdata and apps.get_model(), model names are case-insensitive."""
    h.seed_core(source)
    result = h.dbcopy("copy", "copytest.tag", "copytest.PUBLISHER", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest, [m.Tag, m.Publisher])


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_overlapping_labels_copy_each_table_once(source, dest, report_path):
    h.seed_core(source)
    result = h.dbcopy(
        "copy", "copytest.Book", "copytest", "copytest.Tag", "copytest.Book", source=source, dest=dest, report_json=report_path
    )
    h.assert_ok(result)
    h.assert_tables_equal(source, dest)
    labels = [e["model"] for e in result.report["models"]]
    assert len(labels) == len(set(labels)), f"models listed twice in the report: {sorted(labels)}"


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b")])
def test_exclude_a_whole_app(source, dest, report_path):
    h.seed_core(source)
    group = Group.objects.using(source).create(name="staff")
    user = User.objects.db_manager(source).create_user("carol", "carol@example.com", "pw")
    user.groups.add(group)
    m.Tag.objects.using(dest).create(name="dest tag stays")

    result = h.dbcopy("copy", source=source, dest=dest, exclude=["copytest"], truncate=True, report_json=report_path)
    h.assert_ok(result)
    assert list(m.Tag.objects.using(dest).values_list("name", flat=True)) == ["dest tag stays"]
    assert all(n == 0 for label, n in h.row_counts(dest).items() if label != "copytest.Tag")
    assert not [e for e in result.report["models"] if e["model"].startswith("copytest.") and e["status"] == "ok" and e["copied_rows"]]
    for model in (User, Group, User.groups.through):
        assert h.diff_tables(model, source, dest) == []


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "mysql_b"), h.pair("mysql_a", "pg_b")])
def test_empty_source(source, dest, report_path):
    copied = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    h.assert_ok(copied)
    assert copied.report["ok"] is True
    for model in h.copytest_models():
        entry = copied.entry(h.label(model))
        assert (entry["status"], entry["source_rows"], entry["dest_rows"]) == ("ok", 0, 0), entry
    compared = h.dbcopy("compare", "copytest", source=source, dest=dest)
    assert compared.returncode == 0, str(compared)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "mysql_b"), h.pair("pg_a", "mysql_b"), h.pair("pg_a", "sqlite_b")])
def test_zero_and_negative_primary_keys(source, dest):
    """MySQL turns an inserted id 0 into a fresh AUTO_INCREMENT value unless told not to."""
    zero = m.Category.objects.using(source).create(pk=0, name="zero")
    m.Category.objects.using(source).create(pk=-7, name="negative", parent=zero)
    m.Category.objects.using(source).create(pk=3, name="three", parent_id=-7)
    m.Tag.objects.using(source).create(pk=0, name="tag zero")
    result = h.dbcopy("copy", "copytest.Category", "copytest.Tag", source=source, dest=dest)
    h.assert_ok(result)
    assert sorted(m.Category.objects.using(dest).values_list("pk", "name", "parent_id")) == [
        (-7, "negative", 0), (0, "zero", None), (3, "three", -7)
    ]
    assert list(m.Tag.objects.using(dest).values_list("pk", "name")) == [(0, "tag zero")]
    new = m.Tag.objects.using(dest).create(name="new")
    assert new.pk > 0
