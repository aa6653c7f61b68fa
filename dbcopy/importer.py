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
from django.db import connections, router

from . import conf
from .aliases import describe_as, register_url
from .dialects import dialect_for
from .engine import CopyStrategy
from .exceptions import ConfigError, CopyError, DumpError, DumpMismatch
from .fileformat import DAMAGED_HINT, TRUNCATED_HINT, check_header, open_dump, selects, verify
from .graph import model_label
from .plan import REMAP, Skipped, build_plan, relation_target, remapped_models, select_models, written_fields
from .remap import RemapStrategy
from .results import Consistency, Status
from .rows import pk_fields
from .runner import Runner

SHADOW_ALIAS = "dbcopy_dump"


# --- the stand-in source -------------------------------------------------------------------------


def describe_dump(path):
    """Return how messages and reports name the dump at `path` ("-": standard input)."""
    return "the dump on standard input" if str(path) == "-" else f"the dump {path}"


@contextmanager
def shadow_source(header, description):
    """Register, for the block, an alias standing for the dump's source (described as `description`):
    a scratch SQLite file with an empty, untyped table per model of the dump; yield the alias, then
    unregister it and drop the file, whatever happens in the block."""
    folder = tempfile.mkdtemp(prefix="dbcopy-import-")
    path = os.path.join(folder, "source.sqlite3")
    try:
        alias = register_url(f"sqlite:///{path}", alias=SHADOW_ALIAS)
        describe_as(alias, description)
        dialect = dialect_for(alias)
        with connections[alias].cursor() as cursor:
            for model in header["models"]:
                # Untyped columns (SQLite stores what it is given): the rows that matter never land here.
                columns = ", ".join(dialect.quote(column) for column in _shadow_columns(model))
                cursor.execute(f"CREATE TABLE {dialect.quote(model['table'])} ({columns})")
        yield alias
    finally:
        _unregister(SHADOW_ALIAS)
        for leftover in os.listdir(folder):
            os.unlink(os.path.join(folder, leftover))
        os.rmdir(folder)


def _unregister(alias):
    """Close and forget a run-time alias, so that nothing later in the process reopens its file."""
    if alias not in connections.settings:
        return
    connections[alias].close()
    try:
        del connections[alias]
    except AttributeError:
        pass  # never opened in this thread
    connections.settings.pop(alias, None)


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
    found = [m["label"] for m in header["models"]]
    if labels:
        found = [label for label in found if any(selects(wanted, label) for wanted in labels)]
    return [label for label in found if not any(selects(left_out, label) for left_out in exclude)]


def check_dump_fits(header, labels, chosen):
    """Raise DumpMismatch (exit 2, before any write) if a label names none of the dump's models, or if
    the chosen models of the dump do not fit this project's."""
    held = ", ".join(m["label"] for m in header["models"]) or "no models"
    problems = [f"{label}: the dump holds no such model (it holds {held})"
                for label in labels if not selected_labels(header, [label])]
    problems += check_header(header, chosen)
    if problems:
        raise DumpMismatch(problems)


def build_import_plan(header, source, dest, labels, exclude, include_unmanaged=False, counts=None):
    """Return the CopyPlan that writes the selected models of the dump into dest.

    counts: {label: rows} the dump holds, as verifying a file counted them; without them (standard
    input) each step's rows are those the header planned.

    A model the labels select that the dump does not hold (a through table the export left out) is
    skipped, as the export skipped it. Search indexes an app shapes per vendor are left out when the
    dump came from another vendor, as a copy leaves them out (conf SEARCH_INDEX_MODELS).
    """
    chosen = selected_labels(header, labels, exclude)
    if not chosen:
        raise ConfigError("The labels and --exclude select none of the dump's models "
                          f"({', '.join(m['label'] for m in header['models'])})")
    check_dump_fits(header, labels, chosen)
    held = {m["label"]: m for m in header["models"]}
    unheld = [model for model in select_models(chosen, exclude) if model_label(model) not in held]
    check_remapped_targets_held(chosen, held)
    indexes = vendor_search_indexes(chosen, dest, header["source"]["vendor"])
    plan = build_plan(source, dest, [label for label in chosen if label not in {s.label for s in indexes}],
                      [*exclude, *map(model_label, unheld)], include_unmanaged, count_rows=False)
    missing = [step.label for step in plan.steps if step.label not in held]
    if missing:
        raise DumpMismatch([f"{label}: the plan needs its rows (the selected models refer to it), but the dump "
                            f"does not hold them; export it too, or leave out the models that refer to it"
                            for label in missing])
    counts = counts or {}
    steps = tuple(replace(step, source_rows=counts.get(step.label, held[step.label]["rows"])) for step in plan.steps)
    left_out = tuple(Skipped(model_label(model), model._meta.db_table, dest, "the dump does not hold its rows "
                             "(the export left it out)") for model in unheld)
    return replace(plan, steps=steps, skipped=plan.skipped + left_out + indexes)


