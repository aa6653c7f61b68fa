"""Shared helpers: parametrization, running the command, seeding, comparing tables."""

import datetime as dt
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connections, transaction  # noqa: F401  (re-exported)
from django.db.models import JSONField, TextField, Value
from django.db.models.functions import Cast

from tests.conftest import alias_vendor
from tests.copytest import models as m
from tests.copytest.fields import Money
from tests.copytest.signals import COUNTS

REPO_DIR = Path(__file__).resolve().parent.parent

VENDOR_ALIASES = {"sqlite": ("sqlite_a", "sqlite_b"), "pg": ("pg_a", "pg_b"), "mysql": ("mysql_a", "mysql_b")}


# ----------------------------------------------------------------------------------------
# Parametrization
# ----------------------------------------------------------------------------------------


def db_mark(*aliases):
    return pytest.mark.django_db(transaction=True, databases=list(dict.fromkeys(aliases)))


def pair(source, dest, *extra_aliases, marks=()):
    """One (source, dest) parameter with a readable id and the django_db mark for both aliases."""
    return pytest.param(
        source, dest, id=f"{source}-{dest}", marks=[db_mark(source, dest, *extra_aliases), *marks]
    )


def url_pair(source, dest, *extra_aliases):
    """Like pair(), for tests whose command gets database URLs (run-time aliases)."""
    aliases = list(dict.fromkeys((source, dest, *extra_aliases)))
    return pytest.param(source, dest, id=f"{source}-{dest}", marks=pytest.mark.unguarded_db(*aliases))


def all_pairs():
    """3 x 3 vendor matrix: <vendor>_a -> <vendor>_b."""
    return [pair(f"{s}_a", f"{d}_b") for s in VENDOR_ALIASES for d in VENDOR_ALIASES]


# ----------------------------------------------------------------------------------------
# Running the command
# ----------------------------------------------------------------------------------------


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    error: str = ""  # text of the CommandError, if any
    report: dict | None = None

    @property
    def output(self):
        return "\n".join(x for x in (self.stdout, self.stderr, self.error) if x)

    def entry(self, label):
        assert self.report is not None, "no JSON report was written"
        found = [e for e in self.report["models"] if e.get("model") == label]
        assert found, f"{label} missing from report models: {[e.get('model') for e in self.report['models']]}"
        return found[0]

    def __str__(self):
        return f"returncode={self.returncode}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}\n--- error ---\n{self.error}"


def dbcopy(subcommand, *labels, report_json=None, **options):
    """call_command("dbcopy", ...) returning a Result instead of raising CommandError."""
    out, err = io.StringIO(), io.StringIO()
    options.setdefault("interactive", False)
    if report_json is not None:
        options["report_json"] = str(report_json)
        Path(report_json).unlink(missing_ok=True)
    try:
        call_command("dbcopy", subcommand, *labels, stdout=out, stderr=err, **options)
        code, error = 0, ""
    except CommandError as exc:
        code, error = getattr(exc, "returncode", 1), str(exc)
    report = None
    if report_json is not None and Path(report_json).exists():
        report = json.loads(Path(report_json).read_text())
    return Result(code, out.getvalue(), err.getvalue(), error, report)


def assert_ok(result):
    assert result.returncode == 0, f"dbcopy failed:\n{result}"
    assert "Traceback" not in result.output, str(result)


# ----------------------------------------------------------------------------------------
# Model inventory
# ----------------------------------------------------------------------------------------


def copytest_models(include_auto_created=True):
    """Concrete, managed copytest models, incl. auto-created M2M through tables."""
    return [
        model
        for model in apps.get_app_config("copytest").get_models(include_auto_created=include_auto_created)
        if model._meta.managed and not model._meta.proxy
    ]


def label(model):
    return model._meta.label


def data_fields(model):
    """Concrete columns of the model's own table (a child's parent columns are compared on the parent)."""
    return [f for f in model._meta.local_concrete_fields if getattr(f, "column", None)]


