"""Read a table's rows in keyset chunks and turn them into values the destination stores unchanged."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Value
from django.db.models.functions import Cast

from .exceptions import CopyError


def pk_fields(model):
    """Return the primary-key columns (several for a CompositePrimaryKey)."""
    meta = model._meta
    return list(getattr(meta, "pk_fields", [meta.pk]))


def is_json(field):
    return isinstance(field, models.JSONField)


class RowReader:
    """Read a step's columns from the source, ordered and paged by primary key (never OFFSET)."""

    def __init__(self, model, source, fields):
        self.model, self.source, self.fields = model, source, tuple(fields)
        self.pk_fields = pk_fields(model)
        self.pk_positions = [self.fields.index(f) for f in self.pk_fields]

    def _expression(self, field):
        # JSON is read as its stored text: decoding and re-encoding would turn JSON null into SQL
        # NULL and let a custom encoder/decoder pair rewrite the document.
        if is_json(field):
            return Cast(field.attname, output_field=models.TextField())
        return field.attname

    def queryset(self):
        # _base_manager: a default manager that filters rows (soft delete, tenants) must not hide them.
        qs = self.model._base_manager.using(self.source)
        return qs.order_by(*[f.attname for f in self.pk_fields])

    def after(self, qs, last_key):
        if last_key is None:
            return qs
        if len(self.pk_fields) > 1:
            return qs.filter(pk__gt=last_key)
        return qs.filter(pk__gt=last_key[0])

    def chunks(self, size, extra_filter=None):
        """Yield lists of value tuples, `size` rows at most, in primary-key order."""
        base = self.queryset()
        if extra_filter is not None:
            base = base.filter(extra_filter)
        base = base.values_list(*[self._expression(f) for f in self.fields])
        last_key = None
        while True:
            rows = list(self.after(base, last_key)[:size])
            if not rows:
                return
            yield rows
            last_key = self.key(rows[-1])

    def window_chunks(self, size, cursor, since=None):
        """Yield chunks of rows whose cursor is >= since, paged on the compound key (cursor, pk).

        Each row carries its cursor value last. Paging on (cursor, pk) rather than cursor alone
        keeps rows that share one timestamp across a chunk boundary.
        """
        qs = self.model._base_manager.using(self.source)
        if since is not None:
            qs = qs.filter(**{f"{cursor}__gte": since})
        else:
            qs = qs.filter(**{f"{cursor}__isnull": False})
        pk_names = [f.attname for f in self.pk_fields]
        qs = qs.order_by(cursor, *pk_names).values_list(*[self._expression(f) for f in self.fields], cursor)
        last = None
        while True:
            page = qs
            if last is not None:
                stamp, key = last
                key_filter = {"pk__gt": key if len(key) > 1 else key[0]}
                page = qs.filter(models.Q(**{f"{cursor}__gt": stamp}) | models.Q(**{cursor: stamp}, **key_filter))
            rows = list(page[:size])
            if not rows:
                return
            yield [row[:-1] for row in rows]
            last = (rows[-1][-1], self.key(rows[-1]))

    def rows_at(self, alias, keys):
        """Return {key: row} for the rows at `alias` with these primary keys, read like the source's."""
        qs = self.model._base_manager.using(alias)
        if len(self.pk_fields) > 1:
            qs = qs.filter(pk__in=list(keys))
        else:
            qs = qs.filter(pk__in=[key[0] for key in keys])
        return {self.key(row): row for row in qs.values_list(*[self._expression(f) for f in self.fields])}

    def key_chunks(self, alias, size):
        """Yield the primary keys at `alias` in keyset chunks (for finding rows deleted at the source)."""
        names = [f.attname for f in self.pk_fields]
        qs = self.model._base_manager.using(alias).order_by(*names).values_list(*names)
        last = None
        while True:
            keys = list(self.after(qs, last)[:size])
            if not keys:
                return
            yield keys
            last = keys[-1]

    def key(self, row):
        return tuple(row[i] for i in self.pk_positions)

    def pk_value(self, row):
        key = self.key(row)
        return key[0] if len(key) == 1 else key


