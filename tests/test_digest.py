"""Range digests: equal data digests equal on every vendor pair; each kind of difference is found and named."""

from dataclasses import replace

import pytest

from dbcopy import digest as digest_module
from dbcopy.digest import TableDigest
from dbcopy.plan import REMAP, build_plan
from dbcopy.remap import read_remaps
from tests import helpers as h
from tests.copytest import models as m

PAIRS = [
    h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b"),
    h.pair("pg_a", "pg_b"), h.pair("sqlite_a", "mysql_b"), h.pair("mysql_a", "pg_b"),
]


def digests(source, dest, labels=("copytest",)):
    plan = build_plan(source, dest, labels=labels)
    remaps = read_remaps(plan)
    return {step.label: TableDigest(step, remaps) for step in plan.steps if step.kind != REMAP}


@pytest.mark.parametrize("source,dest", PAIRS)
def test_equal_data_digests_equal_across_vendors(source, dest):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))
    found = {}
    for label, digest in digests(source, dest).items():
        leaves = digest.differing()
        if leaves:
            found[label] = (digest.method, digest.python_reason, digest.differences(limit=3))
    assert not found, found


def differences(source, dest, label):
    digest = digests(source, dest, labels=(label,))[label]
    found, total = digest.differences(limit=10)
    return digest, {d.pk: d for d in found}, total


@pytest.mark.parametrize("source,dest", PAIRS)
def test_each_kind_of_difference_is_found_and_named(source, dest):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))
    reviewed = set(m.Review.objects.using(dest).values_list("book_id", flat=True))
    books = list(m.Book.objects.using(dest).exclude(isbn__in=reviewed).order_by("pk").values_list("pk", flat=True))
    # A corrupted value; a row replaced by another at the same count; a cycle FK left NULL.
    m.Book.objects.using(dest).filter(pk=books[1]).update(title="corrupted")
    doomed = m.Book.objects.using(dest).get(pk=books[2])
    m.Book.tags.through.objects.using(dest).filter(book_id=doomed.pk).delete()
    m.Book.objects.using(dest).filter(pk=doomed.pk)._raw_delete(dest)
    extra = m.Book.objects.using(source).get(pk=books[3])
    extra.pk, extra.isbn = max(books) + 1000, "978-extra"
    extra.save(using=dest, force_insert=True)
    child = m.Category.objects.using(dest).exclude(parent=None).order_by("pk").first()
    m.Category.objects.using(dest).filter(pk=child.pk).update(parent=None)

    digest, found, total = differences(source, dest, "copytest.Book")
    assert digest.method == "sql", digest.python_reason
    assert total == 3, found
    assert found[books[1]].fields == ("title",), found
    assert found[books[2]].missing == "at the destination", found
    assert found[max(books) + 1000].missing == "at the source", found

    _, found, total = differences(source, dest, "copytest.Category")
    assert total == 1 and found[child.pk].fields == ("parent",), found
    # The tables left alone stay equal.
    _, found, total = differences(source, dest, "copytest.Author")
    assert total == 0, found


@pytest.mark.parametrize("source,dest", PAIRS)
def test_every_kind_is_digested_in_sql_and_every_changed_value_is_named(source, dest):
    """AllTypes' awkward values (extremes, microseconds, NUL-free unicode, IPv6, empty binary…), every
    column with a canonical SQL form: equal digests after a copy, and one changed value per column found."""
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest.AllTypes", source=source, dest=dest))
    plan = build_plan(source, dest, labels=("copytest.AllTypes",))
    step = plan.steps[0]
    sql_fields = tuple(f for f in step.fields if f.name not in ("data", "ratio"))  # JSON and float: in Python
    digest = TableDigest(replace(step, fields=sql_fields), read_remaps(plan))
    assert digest.method == "sql", digest.python_reason
    assert digest.differing() == [], digest.differences(limit=5)
    rows = m.AllTypes.objects.using(dest).order_by("pk")
    for field in sql_fields:
        if field.primary_key:
            continue
        values = {}
        for pk, value in rows.values_list("pk", field.attname):
            values.setdefault(_hashable(value), pk)
        assert len(values) > 1, f"the seed gives {field.name} one value only"
        (first_value, first_pk), (other_value, _) = list(values.items())[:2]
        m.AllTypes.objects.using(dest).filter(pk=first_pk).update(**{field.attname: _raw(other_value)})
        found, total = TableDigest(replace(step, fields=sql_fields), read_remaps(plan)).differences(limit=3)
        m.AllTypes.objects.using(dest).filter(pk=first_pk).update(**{field.attname: _raw(first_value)})
        assert total == 1 and found[0].pk == first_pk and found[0].fields == (field.name,), (field.name, found)