def _is_custom(field):
    while field.is_relation and (field.many_to_one or field.one_to_one):
        field = field.target_field
    return not type(field).__module__.startswith("django.")


def pk_attnames(model):
    pk = model._meta.pk
    if getattr(pk, "field_names", None):  # CompositePrimaryKey
        return [model._meta.get_field(n).attname for n in pk.field_names]
    return [pk.attname]


# ----------------------------------------------------------------------------------------
# Comparing tables
# ----------------------------------------------------------------------------------------


def _ct_natural_keys(alias):
    return {pk: (a, mo) for pk, a, mo in ContentType.objects.using(alias).values_list("pk", "app_label", "model")}


def normalize(value):
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _sort_key(value):
    if isinstance(value, tuple):
        return tuple(_sort_key(v) for v in value)
    if value is None:
        return (0, "")
    if isinstance(value, (int, float, Decimal)):
        return (1, value)
    return (2, str(value))


def table_rows(model, alias, ct_maps=None):
    """Every row of the model's own table on alias, as dicts keyed by attname, sorted by pk.

    FKs to ContentType are replaced by (app_label, model): ids legitimately differ.
    """
    fields = data_fields(model)
    attnames = [f.attname for f in fields]
    ct_fields = [f.attname for f in fields if f.is_relation and f.related_model is ContentType]
    if ct_fields:
        ct_map = (ct_maps or {}).get(alias) or _ct_natural_keys(alias)
    # A JSON column whose field is not a JSONField (Wagtail's StreamField) is compared as stored:
    # its Python layer may change the document on every read.
    stored_json = {f.attname for f in fields if f.get_internal_type() == "JSONField" and not isinstance(f, JSONField)}
    # So are the columns of other custom fields (and FKs to them): a copy through their Python layer
    # may store another value that reads back the same (a new ciphertext for the same text).
    stored_text = {f.attname for f in fields if _is_custom(f)} - stored_json
    columns = [
        Cast(name, output_field=TextField()) if name in stored_json | stored_text else name for name in attnames
    ]
    qs = model._base_manager.using(alias).values_list(*columns)
    rows = []
    for values in qs:
        row = {name: normalize(v) for name, v in zip(attnames, values)}
        for name in stored_json:
            row[name] = None if row[name] is None else json.loads(row[name])
        for name in ct_fields:
            if row[name] is not None:
                row[name] = ct_map.get(row[name], ("<dangling content type id>", row[name]))
        rows.append(row)
    pks = pk_attnames(model)
    rows.sort(key=lambda r: _sort_key(tuple(r[p] for p in pks)))
    return rows


def diff_tables(model, source, dest, limit=3):
    """Return a list of human-readable differences (empty if identical)."""
    src, dst = table_rows(model, source), table_rows(model, dest)
    problems = []
    if len(src) != len(dst):
        problems.append(f"{label(model)}: {len(src)} rows on {source}, {len(dst)} on {dest}")
    pks = pk_attnames(model)
    src_by_pk = {tuple(r[p] for p in pks): r for r in src}
    dst_by_pk = {tuple(r[p] for p in pks): r for r in dst}
    missing = [k for k in src_by_pk if k not in dst_by_pk]
    extra = [k for k in dst_by_pk if k not in src_by_pk]
    if missing:
        problems.append(f"{label(model)}: pks missing on {dest}: {missing[:limit]}{' ...' if len(missing) > limit else ''}")
    if extra:
        problems.append(f"{label(model)}: unexpected pks on {dest}: {extra[:limit]}{' ...' if len(extra) > limit else ''}")
    shown = 0
    for key, srow in src_by_pk.items():
        drow = dst_by_pk.get(key)
        if drow is None:
            continue
        for name, sval in srow.items():
            if drow[name] != sval:
                if shown < limit:
                    problems.append(f"{label(model)} pk={key}: {name} {sval!r} on {source} != {drow[name]!r} on {dest}")
                shown += 1
    if shown > limit:
        problems.append(f"{label(model)}: ... {shown - limit} more differing values")
    return problems


