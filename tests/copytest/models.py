"""Models for every trap a cross-database copy can fall into.

Tables are created by copytest's migrations; the models that depend on the Django version are
conditional there too.
"""

import uuid

import django
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F

from .fields import BlockStreamField, MoneyField, SealedTextField, WrappedAutoField

# --------------------------------------------------------------------------------------
# Plain FK dependency order, FK to a CharField pk, FK with to_field, M2M (auto + explicit)
# --------------------------------------------------------------------------------------


class Publisher(models.Model):
    name = models.CharField(max_length=100)


class Author(models.Model):
    name = models.CharField(max_length=100)
    born = models.DateField(null=True, blank=True)


class Currency(models.Model):
    code = models.CharField(max_length=3, primary_key=True)
    name = models.CharField(max_length=50)


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)


class Book(models.Model):
    title = models.CharField(max_length=200)
    isbn = models.CharField(max_length=20, unique=True)
    publisher = models.ForeignKey(Publisher, on_delete=models.PROTECT, related_name="books")
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    currency = models.ForeignKey(Currency, null=True, blank=True, on_delete=models.SET_NULL)
    price = MoneyField(null=True, blank=True)  # custom field type
    tags = models.ManyToManyField(Tag, blank=True, related_name="books")  # auto-created Book_tags


class BookProxy(Book):
    class Meta:
        proxy = True


class Review(models.Model):
    book = models.ForeignKey(Book, to_field="isbn", on_delete=models.CASCADE, related_name="reviews")
    stars = models.PositiveSmallIntegerField()


class Person(models.Model):
    name = models.CharField(max_length=100)
    friends = models.ManyToManyField("self", blank=True)  # symmetrical, auto-created Person_friends


class Club(models.Model):
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(Person, through="Membership", related_name="clubs")


class Membership(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE)
    club = models.ForeignKey(Club, on_delete=models.CASCADE)
    joined = models.DateField()
    role = models.CharField(max_length=20, default="member")

    class Meta:
        unique_together = [("person", "club")]


# --------------------------------------------------------------------------------------
# Multi-table inheritance (two levels), proxy / unmanaged / abstract
# --------------------------------------------------------------------------------------


class Place(models.Model):
    name = models.CharField(max_length=100)
    address = models.CharField(max_length=200, blank=True, default="")


class Restaurant(Place):
    serves_pizza = models.BooleanField(default=False)
    rating = models.DecimalField(max_digits=3, decimal_places=1, null=True)


class Pizzeria(Restaurant):
    oven = models.CharField(max_length=20)


class LegacyReport(models.Model):
    """Unmanaged: its table does not exist anywhere; a copy must skip it."""

    title = models.CharField(max_length=100)

    class Meta:
        managed = False
        db_table = "copytest_legacy_report_view"


class Stamped(models.Model):
    """Abstract: no table."""

    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Note(Stamped):
    text = models.CharField(max_length=100)
    day = models.DateField(auto_now_add=True)


# --------------------------------------------------------------------------------------
# Cycles
# --------------------------------------------------------------------------------------


class Category(models.Model):
    """Nullable self-FK; some rows point at a parent with a *higher* pk."""

    name = models.CharField(max_length=100)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")


class Country(models.Model):
    name = models.CharField(max_length=100)
    capital = models.ForeignKey("City", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")


class City(models.Model):
    name = models.CharField(max_length=100)
    country = models.ForeignKey(Country, on_delete=models.CASCADE, related_name="cities")


class Chicken(models.Model):
    """Chicken.egg and Egg.mother are both NOT NULL: a cycle with no nullable edge."""

    name = models.CharField(max_length=100)
    egg = models.ForeignKey("Egg", on_delete=models.CASCADE, related_name="+")


class Egg(models.Model):
    name = models.CharField(max_length=100)
    mother = models.ForeignKey(Chicken, on_delete=models.CASCADE, related_name="+")


# --------------------------------------------------------------------------------------
# Managers, primary keys, custom values
# --------------------------------------------------------------------------------------


class ActiveManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(is_active=True)


class Article(models.Model):
    title = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)

    objects = ActiveManager()  # FIRST manager -> _default_manager hides inactive rows
    all_objects = models.Manager()


class Token(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    label = models.CharField(max_length=50)


class TokenUse(models.Model):
    token = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="uses")
    used_at = models.DateTimeField()


class Event(models.Model):
    name = models.CharField(max_length=50)
    payload = models.JSONField(encoder=DjangoJSONEncoder, null=True)


class AllTypes(models.Model):
    uuid = models.UUIDField(null=True)
    flag = models.BooleanField(default=False)
    maybe = models.BooleanField(null=True)
    duration = models.DurationField(null=True)
    data = models.JSONField(null=True)  # JSON null and SQL NULL must stay distinct
    amount = models.DecimalField(max_digits=14, decimal_places=4, null=True)
    blob = models.BinaryField(null=True)
    moment = models.DateTimeField(null=True)
    day = models.DateField(null=True)
    clock = models.TimeField(null=True)
    big = models.BigIntegerField(null=True)
    pbig = models.PositiveBigIntegerField(null=True)
    small = models.SmallIntegerField(null=True)
    ratio = models.FloatField(null=True)
    text = models.TextField(blank=True, default="")
    label = models.CharField(max_length=100, blank=True, default="")
    ip = models.GenericIPAddressField(null=True)


class Reserved(models.Model):
    """SQL keywords as table and column names."""

    select = models.CharField(max_length=20, db_column="select")
    order = models.IntegerField(db_column="order")
    group = models.ForeignKey(Tag, null=True, on_delete=models.SET_NULL, db_column="group")

    class Meta:
        db_table = "copytest_where"


