"""Keep a destination in step with its source: incremental by a timestamp cursor where a model has
one, a full comparison where it hasn't, upserts by primary key, deletes on request, one sync at a
time per destination.

The watermark is read from the destination itself (its newest cursor value), not from a state
table: the destination keeps exactly the models' schema, a sync straight after `dbcopy copy` picks
up where the copy ended, and a table emptied by hand is simply filled again.

One run converges: rows refused for a unique or foreign key are held back and written once the
table's other rows are in, their unique values first moved out of each other's way (two rows that
swap codes); with --deletes, after the deletes (a new row taking a deleted row's code). Deletes
unlink the cycle-breaking FKs of the doomed rows first, and delete a NOT NULL cycle with its checks
deferred, so that no vendor's row-by-row FK check refuses them.
"""

import json
import re
import secrets
import string
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, models, transaction
from django.db.models import Max, Min

from . import conf
from .diagnose import first_line
from .digest import TableDigest
from .dialects.base import error_chain
from .engine import WRITE_ERRORS, batches, find_rejected_row, source_chunks
from .exceptions import ConfigError, CopyError
from .plan import REMAP, Skipped, relation_target
from .rows import RowReader, RowWriter, key_value, pk_fields
from .runner import Runner
from .storage import column_field, is_json, selected, where

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
    unknown = sorted(label for label in overrides if not _installed(label))
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


def _installed(label):
    """Return whether 'app_label.ModelName' names an installed model (selected by this run or not)."""
    try:
        apps.get_model(label)
    except (LookupError, ValueError):
        return False
    return True


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


@dataclass
class HeldBack:
    """Rows of one table the destination refused in their chunk for a unique or foreign key: a
    value another row still held, or a row they point at that was not there yet. Written together
    once the table's other rows are in (with --deletes, once the gone rows are deleted)."""

    changed: list = dataclass_field(default_factory=list)  # (source row, prepared values)
    new: list = dataclass_field(default_factory=list)

    def __len__(self):
        return len(self.changed) + len(self.new)

    def keys(self, reader):
        return [reader.key(row) for row, _ in self.changed + self.new]


