"""`plan` prints the ordered steps and writes nothing; `compare` counts both sides."""

import pytest

from tests import helpers as h
from tests.copytest import models as m

# (parent, child): the parent's rows must be copied before the child's (non-nullable FK,
# MTI parent link, M2M through table).
MUST_PRECEDE = [
    (m.Publisher, m.Book),
    (m.Author, m.Book),
    (m.Book, m.Book.tags.through),
    (m.Tag, m.Book.tags.through),
    (m.Book, m.Review),
    (m.Person, m.Membership),
    (m.Club, m.Membership),
    (m.Person, m.Person.friends.through),
    (m.Place, m.Restaurant),
    (m.Restaurant, m.Pizzeria),
    (m.Token, m.TokenUse),
    (m.Country, m.City),
]
if m.HAS_COMPOSITE_PK:
    MUST_PRECEDE.append((m.Person, m.Enrollment))


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b"), h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_plan_prints_ordered_steps_and_writes_nothing(source, dest):
    h.seed_core(source)
    before_source, before_dest = h.all_table_counts(source), h.all_table_counts(dest)

    result = h.dbcopy("plan", "copytest", source=source, dest=dest)

    assert result.returncode == 0, str(result)
    text = result.output
    missing = [h.label(model) for model in h.copytest_models() if h.label_position(text, model) < 0]
    assert not missing, f"plan does not mention {missing}:\n{text}"
    wrong = [
        f"{h.label(parent)} after {h.label(child)}"
        for parent, child in MUST_PRECEDE
        if h.label_position(text, parent) > h.label_position(text, child)
    ]
    assert not wrong, f"plan order violates FK dependencies: {wrong}\n{text}"
    assert h.all_table_counts(dest) == before_dest, "plan wrote to the destination"
    assert h.all_table_counts(source) == before_source, "plan wrote to the source"


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b"), h.pair("pg_a", "sqlite_b")])
def test_compare_exit_status_follows_the_counts(source, dest, report_path):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))

    equal = h.dbcopy("compare", "copytest", source=source, dest=dest, report_json=report_path)
    assert equal.returncode == 0, f"compare after a copy should exit 0:\n{equal}"
    assert equal.report["command"] == "compare" and equal.report["ok"] is True, equal.report
    n_reviews = m.Review.objects.using(source).count()
    assert equal.entry("copytest.Review")["source_rows"] == n_reviews
    assert equal.entry("copytest.Review")["dest_rows"] == n_reviews

    m.Review.objects.using(dest).filter(pk=m.Review.objects.using(dest).order_by("pk").first().pk).delete()
    m.Tag.objects.using(dest).create(name="only on the destination")
    before_dest = h.all_table_counts(dest)

    differ = h.dbcopy("compare", "copytest", source=source, dest=dest, report_json=report_path)
    assert differ.returncode == 1, f"compare with differing counts should exit 1:\n{differ}"
    assert "Traceback" not in differ.output
    assert differ.report["ok"] is False
    review = differ.entry("copytest.Review")
    assert (review["status"], review["source_rows"], review["dest_rows"]) == ("mismatch", n_reviews, n_reviews - 1), review
    tag = differ.entry("copytest.Tag")
    assert tag["status"] == "mismatch" and tag["dest_rows"] == tag["source_rows"] + 1, tag
    assert differ.entry("copytest.Book")["status"] == "ok"
    assert "copytest.Review" in differ.output and "copytest.Tag" in differ.output
    assert h.all_table_counts(dest) == before_dest, "compare wrote to the destination"


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_abstract_models_are_counted_not_listed(source, dest, report_path):
    abstract = {
        base
        for model in h.copytest_models()
        for base in model.__mro__
        if getattr(getattr(base, "_meta", None), "abstract", False)
    }
    assert abstract == {m.Stamped}, f"the test app's abstract models changed: {abstract}"
    h.seed_core(source)

    plan = h.dbcopy("plan", "copytest", source=source, dest=dest)
    assert plan.returncode == 0, str(plan)
    assert "copytest.Stamped" not in plan.output, f"plan lists an abstract model as a step or a skip:\n{plan}"
    assert "1 abstract model has no table" in plan.output, f"plan's summary should count it:\n{plan}"

    compare = h.dbcopy("compare", "copytest", source=source, dest=dest, report_json=report_path, verbosity=2)
    assert "copytest.Stamped" not in compare.output, f"the reconciliation lists an abstract model:\n{compare}"
    assert "1 abstract model has no table" in compare.output, str(compare)
    labels = [entry["model"] for entry in compare.report["models"]]
    assert "copytest.Stamped" not in labels, labels
    assert compare.report["abstract_models_without_table"] == 1, compare.report
    # Models that do have a table and are left alone are still listed, with their reason.
    assert compare.entry("copytest.BookProxy")["status"] == "skipped", compare.entry("copytest.BookProxy")
