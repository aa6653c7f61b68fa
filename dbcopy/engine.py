"""Copy a CopyPlan: the copy strategy (one table's rows in keyset chunks or one stream) and run_plan()."""

from dataclasses import replace
from functools import partial

from django.db import DatabaseError, models, transaction
from django.db.models import Case, Max, Value, When

from . import conf
from .dialects.base import StreamPlan
from .diagnose import explain_rejection, first_line
from .exceptions import CopyError, DbcopyError, SourceFault
from .plan import COPY, REMAP, REPLACE, count_tables, describe_range, relation_target, splittable
from .rows import RowReader, RowWriter, pk_fields, within_key_range
from .runner import Runner
from .storage import column_field

# Drivers refuse some values before the server sees them (psycopg2: ValueError for NUL characters).
WRITE_ERRORS = (DatabaseError, ValueError, TypeError)
WRITERS = ("fast", "bulk_create")


def run_plan(plan, chunk_size=None, truncate=False, on_progress=None, writer="fast", jobs=1, retries=3,
             resume=False, debug=False):
    """Copy every step of the plan and return a RunResult with one StepResult per step.

    writer: "fast" (the destination's bulk-load path) or "bulk_create" (Django's insert compiler, the
    reference). jobs: steps copied at once, each worker with its own connections (and big tables split
    into key ranges, see plan.range_count). resume: continue an interrupted copy into a partly filled
    destination.
    """
    if writer not in WRITERS:
        raise DbcopyError(f"Unknown writer {writer!r}: choose one of {', '.join(WRITERS)}")
    runner = Runner(
        plan, CopyStrategy, chunk_size=chunk_size or conf.get("CHUNK_SIZE"), on_progress=on_progress,
        jobs=jobs, retries=retries, truncate=truncate, resume=resume, debug=debug, writer=writer,
    )
    return runner.run()


def source_chunks(alias, chunks):
    """Yield the reader's chunks, marking a database error while reading as the source's fault."""
    iterator = iter(chunks)
    while True:
        try:
            rows = next(iterator)
        except StopIteration:
            return
        except DatabaseError as exc:
            raise SourceFault(alias, exc) from exc
        yield rows


class DatabaseRows:
    """Where the copy strategy reads a table's rows: the source database (an import reads a dump)."""

    can_stream = True  # the dialects' database-to-database streams may take the table
    can_split = True  # a table may be read as key ranges, each by a worker of its own

    def count(self, step):
        """Return the source's rows of the step (of its key range, for a part of a split table)."""
        return within_key_range(step.model._base_manager.using(step.source), step.key_range).count()

    def count_tables(self, steps):
        """Return {step: source rows} of the steps that copy rows, counted in one query per source."""
        copying = [step for step in steps if step.kind != REMAP]
        counts = {}
        for source in dict.fromkeys(step.source for step in copying):
            models = [step.model for step in copying if step.source == source]
            counts.update({(source, model): rows for model, rows in count_tables(source, models).items()})
        return {step: counts[(step.source, step.model)] for step in copying}

    def key_at(self, step, position):
        """Return the source's primary key at `position` (0-based) in key order: one OFFSET, once."""
        reader = RowReader(step.model, step.source, pk_fields(step.model), key_range=step.key_range)
        return tuple(reader.queryset().values_list(*reader.key_columns())[position:position + 1].get())

    def chunks(self, step, reader, size, start_after=None):
        return source_chunks(step.source, reader.chunks(size, start_after=start_after))

    def finish(self, step):
        """Return the rows the source held, where reading them told (None: as counted at the start)."""
        return None

    def deferred_chunks(self, step, reader, fields, size):
        """Yield chunks of (key..., fields) of the source rows that hold a value in one of the fields."""
        any_set = models.Q()
        for field in fields:
            any_set |= models.Q(**{f"{field.attname}__isnull": False})
        yield from source_chunks(step.source, reader.chunks(size, extra_filter=any_set))

    def deferred_counts(self, step):
        """Return {attname: source rows holding a value} of the deferred FKs, where reading told."""
        return None


