"""`dbcopy import`: replay a dump (fileformat.py) into a destination through the copy engine.

The engine plans, orders, writes, remaps and reconciles against a *source alias*. An import gives it
one that stands for the dump: a scratch SQLite file with the dump's tables, untyped and empty, except
the content types and permissions, which the remap steps match by natural key as a copy does. Every
other table's rows come from the dump itself (DumpRows), chunk by chunk, in the dump's order: the
value-by-value writers, refused-row messages, deferred foreign keys, sequences and --resume are the
copy's own.
"""

import os
import pickle
import tempfile
from contextlib import contextmanager
from dataclasses import replace

from django.apps import apps
from django.conf import settings
from django.db import connections

from . import conf
from .aliases import describe_as, register_url
from .dialects import dialect_for
from .engine import CopyStrategy
from .exceptions import ConfigError, DumpError, DumpMismatch
from .fileformat import check_header, open_dump, verify
from .plan import build_plan
from .remap import RemapStrategy
from .results import Consistency
from .rows import pk_fields
from .runner import Runner

SHADOW_ALIAS = "dbcopy_dump"


# --- the stand-in source -------------------------------------------------------------------------


@contextmanager
def shadow_source(header, name):
    """Register, for the block, an alias standing for the dump's source: a scratch SQLite file with
    an empty, untyped table per model of the dump; yield the alias, then drop the file."""
    folder = tempfile.mkdtemp(prefix="dbcopy-import-")
    path = os.path.join(folder, "source.sqlite3")
    alias = register_url(f"sqlite:///{path}", alias=SHADOW_ALIAS)
    describe_as(alias, f"the dump {name}")
    try:
        dialect = dialect_for(alias)
        with connections[alias].cursor() as cursor:
            for model in header["models"]:
                # Untyped columns (SQLite stores what it is given): the rows that matter never land here.
                columns = ", ".join(dialect.quote(column) for column in _shadow_columns(model))
                cursor.execute(f"CREATE TABLE {dialect.quote(model['table'])} ({columns})")
        yield alias
    finally:
        connections[alias].close()
        del connections[alias]
        for leftover in os.listdir(folder):
            os.unlink(os.path.join(folder, leftover))
        os.rmdir(folder)


def _shadow_columns(model_header):
    """Return the columns of a dump's table as this project's model has them (generated columns
    included, which a dump does not carry), else as the dump has them."""
    try:
        model = apps.get_model(model_header["label"])
    except (LookupError, ValueError):
        return [column["column"] for column in model_header["columns"]]
    return [field.column for field in model._meta.local_concrete_fields]


def load_shadow_rows(alias, table, columns, rows):
    """Insert a remapped model's rows (content types, permissions: integers and text) into the stand-in."""
    dialect = dialect_for(alias)
    names = ", ".join(dialect.quote(column) for column in columns)
    marks = ", ".join(["%s"] * len(columns))
    with connections[alias].cursor() as cursor:
        cursor.executemany(f"INSERT INTO {dialect.quote(table)} ({names}) VALUES ({marks})", rows)


# --- planning ------------------------------------------------------------------------------------


def selected_labels(header, labels=(), exclude=()):
    """Return the dump's model labels the command line selects (all, without labels), in dump order."""
    def names(label, chosen):
        wanted = label.lower()
        return wanted == chosen.lower() or wanted == chosen.lower().split(".", 1)[0]

    found = [m["label"] for m in header["models"]]
    if labels:
        found = [label for label in found if any(names(wanted, label) for wanted in labels)]
    return [label for label in found if not any(names(left_out, label) for left_out in exclude)]


def check_dump_fits(header, labels):
    """Raise DumpMismatch (exit 2, before any write) if the dump's models do not fit this project's."""
    problems = check_header(header, labels)
    if problems:
        raise DumpMismatch(problems)


def build_import_plan(header, source, dest, labels, exclude, include_unmanaged=False):
    """Return the CopyPlan that writes the selected models of the dump into dest.

    Search indexes an app shapes per vendor are left out when the dump came from another vendor,
    as a copy leaves them out (conf SEARCH_INDEX_MODELS).
    """
    chosen = selected_labels(header, labels, exclude)
    if not chosen:
        raise ConfigError("The labels and --exclude select none of the dump's models "
                          f"({', '.join(m['label'] for m in header['models'])})")
    check_dump_fits(header, chosen)
    vendor = header["source"]["vendor"]
    indexes = [label for label in chosen if label in conf.get("SEARCH_INDEX_MODELS")
               and dialect_for(dest).connection.vendor != vendor]
    plan = build_plan(source, dest, [label for label in chosen if label not in indexes], exclude,
                      include_unmanaged, count_rows=False)
    held = {m["label"]: m for m in header["models"]}
    missing = [step.label for step in plan.steps if step.label not in held]
    if missing:
        raise DumpMismatch([f"{label}: the plan needs its rows (the selected models refer to it), but the dump "
                            f"does not hold them; export it too, or leave out the models that refer to it"
                            for label in missing])
    steps = tuple(replace(step, source_rows=held[step.label]["rows"]) for step in plan.steps)
    return replace(plan, steps=steps)


