"""The core test, over the full 3 x 3 vendor matrix.

Seed every trap on <vendor>_a, copy the ``copytest`` app to <vendor>_b with small keyset
chunks, then prove values (not just counts): every column of every row, same primary
keys, raw stored representations where they matter, the JSON report, no signals.

All checks run even when an earlier one fails, so one run lists every problem of a pair.
"""

from contextlib import contextmanager

import pytest

from tests import helpers as h
from tests.copytest import models as m
from tests.copytest.signals import COUNTS

REPORT_KEYS = {"model", "table", "dest", "source_rows", "dest_rows", "copied_rows", "status", "reason", "seconds"}


class SoftChecks:
    def __init__(self):
        self.failures = []

    @contextmanager
    def check(self, name):
        try:
            yield
        except AssertionError as exc:
            self.failures.append(f"[{name}] {exc}")
        except Exception as exc:  # noqa: BLE001 - report, keep checking
            self.failures.append(f"[{name}] {type(exc).__name__}: {exc}")

    def assert_all(self):
        assert not self.failures, f"{len(self.failures)} check(s) failed:\n" + "\n".join(self.failures)


@pytest.mark.parametrize("source,dest", h.all_pairs())
def test_copy_app_preserves_every_value(source, dest, report_path):
    seed = h.seed_core(source)
    before_source = h.row_counts(source)
    signals_before = dict(COUNTS)

    result = h.dbcopy("copy", "copytest", source=source, dest=dest, chunk_size=3, report_json=report_path)

    checks = SoftChecks()
    with checks.check("exit status"):
        h.assert_ok(result)

    # 1, 2, 4: every row and column identical, same pks: FK order incl. M2M through tables,
    # MTI parent/child, cycles (self-FK, mutual FKs, NOT NULL cycle), UUID / char /
    # composite pks, custom field, JSON, auto_now timestamps, every column type.
    for model in h.copytest_models():
        with checks.check(f"table {h.label(model)}"):
            problems = h.diff_tables(model, source, dest)
            assert not problems, "\n    ".join(problems)

    if h.alias_vendor(source) == h.alias_vendor(dest):
        # Same vendor: the stored representation itself must be identical (datetime and
        # decimal text on SQLite, UUID format, JSON text, booleans...), not just the values
        # Django decodes from it.
        for model in h.copytest_models():
            with checks.check(f"raw stored values {h.label(model)}"):
                src_raw, dst_raw = h.raw_table_rows(source, model), h.raw_table_rows(dest, model)
                diff = [(a, b) for a, b in zip(src_raw, dst_raw) if a != b]
                assert len(src_raw) == len(dst_raw) and not diff, f"first differences (source, dest): {diff[:2]}"

    with checks.check("soft-deleted rows (default manager filters) copied"):
        assert m.Article.all_objects.using(dest).filter(is_active=False).count() == before_source["copytest.Article"] - m.Article.objects.using(source).count()
        assert m.Article.all_objects.using(dest).count() == before_source["copytest.Article"]

    with checks.check("NOT NULL cycle Chicken <-> Egg"):
        assert sorted(m.Chicken.objects.using(dest).values_list("pk", "egg_id")) == [(501, 701), (502, 702), (503, 703)]
        assert sorted(m.Egg.objects.using(dest).values_list("pk", "mother_id")) == [(701, 501), (702, 503), (703, 503)]

    with checks.check("self-FK pointing at higher pks"):
        src = dict(m.Category.objects.using(source).values_list("pk", "parent_id"))
        assert any(parent and parent > pk for pk, parent in src.items()), "seed lost its forward references"
        assert dict(m.Category.objects.using(dest).values_list("pk", "parent_id")) == src

    with checks.check("custom field: raw stored text identical"):
        table = m.Book._meta.db_table
        assert h.raw_rows(dest, table, ["id", "price"], ["id"]) == h.raw_rows(source, table, ["id", "price"], ["id"])

    with checks.check("JSON with DjangoJSONEncoder: raw stored JSON identical"):
        assert h.raw_json_rows(dest, m.Event, "payload") == h.raw_json_rows(source, m.Event, "payload")

    with checks.check("JSON null vs SQL NULL kept apart"):
        src_json = h.raw_json_rows(source, m.AllTypes, "data")
        assert any(not is_null and value is None for _, is_null, value in src_json), "seed has no JSON null"
        assert h.raw_json_rows(dest, m.AllTypes, "data") == src_json

    with checks.check("auto_now / auto_now_add kept"):
        assert sorted(m.Note.objects.using(dest).values_list("created", flat=True)) == sorted(h.NOTE_TIMES[:4])
        assert list(m.Note.objects.using(dest).order_by("pk").values_list("created", "modified", "day")) == list(
            m.Note.objects.using(source).order_by("pk").values_list("created", "modified", "day")
        )

    with checks.check("generic FK content types resolve to the same model"):
        def resolved(alias):
            return sorted(
                (t.pk, t.content_type.app_label, t.content_type.model, t.object_id)
                for t in m.TaggedItem.objects.using(alias).select_related("content_type")
            )

        assert resolved(dest) == resolved(source)

    with checks.check("no model signals sent during the copy"):
        assert dict(COUNTS) == signals_before, f"signals fired: before={signals_before} after={dict(COUNTS)}"
        assert m.AuditLog.objects.using(dest).count() == before_source["copytest.AuditLog"]

    with checks.check("source untouched"):
        assert h.row_counts(source) == before_source

    with checks.check("JSON report"):
        report = result.report
        assert report is not None, "no report written"
        assert report["command"] == "copy"
        assert report["ok"] is True
        for entry in report["models"]:
            assert REPORT_KEYS <= set(entry), f"entry lacks keys {REPORT_KEYS - set(entry)}: {entry}"
        for model in h.copytest_models():
            entry = result.entry(h.label(model))
            n = seed.counts[h.label(model)]
            assert entry["status"] == "ok", entry
            assert (entry["source_rows"], entry["dest_rows"], entry["copied_rows"]) == (n, n, n), entry
            assert entry["table"] == model._meta.db_table, entry
            assert entry["dest"] == dest or dest in str(entry["dest"]), entry
            assert isinstance(entry["seconds"], (int, float)) and entry["seconds"] >= 0, entry
        for skipped in (m.BookProxy, m.LegacyReport):
            entry = result.entry(h.label(skipped))
            assert entry["status"] == "skipped" and entry["reason"], entry
        # An abstract model has no table: no entry, only the count.
        assert not [e for e in report["models"] if e["model"] == "copytest.Stamped"], report["models"]
        assert report["abstract_models_without_table"] == 1, report["abstract_models_without_table"]
        assert result.entry("copytest.Book_tags")["copied_rows"] == seed.counts["copytest.Book_tags"]
        assert result.entry("copytest.Person_friends")["copied_rows"] == seed.counts["copytest.Person_friends"]

    checks.assert_all()
