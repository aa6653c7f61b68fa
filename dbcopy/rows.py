"""Read a table's rows in keyset chunks and turn them into values the destination stores unchanged."""

from django.core.exceptions import ValidationError
from django.db import connections, models
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

    def key(self, row):
        return tuple(row[i] for i in self.pk_positions)

    def pk_value(self, row):
        key = self.key(row)
        return key[0] if len(key) == 1 else key


class RowWriter:
    """Prepare source values for the destination through each field's own get_db_prep_save()."""

    def __init__(self, step, remaps):
        self.step = step
        self.connection = connections[step.dest]
        self.deferred = {f.attname for f in step.deferred_fields}
        self.preparers = [self._preparer(field, remaps) for field in step.fields]

    def _preparer(self, field, remaps):
        if field.attname in self.deferred:
            return lambda value: None  # written once the rows it points at exist
        if is_json(field):
            return lambda value: value  # stored JSON text, as it was read
        prep = field.get_db_prep_save
        connection = self.connection
        translate = remaps.translator(self.step, field) if field.is_relation else None
        if translate is None:
            return lambda value: prep(value, connection)
        return lambda value: prep(translate(value), connection)

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


class RemapError(Exception):
    def __init__(self, field, reason, fix):
        self.field, self.reason, self.fix = field, reason, fix


class Remaps:
    """Source id → destination id for content types and permissions, per destination."""

    def __init__(self):
        self.maps = {}

    def set(self, dest, model, mapping):
        self.maps[(dest, model)] = mapping

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