def dump_consistency(header):
    """Return how the dump's rows were read at the source, as the run's Consistency."""
    how = header.get("consistency") or ""
    return Consistency(bool(header.get("consistent")), f"exported {how}".strip())


# --- rows from the dump --------------------------------------------------------------------------


class DumpFeed:
    """Hand out the dump's sections by label, reading the dump once, in its order.

    A section the run does not need yet is spooled to a scratch file as it is read past (the import's
    order can differ from the export's where cycles are broken otherwise), so memory stays flat.
    """

    def __init__(self, reader, wanted):
        self.reader, self.wanted = reader, set(wanted)
        self.sections = reader.sections()
        self.spooled = {}  # label -> scratch file of pickled chunks
        self.broken = None  # the DumpError that ended the reading
        self.read_labels = []

    def chunks(self, label):
        """Yield the section's chunks (lists of row tuples in the dump's column order)."""
        if label in self.spooled:
            yield from _unspooled(self.spooled.pop(label))
            return
        for section in self._sections_until(label):
            if section.label == label:
                yield from self._guarded(section.chunks())
                return
            if section.label in self.wanted:
                self.spooled[section.label] = _spooled(self._guarded(section.chunks()))
        raise DumpMismatch([f"{label}: the dump holds no rows for it"])

    def finish(self):
        """Read (and verify) the rest of the dump, the trailer included; return its trailer."""
        for section in self._sections_until(None):
            section.read_to_end()
        return self.reader.trailer

    def _sections_until(self, label):
        if self.broken is not None:
            raise self.broken
        while True:
            try:
                section = next(self.sections)
            except StopIteration:
                return
            except DumpError as exc:
                self.broken = exc
                raise
            self.read_labels.append(section.label)
            yield section
            if section.label == label:
                return

    def _guarded(self, chunks):
        try:
            yield from chunks
        except DumpError as exc:
            self.broken = exc
            raise


def _spooled(chunks):
    spool = tempfile.TemporaryFile(prefix="dbcopy-section-")
    for rows in chunks:
        pickle.dump(rows, spool, protocol=pickle.HIGHEST_PROTOCOL)
    spool.seek(0)
    return spool


def _unspooled(spool):
    with spool:
        while True:
            try:
                yield pickle.load(spool)  # noqa: S301 - our own scratch file, written above in this run
            except EOFError:
                return


class DumpRows:
    """The copy strategy's rows, from the dump: the CopyStrategy asks this instead of the source.

    Each step's section is read once, in order: the rows a --resume skips, the chunks it writes, and,
    for the deferred foreign keys a post-pass sets, a scratch file of (key, values) of the rows that
    hold one. A chunk handed out stays pending until the next is asked for, so that a retry after a
    dropped connection gets the rows its destination did not commit.
    """

    can_stream = False  # the database-to-database streams need a source database

    def __init__(self, feed, header):
        self.feed = feed
        self.columns = {m["label"]: [c["name"] for c in m["columns"]] for m in header["models"]}
        self.sections = {}  # step -> the rest of its section: chunks of rows in the step's field order
        self.buffered = {}  # step -> rows read from the dump, not handed out yet
        self.pending = {}  # step -> the chunk handed out last
        self.deferred = {}  # step -> scratch file of pickled (key + deferred values) chunks
        self.deferred_set = {}  # step -> {attname: rows holding a value}
        self.rows_read = {}  # step -> rows of its section read so far

    def count(self, step):
        """Return the step's rows as the dump's header planned them (counted in the export's snapshot)."""
        return step.source_rows

    def key_at(self, step, position):
        """Return the key of the section's row at `position` (0-based), reading the rows up to it."""
        key_of, seen = _key_function(step), 0
        while True:
            rows = self._next_rows(step)
            if rows is None:
                raise DumpError(f"{step.label}: the destination holds more rows than the dump ({seen:,})")
            if seen + len(rows) > position:
                self.buffered[step] = rows[position - seen + 1:]
                return key_of(rows[position - seen])
            seen += len(rows)

    def chunks(self, step, reader, size, start_after=None):
        """Yield the section's rows after `start_after` (the last key the destination committed)."""
        pending = self.pending.pop(step, None)
        if pending:
            keys = [reader.key(row) for row in pending]
            if start_after in keys:
                pending = pending[keys.index(start_after) + 1:]
            self.buffered[step] = pending + self.buffered.get(step, [])
        while True:
            rows = self.buffered.pop(step, None) or self._next_rows(step)
            if rows is None:
                break
            self.pending[step], rest = rows[:size], rows[size:]
            if rest:
                self.buffered[step] = rest
            yield self.pending[step]
        self.pending.pop(step, None)

    def finish(self, step):
        """Read what is left of the step's section (its deferred values kept); return its rows in the dump."""
        while self._next_rows(step) is not None:
            pass
        self.buffered.pop(step, None)
        return self.rows_read.get(step, 0)

    def deferred_counts(self, step):
        """Return {attname: rows of the section read so far that hold a value} of the deferred FKs."""
        return self.deferred_set.get(step)

    def deferred_chunks(self, step, reader, fields, size):
        """Yield chunks of (key..., values of `fields`) of the rows that hold a value in one of them."""
        spool = self.deferred.get(step)
        if spool is None:
            return
        wanted = [step.deferred_fields.index(f) for f in fields]
        width = len(pk_fields(step.model))
        spool.seek(0)
        batch = []
        while True:
            try:
                rows = pickle.load(spool)  # noqa: S301 - our own scratch file, written in this run
            except EOFError:
                break
            for row in rows:
                values = [row[width + i] for i in wanted]
                if any(value is not None for value in values):
                    batch.append((*row[:width], *values))
            while len(batch) >= size:
                yield batch[:size]
                batch = batch[size:]
        spool.seek(0, os.SEEK_END)
        if batch:
            yield batch

    def _next_rows(self, step):
        if step not in self.sections:
            self.sections[step] = self._rows_of(step)
        return next(self.sections[step], None)

    def _rows_of(self, step):
        order = _column_order(self.columns[step.label], step)
        keys = [step.fields.index(f) for f in pk_fields(step.model)]
        deferred = [step.fields.index(f) for f in step.deferred_fields]
        counted = self.deferred_set.setdefault(step, {f.attname: 0 for f in step.deferred_fields})
        if deferred:
            self.deferred[step] = tempfile.TemporaryFile(prefix="dbcopy-deferred-")
        for rows in self.feed.chunks(step.label):
            if order is not None:
                rows = [tuple(row[i] for i in order) for row in rows]
            self.rows_read[step] = self.rows_read.get(step, 0) + len(rows)
            if deferred:
                held = [row for row in rows if any(row[i] is not None for i in deferred)]
                for field, i in zip(step.deferred_fields, deferred):
                    counted[field.attname] += sum(1 for row in held if row[i] is not None)
                pickle.dump([tuple(row[k] for k in keys) + tuple(row[i] for i in deferred) for row in held],
                            self.deferred[step], protocol=pickle.HIGHEST_PROTOCOL)
            yield rows


