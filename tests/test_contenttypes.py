"""ContentType / Permission remapping.

Content type and permission ids are per-database: ``migrate`` (or ``flush`` via
post_migrate) on the destination created its own rows with its own ids.  After a copy,
every content_type_id (admin LogEntry, Permission, generic FKs) and every permission
reference (user/group permissions) must resolve to the same natural key as in the source.
"""

import pytest
from django.apps import apps
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.management import create_contenttypes
from django.contrib.contenttypes.models import ContentType

from tests import helpers as h
from tests.copytest import models as m


def scramble_content_types(alias):
    """Give alias content type (and permission) ids that differ from a fresh migrate's."""
    ContentType.objects.using(alias).all().delete()  # cascades to the migrate-made permissions
    ghosts = [ContentType.objects.using(alias).create(app_label="ghost", model=f"gone{i}") for i in range(5)]
    configs = list(apps.get_app_configs())
    for config in reversed(configs):
        create_contenttypes(config, verbosity=0, using=alias)
    for config in reversed(configs):
        create_permissions(config, verbosity=0, using=alias)
    ContentType.objects.clear_cache()
    return ghosts


def ct_ids(alias):
    return {(a, mo): pk for pk, a, mo in ContentType.objects.using(alias).values_list("pk", "app_label", "model")}


def seed_auth(alias, ghost_ct):
    ct = ContentType.objects.db_manager(alias)
    perms = Permission.objects.using(alias)
    custom = perms.create(codename="publish_book", name="Can publish books", content_type=ct.get_for_model(m.Book))
    editors = Group.objects.using(alias).create(name="editors")
    editors.permissions.set(perms.filter(codename__in=["add_book", "change_book", "view_author", "publish_book"]))
    auditors = Group.objects.using(alias).create(name="auditors")
    auditors.permissions.set(perms.filter(codename__in=["view_logentry", "view_tag", "delete_session"]))
    alice = User.objects.db_manager(alias).create_user("alice", "alice@example.com", "pw")
    alice.user_permissions.set([custom, perms.get(codename="delete_author"), perms.get(codename="change_group")])
    alice.groups.set([editors])
    bob = User.objects.db_manager(alias).create_superuser("bob", "bob@example.com", "pw")
    bob.groups.set([editors, auditors])
    book = m.Book.objects.using(alias).order_by("pk").first()
    author = m.Author.objects.using(alias).order_by("pk").last()
    for user, model, obj, flag in (
        (alice, m.Book, book, ADDITION),
        (bob, m.Author, author, CHANGE),
        (bob, Group, editors, CHANGE),
        (alice, m.Tag, None, DELETION),
        (bob, User, alice, ADDITION),
    ):
        LogEntry.objects.using(alias).create(
            user=user,
            content_type=ct.get_for_model(model),
            object_id=str(obj.pk) if obj else "999",
            object_repr=str(obj) if obj else "deleted tag",
            action_flag=flag,
            change_message='[{"changed": {"fields": ["name"]}}]',
        )
    # A generic FK to a content type whose model no longer exists (stale row).
    m.TaggedItem.objects.using(alias).create(content_type=ghost_ct, object_id=1, label="stale content type")


def natural_permissions(alias):
    return sorted(
        Permission.objects.using(alias).values_list("content_type__app_label", "content_type__model", "codename", "name")
    )


def user_permissions(alias):
    return sorted(
        User.user_permissions.through.objects.using(alias).values_list(
            "user__username", "permission__content_type__app_label", "permission__content_type__model", "permission__codename"
        )
    )


def group_permissions(alias):
    return sorted(
        Group.permissions.through.objects.using(alias).values_list(
            "group__name", "permission__content_type__app_label", "permission__content_type__model", "permission__codename"
        )
    )


def user_groups(alias):
    return sorted(User.groups.through.objects.using(alias).values_list("user__username", "group__name"))


def log_entries(alias):
    return sorted(
        LogEntry.objects.using(alias).values_list(
            "pk", "user__username", "content_type__app_label", "content_type__model", "object_id",
            "object_repr", "action_flag", "change_message", "action_time",
        )
    )


def tagged_items(alias):
    return sorted(
        m.TaggedItem.objects.using(alias).values_list("pk", "content_type__app_label", "content_type__model", "object_id", "label")
    )


def dangling_content_type_refs(alias):
    known = set(ContentType.objects.using(alias).values_list("pk", flat=True))
    problems = []
    for model in (LogEntry, Permission, m.TaggedItem):
        for pk, ct_id in model._base_manager.using(alias).values_list("pk", "content_type_id"):
            if ct_id not in known:
                problems.append(f"{model._meta.label} pk={pk} content_type_id={ct_id}")
    return problems