def assert_tables_equal(source, dest, models=None):
    problems = []
    for model in models or copytest_models():
        problems.extend(diff_tables(model, source, dest))
    assert not problems, "tables differ:\n  " + "\n  ".join(problems)


def raw_rows(alias, table, columns, order_by):
    conn = connections[alias]
    q = conn.ops.quote_name
    sql = f"SELECT {', '.join(q(c) for c in columns)} FROM {q(table)} ORDER BY {', '.join(q(c) for c in order_by)}"
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return [tuple(normalize(v) for v in row) for row in cursor.fetchall()]


def raw_table_rows(alias, model):
    """Every row of the model's table exactly as the driver returns it (no from_db_value,
    no converters), ordered by pk; FK-to-ContentType columns left out (ids differ)."""
    columns = [
        f.column for f in data_fields(model) if not (f.is_relation and f.related_model is ContentType)
    ]
    pk_columns = [f.column for f in data_fields(model) if f.attname in pk_attnames(model)]
    if not set(pk_columns) <= set(columns):
        # The key is a content type id, which legitimately differs: order by every other column.
        pk_columns = columns
    rows = raw_rows(alias, model._meta.db_table, columns, pk_columns)
    # Sorted in Python: the two databases may collate the pk differently.
    positions = [columns.index(c) for c in pk_columns]
    return sorted(rows, key=lambda row: _sort_key(tuple(row[i] for i in positions)))


def raw_json_rows(alias, model, column):
    """[(pk, is_sql_null, parsed_json)] straight from the table, bypassing from_db_value."""
    conn = connections[alias]
    q = conn.ops.quote_name
    table, pk = model._meta.db_table, model._meta.pk.column
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT {q(pk)}, CASE WHEN {q(column)} IS NULL THEN 1 ELSE 0 END, {q(column)} FROM {q(table)} ORDER BY {q(pk)}"
        )
        rows = []
        for pk_value, is_null, text in cursor.fetchall():
            if isinstance(text, (bytes, memoryview)):
                text = bytes(text).decode()
            parsed = None if text is None else (json.loads(text) if isinstance(text, str) else text)
            rows.append((pk_value, bool(is_null), parsed))
        return rows


def row_counts(alias, models=None):
    return {label(model): model._base_manager.using(alias).count() for model in models or copytest_models()}


def all_table_counts(alias):
    """Row counts of every Django table on alias (all installed apps)."""
    counts = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            counts[model._meta.label] = model._base_manager.using(alias).count()
    return counts


def all_table_counts_except(alias, models):
    """all_table_counts() without some models (e.g. a table that was hidden on purpose)."""
    skip = {model._meta.label for model in models}
    counts = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy and model._meta.label not in skip:
            counts[model._meta.label] = model._base_manager.using(alias).count()
    return counts


# ----------------------------------------------------------------------------------------
# Seeding
# ----------------------------------------------------------------------------------------

PARIS = dt.timezone(dt.timedelta(hours=1))
KOLKATA = dt.timezone(dt.timedelta(hours=5, minutes=30))
UTC = dt.timezone.utc
SAMPLE_JSON = {"a": [1, 2.5, {"b": None}], "unicodé": "ünïcødé ✓", "nested": {"t": True, "f": False}}