class SyncStrategy:
    """Compare one table's source rows with the destination's and upsert the difference."""

    def __init__(self, runner, options):
        self.runner, self.options = runner, options
        self.windows = {}  # step -> the `since` its rows were read from (None: in full)
        self.newest = {}  # step with a cursor -> the newest cursor value at the destination or in its window
        self.deltas = {}  # step without a cursor -> (its TableDigest, the Delta of its rows)
        self.key_digests = {}  # step with a cursor -> the TableDigest of its keys (--deletes / gone rows)
        self.held_back = {}  # step -> HeldBack rows that wait for the deletes (--deletes only)
        self.cycle_deletes = {}  # constraint group -> {step: rows deleted}, or why the deletes failed

    @property
    def chunk_size(self):
        return self.runner.chunk_size

    def dialect(self, alias):
        return self.runner.dialect(alias)

    def keys(self, step, fields=None):
        """Return the KeyTranslator of the step's primary key (or these columns) at its destination."""
        return self.runner.remaps.keys(step, fields)

    def post_steps(self, steps):
        """Yield the passes after every table was upserted: cycle FKs, then deletes, children first,
        then the rows that waited for the deletes (a deleted row held their unique value), parents first."""
        for step in steps:
            if step.deferred_fields:
                yield step, self.sync_deferred, "setting the deferred foreign keys of"
        for step in reversed(steps):
            if step.kind != REMAP and not step.model._meta.auto_created:
                yield step, self.find_gone_rows, "looking for rows deleted at the source in"
        for step in steps:
            if step in self.held_back:  # read once the passes above have run: this is a generator
                yield step, self.write_after_deletes, "writing the rows that waited for the deletes in"

    # --- upserting ---------------------------------------------------------------------------------

    def run(self, step, result):
        """Upsert the step's window (or every row); a retry compares again and writes what still differs."""
        self.runner.reader(step)
        result.method = "sync"
        if result.counts is None:
            result.counts = SyncCounts()  # read by reconcile() for the sync report
        result.counts.unchanged = 0  # rows a failed attempt compared are compared again
        self.held_back.pop(step, None)  # a retry finds the rows to hold back again
        if step.model._meta.auto_created:
            # Remove links first: `.set()` re-creates a link under a new id, which would collide with
            # the old one on the (from, to) unique key if it were still there.
            self.find_gone_rows(step, result)
        reader = RowReader(step.model, step.source, step.fields)
        dialect = self.dialect(step.dest)
        writer = RowWriter(step, self.runner.remaps, dialect.connection)
        comparer = RowComparer(step, self.runner.remaps, reader)
        held = HeldBack()
        writes_before = (result.counts.inserted, result.counts.deleted)  # the digests count after these
        for rows in self.source_chunks(step, reader):
            self.upsert(step, reader, writer, comparer, rows, result, held)
            if len(held) > HELD_BACK_LIMIT:
                self.write_held_back(step, reader, comparer, held, result)
            self.runner.progress("chunk", step, rows=len(rows), copied=result.copied)
        digest = self.deltas.get(step, (None, None))[0]
        if digest is not None:
            result.counts.unchanged += digest.equal_rows  # proven equal by their ranges' digests
            result.source_rows = digest.source_rows  # counted by the digests, in the source's snapshot
            self.record_dest_count(digest, result, *writes_before)
        # Every other row of the table is in: the values the held rows need may be free now. One
        # that a row deleted at the source still holds is free after the deletes.
        if held and not self.write_held_back(step, reader, comparer, held, result, may_wait=self.options.deletes):
            self.held_back[step] = held
        cursor = self.cursor(step)
        if cursor:
            result.counts.watermark = self.watermark(step)

    def watermark(self, step):
        """Return the newest cursor value the destination holds now: its newest before the run, or
        the newest the window brought, every row of which is now at the destination (no second scan
        of a cursor column that may have no index)."""
        return self.newest.get(step)

    def cursor(self, step):
        if step.model in self.options.full_refresh:
            return None
        return self.options.cursors.get(step.model)

    def source_chunks(self, step, reader, record=True):
        """Yield the source rows to compare: the cursor window, or every row."""
        yield from source_chunks(step.source, self.window(step, reader, record))

    def window(self, step, reader, record):
        cursor = self.cursor(step)
        if not cursor and step.model in self.options.full_refresh:
            if record:
                self.windows[step] = None
            yield from reader.chunks(self.chunk_size)
            return
        if not cursor:
            # No timestamp says what changed: the range digests do, and only differing ranges are read.
            if record:
                self.windows[step] = None
                digest = TableDigest(step, self.runner.remaps, source_session=self.source_session())
                self.deltas[step] = (digest, digest.delta())
            digest, delta = self.deltas[step]
            yield from digest.rows("source", reader, delta.source_keys, self.chunk_size)
            return
        if record:
            mark = self.newest[step] = _watermark(step.model, step.dest, cursor)
            self.windows[step] = None if mark is None else mark - self.options.lookback
        for rows in reader.window_chunks(self.chunk_size, cursor, self.windows[step]):
            if rows and record:  # in cursor order: the last row is the chunk's newest
                self.newest[step] = max(rows[-1][-1], self.newest[step] or rows[-1][-1])
            yield [row[:-1] for row in rows]
        if step.model._meta.get_field(cursor).null:
            # A row without a timestamp never enters a window: compare those rows every run.
            yield from reader.chunks(self.chunk_size, extra_filter=models.Q(**{f"{cursor}__isnull": True}))

    def upsert(self, step, reader, writer, comparer, rows, result, held):
        keys = [reader.key(row) for row in rows]
        existing = reader.rows_at(step.dest, keys, self.keys(step).to_dest)
        new, changed = [], []
        for row, key in zip(rows, keys):
            old = existing.get(key)
            if old is None:
                new.append(row)
            elif comparer.same(row, old):
                result.counts.unchanged += 1
            else:
                changed.append(row)
        if changed:  # before inserts: a changed row may free a unique value a new row takes
            prepared = writer.prepare(changed, reader.pk_value)
            update = self.updater(step, comparer)
            self.write(step, reader, changed, prepared, update, held.changed, _counter(result.counts, "updated"))
        if new:
            prepared = writer.prepare(new, reader.pk_value)
            insert = self.inserter(step)
            self.write(step, reader, new, prepared, insert, held.new, _counter(result.counts, "inserted"))
        result.copied = result.counts.inserted + result.counts.updated

    def updater(self, step, comparer):
        """Return a function updating rows (lists of prepared values) by primary key."""
        dialect = self.dialect(step.dest)
        return lambda prepared: dialect.update_rows(
            step.table, comparer.update_fields, comparer.pk_fields, [comparer.update_values(v) for v in prepared]
        )

    def inserter(self, step):
        """Return a function inserting rows (lists of prepared values)."""
        dialect = self.dialect(step.dest)
        return lambda prepared: dialect.write_rows(step, prepared, "fast")

    def write(self, step, reader, rows, prepared, write, held, count):
        """Write a chunk's rows, passing count() how many went in.

        A row refused for a unique or foreign key is held back: a row later in the run may free the
        value (two rows swapping codes) or write the row it points at. A row refused for its own
        value is named at once, as the copy does.
        """
        try:
            with transaction.atomic(using=step.dest):
                write(prepared)
            count(len(rows))
            return
        except WRITE_ERRORS as exc:
            if self.runner.is_transient(step, exc):
                raise
        for row, values in zip(rows, prepared):
            try:
                with transaction.atomic(using=step.dest):
                    write([values])
            except WRITE_ERRORS as exc:
                if self.runner.is_transient(step, exc):
                    raise
                if not _refused_by_a_key(self.dialect(step.dest), exc):
                    find_rejected_row(self.runner, step, reader, [row], [values], exc, write)  # raises
                held.append((row, values))
                continue
            count(1)  # the rows before a refused one stay, and are reported

    # --- rows held back ----------------------------------------------------------------------------

    def write_held_back(self, step, reader, comparer, held, result, may_wait=False):
        """Write the held-back rows in one transaction, their unique values first moved out of each
        other's way; return False if they are still refused and may_wait, else name the refused row."""
        try:
            with transaction.atomic(using=step.dest):
                if held.changed:
                    prepared = [values for _, values in held.changed]
                    self.move_unique_values_aside(step, comparer, prepared)
                    self.updater(step, comparer)(prepared)
                if held.new:
                    self.inserter(step)([values for _, values in held.new])
        except WRITE_ERRORS as exc:
            if self.runner.is_transient(step, exc):
                raise
            if may_wait:
                return False
            self.name_refused_row(step, reader, comparer, held, result)
        result.counts.updated += len(held.changed)
        result.counts.inserted += len(held.new)
        result.copied = result.counts.inserted + result.counts.updated
        held.changed, held.new = [], []
        return True

    def name_refused_row(self, step, reader, comparer, held, result):
        """Write the held-back rows the destination takes and raise CopyError for the first it refuses."""
        if held.changed:
            rows, prepared = [row for row, _ in held.changed], [values for _, values in held.changed]
            update = self.updater(step, comparer)
            moves = self.unique_moves(step, comparer)

            def updated(row):  # without an outer transaction, the rows before the refused one stay
                result.counts.updated += 1

            try:
                with transaction.atomic(using=step.dest):
                    self.move_unique_values_aside(step, comparer, prepared, moves)
                    update(prepared)
            except WRITE_ERRORS as exc:
                if self.runner.is_transient(step, exc):
                    raise
                # Row by row, every held row's value moved aside first: the row named is one whose
                # value no other row of this run gives up. All in one transaction, so that no row is
                # left holding a placeholder.
                outer = transaction.atomic(using=step.dest) if moves else nullcontext()
                with self.refusal_explained(step, reader, held.changed), outer:
                    self.move_unique_values_aside(step, comparer, prepared, moves)
                    on_row = None if moves else updated
                    find_rejected_row(self.runner, step, reader, rows, prepared, exc, update, on_row)
            result.counts.updated += len(held.changed)
            held.changed = []
        if held.new:
            rows, prepared = [row for row, _ in held.new], [values for _, values in held.new]
            insert = self.inserter(step)

            def inserted(row):  # the rows before the refused one stay, and are reported
                result.counts.inserted += 1

            try:
                with transaction.atomic(using=step.dest):
                    insert(prepared)
            except WRITE_ERRORS as exc:
                if self.runner.is_transient(step, exc):
                    raise
                with self.refusal_explained(step, reader, held.new):
                    find_rejected_row(self.runner, step, reader, rows, prepared, exc, insert, inserted)
            result.counts.inserted += len(held.new)
            held.new = []

    @contextmanager
    def refusal_explained(self, step, reader, held_rows):
        """Say so when the refused row's unique value is held by a destination row the source deleted."""
        try:
            yield
        except CopyError as exc:
            row = next((row for row, _ in held_rows if reader.pk_value(row) == exc.pk), None)
            better = row is not None and not self.options.deletes and self.deleted_holder_error(step, reader, row)
            if better:
                raise better from exc.__cause__
            raise

    def deleted_holder_error(self, step, reader, row):
        """Return a CopyError if a destination row the source no longer has holds one of the row's unique values."""
        pk = reader.pk_value(row)
        keys = self.keys(step)
        dest_key = keys.to_dest(reader.key(row))  # the row's own key at the destination
        dest_rows = step.model._base_manager.using(step.dest)
        for fields, _ in unique_field_sets(step.model):
            if not all(f in step.fields and not is_json(f) for f in fields):
                continue
            values = [self.stored_value(step, f, row[step.fields.index(f)]) for f in fields]
            if None in values:
                continue  # NULLs do not collide
            holders = dest_rows
            for f, value in zip(fields, values):
                holders = holders.filter(where(f, "exact", value))
            if dest_key is not None:
                holders = holders.exclude(reader.key_is(dest_key))
            for holder in holders.values_list(*reader.key_columns())[:1]:
                if reader.rows_at(step.source, [holder], keys.to_source):
                    continue
                holder_pk = key_value(holder)
                shown = ", ".join(repr(value) for value in values)
                return CopyError(
                    step.label, step.dest, pk, fields[0].name,
                    reason=f"the destination's row pk={holder_pk!r}, which the source no longer has, "
                           f"holds the same value {shown}",
                    fix="sync with --deletes, which deletes that row before writing this one",
                )
        return None

    def stored_value(self, step, field, value):
        """Return the value as the destination stores it (a content type id translated)."""
        translate = self.runner.remaps.translator(step, field) if field.is_relation else None
        return translate(value) if translate and value is not None else value

    def write_after_deletes(self, step, result):
        """Write the rows that waited for the deletes, then their cycle FKs."""
        held = self.held_back[step]
        self.runner.reader(step)
        reader = RowReader(step.model, step.source, step.fields)
        comparer = RowComparer(step, self.runner.remaps, reader)
        keys = held.keys(reader)
        blocker = self.runner.failed_dependency(step)
        if blocker:
            del self.held_back[step]
            reason = f"{len(keys):,} rows wait for rows of {blocker}, which failed"
            raise CopyError(step.label, step.dest, reason=reason, fix=f"fix {blocker} and sync again")
        self.write_held_back(step, reader, comparer, held, result)
        del self.held_back[step]
        if step.deferred_fields:
            parts = self.deferred_parts(step)
            self.update_deferred(step, parts, list(parts[0].rows_at(step.source, keys).values()))
        cursor = self.cursor(step)
        if cursor:
            result.counts.watermark = self.watermark(step)

    # --- moving unique values out of the way -----------------------------------------------------

    def move_unique_values_aside(self, step, comparer, prepared, moves=None):
        """Give the rows placeholders in one column of each unique constraint the update writes, so
        that the final values can be written in any order."""
        dialect = self.dialect(step.dest)
        fields, columns = [], []
        for field, nulls_distinct in self.unique_moves(step, comparer) if moves is None else moves:
            values = self.placeholders(step, field, len(prepared), nulls_distinct)
            if values is not None:
                fields.append(field)
                prepare = column_field(field).get_db_prep_save
                columns.append([prepare(value, dialect.connection) for value in values])
        if not fields:
            return
        rows = [
            [column[n] for column in columns] + [values[i] for i in comparer.pk_positions]
            for n, values in enumerate(prepared)
        ]
        dialect.update_rows(step.table, fields, comparer.pk_fields, rows)

    def unique_moves(self, step, comparer):
        """Return (field, nulls distinct) for one column the update writes of each unique constraint,
        a nullable one where there is one."""
        written = set(comparer.update_fields)
        chosen = []
        for fields, nulls_distinct in unique_field_sets(step.model):
            if any(field in [f for f, _ in chosen] for field in fields):
                continue
            movable = [f for f in fields if f in written and _can_hold_placeholder(f, nulls_distinct)]
            if movable:
                chosen.append((min(movable, key=lambda f: not (f.null and nulls_distinct)), nulls_distinct))
        return chosen

    def placeholders(self, step, field, count, nulls_distinct):
        """Return `count` values of the field no row holds (None where the column can't have them)."""
        if field.null and nulls_distinct:
            return [None] * count  # NULLs never collide
        if isinstance(column_field(field), models.UUIDField):
            return [uuid.uuid4() for _ in range(count)]
        if isinstance(column_field(field), models.IntegerField):
            return self.integer_placeholders(step, field, count)
        return self.text_placeholders(step, field, count)

    def integer_placeholders(self, step, field, count):
        """Return integers above the column's highest value (or below its lowest), within its range."""
        connection = self.dialect(step.dest).connection
        try:
            low_limit, high_limit = connection.ops.integer_field_range(field.get_internal_type())
        except KeyError:
            return None
        bounds = step.model._base_manager.using(step.dest).aggregate(low=Min(selected(field)), high=Max(selected(field)))
        high = 0 if bounds["high"] is None else bounds["high"]
        low = 0 if bounds["low"] is None else bounds["low"]
        if high_limit is None or high + count <= high_limit:
            return [high + 1 + i for i in range(count)]
        if low_limit is None or low - count >= low_limit:
            return [low - 1 - i for i in range(count)]
        return None

    def text_placeholders(self, step, field, count):
        """Return random texts no destination row holds (checked there, under its collation)."""
        length = min(field.max_length or _PLACEHOLDER_LENGTH, _PLACEHOLDER_LENGTH)
        rows = step.model._base_manager.using(step.dest)
        for _ in range(5):
            values = list({"".join(secrets.choice(_PLACEHOLDER_ALPHABET) for _ in range(length)) for _ in range(count)})
            if len(values) < count:
                continue  # a short column: draw again
            if not any(
                rows.filter(where(field, "in", batch)).exists() for batch in batches(values, 500)
            ):
                return values
        return None

    # --- cycles and deletes ----------------------------------------------------------------------

    def sync_deferred(self, step, result):
        """Set the cycle-breaking FKs of the rows this run read, now that every row they point at exists."""
        self.runner.reader(step)
        parts = self.deferred_parts(step)
        for rows in self.source_chunks(step, parts[0], record=False):
            self.update_deferred(step, parts, rows)

    def deferred_parts(self, step):
        """Return the reader, writer and comparer of the step's primary key and deferred FKs."""
        fields = list(pk_fields(step.model)) + list(step.deferred_fields)
        partial = replace(step, fields=tuple(fields), deferred_fields=())
        reader = RowReader(step.model, step.source, fields)
        writer = RowWriter(partial, self.runner.remaps, self.dialect(step.dest).connection)
        return reader, writer, RowComparer(partial, self.runner.remaps, reader)

    def update_deferred(self, step, parts, rows):
        """Write the deferred FKs of these source rows where the destination's differ."""
        reader, writer, comparer = parts
        existing = reader.rows_at(step.dest, [reader.key(row) for row in rows], self.keys(step).to_dest)
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
            # A link to a permission holds the destination's permission id: look up the source's.
            to_source = self.keys(step, [end]).to_source
            wanted = {row[position]: to_source((row[position],)) for row in rows.values()}
            target = RowReader(end.remote_field.model, step.source, pk_fields(end.remote_field.model))
            present = {key[0] for key in target.rows_at(step.source, [key for key in wanted.values() if key])}
            alive.append({value for value, key in wanted.items() if key and key[0] in present})
        return {
            key for key, row in rows.items()
            if any(row[len(reader.pk_fields) + i] not in alive[i] for i in range(len(ends)))
        }

    def find_gone_rows(self, step, result):
        """Count, or with --deletes delete, destination rows whose primary key the source lost."""
        self.runner.reader(step)
        if step.group is not None and self.options.deletes:
            result.counts.deleted += self.delete_gone_rows_of_cycle(step)
            return
        reader = RowReader(step.model, step.source, pk_fields(step.model))
        gone = self.gone_keys(step, reader, result)
        if step in self.key_digests:  # digested just now, after every write so far
            self.record_dest_count(self.key_digests.pop(step), result, result.counts.inserted, result.counts.deleted)
        if gone:
            self.delete_gone_rows(step, reader, gone)
            result.counts.deleted += len(gone)

    def record_dest_count(self, digest, result, inserted, deleted):
        """Keep the destination's row count a digest took, with the run's inserts and deletes it
        already includes, so that the reconciliation need not count a table the run left alone again."""
        if digest.dest_rows is not None:
            result.dest_count = (digest.dest_rows, inserted, deleted)

    def gone_keys(self, step, reader, result):
        """Return the keys of the destination rows to delete; count those that wait for --deletes."""
        gone = []
        for keys in self.destination_keys(step, reader):
            # Destination keys, spelled as the source holds them (a content type id as primary key).
            present = set(reader.rows_at(step.source, keys, self.keys(step).to_source))
            missing = [key for key in keys if key not in present]
            if not self.options.deletes and step.model._meta.auto_created:
                # A link removed between two rows that both still exist is an M2M change of those
                # rows: always applied. Links of a deleted row wait for --deletes, like the row.
                kept = self.links_to_deleted_rows(step, missing)
                result.counts.gone += len(kept)
                missing = [key for key in missing if key not in kept]
            elif not self.options.deletes:
                result.counts.gone += len(missing)
                continue
            gone.extend(missing)
        return gone

    def source_session(self):
        """Return how a digest's thread joins the source snapshot, or None where it cannot (a snapshot
        that belongs to one connection: digests then read the source on that connection alone)."""
        snapshot = self.runner.snapshot
        return snapshot.enter if snapshot.scope == "shared" else None

    def destination_keys(self, step, reader):
        """Yield chunks of the destination's keys where its key ranges' digests differ from the source's.

        A range whose keys hash to the same sum on both sides holds no row the source lost.
        """
        if step in self.deltas:
            # The rows were compared by digests this run: a row gone from the source is among the
            # destination's rows they found differing.
            digest, delta = self.deltas[step]
        else:
            digest = TableDigest(step, self.runner.remaps, keys_only=True, source_session=self.source_session())
            delta = digest.delta()
            self.key_digests[step] = digest
        # Read back through the ORM: the keys come as the destination's driver spells them.
        keys = RowReader(step.model, step.dest, reader.pk_fields)
        yield from digest.rows("dest", keys, delta.dest_keys, self.chunk_size)

    def delete_gone_rows_of_cycle(self, step):
        """Return how many of the step's rows were deleted, deleting the gone rows of its whole
        NOT NULL cycle (Chicken.egg → Egg.mother → Chicken) at once.

        Such a cycle has no nullable column to unlink, and no order of deletes passes its FK
        checks: its tables go in one transaction with the checks deferred, as the copy writes them.
        """
        if step.group not in self.cycle_deletes:
            self.cycle_deletes[step.group] = self.delete_cycle(step)
        outcome = self.cycle_deletes[step.group]
        if isinstance(outcome, str):
            raise CopyError(step.label, step.dest, reason=outcome,
                            fix="rows of another table still refer to them; include that table in the sync")
        return outcome[step]

    def delete_cycle(self, step):
        """Delete the gone rows of every table of the step's constraint group; return {step: rows
        deleted}, or why the deletes failed."""
        members = [s for s in self.runner.plan.steps_for(step.dest) if s.group == step.group]
        readers = {member: RowReader(member.model, member.source, pk_fields(member.model)) for member in members}
        gone = {member: self.gone_keys(member, readers[member], None) for member in members}
        dialect = self.dialect(step.dest)
        tables = [member.table for member in members]
        # MySQL checks nothing while the checks are off: verify the cycle's FKs and every FK that points into it.
        referrers = {referrer.table for referrer in dialect.foreign_key_referrers(tables) if referrer.schema is None}
        try:
            with transaction.atomic(using=step.dest), dialect.constraints_deferred(sorted(set(tables) | referrers)):
                for member in members:
                    if gone[member]:
                        self.delete_gone_rows(member, readers[member], gone[member])
        except (*WRITE_ERRORS, CopyError) as exc:
            if self.runner.is_transient(step, exc):
                raise
            labels = ", ".join(member.label for member in members)
            why = exc.reason if isinstance(exc, CopyError) else first_line(exc)
            return f"cannot delete the rows gone from the source in the cycle {labels}: {why}"
        return {member: len(gone[member]) for member in members}

    def delete_gone_rows(self, step, reader, gone):
        """Delete the rows in one transaction, first unlinking the cycle FKs that point at them.

        Unlinking rather than deleting children first: no order of DELETEs gets a cycle across
        tables (Country.capital → City → Country, both deleted) past the FK checks, and InnoDB
        checks even a self-FK row by row inside one `DELETE … IN (…)`. With the cycle-breaking
        (nullable) FKs of the doomed rows set to NULL, one statement per table passes on every
        vendor, whatever the depth of a tree or the order of its ids. One transaction for the
        table: a refused delete leaves every row, and every link, as it was.
        """
        dialect = self.dialect(step.dest)
        connection = dialect.connection
        preparers = [column_field(f).get_db_prep_save for f in reader.pk_fields]
        prepared = [tuple(prepare(v, connection) for prepare, v in zip(preparers, key)) for key in gone]
        try:
            with transaction.atomic(using=step.dest):
                self.unlink_gone_rows(step, reader, gone)
                for batch in batches(prepared, self.chunk_size):  # statements of a chunk's size, as everywhere
                    dialect.delete_rows(step.table, reader.pk_fields, batch)
        except WRITE_ERRORS as exc:
            if self.runner.is_transient(step, exc):
                raise
            pk = key_value(gone[0])
            raise CopyError(
                step.label, step.dest, pk, reason=f"cannot delete rows gone from the source: {first_line(exc)}",
                fix="rows of another table still refer to them; include that table in the sync",
            ) from exc

    def unlink_gone_rows(self, step, reader, gone):
        """Set to NULL the cycle FKs pointing at the gone rows from rows the source deleted too.

        A row the source still has keeps its reference (the delete then fails and says so): its
        value is the source's to decide, and sync_deferred has already written it if it changed.
        """
        targets = step.model._base_manager.using(step.dest)
        for other, field in self.cycle_referrers(step):
            referrers = RowReader(other.model, other.source, pk_fields(other.model))
            rows = other.model._base_manager.using(step.dest)
            for batch in batches(gone, self.chunk_size):
                doomed = reader.with_keys(targets, batch)
                pointing = list(rows.filter(**{f"{field.name}__in": doomed}).values_list(*referrers.key_columns()))
                for keys in batches(pointing, self.chunk_size):
                    present = set(referrers.rows_at(other.source, keys, self.keys(other).to_source))
                    unlinked = [key for key in keys if key not in present]
                    if unlinked:
                        referrers.with_keys(rows, unlinked).update(**{field.name: None})

    def cycle_referrers(self, step):
        """Yield (step, field) for each cycle-breaking FK of the destination's steps pointing at the step's table."""
        for other in self.runner.plan.steps_for(step.dest):
            for field in other.deferred_fields:
                if relation_target(field) is step.model._meta.concrete_model:
                    yield other, field


