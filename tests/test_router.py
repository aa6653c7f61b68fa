"""Without --dest each model goes to router.db_for_write(model); a model the router does
not allow on its destination is skipped (and does not fail the run)."""

import pytest

from tests import helpers as h
from tests.copytest import models as m

LABELS = ["copytest.Note", "copytest.AllTypes", "copytest.Tag", "copytest.Secret"]


@pytest.mark.parametrize(
    "router",
    [
        # The router knows the source too.
        pytest.param("tests.copytest.routers.SplitRouterAllowingSource", id="router-allows-source"),
        # The router describes only the new layout; the source is the old all-in-one
        # database it does not mention (splitting a monolith) -- the copy reads from
        # --source regardless: only the destination is subject to allow_migrate.
        pytest.param("tests.copytest.routers.SplitRouter", id="router-knows-only-destinations"),
    ],
)
@pytest.mark.django_db(transaction=True, databases=["sqlite_a", "sqlite_b", "pg_b", "mysql_b"])
def test_router_split_without_dest(settings, report_path, router):
    source = "sqlite_a"
    h.seed_core(source)  # before the router is active
    settings.DATABASE_ROUTERS = [router]

    result = h.dbcopy("copy", *LABELS, source=source, report_json=report_path)
    h.assert_ok(result)

    routed = {m.Note: "pg_b", m.AllTypes: "mysql_b", m.Tag: "sqlite_b"}
    problems = []
    for model, dest in routed.items():
        entry = result.entry(h.label(model))
        if entry["status"] != "ok":
            problems.append(f"{h.label(model)} not copied to {dest}: {entry}")
            continue
        problems.extend(h.diff_tables(model, source, dest))
        if dest not in str(entry["dest"]):
            problems.append(f"{h.label(model)} reported dest {entry['dest']!r}, router says {dest}")
        for other in {"pg_b", "mysql_b", "sqlite_b"} - {dest}:
            if model._base_manager.using(other).count():
                problems.append(f"{h.label(model)} also written to {other}")
    assert not problems, "\n".join(problems)
    secret = result.entry("copytest.Secret")
    assert secret["status"] == "skipped" and secret["reason"], secret
    for alias in ("pg_b", "mysql_b", "sqlite_b"):
        assert m.Secret.objects.using(alias).count() == 0, f"Secret written to {alias} although the router forbids it"
    assert result.report["ok"] is True


@pytest.mark.django_db(transaction=True, databases=["pg_a", "default"])
def test_no_dest_and_no_router_copies_into_default(report_path):
    """No router: router.db_for_write() is ``default`` for every model."""
    h.seed_core("pg_a")
    result = h.dbcopy("copy", "copytest", source="pg_a", report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal("pg_a", "default")
    assert result.entry("copytest.Book")["dest"] == "default" or "default" in str(result.entry("copytest.Book")["dest"])
