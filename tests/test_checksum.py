"""`compare --checksum` and `copy --verify`: content proven by digests, every differing row named."""

import pytest

from tests import helpers as h
from tests.copytest import models as m

PAIRS = [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b"), h.pair("pg_a", "pg_b")]
# Matched by natural key, never copied by id: their content is not digested.
REMAPPED = {"contenttypes.ContentType", "auth.Permission"}


def content(entry):
    assert entry.get("content") is not None, f"no content entry for {entry['model']}: {entry}"
    return entry["content"]


def header(output):
    """Return the reconciliation table's header line."""
    return next(line for line in output.splitlines() if "model" in line and "status" in line and "reason" in line)


def assert_every_copied_model_equal(result):
    problems = []
    for entry in result.report["models"]:
        expected = "not checked" if entry["status"] == "skipped" or entry["model"] in REMAPPED else "equal"
        if content(entry)["status"] != expected:
            problems.append(f"{entry['model']}: content {content(entry)} (expected {expected})")
    assert not problems, "\n".join(problems) + f"\n{result}"
    equal = [e["model"] for e in result.report["models"] if content(e)["status"] == "equal"]
    assert "copytest.Book" in equal and "copytest.AllTypes" in equal and len(equal) > 30, equal


@pytest.mark.parametrize("source,dest", PAIRS)
def test_compare_checksum_after_a_copy_finds_every_table_equal(source, dest, report_path):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))

    counted = h.dbcopy("compare", "copytest", source=source, dest=dest, report_json=report_path)
    h.assert_ok(counted)
    assert counted.entry("copytest.Book")["content"] is None, "content reported although --checksum was not given"
    assert "content" not in header(counted.stdout), counted.stdout

    checked = h.dbcopy("compare", "copytest", source=source, dest=dest, checksum=True, report_json=report_path)
    h.assert_ok(checked)
    assert checked.report["ok"] is True
    assert_every_copied_model_equal(checked)
    assert "content" in header(checked.stdout) and "equal" in checked.stdout, checked.stdout
    assert content(checked.entry("copytest.Author"))["method"] == "sql", checked.entry("copytest.Author")


def break_destination(source, dest):
    """Corrupt one value, replace one row by another at the same count, leave a cycle FK NULL; return the keys."""
    book = m.Book.objects.using(dest).order_by("pk").values_list("pk", flat=True)[1]
    m.Book.objects.using(dest).filter(pk=book).update(title="corrupted")
    articles = list(m.Article.all_objects.using(dest).order_by("pk").values_list("pk", flat=True))
    gone = articles[2]
    m.Article.all_objects.using(dest).filter(pk=gone).delete()
    extra = m.Article.all_objects.using(dest).create(pk=max(articles) + 100, title="only at the destination")
    child = m.Category.objects.using(dest).exclude(parent=None).order_by("pk").first().pk
    m.Category.objects.using(dest).filter(pk=child).update(parent=None)
    return book, gone, extra.pk, child


