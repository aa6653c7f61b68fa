"""Read a table's rows in keyset chunks and turn them into values the destination stores unchanged."""

import math
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import DatabaseError, models
from django.db.models import Value
from django.db.models.functions import Cast

from .dialects import dialect_for
from .exceptions import CopyError, SourceRowError
from .storage import column_field, column_type_field, is_json, selected, where

# Chunks of keys a sync window reads per page of its (cursor, pk) order: one scan of the table per
# page where the cursor column has no index.
WINDOW_KEY_CHUNKS = 50

# What fetching raises when a stored value cannot become the field's Python value: Django's
# converters (decimal.InvalidOperation is an ArithmeticError; the date parsers raise ValueError)
# and, as a DatabaseError the dialect recognises, text the driver cannot decode.
READ_ERRORS = (DatabaseError, ArithmeticError, ValueError, TypeError)
# Keys per `pk IN (…)` lookup while pinning down an unreadable value.
_KEYS_PER_LOOKUP = 500


def pk_fields(model):
    """Return the primary-key columns (several for a CompositePrimaryKey)."""
    meta = model._meta
    return list(getattr(meta, "pk_fields", [meta.pk]))


def within_key_range(qs, key_range):
    """Return the queryset narrowed to the rows of a key range (low, high]: an integer primary key
    > low and <= high, None leaving that side open (plan.Step.key_range)."""
    if key_range is None:
        return qs
    low, high = key_range
    attname = qs.model._meta.pk.attname
    if low is not None:
        qs = qs.filter(**{f"{attname}__gt": low})
    if high is not None:
        qs = qs.filter(**{f"{attname}__lte": high})
    return qs


def key_value(key):
    """Return a key tuple as pk= takes it: the value of a one-column key, the tuple of a composite one."""
    return key[0] if len(key) == 1 else key


