"""After a copy the destination keeps working: new rows get new pks (sequences/identity
columns reset); and the copy itself sends no model signals."""

import datetime as dt

import pytest

from tests import helpers as h
from tests.copytest import models as m
from tests.copytest.signals import COUNTS

BASE = 1_000_000  # far above any id a destination sequence can have reached in this session


def seed_high_pks(alias):
    using = alias
    pub = m.Publisher.objects.using(using).create(pk=BASE + 1, name="P")
    authors = [m.Author.objects.using(using).create(pk=BASE + 10 + i, name=f"A{i}") for i in range(3)]
    tags = [m.Tag.objects.using(using).create(pk=BASE + 20 + i, name=f"t{i}") for i in range(3)]
    books = [
        m.Book.objects.using(using).create(pk=BASE + 30 + i, title=f"B{i}", isbn=f"isbn-{i}", publisher=pub, author=authors[i])
        for i in range(3)
    ]
    through = m.Book.tags.through
    for i, book in enumerate(books):
        through.objects.using(using).create(pk=BASE + 40 + i, book=book, tag=tags[i])
    cats = [m.Category.objects.using(using).create(pk=BASE + 50 + i, name=f"c{i}") for i in range(2)]
    m.Category.objects.using(using).filter(pk=cats[0].pk).update(parent=cats[1])
    m.Place.objects.using(using).create(pk=BASE + 60, name="place")
    m.Restaurant.objects.using(using).create(pk=BASE + 61, name="resto")
    people = [m.Person.objects.using(using).create(pk=BASE + 70 + i, name=f"p{i}") for i in range(2)]
    m.Person.friends.through.objects.using(using).create(pk=BASE + 80, from_person=people[0], to_person=people[1])
    m.Person.friends.through.objects.using(using).create(pk=BASE + 81, from_person=people[1], to_person=people[0])
    club = m.Club.objects.using(using).create(pk=BASE + 90, name="club")
    m.Membership.objects.using(using).create(pk=BASE + 91, person=people[0], club=club, joined=dt.date(2020, 1, 1))
    m.AllTypes.objects.using(using).create(pk=BASE + 100, text="x")


@pytest.mark.parametrize(
    "source,dest",
    [h.pair("sqlite_a", "pg_b"), h.pair("mysql_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("pg_a", "sqlite_b")],
)
@pytest.mark.parametrize("mode", ["plain", "truncate"])
def test_new_rows_after_copy_get_fresh_pks(source, dest, mode):
    seed_high_pks(source)
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, truncate=mode == "truncate")
    h.assert_ok(result)

    problems = []

    def check(model, create):
        copied = set(model._base_manager.using(dest).values_list("pk", flat=True))
        try:
            obj = create()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{model._meta.label}: creating a row on {dest} failed: {type(exc).__name__}: {exc}")
            return
        if obj.pk in copied or obj.pk <= max(copied):
            problems.append(f"{model._meta.label}: new row got pk={obj.pk}, copied pks go up to {max(copied)}")

    d = dest
    check(m.Publisher, lambda: m.Publisher.objects.using(d).create(name="new"))
    check(m.Author, lambda: m.Author.objects.using(d).create(name="new"))
    check(m.Tag, lambda: m.Tag.objects.using(d).create(name="new"))
    check(
        m.Book,
        lambda: m.Book.objects.using(d).create(
            title="new", isbn="new", publisher_id=BASE + 1, author_id=BASE + 10
        ),
    )
    check(m.Book.tags.through, lambda: m.Book.tags.through.objects.using(d).create(book_id=BASE + 30, tag_id=BASE + 21))
    check(m.Category, lambda: m.Category.objects.using(d).create(name="new", parent_id=BASE + 50))
    check(m.Place, lambda: m.Restaurant.objects.using(d).create(name="new resto"))
    check(m.Person, lambda: m.Person.objects.using(d).create(name="new"))
    check(m.Person.friends.through, lambda: m.Person.friends.through.objects.using(d).create(from_person_id=BASE + 70, to_person_id=BASE + 70))
    check(m.Membership, lambda: m.Membership.objects.using(d).create(person_id=BASE + 71, club_id=BASE + 90, joined=dt.date(2021, 1, 1)))
    check(m.AllTypes, lambda: m.AllTypes.objects.using(d).create(text="new"))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "mysql_b"), h.pair("mysql_a", "pg_b"), h.pair("pg_a", "sqlite_b")])
def test_copy_sends_no_model_signals(source, dest):
    authors = [m.Author.objects.using(source).create(name=f"author {i}") for i in range(5)]
    tags = [m.Tag.objects.using(source).create(name=f"tag {i}") for i in range(3)]
    pub = m.Publisher.objects.using(source).create(name="pub")
    for i, author in enumerate(authors):
        book = m.Book.objects.using(source).create(title=f"b{i}", isbn=f"i{i}", publisher=pub, author=author)
        book.tags.set(tags[: i % 3 + 1])
    audit_rows = m.AuditLog.objects.using(source).count()
    assert audit_rows == 5  # the receiver works
    before = dict(COUNTS)

    result = h.dbcopy("copy", "copytest", source=source, dest=dest)
    h.assert_ok(result)

    assert dict(COUNTS) == before, f"signals were sent during the copy: before={before} after={dict(COUNTS)}"
    assert m.AuditLog.objects.using(dest).count() == audit_rows, "the post_save receiver wrote side rows on the destination"
    h.assert_tables_equal(source, dest)
