"""A Wagtail site with its tutorial's blog, copied SQLite → PostgreSQL → MariaDB → SQLite.

Each destination is migrated first, as a new service's database is (Wagtail seeds 15 tables), and
the copy replaces those rows with `--truncate --no-input`, the path the README documents. After
every hop: `compare` says equal, every page renders byte-equal to the source's, and a `sync` right
after the copy finds nothing to do (StreamField bodies stay as stored; the workflow's content type
key is translated). Subscribers keyed by django-hashid-field's HashidAutoField keep their ids.
"""

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from wagtail.models import Collection, GroupPagePermission, Page, Workflow, WorkflowContentType
from wagtail.rich_text import RichText

from tests.apps.blog.models import BlogIndexPage, BlogPage, Delivery, Subscriber
from tests.apps.routing import reading_from

HOPS = [("default", "pg"), ("pg", "mysql"), ("mysql", "back")]
# Old content: blocks stored without an "id", which Wagtail gives a new random one on every read.
BODY_WITHOUT_IDS = [
    {"type": "heading", "value": "Stored before blocks had ids"},
    {"type": "paragraph", "value": "<p>Rich <b>text</b> with ünïcode ✓</p>"},
]


def dbcopy(*args, report):
    """Run the command; return (exit status, JSON report, or the error's message where it made none)."""
    report.unlink(missing_ok=True)
    try:
        call_command("dbcopy", *args, "--report-json", str(report), "--no-input", verbosity=0)
        code, error = 0, None
    except CommandError as exc:
        code, error = getattr(exc, "returncode", 1), str(exc)
    return code, json.loads(report.read_text()) if report.exists() else error


def seed_blog():
    """Pages with revisions, tags, a StreamField and rich text; permissions, a workflow, subscribers."""
    home = Page.objects.get(depth=2)  # "Welcome to your new Wagtail site!", made by wagtailcore's migration
    index = home.add_child(instance=BlogIndexPage(title="Blog", slug="blog", intro="<p>All <i>our</i> news</p>"))
    index.save_revision().publish()
    subscribers = [Subscriber.objects.create(email=f"reader{i}@example.com") for i in range(3)]
    posts = []
    for i in range(6):
        post = BlogPage(
            title=f"Post {i} ✓", slug=f"post-{i}", date=dt.date(2026, 1, 1 + i), intro=f"Intro {i} «quoted»",
            body=[("heading", f"Heading {i}"), ("paragraph", RichText(f"<p>Body <b>{i}</b></p>")),
                  ("quote", "Quoted\twith a tab")],
        )
        index.add_child(instance=post)
        post.tags.add("django", f"tag-{i % 2}")
        post.save_revision().publish()
        for subscriber in subscribers[: i % 3 + 1]:
            Delivery.objects.create(subscriber=subscriber, page=post,
                                    sent_at=dt.datetime(2026, 2, 1, 8, i, 30, 123456, tzinfo=dt.timezone.utc))
        posts.append(post)
    # One body as old content stores it: no block ids (Wagtail would invent them on every read).
    connection = connections["default"]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {q(BlogPage._meta.db_table)} SET {q('body')} = %s WHERE {q('page_ptr_id')} = %s",
                       [json.dumps(BODY_WITHOUT_IDS), posts[0].pk])
    editors = Group.objects.get(name="Editors")
    GroupPagePermission.objects.create(group=editors, page=index,
                                       permission=Permission.objects.get(codename="publish_page"))
    WorkflowContentType.objects.create(workflow=Workflow.objects.first(),
                                       content_type=ContentType.objects.get_for_model(BlogPage))
    Collection.get_first_root_node().add_child(name="Blog images")


def render_pages(alias):
    """{url: response bytes} for every live page, served by Wagtail from `alias`."""
    client = Client()
    with reading_from(alias):
        pages = {page.url: page for page in Page.objects.live().filter(depth__gt=2).specific()}
        rendered = {}
        for url in sorted(pages):
            response = client.get(url)
            assert response.status_code == 200, (alias, url, response.status_code)
            rendered[url] = response.content
    return rendered


def stored_bodies(alias):
    """{page id: parsed body} straight from the table (no StreamField on the way)."""
    connection = connections[alias]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {q('page_ptr_id')}, {q('body')} FROM {q(BlogPage._meta.db_table)}")
        return {pk: json.loads(body) for pk, body in cursor.fetchall()}


def stored_subscribers(alias):
    connection = connections[alias]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {q('id')}, {q('email')} FROM {q(Subscriber._meta.db_table)} ORDER BY {q('id')}")
        return [tuple(row) for row in cursor.fetchall()]


def test_a_wagtail_site_round_trips_sqlite_postgresql_mariadb_sqlite(migrated, tmp_path):
    with reading_from("default"):
        seed_blog()
    source_pages = render_pages("default")
    assert len(source_pages) == 7 and all(b"<h1>" in body for body in source_pages.values())

    for source, dest in HOPS:
        code, report = dbcopy("copy", "--source", source, "--dest", dest, "--truncate", report=tmp_path / "copy.json")
        assert code == 0, (source, dest, report)

        code, compared = dbcopy("compare", "--source", source, "--dest", dest, report=tmp_path / "compare.json")
        assert code == 0, (source, dest, [m for m in compared["models"] if m["status"] != "ok"])

        assert render_pages(dest) == source_pages, f"pages served from '{dest}' differ from the source's"
        assert stored_bodies(dest) == stored_bodies(source)
        assert stored_subscribers(dest) == stored_subscribers(source)

        code, synced = dbcopy("sync", "--source", source, "--dest", dest, report=tmp_path / "sync.json")
        assert code == 0, (source, dest, synced)
        changed = [m for m in synced["models"] if m.get("inserted") or m.get("updated") or m.get("deleted")]
        assert not changed, f"a sync right after the copy {source} → {dest} changed rows: {changed}"

    with reading_from("back"):
        assert Subscriber.objects.count() == 3
        first = Subscriber.objects.order_by("id").first()
        assert Delivery.objects.filter(subscriber=first).count() == 6  # the wrapped key still joins


@pytest.fixture(autouse=True)
def _closed_connections():
    yield
    for alias in connections:
        connections[alias].close()
