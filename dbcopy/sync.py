"""Keep a destination in step with its source: incremental by a timestamp cursor where a model has
one, a full comparison where it hasn't, upserts by primary key, deletes on request, one sync at a
time per destination.

The watermark is read from the destination itself (its newest cursor value), not from a state
table: the destination keeps exactly the models' schema, a sync straight after `dbcopy copy` picks
up where the copy ended, and a table emptied by hand is simply filled again.
"""

import json
import re
import secrets
import string
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field as dataclass_field, replace
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, models, transaction
from django.db.models import Max, Min

from . import conf
from .diagnose import first_line
from .engine import WRITE_ERRORS, find_rejected_row, source_chunks
from .exceptions import ConfigError, CopyError
from .runner import Runner
from .plan import REMAP, Skipped, relation_target
from .rows import RowReader, RowWriter, is_json, pk_fields

_LOOKBACK = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
DEFAULT_LOOKBACK = "10m"
# Rows of one table held back (refused by a unique or foreign key in their chunk) before they are
# written, or the first of them named, at once: a table the destination refuses wholesale must not
# be held in memory row by row.
HELD_BACK_LIMIT = 10_000
# Placeholder text is drawn from lower-case letters and digits only, so two placeholders never
# collide under a case- or accent-insensitive collation either.
_PLACEHOLDER_ALPHABET = string.ascii_lowercase + string.digits
_PLACEHOLDER_LENGTH = 24
_TEXT_TYPES = ("CharField", "TextField", "SlugField", "EmailField", "URLField", "FilePathField")