def alltypes_rows():
    """Edge values for every column type (emoji included: all test tables are utf8mb4)."""
    return [
        dict(
            uuid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
            flag=True,
            maybe=None,
            duration=dt.timedelta(days=400, seconds=5, microseconds=7),
            data=SAMPLE_JSON,
            amount=Decimal("1234567.8910"),
            blob=b"\x00\x01\xfe\xffbinary\x00",
            moment=dt.datetime(2021, 3, 28, 1, 30, 15, 123456, tzinfo=KOLKATA),
            day=dt.date(1999, 12, 31),
            clock=dt.time(23, 59, 59, 999999),
            big=9223372036854775807,
            pbig=9223372036854775807,
            small=-32768,
            ratio=0.1 + 0.2,
            text="multi\nline 'quoted' \"double\" \\ backslash; emoji 🎉 and ünïcødé",
            label="label ✓",
            ip="192.168.0.1",
        ),
        dict(
            uuid=uuid.UUID("00000000-0000-0000-0000-000000000001"),
            flag=False,
            maybe=True,
            duration=dt.timedelta(days=-1, microseconds=1),
            data=Value(None, m.AllTypes._meta.get_field("data")),  # JSON null, not SQL NULL
            amount=Decimal("-0.0001"),
            blob=b"",
            moment=dt.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            day=dt.date(2000, 2, 29),
            clock=dt.time(0, 0, 0, 1),
            big=-9223372036854775808,
            pbig=0,
            small=32767,
            ratio=-2.5e-300,
            text="",
            label="",
            ip="2001:db8::1",
        ),
        dict(
            uuid=None,
            flag=False,
            maybe=False,
            duration=None,
            data=None,  # SQL NULL
            amount=None,
            blob=None,
            moment=dt.datetime(2024, 10, 27, 2, 30, 0, 500000, tzinfo=PARIS),  # Paris DST fold hour
            day=None,
            clock=None,
            big=None,
            pbig=None,
            small=None,
            ratio=None,
            text="nulls",
            label="nulls",
            ip=None,
        ),
        dict(data=[1, "two", None], text="json list", amount=Decimal("0")),
        dict(data={}, text="near the decimal limits", amount=Decimal("9999999999.9999"), big=0, small=0),
        dict(data="null", text="json string 'null'", ratio=3.141592653589793),
        dict(data=42, text="json scalar", moment=dt.datetime(2038, 1, 19, 3, 14, 8, 654321, tzinfo=UTC)),
    ]


@dataclass
class Seed:
    alias: str
    counts: dict = field(default_factory=dict)
    pks: dict = field(default_factory=dict)