def _column_order(names, step):
    """Return the positions that put a dump row in the step's field order, or None if it is already."""
    wanted = [f.name for f in step.fields]
    if names == wanted:
        return None
    return [names.index(name) for name in wanted]


def _key_function(step):
    positions = [step.fields.index(f) for f in pk_fields(step.model)]
    return lambda row: tuple(row[i] for i in positions)


class DumpRemapStrategy(RemapStrategy):
    """Match content types / permissions by natural key as a copy does, after putting the dump's rows
    of the model into the stand-in source, where the natural keys are read."""

    def __init__(self, runner, rows):
        super().__init__(runner)
        self.rows, self.loaded = rows, set()

    def run(self, step, result):
        if step.model not in self.loaded:
            columns = [f.column for f in step.fields]
            for chunk in self.rows.chunks(step, _KeyOnly(step), 10_000):
                load_shadow_rows(step.source, step.table, columns, chunk)
            self.loaded.add(step.model)
        super().run(step, result)


class _KeyOnly:
    """What DumpRows.chunks asks of a RowReader: the key of a row."""

    def __init__(self, step):
        self.key = _key_function(step)


# --- the run -------------------------------------------------------------------------------------


def run_import(plan, rows, chunk_size=None, truncate=False, on_progress=None, writer="fast", retries=3,
               resume=False, debug=False):
    """Write the plan's steps from the dump (rows: a DumpRows) as a copy writes them; return a RunResult.

    One step at a time: the dump is one compressed stream, read once, in order.
    """
    runner = Runner(
        plan, CopyStrategy, chunk_size=chunk_size or conf.get("CHUNK_SIZE"), on_progress=on_progress, jobs=1,
        retries=retries, truncate=truncate, resume=resume, debug=debug, writer=writer, rows=rows,
    )
    runner.remapper = DumpRemapStrategy(runner, rows)
    return runner.run()


def verify_before_writing(path):
    """Read a dump file whole before any write, verifying every chunk, model and the trailer;
    standard input cannot be read twice and is verified as it is imported."""
    if str(path) != "-":
        verify(path)


def use_tz_problem(header):
    """Return why the dump's datetimes do not fit this project (USE_TZ differs), or None."""
    if bool(header["use_tz"]) == bool(settings.USE_TZ):
        return None
    was, now = ("aware (USE_TZ = True)", "naive") if header["use_tz"] else ("naive (USE_TZ = False)", "aware")
    return (f"the dump's datetimes are {was}, this project's are {now}: import it into a project with the "
            f"same USE_TZ setting")


__all__ = [
    "DumpFeed", "DumpRemapStrategy", "DumpRows", "build_import_plan", "dump_consistency", "open_dump",
    "run_import", "shadow_source", "use_tz_problem", "verify_before_writing",
]