def parse_lookback(text):
    """Return the timedelta for '30s', '10m', '2h' or '1d'."""
    match = _LOOKBACK.match(str(text))
    if not match:
        raise ConfigError(f"--lookback {text!r}: give a number and a unit, such as 30s, 10m, 2h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class SyncOptions:
    lookback: timedelta
    deletes: bool = False
    full_refresh: frozenset = frozenset()  # models compared in full whatever their cursor
    cursors: dict = dataclass_field(default_factory=dict)  # model -> cursor field name, or None


# --- deciding each model's cursor --------------------------------------------------------------


def cursor_fields(plan, since_field):
    """Return {model: cursor field name or None} for the copy steps of the plan."""
    overrides = dict(getattr(settings, "DBCOPY_SYNC_FIELDS", {}))
    labels = {step.label for step in plan.steps}
    unknown = sorted(set(overrides) - labels - {s.label for s in plan.skipped})
    if unknown:
        raise ConfigError(f"DBCOPY_SYNC_FIELDS names models that are not installed: {', '.join(unknown)}")
    cursors = {}
    for step in plan.steps:
        if step.kind == REMAP:
            continue
        name = overrides.get(step.label, since_field)
        cursors[step.model] = _cursor_field(step, name, explicit=step.label in overrides)
    if since_field and cursors and not any(_has_field(model, since_field) for model in cursors):
        # Most likely a typo: every model would silently be compared in full.
        raise ConfigError(f"--since-field {since_field!r}: none of the planned models has a field of that name")
    return cursors


def _cursor_field(step, name, explicit):
    if not name:
        return None
    try:
        found = step.model._meta.get_field(name)
    except FieldDoesNotExist:
        if explicit:
            raise ConfigError(f"DBCOPY_SYNC_FIELDS: {step.label} has no field {name!r}") from None
        return None
    if not isinstance(found, models.DateTimeField):
        raise ConfigError(
            f"{step.label}.{name} is a {type(found).__name__}; the sync cursor must be a DateTimeField "
            f"(choose another with --since-field or DBCOPY_SYNC_FIELDS)"
        )
    return name


def _has_field(model, name):
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def cursor_only(plan, cursors, since_field):
    """Return the plan restricted to models with a cursor (and their M2M tables); list the others."""
    keep, skipped = [], list(plan.skipped)
    for step in plan.steps:
        owner = step.model._meta.auto_created
        if step.kind == REMAP or cursors.get(step.model) or (owner and cursors.get(owner)):
            keep.append(step)
        else:
            skipped.append(Skipped(step.label, step.table, step.dest, f"no {since_field!r} field (--cursor-only)"))
    return replace(plan, steps=tuple(keep), skipped=tuple(skipped))


# --- running ------------------------------------------------------------------------------------


def run_sync(plan, options, chunk_size=None, on_progress=None, jobs=1, retries=3, debug=False):
    """Bring every planned destination table to the source's state; return one result per step."""
    runner = Runner(
        plan, SyncStrategy, chunk_size=chunk_size or conf.get("CHUNK_SIZE"), on_progress=on_progress,
        jobs=jobs, retries=retries, debug=debug, options=options,
    )
    return runner.run()


@dataclass
class SyncCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    gone: int = 0  # destination rows whose primary key the source no longer has
    watermark: object = None


class SyncStrategy:
    """Compare one table's source rows with the destination's and upsert the difference."""

    def __init__(self, runner, options):
        self.runner, self.options = runner, options
        self.windows = {}  # step -> the `since` its rows were read from (None: in full)

    @property
    def chunk_size(self):
        return self.runner.chunk_size

    def dialect(self, alias):
        return self.runner.dialect(alias)

    def post_steps(self, steps):
        """Yield the passes after every table was upserted: cycle FKs, then deletes, children first."""
        for step in steps:
            if step.deferred_fields:
                yield step, self.sync_deferred, "setting the deferred foreign keys of"
        for step in reversed(steps):
            if step.kind != REMAP and not step.model._meta.auto_created:
                yield step, self.find_gone_rows, "looking for rows deleted at the source in"

    # --- upserting ---------------------------------------------------------------------------------

    def run(self, step, result):
        """Upsert the step's window (or every row); a retry compares again and writes what still differs."""
        self.runner.reader(step)
        result.method = "sync"
        if result.counts is None:
            result.counts = SyncCounts()  # read by reconcile() for the sync report
        result.counts.unchanged = 0  # rows a failed attempt compared are compared again
        if step.model._meta.auto_created:
            # Remove links first: `.set()` re-creates a link under a new id, which would collide with
            # the old one on the (from, to) unique key if it were still there.
            self.find_gone_rows(step, result)
        reader = RowReader(step.model, step.source, step.fields)
        dialect = self.dialect(step.dest)
        writer = RowWriter(step, self.runner.remaps, dialect.connection)
        comparer = RowComparer(step, self.runner.remaps, reader)
        for rows in self.source_chunks(step, reader):
            self.upsert(step, reader, writer, comparer, rows, result)
            self.runner.progress("chunk", step, rows=len(rows), copied=result.copied)
        cursor = self.cursor(step)
        if cursor:
            result.counts.watermark = _watermark(step.model, step.dest, cursor)

    def cursor(self, step):
        if step.model in self.options.full_refresh:
            return None
        return self.options.cursors.get(step.model)

    def source_chunks(self, step, reader, record=True):
        """Yield the source rows to compare: the cursor window, or every row."""
        yield from source_chunks(step.source, self.window(step, reader, record))

    def window(self, step, reader, record):
        cursor = self.cursor(step)
        if not cursor:
            if record:
                self.windows[step] = None
            yield from reader.chunks(self.chunk_size)
            return
        if record:
            mark = _watermark(step.model, step.dest, cursor)
            self.windows[step] = None if mark is None else mark - self.options.lookback
        yield from reader.window_chunks(self.chunk_size, cursor, self.windows[step])
        if step.model._meta.get_field(cursor).null:
            # A row without a timestamp never enters a window: compare those rows every run.
            yield from reader.chunks(self.chunk_size, extra_filter=models.Q(**{f"{cursor}__isnull": True}))

    def upsert(self, step, reader, writer, comparer, rows, result):
        keys = [reader.key(row) for row in rows]
        existing = reader.rows_at(step.dest, keys)
        new, changed = [], []
        for row, key in zip(rows, keys):
            old = existing.get(key)
            if old is None:
                new.append(row)
            elif comparer.same(row, old):
                result.counts.unchanged += 1
            else:
                changed.append(row)
        dialect = self.dialect(step.dest)
        if changed:  # before inserts: a changed row may free a unique value a new row takes
            prepared = writer.prepare(changed, reader.pk_value)
            update_rows = [comparer.update_values(values) for values in prepared]
            try:
                with transaction.atomic(using=step.dest):
                    dialect.update_rows(step.table, comparer.update_fields, comparer.pk_fields, update_rows)
            except WRITE_ERRORS as exc:
                update = lambda values: dialect.update_rows(  # noqa: E731
                    step.table, comparer.update_fields, comparer.pk_fields, [comparer.update_values(v) for v in values]
                )
                if self.runner.is_transient(step, exc):
                    raise
                find_rejected_row(self.runner, step, reader, changed, prepared, exc, update)
            result.counts.updated += len(changed)
        if new:
            prepared = writer.prepare(new, reader.pk_value)
            try:
                with transaction.atomic(using=step.dest):
                    dialect.write_rows(step, prepared, "fast")
            except WRITE_ERRORS as exc:
                if self.runner.is_transient(step, exc):
                    raise
                write = lambda values: dialect.write_rows(step, values, "fast")  # noqa: E731

                def counted(row):  # the rows before the refused one stay, and are reported
                    result.copied += 1

                find_rejected_row(self.runner, step, reader, new, prepared, exc, write, counted)
            result.counts.inserted += len(new)
        result.copied = result.counts.inserted + result.counts.updated

    # --- cycles and deletes ----------------------------------------------------------------------

    def sync_deferred(self, step, result):
        """Set the cycle-breaking FKs of the rows this run read, now that every row they point at exists."""
        self.runner.reader(step)
        fields = list(pk_fields(step.model)) + list(step.deferred_fields)
        partial = replace(step, fields=tuple(fields), deferred_fields=())
        reader = RowReader(step.model, step.source, fields)
        writer = RowWriter(partial, self.runner.remaps, self.dialect(step.dest).connection)
        comparer = RowComparer(partial, self.runner.remaps, reader)
        for rows in self.source_chunks(step, reader, record=False):
            existing = reader.rows_at(step.dest, [reader.key(row) for row in rows])
            changed = [row for row in rows if not comparer.same(row, existing.get(reader.key(row)))]
            if changed:
                updates = [comparer.update_values(values) for values in writer.prepare(changed, reader.pk_value)]
                with transaction.atomic(using=step.dest):
                    self.dialect(step.dest).update_rows(step.table, comparer.update_fields, comparer.pk_fields, updates)

    def links_to_deleted_rows(self, step, keys):
        """Return the link keys (of those given) one of whose two rows no longer exists at the source."""
        if not keys:
            return set()
        ends = _link_ends(step.model)
        reader = RowReader(step.model, step.dest, list(pk_fields(step.model)) + ends)
        rows = reader.rows_at(step.dest, keys)
        alive = []
        for position, end in enumerate(ends, start=len(reader.pk_fields)):
            wanted = {row[position] for row in rows.values()}
            target = end.remote_field.model._base_manager.using(step.source)
            alive.append(set(target.filter(pk__in=wanted).values_list("pk", flat=True)))
        return {
            key for key, row in rows.items()
            if any(row[len(reader.pk_fields) + i] not in alive[i] for i in range(len(ends)))
        }

    def find_gone_rows(self, step, result):
        """Count, or with --deletes delete, destination rows whose primary key the source lost."""
        self.runner.reader(step)
        reader = RowReader(step.model, step.source, pk_fields(step.model))
        dialect = self.dialect(step.dest)
        connection = dialect.connection
        for keys in reader.key_chunks(step.dest, self.chunk_size):
            present = set(reader.rows_at(step.source, keys))
            gone = [key for key in keys if key not in present]
            if not self.options.deletes and step.model._meta.auto_created:
                # A link removed between two rows that both still exist is an M2M change of those
                # rows: always applied. Links of a deleted row wait for --deletes, like the row.
                kept = self.links_to_deleted_rows(step, gone)
                result.counts.gone += len(kept)
                gone = [key for key in gone if key not in kept]
            elif not self.options.deletes:
                result.counts.gone += len(gone)
                continue
            if not gone:
                continue
            prepared = [tuple(f.get_db_prep_save(v, connection) for f, v in zip(reader.pk_fields, key)) for key in gone]
            try:
                with transaction.atomic(using=step.dest):
                    dialect.delete_rows(step.table, reader.pk_fields, prepared)
            except WRITE_ERRORS as exc:
                if self.runner.is_transient(step, exc):
                    raise
                pk = gone[0][0] if len(gone[0]) == 1 else gone[0]
                raise CopyError(
                    step.label, step.dest, pk, reason=f"cannot delete rows gone from the source: {first_line(exc)}",
                    fix="rows of another table still refer to them; include that table in the sync",
                ) from exc
            result.counts.deleted += len(gone)


def _link_ends(model):
    """Return the two FK fields of an M2M link table."""
    return [f for f in model._meta.local_concrete_fields if f.is_relation]


class RowComparer:
    """Compare a source row with the destination's, as stored (ids translated, JSON parsed)."""

    def __init__(self, step, remaps, reader):
        deferred = set(step.deferred_fields)
        self.pk_fields = reader.pk_fields
        self.positions = [i for i, f in enumerate(step.fields) if f not in deferred]
        self.update_positions = [i for i in self.positions if step.fields[i] not in self.pk_fields]
        self.update_fields = [step.fields[i] for i in self.update_positions]
        self.pk_positions = reader.pk_positions
        self.dest_forms = [_stored_form(f) for f in step.fields]
        # A source id of a content type or permission is compared as the destination's id for it.
        self.source_forms = [
            (remaps.translator(step, f) if f.is_relation else None) or form
            for f, form in zip(step.fields, self.dest_forms)
        ]

    def same(self, source_row, dest_row):
        if dest_row is None:
            return False
        source, dest = self.source_forms, self.dest_forms
        return all(source[i](source_row[i]) == dest[i](dest_row[i]) for i in self.positions)

    def update_values(self, prepared):
        """Return the UPDATE parameters: the changed columns' values, then the primary key's."""
        return [prepared[i] for i in self.update_positions] + [prepared[i] for i in self.pk_positions]


def _stored_form(field):
    """Return a function giving the value in a form both vendors agree on."""
    if is_json(field):  # key order and spacing differ between vendors' JSON text
        return lambda value: None if value is None else ("json", json.loads(value))
    if isinstance(field, models.BinaryField):
        return lambda value: None if value is None else bytes(value)
    return _same


def _same(value):
    return value


def _watermark(model, alias, cursor):
    return model._base_manager.using(alias).aggregate(mark=Max(cursor))["mark"]