class TaggedItem(models.Model):
    """Generic FK: content_type ids are per-database and must be remapped."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    content_object = GenericForeignKey("content_type", "object_id")
    label = models.CharField(max_length=50)


class AuditLog(models.Model):
    """Written by the post_save receiver in signals.py."""

    message = models.CharField(max_length=200)
    author_pk = models.BigIntegerField(null=True)


class Secret(models.Model):
    """The router in routers.py forbids it everywhere."""

    value = models.CharField(max_length=50)


class FreeText(models.Model):
    """For rows a destination rejects: over-long title, NUL / 4-byte UTF-8 in body."""

    title = models.CharField(max_length=10)
    body = models.TextField(blank=True, default="")


# --------------------------------------------------------------------------------------
# Version-dependent models
# --------------------------------------------------------------------------------------

HAS_GENERATED_FIELD = django.VERSION >= (5, 0)
HAS_COMPOSITE_PK = django.VERSION >= (5, 2)

if HAS_GENERATED_FIELD:

    class Rectangle(models.Model):
        width = models.IntegerField()
        height = models.IntegerField()
        area = models.GeneratedField(
            expression=F("width") * F("height"),
            output_field=models.IntegerField(),
            db_persist=True,
        )


if HAS_COMPOSITE_PK:

    class Enrollment(models.Model):
        pk = models.CompositePrimaryKey("person_id", "term")
        person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="enrollments")
        term = models.CharField(max_length=10)
        grade = models.CharField(max_length=2)


# --------------------------------------------------------------------------------------
# More keys and names (migration 0002)
# --------------------------------------------------------------------------------------


class AuthorProfile(models.Model):
    """Primary key that is a OneToOneField (not an MTI parent link)."""

    author = models.OneToOneField(Author, on_delete=models.CASCADE, primary_key=True, related_name="profile")
    bio = models.TextField(blank=True, default="")


class Sku(models.Model):
    """Mixed-case / non-ASCII CharField pks: database collation order != Python order."""

    code = models.CharField(max_length=20, primary_key=True)
    qty = models.IntegerField(default=0)


class CamelCase(models.Model):
    """Mixed-case table and column names: must be quoted, never lower-cased."""

    value = models.CharField(max_length=20, db_column="MixedCaseColumn")

    class Meta:
        db_table = "copytest_CamelCase"


class LooseRef(models.Model):
    """FK without a database constraint, pointing at rows that do not exist: copied as is."""

    author = models.ForeignKey(Author, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    note = models.CharField(max_length=50)


# --------------------------------------------------------------------------------------
# Incremental sync (migration 0003): cursor models, lookup / child tables without a cursor
# --------------------------------------------------------------------------------------


class SyncAuthor(models.Model):
    """Lookup table without a cursor field: `dbcopy sync` compares it in full."""

    name = models.CharField(max_length=100)


class SyncTag(models.Model):
    """Lookup table without a cursor field, with a unique key besides the pk."""

    name = models.CharField(max_length=50, unique=True)


class SyncBook(models.Model):
    """Cursor model: created_at / updated_at stamped by Django (auto_now_add / auto_now);
    a unique key besides the pk, an FK to a lookup table, an auto-created M2M through table
    and a DateField (not a valid cursor)."""

    title = models.CharField(max_length=200)
    code = models.CharField(max_length=20, unique=True)
    author = models.ForeignKey(SyncAuthor, on_delete=models.CASCADE, related_name="books")
    tags = models.ManyToManyField(SyncTag, blank=True, related_name="books")  # auto-created SyncBook_tags
    published = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)


class SyncChapter(models.Model):
    """Child table of a cursor model, without a cursor of its own: compared in full."""

    book = models.ForeignKey(SyncBook, on_delete=models.CASCADE, related_name="chapters")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=100)


class SyncItem(models.Model):
    """MTI parent holding the cursor."""

    name = models.CharField(max_length=100)
    updated_at = models.DateTimeField(auto_now=True)


class SyncGadget(SyncItem):
    """MTI child: its cursor lives in the parent's table."""

    color = models.CharField(max_length=20)


class Booking(models.Model):
    """A foreign key to a multi-table-inheritance child: its column holds the parent link's value."""

    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="bookings")
    guests = models.PositiveSmallIntegerField()


class ContentTypeSetting(models.Model):
    """A primary key that is itself a remapped id (Wagtail's WorkflowContentType): a FK to ContentType."""

    content_type = models.OneToOneField(ContentType, on_delete=models.CASCADE, primary_key=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)


class SearchIndexEntry(models.Model):
    """Unmanaged, over an SQLite FTS5 table the tests create by hand (Wagtail's search index on
    SQLite): the model declares the table's implicit rowid as its primary key."""

    entry = models.IntegerField(primary_key=True, db_column="rowid")
    body = models.TextField()

    class Meta:
        managed = False
        db_table = "copytest_searchindexentry_fts"


class StreamPage(models.Model):
    """A JSON column whose field is not a JSONField subclass (Wagtail's StreamField)."""

    title = models.CharField(max_length=100)
    body = BlockStreamField(null=True)
    updated_at = models.DateTimeField(auto_now=True)


class Ticket(models.Model):
    """Custom fields whose Python layer cannot take its own values back: a primary key read as a
    wrapper its field refuses, and an encrypted-style text that gets a new ciphertext on every save."""

    id = WrappedAutoField(primary_key=True)
    title = models.CharField(max_length=100)
    secret = SealedTextField(null=True)
    # A self-reference: set after the rows exist, looked up by the wrapped key.
    follows = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)


class TicketNote(models.Model):
    """A FK column whose target's field wraps what it reads."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="notes")
    text = SealedTextField()