class CopyStrategy:
    """Move one table's rows into the destination: stream it, or insert keyset chunks.

    rows: where the rows come from (DatabaseRows: the source; importer.DumpRows: a dump file).
    """

    def __init__(self, runner, writer="fast", rows=None):
        self.runner, self.writer = runner, writer
        self.rows = rows or DatabaseRows()

    @property
    def chunk_size(self):
        return self.runner.chunk_size

    @property
    def may_stream(self):
        """Whether tables may take the database-to-database streams (the fast writer, rows from a database)."""
        return self.writer == "fast" and self.rows.can_stream

    @property
    def can_split(self):
        """Whether the runner may copy a big table as key ranges (the rows come from a database)."""
        return getattr(self.rows, "can_split", False)

    def count_tables(self, steps):
        """Return {step: source rows} counted on this thread's connection (the run's snapshot) in as few
        queries as the source allows; {} where the rows do not come from a database."""
        counting = getattr(self.rows, "count_tables", None)
        if counting is None or not steps:
            return {}
        self.runner.reader(steps[0])
        return counting(steps)

    def run(self, step, result):
        """Copy the step's rows; on a retry, continue after the last committed key."""
        runner = self.runner
        runner.reader(step)
        if not result.method:  # the first attempt: look at the destination once
            if not self.start(step, result):
                return
        if result.last_key is None and self.may_stream and self.stream(step, result):
            result.method = "stream"
            return
        if self.writer == "bulk_create":
            result.path = "Django's insert compiler (--writer bulk_create)"
        result.method = self.writer
        runner.await_parents(step)  # chunks are checked row by row: the rows they refer to come first
        self.copy_chunks(step, result)
        self.finish_reading(step, result)

    def streams(self, step):
        """Return whether the step's table takes a database-to-database stream (what the plan says)."""
        return self.may_stream and bool(stream_plan(self.runner.dialect(step.dest), step, self.runner.reader(step)))

    def loads_before_parents(self, step):
        """Return whether the step's table may load while the tables its foreign keys need still do: a
        stream whose destination checks those keys once, after the load, where the check can wait."""
        return self.may_stream and self.runner.dialect(step.dest).checks_references_after_loading(step)

    def finish_reading(self, step, result):
        """Take the source's row count (and its deferred FK counts) from the reading, where it tells."""
        read = self.rows.finish(step)
        if read is not None:
            result.source_rows = read
        result.source_deferred = self.rows.deferred_counts(step)

    def start(self, step, result):
        """Prepare the table (or key range); return False if there is nothing left to copy (--resume of a
        finished one)."""
        result.method = self.writer
        counted = self.runner.snapshot_count(step)  # every table, counted at once in the run's snapshot
        result.source_rows = counted if counted is not None else self.rows.count(step)
        dest_rows = within_key_range(step.model._base_manager.using(step.dest), step.key_range).count()
        if self.runner.resume and dest_rows:
            return self.resume_from(step, result, dest_rows)
        if step.kind == REPLACE:
            self.replace_seeded(step)
            dest_rows = 0
        result.dest_rows_before = dest_rows
        return True

    def resume_from(self, step, result, dest_rows):
        """Continue after the destination's rows, which an interrupted copy wrote in source key order."""
        result.resumed_rows = dest_rows
        if dest_rows >= result.source_rows:
            result.method = "resumed"
            self.finish_reading(step, result)
            return False
        if step.key_range is not None:
            result.last_key = self.range_resume_point(step, dest_rows)
            return True
        reader = RowReader(step.model, step.source, pk_fields(step.model))
        # The destination holds the first `dest_rows` keys in the source's order (chunks commit in
        # order), so the last of them is the source's key at that position.
        boundary = self.rows.key_at(step, dest_rows - 1)
        if not reader.rows_at(step.dest, [boundary], self.runner.remaps.keys(step).to_dest) or (
            self.holds_keys_after(step, boundary)
        ):
            raise self.not_a_prefix(step, dest_rows, "copy the table again with --truncate")
        result.last_key = tuple(boundary)
        return True

    def holds_keys_after(self, step, boundary):
        """Return whether the destination holds rows after the boundary key, where both databases order
        the keys alike (one integer column): key ranges an earlier run copied apart, out of order."""
        if not splittable(step):
            return False
        return within_key_range(step.model._base_manager.using(step.dest), (boundary[0], None)).exists()

    def range_resume_point(self, step, dest_rows):
        """Return the key after which a key range continues: the destination's last key in the range.

        A range commits its chunks in key order (the ranges of a table commit apart, in any order), so
        the destination holds the source's rows of the range up to its last key, as many as the source.
        """
        attname = step.model._meta.pk.attname
        at_dest = within_key_range(step.model._base_manager.using(step.dest), step.key_range)
        last = at_dest.aggregate(last=Max(attname))["last"]
        if self.rows.count(replace(step, key_range=(step.key_range[0], last))) != dest_rows:
            raise self.not_a_prefix(
                step, dest_rows, "copy the table again with --truncate, or resume with the --jobs of the interrupted run"
            )
        return (last,)

    def not_a_prefix(self, step, dest_rows, fix):
        where = f" with {describe_range(step.key_range)}" if step.key_range is not None else ""
        return CopyError(
            step.label, step.dest,
            reason=f"its {dest_rows:,} rows{where} are not the first {dest_rows:,} of the source in primary-key "
                   "order, so --resume cannot tell where the interrupted copy stopped",
            fix=fix,
        )

    # --- chunks --------------------------------------------------------------------------------

    def copy_chunks(self, step, result):
        runner = self.runner
        reader = RowReader(step.model, step.source, step.fields, key_range=step.key_range)
        dialect = runner.dialect(step.dest)
        writer = RowWriter(step, runner.remaps, dialect.connection, for_compiler=self.writer == "bulk_create")
        for rows in self.rows.chunks(step, reader, self.chunk_size, start_after=result.last_key):
            prepared = writer.prepare(rows, reader.pk_value)
            try:
                with transaction.atomic(using=step.dest):
                    dialect.write_rows(step, prepared, self.writer)
            except WRITE_ERRORS as exc:
                if runner.is_transient(step, exc):
                    raise  # the runner reconnects and retries from result.last_key
                self.insert_one_by_one(step, reader, rows, prepared, exc, result)
            result.copied += len(rows)
            result.last_key = reader.key(rows[-1])
            runner.progress("chunk", step, rows=len(rows), copied=result.copied)

    def stream(self, step, result):
        """Stream the table database-to-database where the dialect can; False to copy chunk by chunk."""
        if step.kind != COPY:
            result.path = "replaces the rows migrate created, in chunks"
            return False
        runner = self.runner
        plan = stream_plan(runner.dialect(step.dest), step, runner.reader(step))
        result.path = plan.how
        if not plan:
            return False
        translations = {f: runner.remaps.mapping(step, f) for f in step.fields if f.is_relation}
        translations = {f: mapping for f, mapping in translations.items() if mapping is not None}
        if any(self.has_unmapped_ids(step, f, mapping) for f, mapping in translations.items()):
            result.path = "a content type or permission id the destination lacks: in chunks, which name the row"
            return False
        on_rows = lambda copied: runner.progress("chunk", step, rows=None, copied=copied)  # noqa: E731
        result.copied = 0  # a stream is one transaction: a retry starts the table again
        try:
            copied = runner.dialect(step.dest).stream_table(
                step, runner.reader(step), on_rows, translations,
                parents_loaded=partial(runner.await_parents, step),
            )
        except WRITE_ERRORS as exc:
            if runner.is_transient(step, exc) or isinstance(exc, SourceFault):
                raise
            # Nothing was committed; the chunked path finds and names the row the destination refuses.
            result.path = f"streaming failed ({first_line(exc)}); copied in chunks"
            runner.on_progress("note", step, message=f"streaming failed ({first_line(exc)}); copying in chunks")
            return False
        if copied is None:
            result.path = "the stream was not available at run time (a value only the value-by-value path " \
                          "stores alike, or LOCAL INFILE refused): copied in chunks"
            return False
        result.copied = copied
        return True

    def has_unmapped_ids(self, step, field, mapping):
        """Return whether the source column holds an id the map lacks (a dangling reference)."""
        rows = within_key_range(step.model._base_manager.using(step.source), step.key_range)
        rows = rows.filter(**{f"{field.attname}__isnull": False})
        return rows.exclude(**{f"{field.attname}__in": list(mapping)}).exists()

    def insert_one_by_one(self, step, reader, rows, prepared, chunk_error, result):
        """Find the row that made an insert chunk fail, counting the rows that go in on their own."""
        dialect = self.runner.dialect(step.dest)

        def counted(row):
            result.copied += 1
            result.last_key = reader.key(row)
            self.runner.on_progress("chunk", step, rows=1, copied=result.copied)

        write = lambda values: dialect.write_rows(step, values, self.writer)  # noqa: E731
        find_rejected_row(self.runner, step, reader, rows, prepared, chunk_error, write, counted)

    def replace_seeded(self, step):
        """Delete the rows `migrate` put in a seeded table (the default Site) before copying the source's."""
        dialect = self.runner.dialect(step.dest)
        with transaction.atomic(using=step.dest):
            dialect.execute(dialect.delete_all_sql(step.table))

    # --- after every step ----------------------------------------------------------------------

    def post_steps(self, steps):
        """Yield (step, action, what it does) for the runner to run once every step has run."""
        for step in steps:
            if step.deferred_fields:
                yield step, self.fill_deferred, "setting the deferred foreign keys of"

    def fill_deferred(self, step, result):
        """Set the nullable FKs that were inserted as NULL, now that the rows they point at exist.

        Also for a step that failed part-way: its copied rows get their references, except those to
        a table whose copy failed (that reference stays NULL, and the reconciliation says so).
        """
        runner = self.runner
        runner.reader(step)
        # A failed step is "broken" itself, so its self-references stay NULL too: their targets may be missing.
        fields = [f for f in step.deferred_fields if not runner.broken.get((step.dest, relation_target(f)))]
        if not fields:
            return
        reader = RowReader(step.model, step.source, pk_fields(step.model) + fields)
        manager = step.model._base_manager.db_manager(step.dest)
        translators = [runner.remaps.translator(step, f) or (lambda v: v) for f in fields]
        width = len(reader.pk_fields)
        dest_key = runner.remaps.keys(step).to_dest  # a primary key that is a content type id differs there
        batch_size = _update_batch_size(step.dest, len(fields))
        for rows in self.rows.deferred_chunks(step, reader, fields, self.chunk_size):
            for batch in batches(rows, batch_size):
                at_dest = [(dest_key(reader.key(row)), row) for row in batch]
                at_dest = [(key, row) for key, row in at_dest if key is not None]
                if not at_dest:
                    continue
                updates = {}
                for i, (field, translate) in enumerate(zip(fields, translators)):
                    column = column_field(field)  # a custom field's stand-in prepares the stored value
                    whens = [When(reader.key_is(key), then=Value(translate(row[width + i]), output_field=column))
                             for key, row in at_dest]
                    updates[field.attname] = Case(*whens, output_field=column)
                # QuerySet.update() sends no signals and leaves auto_now columns alone.
                with transaction.atomic(using=step.dest):
                    reader.with_keys(manager, [key for key, _ in at_dest]).update(**updates)
            runner.checkpoint()