def unique_field_sets(model):
    """Return (fields, whether NULLs are distinct) for each unique constraint of the model besides its primary key."""
    meta = model._meta
    primary = set(pk_fields(model))
    found = [((f,), True) for f in meta.local_concrete_fields if f.unique and f not in primary]
    found += [(tuple(meta.get_field(name) for name in names), True) for names in meta.unique_together]
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            fields = tuple(meta.get_field(name) for name in constraint.fields)
            found.append((fields, getattr(constraint, "nulls_distinct", None) is not False))
    return found


def _can_hold_placeholder(field, nulls_distinct):
    """Return whether the column can hold a value no row has: NULL, or a text, integer or UUID of its own."""
    if field.null and nulls_distinct:
        return True
    if field.is_relation:
        return False  # a placeholder id would have to be a row of the target table
    column = column_field(field)  # a custom field's stand-in writes the placeholder as stored
    return isinstance(column, (models.UUIDField, models.IntegerField)) or column.get_internal_type() in _TEXT_TYPES


def _refused_by_a_key(dialect, exc):
    """Return whether the destination refused a row for a constraint between rows (a unique or
    foreign key: DB-API's IntegrityError), which a row written later may satisfy."""
    errors = (IntegrityError, dialect.connection.Database.IntegrityError)
    return any(isinstance(error, errors) for error in error_chain(exc))


def _counter(counts, name):
    """Return a function adding n to one of the SyncCounts."""
    return lambda n: setattr(counts, name, getattr(counts, name) + n)


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
    if isinstance(column_field(field), models.BinaryField):
        return lambda value: None if value is None else bytes(value)
    return _same


def _same(value):
    return value


def _watermark(model, alias, cursor):
    return model._base_manager.using(alias).aggregate(mark=Max(cursor))["mark"]