def _hashable(value):
    return bytes(value) if isinstance(value, memoryview) else value


def _raw(value):
    return value


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_text_columns_of_two_collations_are_digested(source, dest):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))
    title = m.Book._meta.get_field("title")
    # mysql_b is utf8mb4_bin: one column in another collation cannot meet the others in a CONCAT.
    h.sql_for(dest, f"ALTER TABLE {h.qn(dest, m.Book._meta.db_table)} MODIFY {h.qn(dest, title.column)} "
                    f"varchar({title.max_length}) COLLATE utf8mb4_unicode_ci NOT NULL")
    digest = digests(source, dest, labels=("copytest.Book",))["copytest.Book"]
    assert digest.method == "sql" and digest.differing() == []
    m.Book.objects.using(dest).filter(pk=m.Book.objects.using(dest).order_by("pk")[0].pk).update(title="Changed")
    found, total = digests(source, dest, labels=("copytest.Book",))["copytest.Book"].differences()
    assert total == 1 and found[0].fields == ("title",), found


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")])
def test_a_destination_digested_in_slices_gives_the_same_answers(source, dest, monkeypatch):
    monkeypatch.setattr(digest_module, "SLICED_ROWS", 1)  # every table, in three key ranges at once
    monkeypatch.setattr(digest_module, "SLICES", 3)
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))
    assert not {label: d.differing() for label, d in digests(source, dest).items() if d.differing()}
    book = m.Book.objects.using(dest).order_by("-pk").first()
    m.Book.objects.using(dest).filter(pk=book.pk).update(title="sliced")
    found, total = digests(source, dest, labels=("copytest.Book",))["copytest.Book"].differences()
    assert total == 1 and found[0].pk == book.pk and found[0].fields == ("title",), found


@pytest.mark.parametrize("source,dest", PAIRS)
def test_key_digests_name_every_key_one_side_lacks(source, dest):
    # Keys -64..63, four buckets of 32. Bucket 0 spans -31..31 (division truncates), so -1 and 31
    # share it; {1, 4} against {2, 3} keeps a bucket's count and key sum: only exact key sets tell them apart.
    keys = set(range(-64, 64)) - {0}  # MariaDB takes no 0 for an AUTO_INCREMENT key
    for alias, missing in ((source, {31, 2, 3}), (dest, {-1, 1, 4})):
        m.Tag.objects.using(alias).bulk_create(m.Tag(pk=k, name=f"tag {k}") for k in sorted(keys - missing))
    plan = build_plan(source, dest, labels=("copytest.Tag",))
    step = next(s for s in plan.steps if s.model is m.Tag)
    digest = TableDigest(step, read_remaps(plan), keys_only=True)
    delta = digest.delta()
    assert digest.layout.width == digest_module.KEY_BITS
    assert sorted(k for k, in delta.source_keys) == [-1, 1, 4]
    assert sorted(k for k, in delta.dest_keys) == [2, 3, 31]
    assert digest.equal_rows == len(keys) - 3 - 3


@pytest.mark.parametrize("source,dest", PAIRS)
def test_values_swapped_between_rows_of_one_range_are_found(source, dest):
    # A row hash that combines its columns linearly (PostgreSQL's hash_record_extended does) sums to the
    # same total over a range whichever row holds which value: the rows' hashes must not add up alike.
    for alias in (source, dest):
        m.Tag.objects.using(alias).bulk_create(m.Tag(pk=k, name=f"tag {k}") for k in range(1, 7))
    for pk in (1, 2, 3):
        m.Tag.objects.using(dest).filter(pk=pk).update(name=f"moving {pk}")
    for pk, name in ((1, "tag 2"), (2, "tag 3"), (3, "tag 1")):
        m.Tag.objects.using(dest).filter(pk=pk).update(name=name)
    plan = build_plan(source, dest, labels=("copytest.Tag",))
    step = next(s for s in plan.steps if s.model is m.Tag)
    digest = TableDigest(step, read_remaps(plan))
    found, total = digest.differences(limit=10)
    assert len(digest.layout and digest.differing()) >= 1
    assert total == 3 and sorted(d.pk for d in found) == [1, 2, 3], found
