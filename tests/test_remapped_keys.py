"""Keys that are themselves remapped ids, and rows matched by natural key (issue 8, points 3 and 4).

``copytest.ContentTypeSetting`` has a OneToOneField to ContentType as its primary key (as Wagtail's
WorkflowContentType has): at the destination its key is the destination's content type id for the
same (app_label, model). Every lookup by key — the sync's upsert, the rows gone from the source,
--resume's boundary — must translate it, or a sync fails with a duplicate key and --deletes deletes
valid rows.

Permissions (and content types) are matched by natural key; a matched row takes the source's other
columns (a permission renamed at the source) and keeps the destination's id.

Each test first renumbers the destination's content types (`renumber_content_types`), so that a
source id names another (app_label, model) at the destination, or none.
"""

import json
import os
import subprocess
import sys

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import connections

from tests import helpers as h
from tests.copytest import models as m

SETTING = "copytest.ContentTypeSetting"
PAIRS = [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")]
# The content types given a setting at the source (one row each).
SETTING_KEYS = [
    ("copytest", "author"), ("copytest", "book"), ("copytest", "tag"), ("copytest", "category"),
    ("auth", "user"), ("auth", "group"), ("auth", "permission"), ("contenttypes", "contenttype"),
]


def renumber_content_types(dest, source):
    """Give the destination's content types other ids than the source's: the copytest ones the
    source's copytest ids rotated (a source id then names another model there), the others ids
    above every id on either side (a source id names no row there). Their permissions go with them
    (a cascade); the copy adds them back."""
    types = ContentType.objects.using(dest)
    keys = list(types.order_by("pk").values_list("app_label", "model"))
    source_ids = content_type_ids(source)
    copytest = [key for key in keys if key[0] == "copytest" and key in source_ids]
    ids = [source_ids[key] for key in copytest]
    new = dict(zip(copytest, ids[1:] + ids[:1]))
    top = max([*source_ids.values(), *types.values_list("pk", flat=True)])
    others = [key for key in keys if key not in new]
    new.update({key: pk for pk, key in enumerate(reversed(others), start=top + 1)})
    types.all().delete()
    types.bulk_create([ContentType(pk=pk, app_label=a, model=mo) for (a, mo), pk in new.items()])
    connection = connections[dest]
    with connection.cursor() as cursor:  # PostgreSQL's sequence does not follow explicit ids
        for sql in connection.ops.sequence_reset_sql(no_style(), [ContentType]):
            cursor.execute(sql)
    ContentType.objects.clear_cache()


def content_type_ids(alias):
    return {(a, mo): pk for pk, a, mo in ContentType.objects.using(alias).values_list("pk", "app_label", "model")}


def prepare(source, dest, keys=SETTING_KEYS):
    """Renumber the destination's content types and give the source one setting per key."""
    renumber_content_types(dest, source)
    src, dst = content_type_ids(source), content_type_ids(dest)
    assert all(src[key] != dst[key] for key in keys), "precondition: every setting's content type id differs"
    assert any(src[key] in dst.values() for key in keys), "precondition: a source id names another model at dest"
    for n, key in enumerate(keys):
        m.ContentTypeSetting.objects.using(source).create(content_type_id=src[key], enabled=n % 2 == 0)


def settings_by_natural_key(alias):
    """Every setting as ((app_label, model), enabled, updated_at), whatever the ids."""
    rows = m.ContentTypeSetting.objects.using(alias).values_list(
        "content_type__app_label", "content_type__model", "enabled", "updated_at"
    )
    return sorted(((a, mo), enabled, updated) for a, mo, enabled, updated in rows)


def dangling_settings(alias):
    known = set(ContentType.objects.using(alias).values_list("pk", flat=True))
    return [pk for pk in m.ContentTypeSetting.objects.using(alias).values_list("pk", flat=True) if pk not in known]


def assert_settings_equal(source, dest):
    assert dangling_settings(dest) == []
    assert settings_by_natural_key(dest) == settings_by_natural_key(source)


def sync(source, dest, *labels, **options):
    return h.dbcopy("sync", *(labels or (SETTING,)), source=source, dest=dest, **options)


def counts(result, label=SETTING):
    entry = result.entry(label)
    return {key: entry[key] for key in ("inserted", "updated", "deleted", "unchanged")}


def setting_of(alias, key):
    return m.ContentTypeSetting.objects.using(alias).get(content_type__app_label=key[0], content_type__model=key[1])


# ----------------------------------------------------------------------------------------
# A primary key that is a content type id
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", PAIRS)
def test_copy_points_each_setting_at_the_same_natural_key(source, dest, report_path):
    prepare(source, dest)
    result = h.dbcopy("copy", SETTING, source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    assert_settings_equal(source, dest)
    assert result.entry(SETTING)["status"] == "ok", result


@pytest.mark.parametrize("source,dest", PAIRS)
def test_sync_twice_copies_the_settings_then_writes_nothing(source, dest, report_path):
    prepare(source, dest)
    first = sync(source, dest, report_json=report_path)
    h.assert_ok(first)
    assert counts(first)["inserted"] == len(SETTING_KEYS), first
    assert_settings_equal(source, dest)

    second = sync(source, dest, report_json=report_path)
    h.assert_ok(second)
    assert counts(second) == {"inserted": 0, "updated": 0, "deleted": 0, "unchanged": len(SETTING_KEYS)}, second
    assert_settings_equal(source, dest)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_sync_by_cursor_updates_the_changed_setting_only(source, dest, report_path):
    prepare(source, dest)
    h.assert_ok(sync(source, dest, since_field="updated_at"))
    changed = setting_of(source, ("auth", "user"))
    changed.enabled = not changed.enabled
    changed.save(using=source)  # auto_now moves updated_at: the row enters the window

    result = sync(source, dest, since_field="updated_at", report_json=report_path)
    h.assert_ok(result)
    got = counts(result)
    assert (got["inserted"], got["updated"], got["deleted"]) == (0, 1, 0), result
    assert_settings_equal(source, dest)
    assert setting_of(dest, ("auth", "user")).enabled == changed.enabled


@pytest.mark.parametrize("source,dest", PAIRS)
def test_sync_deletes_exactly_the_setting_deleted_at_the_source(source, dest, report_path):
    prepare(source, dest)
    h.assert_ok(sync(source, dest))
    gone = ("copytest", "book")
    setting_of(source, gone).delete()

    waiting = sync(source, dest, report_json=report_path)
    assert waiting.returncode == 1, waiting  # the row waits for --deletes: the tables differ
    entry = waiting.entry(SETTING)
    assert entry["deleted"] == 0 and entry["status"] == "mismatch" and "--deletes" in entry["reason"], entry
    assert (entry["source_rows"], entry["dest_rows"]) == (len(SETTING_KEYS) - 1, len(SETTING_KEYS)), entry
    assert m.ContentTypeSetting.objects.using(dest).count() == len(SETTING_KEYS)

    result = sync(source, dest, deletes=True, report_json=report_path)
    h.assert_ok(result)
    assert counts(result)["deleted"] == 1, result
    assert_settings_equal(source, dest)
    assert gone not in [key for key, _, _ in settings_by_natural_key(dest)]


@pytest.mark.parametrize("source,dest", PAIRS)
def test_copy_resume_continues_a_partly_copied_settings_table(source, dest, report_path):
    prepare(source, dest)
    h.assert_ok(h.dbcopy("copy", SETTING, source=source, dest=dest))
    # As an interrupted copy leaves it: the first rows in the source's key order, none after.
    kept = 3
    later = list(m.ContentTypeSetting.objects.using(source).order_by("pk").values_list(
        "content_type__app_label", "content_type__model")[kept:])
    for key in later:
        setting_of(dest, key).delete()
    assert m.ContentTypeSetting.objects.using(dest).count() == kept

    result = h.dbcopy("copy", SETTING, source=source, dest=dest, resume=True, report_json=report_path)
    h.assert_ok(result)
    entry = result.entry(SETTING)
    assert entry["resumed_rows"] == kept and entry["copied_rows"] == len(SETTING_KEYS) - kept, entry
    assert_settings_equal(source, dest)


# ----------------------------------------------------------------------------------------
# Rows matched by natural key take the source's other columns
# ----------------------------------------------------------------------------------------


def permission(alias, codename):
    return Permission.objects.using(alias).get(content_type__app_label="copytest", codename=codename)


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_permission_renamed_at_the_source_arrives_renamed(source, dest, report_path):
    renumber_content_types(dest, source)
    # The cascade took the destination's copytest permissions: give it migrate's again, under new ids.
    create_permissions(apps.get_app_config("copytest"), verbosity=0, using=dest)
    Permission.objects.using(source).filter(pk=permission(source, "add_author").pk).update(name="May add authors")
    editors = Group.objects.using(source).create(name="editors")
    editors.permissions.set([permission(source, "add_author"), permission(source, "view_book")])
    dest_ids = {codename: permission(dest, codename).pk for codename in ("add_author", "view_book")}
    untouched = permission(dest, "view_book").name

    copied = h.dbcopy("copy", "auth.Group", source=source, dest=dest, report_json=report_path)
    h.assert_ok(copied)
    assert permission(dest, "add_author").name == "May add authors"
    assert permission(dest, "view_book").name == untouched
    # Matched, not copied: the destination's ids stay, and the group points at them.
    assert {codename: permission(dest, codename).pk for codename in dest_ids} == dest_ids
    assert sorted(Group.objects.using(dest).get(name="editors").permissions.values_list("pk", flat=True)) == sorted(
        dest_ids.values()
    )

    Permission.objects.using(source).filter(pk=permission(source, "add_author").pk).update(name="May add writers")
    synced = sync(source, dest, "auth.Group", report_json=report_path)
    h.assert_ok(synced)
    assert synced.entry("auth.Permission")["copied_rows"] == 1, synced  # the one renamed row
    assert permission(dest, "add_author").name == "May add writers"
    assert permission(dest, "add_author").pk == dest_ids["add_author"]

    again = sync(source, dest, "auth.Group", report_json=report_path)
    h.assert_ok(again)
    assert again.entry("auth.Permission")["copied_rows"] == 0, again


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_sync_deletes_on_the_command_line_keeps_every_valid_setting(source, dest, tmp_path):
    """`python -m django dbcopy sync … --deletes` as a user types it, after a copy."""
    prepare(source, dest)
    h.assert_ok(h.dbcopy("copy", SETTING, source=source, dest=dest))
    setting_of(source, ("auth", "group")).delete()
    report = tmp_path / "report.json"
    argv = [
        sys.executable, "-m", "django", "dbcopy", "sync", SETTING, "--deletes", "--no-input",
        "--settings", settings.SETTINGS_MODULE or "tests.settings.all_backends",
        "--source", source, "--dest", dest, "--report-json", str(report),
    ]
    env = dict(os.environ, DBCOPY_TEST_USE_TEST_NAMES="1", COLUMNS="200")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(argv, cwd=h.REPO_DIR, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    entry = next(e for e in json.loads(report.read_text())["models"] if e["model"] == SETTING)
    assert (entry["inserted"], entry["updated"], entry["deleted"]) == (0, 0, 1), entry
    assert_settings_equal(source, dest)