@pytest.mark.parametrize("source,dest", PAIRS)
def test_compare_checksum_names_model_pk_and_field_of_each_difference(source, dest, report_path):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))
    book, gone, extra, child = break_destination(source, dest)

    # Counts alone see nothing wrong with the corrupted book or the replaced article.
    h.assert_ok(h.dbcopy("compare", "copytest.Book", "copytest.Article", source=source, dest=dest))

    result = h.dbcopy("compare", "copytest", source=source, dest=dest, checksum=True, report_json=report_path)
    assert result.returncode == 1, result
    assert "Traceback" not in result.output
    assert result.report["ok"] is False
    assert "Content differs for 3 model(s)" in result.error, result.error
    for label, pk, what in (
        ("copytest.Book", book, "title differs"),
        ("copytest.Article", gone, "missing at the destination"),
        ("copytest.Article", extra, "missing at the source"),
        ("copytest.Category", child, "parent differs"),
    ):
        assert f"{label} pk={pk}: {what}" in result.stdout, f"{label} pk={pk}: {what} not named:\n{result}"

    entry = result.entry("copytest.Book")
    assert entry["status"] == "mismatch" and entry["source_rows"] == entry["dest_rows"], entry
    assert "content differs: 1 row" in entry["reason"], entry
    assert content(entry)["status"] == "differs" and content(entry)["differing_rows"] == 1, entry
    assert content(entry)["differences"] == [{"pk": book, "fields": ["title"], "missing": None}], entry
    article = content(result.entry("copytest.Article"))
    assert result.entry("copytest.Article")["source_rows"] == result.entry("copytest.Article")["dest_rows"]
    assert {(d["pk"], d["missing"]) for d in article["differences"]} == {
        (gone, "at the destination"), (extra, "at the source")}, article
    category = content(result.entry("copytest.Category"))
    assert category["differences"] == [{"pk": child, "fields": ["parent"], "missing": None}], category
    assert content(result.entry("copytest.Author"))["status"] == "equal"
    assert content(result.entry("copytest.Publisher"))["status"] == "equal"


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b")])
def test_show_diffs_limits_the_rows_named_and_counts_the_rest(source, dest, report_path):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))
    books = list(m.Book.objects.using(dest).order_by("pk").values_list("pk", flat=True))
    m.Book.objects.using(dest).filter(pk__in=books[:3]).update(title="corrupted")

    one = h.dbcopy("compare", "copytest.Book", source=source, dest=dest, checksum=True, show_diffs=1,
                   report_json=report_path)
    assert one.returncode == 1, one
    named = [line for line in one.stdout.splitlines() if "copytest.Book pk=" in line]
    assert len(named) == 1 and "title differs" in named[0], one.stdout
    assert "… and 2 more" in one.stdout, one.stdout
    book = content(one.entry("copytest.Book"))
    assert book["differing_rows"] == 3 and len(book["differences"]) == 1, book

    none = h.dbcopy("compare", "copytest.Book", source=source, dest=dest, checksum=True, show_diffs=0)
    assert none.returncode == 1, none
    assert "copytest.Book pk=" not in none.stdout and "… and 3 more" in none.stdout, none.stdout

    every = h.dbcopy("compare", "copytest.Book", source=source, dest=dest, checksum=True)
    assert sum("copytest.Book pk=" in line for line in every.stdout.splitlines()) == 3, every.stdout
    assert "more" not in every.stdout, every.stdout


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")])
def test_copy_verify_reports_content_equal_and_names_the_tables_digested_in_python(source, dest, report_path):
    h.seed_core(source)

    plan = h.dbcopy("plan", "copytest", source=source, dest=dest, checksum=True)
    h.assert_ok(plan)
    assert "digested in Python: copytest.Event" in plan.stdout and "payload holds JSON text" in plan.stdout, plan

    copy = h.dbcopy("copy", "copytest", source=source, dest=dest, verify=True, verbosity=2, report_json=report_path)
    h.assert_ok(copy)
    assert_every_copied_model_equal(copy)
    event = content(copy.entry("copytest.Event"))
    assert event["method"] == "python" and "payload" in event["python_reason"], event
    assert "digested in Python: copytest.Event" in copy.stdout, copy.stdout

    # A JSON value changed at the destination: the Python digest names it as the SQL one would.
    changed = m.Event.objects.using(dest).exclude(payload=None).order_by("pk").first().pk
    m.Event.objects.using(dest).filter(pk=changed).update(payload={"changed": True})
    result = h.dbcopy("compare", "copytest.Event", source=source, dest=dest, checksum=True)
    assert result.returncode == 1 and f"copytest.Event pk={changed}: payload differs" in result.stdout, result


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_copy_verify_catches_values_the_destination_changed_at_equal_counts(source, dest, report_path):
    """A destination trigger rewriting every title: the counts agree, --verify does not."""
    h.seed_core(source)
    function, table = h.qn(dest, "dbcopy_test_shout"), h.qn(dest, m.Book._meta.db_table)
    h.sql_for(dest, f"CREATE FUNCTION {function}() RETURNS trigger AS $$ BEGIN NEW.title := upper(NEW.title); "
                    "RETURN NEW; END $$ LANGUAGE plpgsql")
    try:
        h.sql_for(dest, f"CREATE TRIGGER dbcopy_test_shout BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()")
        result = h.dbcopy("copy", "copytest", source=source, dest=dest, verify=True, report_json=report_path)
    finally:
        h.sql_for(dest, f"DROP FUNCTION {function}() CASCADE")
    books = m.Book.objects.using(source).count()
    assert result.returncode == 1, result
    assert "Content differs for 1 model(s): copytest.Book" in result.error, result.error
    entry = result.entry("copytest.Book")
    assert entry["copied_rows"] == entry["dest_rows"] == books and entry["status"] == "mismatch", entry
    assert content(entry)["differing_rows"] == books and len(content(entry)["differences"]) == 10, entry
    assert f"… and {books - 10} more" in result.stdout, result.stdout
    assert content(result.entry("copytest.Author"))["status"] == "equal"


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "mysql_b")])
def test_checksum_options_are_refused_where_they_do_not_apply(source, dest):
    cases = {
        "sync --checksum": ("sync", {"checksum": True}),
        "copy --checksum": ("copy", {"checksum": True}),
        "compare --verify": ("compare", {"verify": True}),
        "compare --show-diffs without --checksum": ("compare", {"show_diffs": 3}),
        "compare --show-diffs -1": ("compare", {"checksum": True, "show_diffs": -1}),
        "plan --show-diffs": ("plan", {"checksum": True, "show_diffs": 3}),
    }
    problems = []
    for name, (subcommand, options) in cases.items():
        result = h.dbcopy(subcommand, "copytest", source=source, dest=dest, **options)
        if result.returncode != 2 or "--" not in result.error:
            problems.append(f"{name}: expected exit 2 naming the option\n{result}")
    assert not problems, "\n\n".join(problems)
    assert all(n == 0 for n in h.row_counts(dest).values()), "a refused command wrote to the destination"


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_console_script_copy_verify_then_compare_checksum_as_typed(source, dest):
    from tests.test_cli import CONSOLE_SCRIPT, SETTINGS, describe, run

    h.seed_core(source)
    common = ["copytest", "--settings", SETTINGS, "--source", source, "--dest", dest]
    copy = run([str(CONSOLE_SCRIPT), "copy", *common, "--no-input", "--verify"])
    assert copy.returncode == 0, describe(copy)
    assert "equal" in copy.stdout and "Traceback" not in copy.stdout + copy.stderr, describe(copy)

    m.Tag.objects.using(dest).filter(pk=m.Tag.objects.using(dest).order_by("pk").first().pk).update(name="renamed")
    compare = run([str(CONSOLE_SCRIPT), "compare", *common, "--checksum", "--show-diffs", "1"])
    assert compare.returncode == 1, describe(compare)
    assert "copytest.Tag pk=" in compare.stdout and "name differs" in compare.stdout, describe(compare)


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b")])
def test_a_table_that_cannot_be_digested_fails_with_the_error_and_the_others_are_checked(source, dest, report_path):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))
    # PostgreSQL's 'infinity' has no microseconds since the epoch: the destination's digest query fails
    # (between two PostgreSQL databases it is digested as PostgreSQL's own text, and would not).
    note = m.Note.objects.using(dest).order_by("pk").first().pk
    h.sql_for(dest, f"UPDATE {h.qn(dest, m.Note._meta.db_table)} SET created = 'infinity' WHERE id = {note}")

    result = h.dbcopy("compare", "copytest", source=source, dest=dest, checksum=True, report_json=report_path)
    assert result.returncode == 1 and "Traceback" not in result.output, result
    entry = result.entry("copytest.Note")
    assert entry["status"] == "failed" and "cannot digest the content" in entry["reason"], entry
    assert content(entry)["status"] == "not checked", entry
    assert "copytest.Note" in result.error, result.error
    assert content(result.entry("copytest.Book"))["status"] == "equal", result.entry("copytest.Book")