def stream_plan(dest_dialect, step, source_dialect):
    """Return the dialects' StreamPlan for the step: how its table streams, or why it goes in chunks."""
    if step.kind == REMAP:
        return StreamPlan(False, "matched by natural key, ids translated")
    if step.kind == REPLACE:
        return StreamPlan(False, "replaces the rows migrate created, in chunks")
    return dest_dialect.stream_plan(step, source_dialect)


def stream_plans(plan, writer="fast"):
    """Return {step: StreamPlan} for every step of the plan, as a copy with this writer takes it."""
    from .dialects import dialect_for

    if writer == "bulk_create":
        return {step: StreamPlan(False, "Django's insert compiler (--writer bulk_create)") for step in plan.steps}
    return {step: stream_plan(dialect_for(step.dest), step, dialect_for(step.source)) for step in plan.steps}


def find_rejected_row(runner, step, reader, rows, prepared, chunk_error, write, on_row=None):
    """Write the failed chunk row by row with `write`, keeping the good rows; raise CopyError for
    the first row the destination refuses."""
    dialect = runner.dialect(step.dest)
    for row, values in zip(rows, prepared):
        try:
            with transaction.atomic(using=step.dest):
                write([values])
        except WRITE_ERRORS as exc:
            if runner.is_transient(step, exc):
                raise
            field, reason, fix = explain_rejection(step, dialect, row, values, exc)
            raise CopyError(
                step.label, step.dest, reader.pk_value(row), field and field.name, reason, fix
            ) from exc
        if on_row:
            on_row(row)
    # Every row went in on its own: the chunk as a whole was refused (size, lock, deadlock).
    raise CopyError(step.label, step.dest, reason=first_line(chunk_error), fix="lower --chunk-size and retry")


def batches(items, size):
    """Yield consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _update_batch_size(alias, field_count):
    # Each row costs two parameters per CASE plus one in the IN list; SQLite allows 999 per query.
    from django.db import connections

    ops = connections[alias].ops
    probe = [None] * 1000
    limit = ops.bulk_batch_size([None] * (2 * field_count + 1), probe) or 1000
    return max(1, min(500, limit))