def prepare(source, dest):
    ghosts = scramble_content_types(source)
    ContentType.objects.using(dest).create(app_label="dest_only", model="thing")
    h.seed_core(source)
    seed_auth(source, ghosts[0])
    src_ids, dst_ids = ct_ids(source), ct_ids(dest)
    differing = [key for key in src_ids if key in dst_ids and src_ids[key] != dst_ids[key]]
    # Precondition: the test is meaningless if the ids happen to coincide.
    assert len(differing) > 10, "content type ids on source and destination should differ before the copy"


def assert_auth_resolves(source, dest):
    ContentType.objects.clear_cache()
    problems = []
    for name, fetch in (
        ("permissions", natural_permissions),
        ("user permissions", user_permissions),
        ("group permissions", group_permissions),
        ("user groups", user_groups),
        ("admin log entries", log_entries),
        ("generic FK (TaggedItem)", tagged_items),
    ):
        src, dst = fetch(source), fetch(dest)
        if src != dst:
            missing = [row for row in src if row not in dst][:4]
            extra = [row for row in dst if row not in src][:4]
            problems.append(f"{name}: {len(src)} rows on {source}, {len(dst)} on {dest}; missing on dest {missing}; unexpected on dest {extra}")
    dangling = dangling_content_type_refs(dest)
    if dangling:
        problems.append(f"dangling content_type_id on {dest}: {dangling[:5]}")
    src_keys, dst_keys = set(ct_ids(source)), set(ct_ids(dest))
    if not src_keys <= dst_keys:
        problems.append(f"content types missing on {dest}: {sorted(src_keys - dst_keys)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "source,dest",
    [h.pair("sqlite_a", "pg_b"), h.pair("pg_a", "mysql_b"), h.pair("mysql_a", "sqlite_b")],
)
def test_auth_admin_and_generic_fks_resolve_after_copy_into_migrated_dest(source, dest, report_path):
    """No --truncate/--append: the destination holds only migrate-made rows, which must not
    make the copy refuse; every reference must resolve to the same natural key."""
    prepare(source, dest)
    result = h.dbcopy(
        "copy", "contenttypes", "auth", "admin", "copytest", source=source, dest=dest, report_json=report_path
    )
    h.assert_ok(result)
    assert_auth_resolves(source, dest)
    h.assert_tables_equal(source, dest, [mo for mo in h.copytest_models() if mo is not m.TaggedItem])
    assert sorted(User.objects.using(dest).values_list("username", "password", "is_superuser", "email")) == sorted(
        User.objects.using(source).values_list("username", "password", "is_superuser", "email")
    )


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "sqlite_b")])
def test_full_project_copy_with_truncate_resolves_everything(source, dest, report_path):
    """No labels (every model of every app) with --truncate."""
    prepare(source, dest)
    result = h.dbcopy("copy", source=source, dest=dest, truncate=True, report_json=report_path)
    h.assert_ok(result)
    assert_auth_resolves(source, dest)
    h.assert_tables_equal(source, dest, [mo for mo in h.copytest_models() if mo is not m.TaggedItem])
    for model in (User, Group):
        assert h.diff_tables(model, source, dest) == []
    from django.contrib.sites.models import Site

    assert sorted(Site.objects.using(dest).values_list("pk", "domain", "name")) == sorted(
        Site.objects.using(source).values_list("pk", "domain", "name")
    )


@pytest.mark.parametrize("source,dest", [h.pair("mysql_a", "pg_b"), h.pair("sqlite_a", "mysql_b")])
def test_generic_fk_remapped_when_copying_only_the_app(source, dest, report_path):
    """Copying just ``copytest``: TaggedItem.content_type must be translated to the
    destination's own content type ids."""
    scramble_content_types(source)
    h.seed_core(source)
    src_ids, dst_ids = ct_ids(source), ct_ids(dest)
    used = set(m.TaggedItem.objects.using(source).values_list("content_type__app_label", "content_type__model"))
    assert any(src_ids[k] != dst_ids[k] for k in used), "precondition: ids must differ"
    result = h.dbcopy("copy", "copytest", source=source, dest=dest, report_json=report_path)
    h.assert_ok(result)
    ContentType.objects.clear_cache()
    assert tagged_items(dest) == tagged_items(source)
    assert dangling_content_type_refs(dest) == []
    # The destination's own content types were not rewritten to the source's ids.
    assert ct_ids(dest).items() >= {k: v for k, v in dst_ids.items()}.items()