def vendor_search_indexes(chosen, dest, source_vendor):
    """Return a Skipped per chosen search index its app shapes per database vendor (conf
    SEARCH_INDEX_MODELS) whose destination is of another vendor than the dump's source: the
    app's command rebuilds it from the imported rows, as after a copy."""
    commands = conf.get("SEARCH_INDEX_MODELS")
    found = []
    for label in chosen:
        if label not in commands:
            continue
        model = apps.get_model(label)
        target = dest or router.db_for_write(model)
        vendor = dialect_for(target).connection.vendor
        if vendor != source_vendor:
            found.append(Skipped(label, model._meta.db_table, target,
                                 f"a search index its app shapes per database vendor ({source_vendor} → {vendor}): "
                                 f"rebuild it in '{target}' with `{commands[label]}` after the import"))
    return tuple(found)


def check_remapped_targets_held(chosen, held):
    """Refuse (exit 2) chosen models that refer to content types or permissions the dump does not hold:
    their ids can only be translated by matching the dump's rows by natural key."""
    remapped = {model_label(model) for model in remapped_models()}
    problems = []
    for label in chosen:
        model = apps.get_model(label)
        for field in written_fields(model):
            target = model_label(relation_target(field)) if field.is_relation else None
            if target in remapped and target not in held:
                problems.append(f"{label}.{field.name}: its ids of {target} can only be translated with the rows of "
                                f"{target}, which the dump does not hold; export it with them (an export of "
                                f"{label} holds them)")
    if problems:
        raise DumpMismatch(problems)


def dump_consistency(header):
    """Return how the export read the dump's rows at its source, as the run's Consistency."""
    how = header.get("consistency") or "not recorded"
    when = f" on {header['created']}" if header.get("created") else ""
    return Consistency(bool(header.get("consistent")), f"{how} (when `dbcopy export` read the source{when})")


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
        self.broken_at = None  # the label of the model whose rows it ended in (None: outside any)

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
        """Read (and verify) the rest of the dump, the trailer included; return its trailer.

        Every row the run wrote was verified before it was handed out: a DumpError here says only that
        the dump does not end as written, so it leaves the feed as it was (not broken)."""
        if self.broken is not None:
            raise self.broken
        for section in self.sections:
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
                self._break(exc)
                raise
            yield section
            if section.label == label:
                return

    def _guarded(self, chunks):
        try:
            yield from chunks
        except DumpError as exc:
            self._break(exc)
            raise

    def _break(self, exc):
        self.broken, self.broken_at = exc, getattr(exc, "label", None)


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
                raise CopyError(step.label, step.dest, reason=f"it holds more rows than the dump's {seen:,}, so "
                                "--resume cannot tell where the interrupted import stopped",
                                fix="import the table again with --truncate")
            if seen + len(rows) > position:
                self.buffered[step] = rows[position - seen + 1:]
                return key_of(rows[position - seen])
            seen += len(rows)

    def chunks(self, step, reader, size, start_after=None):
        """Yield the section's rows after `start_after` (the last key the destination committed), `size`
        rows at a time whatever the size of the dump's chunks."""
        pending = self.pending.pop(step, None)
        if pending:
            keys = [reader.key(row) for row in pending]
            if start_after in keys:
                pending = pending[keys.index(start_after) + 1:]
            self.buffered[step] = pending + self.buffered.get(step, [])
        while True:
            rows = self._take(step, size)
            if not rows:
                break
            self.pending[step] = rows
            yield rows
        self.pending.pop(step, None)

    def _take(self, step, size):
        """Return the section's next `size` rows (fewer at its end), reading dump chunks as needed."""
        taken = []
        while len(taken) < size:
            rows = self.buffered.pop(step, None) or self._next_rows(step)
            if rows is None:
                break
            wanted = size - len(taken)
            taken = rows[:wanted] if not taken else taken + rows[:wanted]
            if len(rows) > wanted:
                self.buffered[step] = rows[wanted:]
        return taken

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


# --- the strategies: the copy's, stopped where the dump breaks ------------------------------------