def seed_core(alias, scale=1):
    """Seed every copytest model on alias with a graph exercising every trap.

    Returns a Seed holding a few interesting primary keys.
    """
    s = Seed(alias)
    using = alias
    publishers = [m.Publisher.objects.using(using).create(name=f"Publisher {i}") for i in range(3)]
    authors = [
        m.Author.objects.using(using).create(name=f"Author {i} ✓", born=None if i % 3 == 0 else dt.date(1950 + i, 1 + i % 12, 1 + i))
        for i in range(10 * scale)
    ]
    currencies = [
        m.Currency.objects.using(using).create(code=code, name=name)
        for code, name in (("EUR", "Euro"), ("USD", "US dollar"), ("jpy", "yen (lower-case pk)"))
    ]
    tags = [m.Tag.objects.using(using).create(name=f"tag-{i}") for i in range(8)]
    books = []
    for i in range(14 * scale):
        book = m.Book.objects.using(using).create(
            title=f"Book {i}",
            isbn=f"978-{i:06d}",
            publisher=publishers[i % 3],
            author=authors[i % len(authors)],
            currency=currencies[i % 3] if i % 4 else None,
            price=Money(Decimal(f"{i}.{i % 100:02d}"), currencies[i % 3].code) if i % 5 else None,
        )
        book.tags.set(tags[j] for j in range(8) if (i + j) % 3 == 0)
        books.append(book)
    for i, book in enumerate(books[:8]):
        for stars in range(1 + i % 3):
            m.Review.objects.using(using).create(book=book, stars=stars + 1)

    people = [m.Person.objects.using(using).create(name=f"Person {i}") for i in range(7)]
    people[0].friends.add(people[1], people[2])
    people[3].friends.add(people[1])
    clubs = [m.Club.objects.using(using).create(name=f"Club {i}") for i in range(3)]
    for i, person in enumerate(people):
        for club in clubs[: 1 + i % 3]:
            m.Membership.objects.using(using).create(
                person=person, club=club, joined=dt.date(2020, 1 + i, 1 + i), role="chair" if i == 0 else "member"
            )

    m.Place.objects.using(using).create(name="Just a place", address="1 Main St")
    m.Restaurant.objects.using(using).create(name="Chez Paul", address="2 Rue", serves_pizza=False, rating=Decimal("4.5"))
    m.Pizzeria.objects.using(using).create(name="Da Michele", address="3 Via", serves_pizza=True, rating=None, oven="wood")
    m.Place.objects.using(using).create(name="Another place")
    m.Pizzeria.objects.using(using).create(name="Sorbillo", serves_pizza=True, rating=Decimal("4.9"), oven="electric")
    seed_stream_pages(using)
    seed_tickets(using)
    for restaurant in m.Restaurant.objects.using(using).order_by("pk"):  # a Pizzeria is a Restaurant too
        m.Booking.objects.using(using).create(restaurant=restaurant, guests=2 + restaurant.pk % 5)
    for i, model in enumerate((m.Book, m.Author, m.Tag)):  # primary keys that are content type ids
        content_type = ContentType.objects.db_manager(using).get_for_model(model)
        m.ContentTypeSetting.objects.using(using).create(content_type=content_type, enabled=i != 1)

    # Nullable self-FK tree where parents have *higher* pks than their children.
    cats = [m.Category.objects.using(using).create(name=f"Category {i}") for i in range(9)]
    root = cats[-1]
    for i, cat in enumerate(cats[:-1]):
        cat.parent = root if i < 3 else cats[i + 1] if i % 2 else cats[i - 1]
        cat.save(using=using)
    s.pks["category_root"] = root.pk

    # Two models pointing at each other, one nullable edge.
    for i in range(3):
        country = m.Country.objects.using(using).create(name=f"Country {i}")
        cities = [m.City.objects.using(using).create(name=f"City {i}.{j}", country=country) for j in range(2)]
        if i < 2:
            country.capital = cities[-1]
            country.save(using=using)

    seed_chicken_egg(using)

    # Soft-deleted rows hidden by the default manager.
    for i in range(10):
        m.Article.all_objects.using(using).create(title=f"Article {i}", is_active=i % 3 != 0)

    tokens = [m.Token.objects.using(using).create(pk=u, label=f"token {i}") for i, u in enumerate(TOKEN_UUIDS)]
    for i, token in enumerate(tokens):
        for j in range(i % 3):
            m.TokenUse.objects.using(using).create(token=token, used_at=dt.datetime(2023, 5, 1 + j, 12, 0, j, 250 * j, tzinfo=UTC))

    m.Event.objects.using(using).create(
        name="decimal+datetime",
        payload={"price": Decimal("19.990"), "at": dt.datetime(2024, 2, 29, 13, 45, 1, 123000, tzinfo=UTC), "n": [1, 2]},
    )
    m.Event.objects.using(using).create(name="sql null", payload=None)
    m.Event.objects.using(using).create(name="uuid+date", payload={"id": uuid.UUID(int=7), "d": dt.date(2001, 1, 1), "dur": dt.timedelta(hours=1)})

    seed_notes(using, 4)

    for row in alltypes_rows():
        m.AllTypes.objects.using(using).create(**row)

    for i in range(3):
        m.Reserved.objects.using(using).create(select=f"select {i}", order=-i, group=tags[i] if i else None)

    ct_author = ContentType.objects.db_manager(using).get_for_model(m.Author)
    ct_book = ContentType.objects.db_manager(using).get_for_model(m.Book)
    ct_user = ContentType.objects.db_manager(using).get_by_natural_key("auth", "user")
    for i, (ct, obj_pk) in enumerate(
        [(ct_author, authors[0].pk), (ct_book, books[1].pk), (ct_book, books[2].pk), (ct_user, 1), (ct_author, authors[-1].pk)]
    ):
        m.TaggedItem.objects.using(using).create(content_type=ct, object_id=obj_pk, label=f"tagged {i}")

    for i in range(2):
        m.Secret.objects.using(using).create(value=f"secret {i}")
    for i in range(3):
        m.FreeText.objects.using(using).create(title=f"ok {i}", body=f"body {i}")

    if m.HAS_GENERATED_FIELD:
        for w, h in ((1, 1), (2, 3), (10, 7), (0, 5)):
            m.Rectangle.objects.using(using).create(width=w, height=h)

    if m.HAS_COMPOSITE_PK:
        for i, person in enumerate(people):
            for term in ("2024-A", "2024-B", "2025-A")[: 1 + i % 3]:
                m.Enrollment.objects.using(using).create(person=person, term=term, grade="AB"[i % 2])

    for author in authors[::3]:
        m.AuthorProfile.objects.using(using).create(author=author, bio=f"bio of {author.name}")
    for i, code in enumerate(SKU_CODES):
        m.Sku.objects.using(using).create(code=code, qty=i)
    for value in ("One", "two", "THREE"):
        m.CamelCase.objects.using(using).create(value=value)
    m.LooseRef.objects.using(using).create(author_id=authors[0].pk, note="existing author")
    m.LooseRef.objects.using(using).create(author_id=987654321, note="author that never existed")
    m.LooseRef.objects.using(using).create(author=None, note="no author")

    seed_sync_models(using)
    s.counts = row_counts(alias)
    return s