class RowWriter:
    """Turn source values into what the destination's writer takes.

    for_compiler=False: values prepared with each field's get_db_prep_save() for the destination
    (the fast writers). for_compiler=True: Python values for Django's insert compiler, which
    prepares them itself (the bulk_create reference writer).
    """

    def __init__(self, step, remaps, connection, for_compiler=False):
        self.step = step
        self.connection = connection
        self.for_compiler = for_compiler
        self.deferred = {f.attname for f in step.deferred_fields}
        self.preparers = [self._preparer(field, remaps) for field in step.fields]

    def _preparer(self, field, remaps):
        if field.attname in self.deferred:
            return _none  # written once the rows it points at exist
        if is_json(field):
            # Stored JSON text, as it was read; the compiler would encode a str as a JSON string.
            return _json_text_expression if self.for_compiler else _same
        translate = remaps.translator(self.step, field) if field.is_relation else None
        prepare = _same if self.for_compiler else db_preparer(field, self.connection)
        if translate is None:
            return prepare
        return lambda value: prepare(translate(value))

    def prepare(self, rows, pk_of):
        prepared = []
        for row in rows:
            try:
                prepared.append([prepare(value) for prepare, value in zip(self.preparers, row)])
            except RemapError as exc:
                raise CopyError(
                    self.step.label, self.step.dest, pk_of(row), exc.field.name, exc.reason, exc.fix
                ) from None
            except (ValueError, TypeError, ValidationError) as exc:
                field = self._refusing_field(row)
                raise CopyError(
                    self.step.label, self.step.dest, pk_of(row), field and field.name,
                    f"the destination backend refuses the value: {exc}", "clean the row at the source",
                ) from exc
        return prepared

    def _refusing_field(self, row):
        """Return the field whose value cannot be prepared for the destination."""
        for field, prepare, value in zip(self.step.fields, self.preparers, row):
            try:
                prepare(value)
            except (ValueError, TypeError, ValidationError, RemapError):
                return field
        return None


def _same(value):
    return value


def _none(value):
    return None


def _json_text_expression(value):
    return None if value is None else Value(value, output_field=models.TextField())


# Built-in fields whose get_db_prep_save() returns a value of this Python type unchanged on every
# backend: calling it is pure overhead on the hot path. Exact types only, never subclasses.
_PASS_THROUGH = {
    models.CharField: str, models.TextField: str, models.SlugField: str, models.EmailField: str,
    models.URLField: str,
    models.IntegerField: int, models.BigIntegerField: int, models.SmallIntegerField: int,
    models.PositiveIntegerField: int, models.PositiveSmallIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.AutoField: int, models.BigAutoField: int, models.SmallAutoField: int,
    models.BooleanField: bool,
}


def db_preparer(field, connection):
    """Return a function preparing values of the field for the connection, as get_db_prep_save() does."""
    prepare = field.get_db_prep_save
    target = field.target_field if field.is_relation and (field.many_to_one or field.one_to_one) else field
    passes = _PASS_THROUGH.get(type(target))
    if passes is not None:
        return lambda value: value if value is None or type(value) is passes else prepare(value, connection)
    if type(target) is models.DateTimeField:
        # For an aware datetime, get_prep_value() is the identity: go straight to the backend's adapter.
        adapt = connection.ops.adapt_datetimefield_value

        def prepare_datetime(value):
            if type(value) is datetime and value.tzinfo is not None:
                return adapt(value)
            return prepare(value, connection)

        return prepare_datetime
    return lambda value: prepare(value, connection)


class RemapError(Exception):
    def __init__(self, field, reason, fix):
        self.field, self.reason, self.fix = field, reason, fix


class Remaps:
    """Source id → destination id for content types and permissions, per destination."""

    def __init__(self):
        self.maps = {}

    def set(self, dest, model, mapping):
        self.maps[(dest, model)] = mapping

    def mapping(self, step, field):
        """Return {source id: destination id} for a relation column that needs translating, or None."""
        return self.maps.get((step.dest, field.remote_field.model._meta.concrete_model))

    def translator(self, step, field):
        target = field.remote_field.model._meta.concrete_model
        mapping = self.maps.get((step.dest, target))
        if mapping is None:
            return None

        def translate(value):
            if value is None:
                return None
            try:
                return mapping[value]
            except KeyError:
                raise RemapError(
                    field,
                    f"{field.attname}={value!r} refers to a {target._meta.label} row that does not exist "
                    "at the source",
                    "repair or delete the dangling reference at the source",
                ) from None

        return translate