class RowReader:
    """Read a step's columns from the source, ordered and paged by primary key (never OFFSET).

    key_range: (low, high) to read only the rows of one key range of the table (see within_key_range).
    """

    def __init__(self, model, source, fields, key_range=None):
        self.model, self.source, self.fields = model, source, tuple(fields)
        self.key_range = key_range
        self.pk_fields = pk_fields(model)
        self.pk_positions = [self.fields.index(f) for f in self.pk_fields]
        self.dates = [
            (i, f) for i, f in enumerate(self.fields)
            if isinstance(column_field(f), (models.DateField, models.TimeField))
        ]

    def key_columns(self):
        """Return what values_list() selects for the primary key, as stored."""
        return [selected(f) for f in self.pk_fields]

    def queryset(self):
        # _base_manager: a default manager that filters rows (soft delete, tenants) must not hide them.
        qs = within_key_range(self.model._base_manager.using(self.source), self.key_range)
        return qs.order_by(*[f.attname for f in self.pk_fields])

    def after(self, qs, last_key):
        if last_key is None:
            return qs
        if len(self.pk_fields) > 1:
            return qs.filter(pk__gt=last_key)
        return qs.filter(where(self.pk_fields[0], "gt", last_key[0]))

    def chunks(self, size, extra_filter=None, start_after=None):
        """Yield lists of value tuples, `size` rows at most, in primary-key order (after start_after, a key)."""
        base = self.queryset()
        if extra_filter is not None:
            base = base.filter(extra_filter)
        base = base.values_list(*[selected(f) for f in self.fields])
        last_key = start_after
        while True:
            rows = self.fetch(self.source, self.after(base, last_key), size)
            if not rows:
                return
            yield rows
            last_key = self.key(rows[-1])

    def window_chunks(self, size, cursor, since=None):
        """Yield chunks of rows whose cursor is >= since, in (cursor, pk) order; each row carries its
        cursor value last.

        The window's keys are read first, WINDOW_KEY_CHUNKS chunks' worth at a time, paged on the
        compound key (cursor, pk), which keeps rows that share one timestamp across a page boundary;
        then the rows, a chunk at a time, by primary key. A cursor column without an index costs a
        scan of the table per page of keys, not one per chunk of rows.
        """
        qs = self.model._base_manager.using(self.source)
        if since is not None:
            qs = qs.filter(**{f"{cursor}__gte": since})
        else:
            qs = qs.filter(**{f"{cursor}__isnull": False})
        pk_names = [f.attname for f in self.pk_fields]
        marks = qs.order_by(cursor, *pk_names).values_list(cursor, *[selected(f) for f in self.pk_fields])
        page_size = size * WINDOW_KEY_CHUNKS
        last = None
        while True:
            page = marks
            if last is not None:
                stamp, key = last
                after_key = models.Q(pk__gt=key) if len(key) > 1 else where(self.pk_fields[0], "gt", key[0])
                page = marks.filter(models.Q(**{f"{cursor}__gt": stamp}) | (models.Q(**{cursor: stamp}) & after_key))
            found = list(page[:page_size])  # keys and stamps: the rows' values are checked as they are read
            for start in range(0, len(found), size):
                part = [(row[0], tuple(row[1:])) for row in found[start:start + size]]
                rows = self.rows_at(self.source, [key for _, key in part])
                # A row gone since its key was read (no snapshot) is left to the deletes.
                yield [rows[key] + (stamp,) for stamp, key in part if key in rows]
            if len(found) < page_size:
                return
            last = (found[-1][0], tuple(found[-1][1:]))

    def rows_at(self, alias, keys, translate=None):
        """Return {key: row} for the rows at `alias` with these primary keys, read like the source's.

        translate: a function spelling a key as `alias` holds it (KeyTranslator.to_dest / to_source),
        None for a key with no counterpart there; the rows found come back under the keys given.
        """
        if translate is not None:
            spelled = {}
            for key in keys:
                there = translate(key)
                if there is not None:
                    spelled[there] = key
            found = self.rows_at(alias, list(spelled))
            # A row the database matched though its key differs (a case-insensitive collation) is none of them.
            return {spelled[there]: row for there, row in found.items() if there in spelled}
        keys = list(keys)
        qs = self.with_keys(self.model._base_manager.using(alias), keys)
        rows = self.fetch(alias, qs.values_list(*[selected(f) for f in self.fields]), keys=keys)
        return {self.key(row): row for row in rows}

    def with_keys(self, qs, keys):
        """Return the queryset narrowed to rows with these primary keys (tuples)."""
        if len(self.pk_fields) > 1:
            return qs.filter(pk__in=list(keys))
        return qs.filter(where(self.pk_fields[0], "in", [key[0] for key in keys]))

    # --- values the source holds but cannot hand over --------------------------------------------

    def fetch(self, alias, qs, size=None, keys=None):
        """Return the rows of a values_list queryset (the first `size`), naming the row and field of a
        value that cannot be read.

        keys: the primary keys the queryset selects, if known (else read again from the queryset).
        """
        try:
            rows = list(qs if size is None else qs[:size])
        except READ_ERRORS as exc:
            if not self._is_unreadable_value(alias, exc):
                raise  # a connection fault, a lock: not the data's doing
            if keys is None:
                keys = self._keys_of(alias, qs, size, exc)
            self._raise_unreadable_row(alias, keys)
            raise  # no single row fails on its own: report the error as it came
        self._check_dates_read_as_null(alias, rows)
        return rows

    def _is_unreadable_value(self, alias, exc):
        if isinstance(exc, DatabaseError):
            return dialect_for(alias).is_undecodable_text(exc)
        return True

    def _keys_of(self, alias, qs, size, exc):
        """Return the primary keys of the rows a failed read selected, in its order."""
        keys = qs.values_list(*self.key_columns())
        try:
            return list(keys if size is None else keys[:size])
        except READ_ERRORS as key_exc:
            if not self._is_unreadable_value(alias, key_exc):
                raise
            names = ", ".join(f.name for f in self.pk_fields)
            raise SourceRowError(
                self.model._meta.label, alias, None, None,
                f"a primary key ({names}) holds a value that cannot be read: {_first_line(exc)}",
                self._cleanup_hint(alias),
            ) from exc

    def _raise_unreadable_row(self, alias, keys):
        """Read the rows one by one, then the failing row field by field; raise SourceRowError."""
        manager = self.model._base_manager.using(alias)
        expressions = [selected(f) for f in self.fields]
        for key in keys:
            row = self.with_keys(manager, [key])
            try:
                list(row.values_list(*expressions))
            except READ_ERRORS as exc:
                if not self._is_unreadable_value(alias, exc):
                    raise
                for field in self.fields:
                    try:
                        list(row.values_list(selected(field)))
                    except READ_ERRORS as field_exc:
                        if not self._is_unreadable_value(alias, field_exc):
                            raise
                        reason = _unreadable_reason(field, _stored_form(row, field), field_exc)
                        self._raise_for(alias, key, field, reason, field_exc)

    def _check_dates_read_as_null(self, alias, rows):
        """Raise SourceRowError for a date/time read as None that the database holds as a value.

        Where the driver turns a string it cannot parse into None (SQLite), the value would be
        copied as NULL with no error.
        """
        if not self.dates or not rows or not dialect_for(alias).may_read_invalid_dates_as_null:
            return
        manager = self.model._base_manager.using(alias)
        for position, field in self.dates:
            keys = [self.key(row) for row in rows if row[position] is None]
            for start in range(0, len(keys), _KEYS_PER_LOOKUP):
                batch = keys[start:start + _KEYS_PER_LOOKUP]
                stored = self.with_keys(manager, batch).filter(**{f"{field.attname}__isnull": False})
                found = set(stored.values_list(*self.key_columns()))
                for key in batch:
                    if key in found:
                        row = self.with_keys(manager, [key])
                        self._raise_for(alias, key, field, _unreadable_reason(field, _stored_form(row, field), None))

    def _raise_for(self, alias, key, field, reason, cause=None):
        raise SourceRowError(
            self.model._meta.label, alias, key_value(key), field.name, reason, self._cleanup_hint(alias)
        ) from cause

    def _cleanup_hint(self, alias):
        return "clean the row at the source" if alias == self.source else f"clean the row in '{alias}'"

    def key_chunks(self, alias, size):
        """Yield the primary keys at `alias` in keyset chunks (for finding rows deleted at the source)."""
        names = [f.attname for f in self.pk_fields]
        qs = self.model._base_manager.using(alias).order_by(*names).values_list(*self.key_columns())
        last = None
        while True:
            keys = list(self.after(qs, last)[:size])
            if not keys:
                return
            yield keys
            last = keys[-1]

    def key_is(self, key):
        """Return a Q matching the row with this primary key (a tuple)."""
        if len(self.pk_fields) > 1:
            return models.Q(pk=key)
        return where(self.pk_fields[0], "exact", key[0])

    def key(self, row):
        return tuple(row[i] for i in self.pk_positions)

    def pk_value(self, row):
        return key_value(self.key(row))


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
        dialect = dialect_for(connection.alias)
        self.preparers = [_keeping_floats(self._preparer(field, remaps), field, dialect) for field in step.fields]

    def _preparer(self, field, remaps):
        if field.attname in self.deferred:
            return _none  # written once the rows it points at exist
        if is_json(field):
            # Stored JSON text, as it was read; the compiler would encode a str as a JSON string.
            return _json_text_expression if self.for_compiler else _same
        translate = remaps.translator(self.step, field) if field.is_relation else None
        # The compiler prepares with the fields bulk_create_rows() gives it: stand-ins for custom ones.
        prepare = _same if self.for_compiler else db_preparer(column_field(field), self.connection)
        if translate is None:
            return prepare
        return lambda value: prepare(translate(value))

    def prepare(self, rows, pk_of):
        prepared = []
        for row in rows:
            try:
                prepared.append([prepare(value) for prepare, value in zip(self.preparers, row)])
            except RefusedValue as exc:
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
            except (ValueError, TypeError, ValidationError, RefusedValue):
                return field
        return None


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _stored_form(row, field):
    """Return the one row's value of the field as the database stores it: as text, or as bytes where
    the text is not valid in the driver's encoding (None if neither can be read)."""
    for output in (models.TextField(), models.BinaryField()):
        try:
            values = list(row.values_list(Cast(field.attname, output_field=output), flat=True))
        except READ_ERRORS:
            continue
        return values[0] if values else None
    return None