STREAM_BODIES = [
    [{"type": "heading", "value": "Hello"}, {"type": "paragraph", "value": "<p>No id stored</p>"}],
    [{"type": "image", "value": 7, "id": "5f0c3d36-3c5e-4a55-9a57-3b9f8a2f2f0b"}, {"type": "quote", "value": "mixed"}],
    None,
]


def seed_stream_pages(using):
    """Pages whose body blocks are stored without ids, as Wagtail's StreamField keeps old content."""
    for i, body in enumerate(STREAM_BODIES):
        m.StreamPage.objects.using(using).create(title=f"page {i}", body=body)


def seed_tickets(using, count=6):
    """Tickets (a wrapping primary key, a sealed text) following each other, with sealed notes.

    The wrapping key refuses the WrappedId it reads: rows are made with plain ints, as the app does.
    """
    ids = [100 + 7 * i for i in range(count)]
    for i, pk in enumerate(ids):
        secret = None if i == 1 else f"secret {i} ✓" + " with a longer tail" * (i % 3)
        m.Ticket.objects.using(using).create(id=pk, title=f"Ticket {i}", secret=secret)
        for n in range(i % 3):
            m.TicketNote.objects.using(using).create(ticket_id=pk, text=f"note {n} on ticket {i}")
    for later, earlier in zip(ids[1:], ids):  # each follows the one before: a self-reference chain
        m.Ticket.objects.using(using).filter(id=later).update(follows_id=earlier)
    return ids


def seed_sync_models(using):
    """A few rows in the models test_sync.py exercises, so every copy test carries them too."""
    authors = [m.SyncAuthor.objects.using(using).create(name=f"Sync author {i}") for i in range(2)]
    tags = [m.SyncTag.objects.using(using).create(name=f"sync-tag-{i}") for i in range(3)]
    for i in range(4):
        book = m.SyncBook.objects.using(using).create(
            title=f"Sync book {i}", code=f"SB-{i}", author=authors[i % 2], published=dt.date(2020, 1, 1 + i)
        )
        book.tags.add(*tags[: i % 3 + 1])
        m.SyncChapter.objects.using(using).create(book=book, number=1, title=f"Chapter {i}.1")
        m.SyncBook.objects.using(using).filter(pk=book.pk).update(
            created_at=dt.datetime(2021, 3, 1, 12, i, tzinfo=dt.timezone.utc),
            updated_at=dt.datetime(2022, 3, 1, 12, i, 30, 123456, tzinfo=dt.timezone.utc),
        )
    m.SyncItem.objects.using(using).create(name="plain item")
    m.SyncGadget.objects.using(using).create(name="gadget", color="teal")


