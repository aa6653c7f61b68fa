"""Values as their columns store them: a custom field's Python layer never touches a copied value.

A third-party field may turn what it reads into an object its own get_prep_value() refuses (an
AutoField that wraps ids), or decrypt on read and encrypt again, with a new nonce or another key,
on write. dbcopy reads and writes such a column through a *stand-in*: the built-in field its
get_internal_type() names, which has the backend's converters and preparation and nothing else.
"""

from functools import lru_cache

from django.db import models
from django.db.models import ExpressionWrapper, F, Q
from django.db.models.fields.related import RelatedField
from django.db.models.functions import Cast

# A relation column holds its target's values but never generates them: a plain integer stand-in,
# not an AutoField (which MySQL's backend refuses 0 for, and which asks for a sequence).
_RELATION_TYPES = {"AutoField": "IntegerField", "BigAutoField": "BigIntegerField", "SmallAutoField": "SmallIntegerField"}
# Django's integer and text column types, by internal type (the streams spell them alike).
INTEGER_TYPES = frozenset({
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
    "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField",
})
TEXT_TYPES = frozenset({
    "CharField", "TextField", "SlugField", "EmailField", "URLField", "FilePathField", "FileField", "ImageField",
})
# What a column's type needs to prepare and cast its values (the rest are the field's business).
_TYPE_ATTRIBUTES = ("max_length", "max_digits", "decimal_places")


def is_json(field):
    """Return whether the column holds JSON: a JSONField, or a field stored as one without being one
    (Wagtail's StreamField), whose Python layer must not touch the document."""
    return isinstance(field, models.JSONField) or field.get_internal_type() == "JSONField"


def is_django_field(field):
    """Return whether the field's class is Django's own (models, contrib), not a project's or an app's."""
    return type(field).__module__.split(".", 1)[0] == "django"


@lru_cache(maxsize=None)
def stand_in(field):
    """Return the built-in field that reads and writes the column for a custom field, or None.

    A relation is judged by the field at the end of its target chain: a FK to a model whose primary
    key is custom reads that key's from_db_value() otherwise.
    """
    end = column_type_field(field)
    if is_django_field(end) or is_json(end):
        return None  # JSON travels as its text (see selected()), whatever the field's class
    internal_type = end.get_internal_type()
    if field is not end:
        internal_type = _RELATION_TYPES.get(internal_type, internal_type)
    field_class = getattr(models, internal_type, None)
    if not (isinstance(field_class, type) and issubclass(field_class, models.Field)) or issubclass(
        field_class, RelatedField
    ):
        # A type of its own (db_type() only): the driver's value, unconverted, both ways.
        field_class = models.Field
    built_in = field_class(null=field.null)
    for name in _TYPE_ATTRIBUTES:
        if hasattr(built_in, name):
            setattr(built_in, name, getattr(end, name, None))
    built_in.set_attributes_from_name(field.name)
    built_in.attname, built_in.column = field.attname, field.column
    built_in.model = field.model
    return built_in


def column_type_field(field):
    """Return the field whose type a column holds: a relation's target, followed to its end.

    A FK to a multi-table-inheritance child targets the child's parent link, itself a relation
    (a OneToOneField), whose column holds the parent's AutoField values.
    """
    while field.is_relation and (field.many_to_one or field.one_to_one):
        field = field.target_field
    return field


def column_field(field):
    """Return the field that prepares the column's values for a write: the stand-in, else the field."""
    return stand_in(field) or field


def selected(field):
    """Return what values_list() selects for the column: its value as stored.

    JSON is read as its stored text: decoding and re-encoding would turn JSON null into SQL NULL
    and let a custom encoder/decoder pair rewrite the document.
    """
    if is_json(field):
        return Cast(field.attname, output_field=models.TextField())
    built_in = stand_in(field)
    if built_in is not None:
        # ExpressionWrapper adds no SQL; only its output field's converters run on what is read.
        return ExpressionWrapper(F(field.attname), output_field=built_in)
    return field.attname


def where(field, lookup_name, value):
    """Return a Q filtering the column with a lookup whose value the column's stand-in prepares."""
    built_in = stand_in(field)
    if built_in is None:
        return Q(**{f"{field.attname}__{lookup_name}": value})
    lookup = built_in.get_lookup(lookup_name)
    return Q(lookup(ExpressionWrapper(F(field.attname), output_field=built_in), value))