_KINDS = {"DateTimeField": "date and time", "DateField": "date", "TimeField": "time of day"}


def _unreadable_reason(field, stored, exc):
    """Say what the stored value is and why the field cannot hold it."""
    if isinstance(stored, (bytes, bytearray, memoryview)):
        return f"holds text that is not valid UTF-8 ({_shown(bytes(stored))})"
    if isinstance(field, models.DecimalField):
        if _is_finite_number(stored):
            return (f"holds {stored}, more digits than max_digits={field.max_digits} allows "
                    f"(with decimal_places={field.decimal_places})")
        return f"holds {_shown(stored)}, which is not a number a DecimalField can hold"
    kind = _KINDS.get(field.get_internal_type())
    if kind is not None:
        return f"holds {_shown(stored)}, which is not a valid {kind}"
    why = f": {_first_line(exc)}" if exc is not None else ""
    return f"holds {_shown(stored)}, which a {field.get_internal_type()} cannot read{why}"


def _is_finite_number(text):
    try:
        return Decimal(str(text)).is_finite()
    except (ArithmeticError, ValueError):
        return False


def _shown(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


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
    target = column_type_field(field)
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


class RefusedValue(Exception):
    """A value dbcopy will not write to the destination: it would arrive changed, or means nothing there."""

    def __init__(self, field, reason, fix):
        self.field, self.reason, self.fix = field, reason, fix


class RemapError(RefusedValue):
    """A content type / permission id with no row behind it at the source."""


def _keeping_floats(prepare, field, dialect):
    """Wrap a float field's preparer to refuse NaN / ±Infinity where the destination would not keep them."""
    if not isinstance(field, models.FloatField) or (dialect.stores_float_nan and dialect.stores_float_infinity):
        return prepare
    vendor = dialect.connection.display_name

    def prepare_float(value):
        if type(value) is float and not math.isfinite(value):
            nan = value != value
            if not (dialect.stores_float_nan if nan else dialect.stores_float_infinity):
                spelled = "NaN" if nan else ("Infinity" if value > 0 else "-Infinity")
                raise RefusedValue(
                    field,
                    f"{vendor} cannot store the float {spelled} (it would become NULL or be refused)",
                    "clean the row at the source or choose a destination that stores it (PostgreSQL does)",
                )
        return prepare(value)

    return prepare_float


class Remaps:
    """Source id → destination id for content types and permissions, per destination."""

    def __init__(self):
        self.maps = {}

    def set(self, dest, model, mapping):
        self.maps[(dest, model)] = mapping

    def mapping(self, step, field):
        """Return {source id: destination id} for a relation column that needs translating, or None."""
        return self.maps.get((step.dest, field.remote_field.model._meta.concrete_model))

    def keys(self, step, fields=None):
        """Return the KeyTranslator for the step's primary key (or these key columns) at its destination."""
        return KeyTranslator(step, self, pk_fields(step.model) if fields is None else fields)

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


class KeyTranslator:
    """Spell key values (primary or unique) as the source and as the step's destination hold them.

    A key column that is itself a content type or permission id (a OneToOneField to ContentType as
    the primary key: Wagtail's WorkflowContentType) holds, at the destination, the destination's id
    for the same natural key: looked up with the source's value it would find another row, or none.
    """

    def __init__(self, step, remaps, fields):
        self.to_dest_maps = [remaps.mapping(step, f) if f.is_relation else None for f in fields]
        self.to_source_maps = [
            None if mapping is None else {dest: source for source, dest in mapping.items()}
            for mapping in self.to_dest_maps
        ]
        self.identity = all(mapping is None for mapping in self.to_dest_maps)

    def to_dest(self, key):
        """Return the source's key as the destination holds it, or None if it has no counterpart there."""
        return key if self.identity else _translated(key, self.to_dest_maps)

    def to_source(self, key):
        """Return the destination's key as the source holds it, or None if the source has no counterpart."""
        return key if self.identity else _translated(key, self.to_source_maps)


def _translated(key, mappings):
    values = []
    for value, mapping in zip(key, mappings):
        if mapping is not None and value is not None:
            value = mapping.get(value)
            if value is None:
                return None
        values.append(value)
    return tuple(values)
