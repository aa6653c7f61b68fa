"""`dbcopy sync` converges in one run: deletes in an order every vendor accepts (a self-FK
subtree, a cycle across two tables), and unique values that move between rows (swapped,
handed over, rotated, taken by a new row from a row the source deleted).

Every test checks exit status 0, the destination equal to the source row by row after one
sync, and a second sync that writes nothing. chunk_size=2 puts the rows involved in
different chunks (and so different transactions), where a per-chunk answer is not enough.
"""

import re

import pytest

from tests import helpers as h
from tests.copytest import models as m
from tests.test_sync import (
    BOOK,
    BOOK_MODELS,
    HOUR,
    MINUTE,
    T0,
    assert_books_equal,
    assert_exit,
    book_rows,
    make_book,
    seed_books,
    sync,
)

PAIRS = [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "sqlite_b"), h.pair("pg_a", "pg_b")]
CHUNK = 2
LATER = T0 + 10 * HOUR  # a cursor value after everything seed_books stamps


def assert_second_sync_writes_nothing(source, dest, *labels, report_path, **options):
    again = sync(source, dest, *labels, chunk_size=CHUNK, report_json=report_path, **options)
    h.assert_ok(again)
    written = {
        entry["model"]: {key: entry[key] for key in ("inserted", "updated", "deleted") if entry.get(key)}
        for entry in again.report["models"]
    }
    written = {label: counts for label, counts in written.items() if counts}
    assert not written, f"the second sync wrote {written}\n{again}"


def codes(alias, model=m.SyncBook, field="code"):
    return dict(model._base_manager.using(alias).values_list("pk", field))


def assert_books_converged(source, dest, report_path):
    """The books' codes and every book table equal the source's, and a second sync writes nothing."""
    assert codes(dest) == codes(source)
    assert_books_equal(source, dest)
    assert_second_sync_writes_nothing(source, dest, report_path=report_path)


# ----------------------------------------------------------------------------------------
# Deletes
# ----------------------------------------------------------------------------------------

CATEGORY = ("copytest.Category",)