# Distinct under case- and accent-insensitive collations too; their order differs between
# binary, C, ICU / unicode_ci collations and Python.
SKU_CODES = [
    "apple", "Banana", "cherry", "Date", "éclair", "Fig", "grape", "Hazel", "_under", "10", "9",
    "kiwi", "Lemon", "mango", "Nut", "ölive", "Pear", "quince", "Rasp", "zeta", "-dash", "~tilde",
]

# UUIDs whose byte order, string order and MariaDB's native UUID order disagree.
TOKEN_UUIDS = [
    uuid.UUID(f"{a:08x}-{b:04x}-{c:04x}-{d:04x}-{e:012x}")
    for a, b, c, d, e in [
        (0xFFFFFFFF, 0x0000, 0x1000, 0x8000, 0x000000000001),
        (0x00000001, 0xFFFF, 0x1000, 0x8000, 0x000000000002),
        (0x00000002, 0x0001, 0x4FFF, 0x8000, 0xFFFFFFFFFFFF),
        (0x00000003, 0x0001, 0x4000, 0xBFFF, 0x000000000000),
        (0x80000000, 0x8000, 0x1ABC, 0x9000, 0x0000000000FF),
        (0x7FFFFFFF, 0x7FFF, 0x4DEF, 0xA000, 0xFF0000000000),
        (0x12345678, 0x1234, 0x1234, 0x8123, 0x123456789ABC),
        (0x12345678, 0x1234, 0x1234, 0x8123, 0x123456789ABB),
        (0x00000000, 0x0000, 0x0000, 0x0000, 0x000000000000),
        (0xFFFFFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFFFFFF),
        (0xA0000000, 0x0000, 0x1000, 0x8000, 0x000000000003),
        (0x0000000A, 0x0000, 0x1000, 0x8000, 0x000000000004),
    ]
]


def seed_chicken_egg(using):
    """A cycle with no nullable edge: rows can only be created with FK checks deferred/disabled."""
    conn = connections[using]
    with transaction.atomic(using=using), conn.constraint_checks_disabled():
        for c_pk, e_pk in ((501, 701), (502, 702), (503, 703)):
            m.Chicken.objects.using(using).create(pk=c_pk, name=f"Chicken {c_pk}", egg_id=e_pk)
        for c_pk, e_pk in ((501, 701), (502, 702), (503, 703)):
            # Egg 702 was laid by chicken 503, the others by their own chicken.
            mother = 503 if e_pk == 702 else c_pk
            m.Egg.objects.using(using).create(pk=e_pk, name=f"Egg {e_pk}", mother_id=mother)


NOTE_TIMES = [
    dt.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=UTC),
    dt.datetime(2010, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(1999, 12, 31, 23, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2015, 3, 29, 1, 30, 0, 0, tzinfo=UTC),
]


def seed_notes(using, n):
    """auto_now / auto_now_add rows pushed into the past with .update() (bypasses pre_save)."""
    for i in range(n):
        note = m.Note.objects.using(using).create(text=f"note {i}")
        when = NOTE_TIMES[i % len(NOTE_TIMES)]
        m.Note.objects.using(using).filter(pk=note.pk).update(
            created=when, modified=when + dt.timedelta(days=1, microseconds=3), day=when.date()
        )


def sql_for(alias, sql):
    conn = connections[alias]
    with conn.cursor() as cursor:
        cursor.execute(sql)


def qn(alias, name):
    return connections[alias].ops.quote_name(name)


def signal_counts():
    return dict(COUNTS)


def label_position(text, model):
    """Position of a model's label (or table name) in a text, -1 if absent."""
    hits = [
        mo.start()
        for needle in (model._meta.label, model._meta.db_table)
        for mo in re.finditer(r"(?<![\w.])" + re.escape(needle) + r"(?![\w])", text)
    ]
    return min(hits) if hits else -1


__all__ = [name for name in dir() if not name.startswith("_")] + ["alias_vendor"]
