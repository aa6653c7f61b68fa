"""Copy a CopyPlan: the copy strategy (one table's rows in keyset chunks or one stream) and run_plan()."""

from django.db import DatabaseError, models, transaction
from django.db.models import Case, Value, When

from . import conf
from .diagnose import explain_rejection, first_line
from .exceptions import CopyError, DbcopyError, SourceFault
from .plan import COPY, REPLACE, relation_target
from .rows import RowReader, RowWriter, pk_fields
from .runner import Runner
from .storage import column_field

# Drivers refuse some values before the server sees them (psycopg2: ValueError for NUL characters).
WRITE_ERRORS = (DatabaseError, ValueError, TypeError)
WRITERS = ("fast", "bulk_create")


def run_plan(plan, chunk_size=None, truncate=False, on_progress=None, writer="fast", jobs=1, retries=3,
             resume=False, debug=False):
    """Copy every step of the plan and return a RunResult with one StepResult per step.

    writer: "fast" (the destination's bulk-load path) or "bulk_create" (Django's insert compiler, the
    reference). jobs: steps copied at once, each worker with its own connections. resume: continue
    an interrupted copy into a partly filled destination.
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

    def count(self, step):
        return step.model._base_manager.using(step.source).count()

    def key_at(self, step, position):
        """Return the source's primary key at `position` (0-based) in key order: one OFFSET, once."""
        reader = RowReader(step.model, step.source, pk_fields(step.model))
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

    def run(self, step, result):
        """Copy the step's rows; on a retry, continue after the last committed key."""
        runner = self.runner
        runner.reader(step)
        if not result.method:  # the first attempt: look at the destination once
            if not self.start(step, result):
                return
        if result.last_key is None and self.writer == "fast" and self.rows.can_stream and self.stream(step, result):
            result.method = "stream"
            return
        result.method = self.writer
        self.copy_chunks(step, result)
        self.finish_reading(step, result)

    def finish_reading(self, step, result):
        """Take the source's row count (and its deferred FK counts) from the reading, where it tells."""
        read = self.rows.finish(step)
        if read is not None:
            result.source_rows = read
        result.source_deferred = self.rows.deferred_counts(step)

    def start(self, step, result):
        """Prepare the table; return False if there is nothing left to copy (--resume of a finished table)."""
        result.method = self.writer
        result.source_rows = self.rows.count(step)
        dest_rows = step.model._base_manager.using(step.dest).count()
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
        reader = RowReader(step.model, step.source, pk_fields(step.model))
        # The destination holds the first `dest_rows` keys in the source's order (chunks commit in
        # order), so the last of them is the source's key at that position.
        boundary = self.rows.key_at(step, dest_rows - 1)
        if not reader.rows_at(step.dest, [boundary], self.runner.remaps.keys(step).to_dest):
            raise CopyError(
                step.label, step.dest,
                reason=f"its {dest_rows:,} rows are not the first {dest_rows:,} of the source in primary-key "
                       "order, so --resume cannot tell where the interrupted copy stopped",
                fix="copy the table again with --truncate",
            )
        result.last_key = tuple(boundary)
        return True

    # --- chunks --------------------------------------------------------------------------------

    def copy_chunks(self, step, result):
        runner = self.runner
        reader = RowReader(step.model, step.source, step.fields)
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
            return False
        runner = self.runner
        translations = {f: runner.remaps.mapping(step, f) for f in step.fields if f.is_relation}
        translations = {f: mapping for f, mapping in translations.items() if mapping is not None}
        if any(self.has_unmapped_ids(step, f, mapping) for f, mapping in translations.items()):
            return False  # the value-by-value path names the row with the dangling id
        on_rows = lambda copied: runner.progress("chunk", step, rows=None, copied=copied)  # noqa: E731
        result.copied = 0  # a stream is one transaction: a retry starts the table again
        try:
            copied = runner.dialect(step.dest).stream_table(step, runner.reader(step), on_rows, translations)
        except WRITE_ERRORS as exc:
            if runner.is_transient(step, exc) or isinstance(exc, SourceFault):
                raise
            # Nothing was committed; the chunked path finds and names the row the destination refuses.
            runner.on_progress("note", step, message=f"streaming failed ({first_line(exc)}); copying in chunks")
            return False
        if copied is None:
            return False
        result.copied = copied
        return True

    def has_unmapped_ids(self, step, field, mapping):
        """Return whether the source column holds an id the map lacks (a dangling reference)."""
        rows = step.model._base_manager.using(step.source).filter(**{f"{field.attname}__isnull": False})
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