def category_tree(alias):
    """Two trees; the one under pk 10 mixes parents with lower and higher pks than their children.

    10 ─┬─ 3 ─┬─ 1
        │     └─ 14
        └─ 12 ── 5 ── 2
    20 ── 7
    """
    parents = {10: None, 3: 10, 12: 10, 1: 3, 14: 3, 5: 12, 2: 5, 20: None, 7: 20}
    for pk in sorted(parents):
        m.Category.objects.using(alias).create(pk=pk, name=f"category {pk}")
    for pk, parent in parents.items():
        m.Category.objects.using(alias).filter(pk=pk).update(parent_id=parent)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_self_fk_subtree_deleted_at_the_source_is_deleted_children_or_parents_first(source, dest, report_path):
    category_tree(source)
    h.assert_ok(sync(source, dest, *CATEGORY, since_field=None, chunk_size=CHUNK, report_json=report_path))
    h.assert_tables_equal(source, dest, [m.Category])

    m.Category.objects.using(source).get(pk=10).delete()  # Django cascades: 10, 3, 12, 1, 14, 5, 2
    assert sorted(m.Category.objects.using(source).values_list("pk", flat=True)) == [7, 20]

    result = sync(source, dest, *CATEGORY, since_field=None, deletes=True, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    assert result.entry("copytest.Category")["deleted"] == 7, result.entry("copytest.Category")
    h.assert_tables_equal(source, dest, [m.Category])
    assert_second_sync_writes_nothing(source, dest, *CATEGORY, since_field=None, deletes=True, report_path=report_path)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_self_fk_rows_whose_parent_was_deleted_are_moved_then_the_parent_deleted(source, dest, report_path):
    """Only the middle of the tree goes; its children are re-parented at the source."""
    category_tree(source)
    h.assert_ok(sync(source, dest, *CATEGORY, since_field=None, chunk_size=CHUNK, report_json=report_path))
    m.Category.objects.using(source).filter(parent_id=12).update(parent_id=20)
    m.Category.objects.using(source).filter(parent_id=3).update(parent_id=None)
    m.Category.objects.using(source).filter(pk__in=[3, 12]).delete()

    result = sync(source, dest, *CATEGORY, since_field=None, deletes=True, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest, [m.Category])
    assert_second_sync_writes_nothing(source, dest, *CATEGORY, since_field=None, deletes=True, report_path=report_path)


COUNTRY = ("copytest.Country", "copytest.City")


def countries(alias):
    """Three countries with two cities each; the first two have their second city as capital."""
    made = []
    for i in range(3):
        country = m.Country.objects.using(alias).create(name=f"Country {i}")
        cities = [m.City.objects.using(alias).create(name=f"City {i}.{j}", country=country) for j in range(2)]
        if i < 2:
            m.Country.objects.using(alias).filter(pk=country.pk).update(capital=cities[-1])
        made.append((country, cities))
    return made


@pytest.mark.parametrize("source,dest", PAIRS)
def test_country_and_city_cycle_deleted_at_the_source_is_deleted(source, dest, report_path):
    """Country.capital → City → Country: a country goes with its cities (its capital among
    them), and another country loses only its capital."""
    made = countries(source)
    h.assert_ok(sync(source, dest, *COUNTRY, since_field=None, chunk_size=CHUNK, report_json=report_path))
    h.assert_tables_equal(source, dest, [m.Country, m.City])

    m.Country.objects.using(source).get(pk=made[0][0].pk).delete()  # cascades to its cities
    m.City.objects.using(source).get(pk=made[1][1][-1].pk).delete()  # the capital: Country 1's capital -> NULL
    assert m.Country.objects.using(source).get(pk=made[1][0].pk).capital_id is None

    result = sync(source, dest, *COUNTRY, since_field=None, deletes=True, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    assert result.entry("copytest.Country")["deleted"] == 1, result.entry("copytest.Country")
    assert result.entry("copytest.City")["deleted"] == 3, result.entry("copytest.City")
    h.assert_tables_equal(source, dest, [m.Country, m.City])
    assert_second_sync_writes_nothing(source, dest, *COUNTRY, since_field=None, deletes=True, report_path=report_path)


CHICKEN = ("copytest.Chicken", "copytest.Egg")


@pytest.mark.parametrize("source,dest", PAIRS)
def test_not_null_cycle_deleted_at_the_source_is_deleted(source, dest, report_path):
    """Chicken.egg → Egg.mother → Chicken, neither nullable: nothing to unlink, no order of
    deletes passes the checks. Chicken 501 goes with egg 701 (its own egg, which it laid)."""
    h.seed_chicken_egg(source)
    h.assert_ok(sync(source, dest, *CHICKEN, since_field=None, chunk_size=CHUNK, report_json=report_path))
    # MySQL cannot delete the pair row by row either.
    with h.transaction.atomic(using=source), h.connections[source].constraint_checks_disabled():
        m.Egg.objects.using(source).filter(pk=701).delete()
        m.Chicken.objects.using(source).filter(pk=501).delete()

    result = sync(source, dest, *CHICKEN, since_field=None, deletes=True, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    assert (result.entry("copytest.Chicken")["deleted"], result.entry("copytest.Egg")["deleted"]) == (1, 1), result
    h.assert_tables_equal(source, dest, [m.Chicken, m.Egg])
    assert_second_sync_writes_nothing(source, dest, *CHICKEN, since_field=None, deletes=True, report_path=report_path)


# ----------------------------------------------------------------------------------------
# Unique values moving between rows
# ----------------------------------------------------------------------------------------


def set_codes(alias, new_codes, when=LATER):
    """Give books new codes at once (the source's own constraint allows the end state only),
    stamped `when` (a datetime, or one per pk)."""
    books = m.SyncBook.objects.using(alias)
    for pk in new_codes:
        books.filter(pk=pk).update(code=f"moving-{pk}")
    for pk, code in new_codes.items():
        books.filter(pk=pk).update(code=code, updated_at=when[pk] if isinstance(when, dict) else when)


def synced_books(source, dest, report_path, n=6):
    _, _, books = seed_books(source, n=n, chapters=1)
    h.assert_ok(sync(source, dest, chunk_size=CHUNK, report_json=report_path))
    assert_books_equal(source, dest)
    return [book.pk for book in books]


@pytest.mark.parametrize("source,dest", PAIRS)
def test_two_rows_swapping_a_unique_value_converge(source, dest, report_path):
    """One pair swaps inside a chunk, another across chunks (window order: cursor, then pk)."""
    pks = synced_books(source, dest, report_path)
    before = codes(source)
    set_codes(source, {pks[0]: before[pks[1]], pks[1]: before[pks[0]]})  # window chunk 1
    # Window chunk 2 holds pks[2] and the retitled pks[4]; chunk 3 pks[5], its swap partner.
    stamps = {pks[2]: LATER + MINUTE, pks[5]: LATER + 3 * MINUTE}
    set_codes(source, {pks[2]: before[pks[5]], pks[5]: before[pks[2]]}, when=stamps)
    m.SyncBook.objects.using(source).filter(pk=pks[4]).update(title="retitled", updated_at=LATER + 2 * MINUTE)

    result = sync(source, dest, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    assert result.entry(BOOK)["updated"] == 5, result.entry(BOOK)
    assert_books_converged(source, dest, report_path)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_value_moved_from_one_row_to_another_converges_in_either_pk_order(source, dest, report_path):
    """Row A gives up its code (taking a new one) and row B takes it: B before A in one chunk,
    B a chunk before A, and B after A."""
    pks = synced_books(source, dest, report_path)
    before = codes(source)
    # Window chunk 1: pks[0] takes what pks[3] gives up.
    set_codes(source, {pks[0]: before[pks[3]], pks[3]: "fresh-3"})
    # Chunk 2: pks[1] takes what pks[4] gives up in chunk 3; pks[2] gives up what pks[5] takes in chunk 3.
    changes = {pks[1]: before[pks[4]], pks[4]: "fresh-4", pks[2]: "fresh-2", pks[5]: before[pks[2]]}
    stamps = {pks[1]: LATER + MINUTE, pks[2]: LATER + MINUTE, pks[4]: LATER + 2 * MINUTE, pks[5]: LATER + 2 * MINUTE}
    set_codes(source, changes, when=stamps)

    result = sync(source, dest, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    assert_books_converged(source, dest, report_path)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_three_rows_rotating_values_converge(source, dest, report_path):
    pks = synced_books(source, dest, report_path)
    before = codes(source)
    set_codes(source, {pks[0]: before[pks[2]], pks[2]: before[pks[4]], pks[4]: before[pks[0]]})

    result = sync(source, dest, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    assert result.entry(BOOK)["updated"] == 3, result.entry(BOOK)
    assert_books_converged(source, dest, report_path)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_unique_values_rotating_in_a_table_compared_in_full_converge(source, dest, report_path):
    """Tag.name, no cursor: the table is read in pk order, the rotation spans three chunks."""
    tags = [m.Tag.objects.using(source).create(name=f"tag-{i}") for i in range(6)]
    labels = ("copytest.Tag",)
    h.assert_ok(sync(source, dest, *labels, since_field=None, chunk_size=CHUNK, report_json=report_path))
    names = {tag.pk: tag.name for tag in tags}
    rotation = {tags[0].pk: names[tags[5].pk], tags[3].pk: names[tags[0].pk], tags[5].pk: names[tags[3].pk]}
    for pk in rotation:
        m.Tag.objects.using(source).filter(pk=pk).update(name=f"moving-{pk}")
    for pk, name in rotation.items():
        m.Tag.objects.using(source).filter(pk=pk).update(name=name)

    result = sync(source, dest, *labels, since_field=None, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    assert result.entry("copytest.Tag")["updated"] == 3, result.entry("copytest.Tag")
    h.assert_tables_equal(source, dest, [m.Tag])
    assert_second_sync_writes_nothing(source, dest, *labels, since_field=None, report_path=report_path)


def replace_with_newcomer(source, pks):
    """Delete a book at the source (its chapters and links go with it); a new book takes its code."""
    gone = m.SyncBook.objects.using(source).get(pk=pks[1])
    author = m.SyncAuthor.objects.using(source).order_by("pk").first()
    tags = list(m.SyncTag.objects.using(source).order_by("pk")[:2])
    gone_pk, code = gone.pk, gone.code
    gone.delete()
    newcomer = make_book(source, code, LATER, author=author, tags=tags, title="newcomer")
    m.SyncChapter.objects.using(source).create(book=newcomer, number=1, title="newcomer's chapter")
    return gone_pk, newcomer


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_deleted_rows_unique_value_taken_by_a_new_row_converges_with_deletes(source, dest, report_path):
    pks = synced_books(source, dest, report_path)
    gone_pk, newcomer = replace_with_newcomer(source, pks)

    result = sync(source, dest, deletes=True, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(result)
    assert result.entry(BOOK)["inserted"] == 1 and result.entry(BOOK)["deleted"] == 1, result.entry(BOOK)
    assert gone_pk not in book_rows(dest)
    assert book_rows(dest)[newcomer.pk] == book_rows(source)[newcomer.pk]
    assert_books_equal(source, dest)
    assert_second_sync_writes_nothing(source, dest, deletes=True, report_path=report_path)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_deleted_rows_unique_value_taken_by_a_new_row_without_deletes_names_the_row_and_the_option(
    source, dest, report_path,
):
    pks = synced_books(source, dest, report_path)
    gone_pk, newcomer = replace_with_newcomer(source, pks)
    dest_before = {model: h.table_rows(model, dest) for model in BOOK_MODELS}

    result = sync(source, dest, chunk_size=CHUNK, report_json=report_path)
    assert_exit(result, 1)
    entry = result.entry(BOOK)
    assert entry["status"] == "failed", entry
    reason = entry["reason"] or ""
    assert re.search(rf"pk\s*=\s*{newcomer.pk}\b", reason), f"the refused row is not named: {entry}"
    assert "code" in reason and "--deletes" in reason, f"the reason should name the field and --deletes: {entry}"
    assert re.search(rf"pk\s*=\s*{gone_pk}\b", reason), f"the reason should name the row holding the value: {entry}"
    assert BOOK in result.output and "--deletes" in result.output, result
    # Nothing changed silently: the destination's books are as they were.
    assert h.table_rows(m.SyncBook, dest) == dest_before[m.SyncBook]

    # What the message says resolves it does.
    fixed = sync(source, dest, deletes=True, chunk_size=CHUNK, report_json=report_path)
    h.assert_ok(fixed)
    assert_books_equal(source, dest)
    assert_second_sync_writes_nothing(source, dest, deletes=True, report_path=report_path)


# ----------------------------------------------------------------------------------------
# What still fails is named, and changes nothing silently
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_row_still_refused_after_the_values_moved_is_named_and_the_swap_rolled_back(source, dest, report_path):
    """A unique index only the destination has (on title) refuses one row of a batch that also
    swaps two codes: the refused row is named with the index, and no row keeps a placeholder."""
    pks = synced_books(source, dest, report_path)
    before = codes(dest)
    titles = dict(m.SyncBook.objects.using(source).values_list("pk", "title"))
    set_codes(source, {pks[0]: before[pks[1]], pks[1]: before[pks[0]]})
    m.SyncBook.objects.using(source).filter(pk=pks[2]).update(title=titles[pks[3]], updated_at=LATER)

    # Not through the model (SQLite's schema editor rebuilds the table from it, without the index).
    names = {"name": h.qn(dest, "dest_only_title_key"), "table": h.qn(dest, m.SyncBook._meta.db_table)}
    with h.connections[dest].schema_editor() as editor:
        editor.execute(f"CREATE UNIQUE INDEX {names['name']} ON {names['table']} ({h.qn(dest, 'title')})")
    try:
        result = sync(source, dest, chunk_size=CHUNK, report_json=report_path)
        stored = codes(dest)
    finally:
        with h.connections[dest].schema_editor() as editor:
            editor.execute(editor.sql_delete_index % names)

    assert_exit(result, 1)
    entry = result.entry(BOOK)
    assert entry["status"] == "failed", entry
    assert re.search(rf"pk\s*=\s*{pks[2]}\b", entry["reason"]) and "title" in entry["reason"], entry
    assert stored == before, "the held rows were written in part, or a placeholder was left behind"


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_a_row_refused_for_its_own_value_is_named_at_once_rows_before_it_stay(source, dest, report_path):
    """Not a key between rows: no holding back, the run stops at the row as a copy does."""
    for pk in range(1, 9):
        m.FreeText.objects.using(source).create(pk=pk, title=f"row {pk}", body=f"body {pk}")
    labels = ("copytest.FreeText",)
    h.assert_ok(sync(source, dest, *labels, since_field=None, chunk_size=CHUNK, report_json=report_path))
    rows = m.FreeText.objects.using(source)
    rows.filter(pk=2).update(body="changed 2")
    rows.filter(pk=5).update(title="far too long for ten")  # SQLite never enforces max_length
    rows.filter(pk=7).update(body="changed 7")

    result = sync(source, dest, *labels, since_field=None, chunk_size=CHUNK, report_json=report_path)
    assert_exit(result, 1)
    entry = result.entry("copytest.FreeText")
    assert entry["status"] == "failed", entry
    assert re.search(r"pk\s*=\s*5\b", entry["reason"]) and "title" in entry["reason"], entry
    stored = dict(m.FreeText.objects.using(dest).values_list("pk", "body"))
    assert stored[2] == "changed 2", "the row of an earlier chunk was not kept"
    assert m.FreeText.objects.using(dest).get(pk=5).title == "row 5"
    assert stored[7] == "body 7", "rows after the refused one were written"