def run_from_the_dump(runner, feed, step, result, run):
    """Run a step whose rows come from the dump; once the dump turns out cut short or damaged (standard
    input is verified as it is read), stop as an interrupted copy stops.

    The step that meets the damage fails, keeping its committed chunks (the rows before the damage,
    each chunk verified before it was handed out); the steps after it are not started, since the dump
    holds nothing more for them. `--resume` with the whole dump continues from there.
    """
    if feed.broken is not None:
        result.status, result.blocked_by = Status.BLOCKED, feed.broken_at or ""
        result.message = f"not started: {describe_dump_end(feed)}"
        result.source_rows = step.source_rows
        runner.broken[(step.dest, step.model)] = step.label
        return
    try:
        run(step, result)
    except DumpError as exc:
        if result.source_rows is None:
            result.source_rows = step.source_rows
        runner.mark_failed(step, result, what_broke(exc))


def what_broke(exc):
    """Return the DumpError's message without the reader's advice to export again: an import that has
    written rows is finished with --resume, which the command's last message says."""
    text = str(exc)
    for hint in (TRUNCATED_HINT, DAMAGED_HINT):
        text = text.replace(hint, "")
    return text


def describe_stop(feed, result):
    """Say what an import the dump stopped holds: the tables written whole (and which of them still
    lack the foreign keys set at the end), the one written in part, those not started."""
    whole = [r for r in result.results if r.status is Status.OK]
    failed = [r for r in result.results if r.status is Status.FAILED]
    blocked = [r for r in result.results if r.status is Status.BLOCKED]
    parts = [f"{_tables(whole)} imported whole"]
    unlinked = [r.step.label for r in whole if r.step.deferred_fields]
    if unlinked:
        parts[0] += f" ({len(unlinked)} of them without the foreign keys set at the end: {', '.join(unlinked)})"
    for done in failed:
        planned = f" of its {done.source_rows:,}" if done.source_rows is not None else ""
        parts.append(f"{done.step.label} holds the first {done.copied + done.resumed_rows:,} rows{planned}")
    if blocked:
        parts.append(f"{_tables(blocked)} not started")
    return f"Import stopped: {what_broke(feed.broken)}; " + "; ".join(parts)


def _tables(results):
    return f"{len(results)} table{'s were' if len(results) != 1 else ' was'}"


def describe_dump_end(feed):
    """Say where the dump stopped being readable."""
    if feed.broken_at:
        return f"the dump could not be read past the rows of {feed.broken_at}"
    return "the dump could not be read as far as its rows"


class DumpCopyStrategy(CopyStrategy):
    """The copy's strategy, reading the rows from the dump (rows: a DumpRows); see run_from_the_dump."""

    def run(self, step, result):
        run_from_the_dump(self.runner, self.rows.feed, step, result, super().run)

    def post_steps(self, steps):
        """The deferred foreign keys, unless the dump broke: as after an interrupt, --resume sets them."""
        if self.rows.feed.broken is not None:
            return ()
        return super().post_steps(steps)


class DumpRemapStrategy(RemapStrategy):
    """Match content types / permissions by natural key as a copy does, after putting the dump's rows
    of the model into the stand-in source, where the natural keys are read."""

    def __init__(self, runner, rows):
        super().__init__(runner)
        self.rows, self.loaded = rows, set()

    def run(self, step, result):
        run_from_the_dump(self.runner, self.rows.feed, step, result, self.match)

    def match(self, step, result):
        if step.model not in self.loaded:  # a second destination matches the rows loaded for the first
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
        plan, DumpCopyStrategy, chunk_size=chunk_size or conf.get("CHUNK_SIZE"), on_progress=on_progress, jobs=1,
        retries=retries, truncate=truncate, resume=resume, debug=debug, writer=writer, rows=rows,
    )
    runner.remapper = DumpRemapStrategy(runner, rows)
    result = runner.run()
    for done in result.results:
        if done.source_rows is None and done.step.kind != REMAP:
            # Not started (an interrupt): the reconciliation takes the dump's count, not the stand-in's.
            done.source_rows = done.step.source_rows
    return result


def verify_before_writing(path):
    """Read a dump file whole before any write, verifying every chunk, model and the trailer; return
    {label: rows} it holds. Standard input cannot be read twice: it is verified as it is imported (None)."""
    if str(path) == "-":
        return None
    return verify(path)


def use_tz_problem(header):
    """Return why the dump's datetimes do not fit this project (USE_TZ differs), or None."""
    if bool(header["use_tz"]) == bool(settings.USE_TZ):
        return None
    was, now = ("aware (USE_TZ = True)", "naive") if header["use_tz"] else ("naive (USE_TZ = False)", "aware")
    return (f"the dump's datetimes are {was}, this project's are {now}: import it into a project with the "
            f"same USE_TZ setting")


__all__ = [
    "DumpFeed", "DumpRemapStrategy", "DumpRows", "build_import_plan", "describe_dump", "describe_stop",
    "dump_consistency", "open_dump", "run_import", "shadow_source", "use_tz_problem", "verify_before_writing",
]
