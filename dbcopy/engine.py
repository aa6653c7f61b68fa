"""Execute a CopyPlan: truncate if asked, copy each step in keyset chunks, fix cycles, reset sequences."""

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass

from django.db import DatabaseError, connections, models, transaction
from django.db.models import Case, Value, When

from . import conf
from .dialects import dialect_for
from .exceptions import CopyError, DbcopyError
from .plan import COPY, REMAP, REPLACE, relation_target
from .diagnose import explain_rejection, first_line
from .rows import RowReader, RowWriter, Remaps, pk_fields

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
# Drivers refuse some values before the server sees them (psycopg2: ValueError for NUL characters).
WRITE_ERRORS = (DatabaseError, ValueError, TypeError)


@dataclass
class StepResult:
    step: object
    status: str = OK
    copied: int = 0
    message: str = ""
    seconds: float = 0.0
    dest_rows_before: int = 0  # rows the destination table already held (--append)
    method: str = ""  # "stream", "fast", "bulk_create", "remap" or "sync": how the rows travelled
    counts: object = None  # sync only: inserted, updated, deleted, unchanged, gone, watermark


@dataclass
class CopyResult:
    results: list

    def for_step(self, step):
        return next((r for r in self.results if r.step is step), None)

    @property
    def failed(self):
        return [r for r in self.results if r.status == FAILED]


def _no_progress(event, step, **data):
    """Ignore progress events (the default when nobody listens)."""


def run_plan(plan, chunk_size=None, truncate=False, on_progress=None, writer="fast", jobs=1):
    """Copy every step of the plan and return one StepResult per step.

    writer: "fast" (the destination's bulk-load path) or "bulk_create" (Django's insert compiler, the
    reference). jobs: steps copied at once, each worker with its own connections.
    """
    if writer not in WRITERS:
        raise DbcopyError(f"Unknown writer {writer!r}: choose one of {', '.join(WRITERS)}")
    copier = Copier(plan, chunk_size or conf.get("CHUNK_SIZE"), on_progress or _no_progress, writer)
    return copier.run(truncate, max(1, jobs))


WRITERS = ("fast", "bulk_create")


class Copier:
    def __init__(self, plan, chunk_size, on_progress, writer="fast"):
        self.plan, self.chunk_size, self.progress, self.writer = plan, chunk_size, on_progress, writer
        self.remaps = Remaps()
        self.results = {}
        self.broken = {}  # (dest, model) -> label of the failed step it depends on
        self.local = threading.local()

    def dialect(self, alias):
        """Return this thread's dialect for the alias: Django connections belong to one thread each."""
        cache = self.local.__dict__.setdefault("dialects", {})
        connection = connections[alias]
        if cache.get(alias) is None or cache[alias].connection is not connection:
            cache[alias] = dialect_for(alias)
        dialect = cache[alias]
        if alias in self.plan.dests:
            # Session settings die with the server connection, which Django may have reopened.
            connection.ensure_connection()
            if getattr(connection, "_dbcopy_session_of", None) is not connection.connection:
                dialect.prepare_session()
                connection._dbcopy_session_of = connection.connection
        return dialect

    # --- the run -------------------------------------------------------------------------------

    def run(self, truncate, jobs=1):
        if truncate:
            for dest in self.plan.dests:
                self.truncate(dest)
        steps = list(self.plan.steps)
        units = _units(steps)
        if jobs == 1:
            for unit in units:
                self.run_unit(unit)
        else:
            self.run_parallel(units, jobs)
        for step in steps:
            if step.deferred_fields and self.results[step].status == OK:
                self.fill_deferred(step)
        self.reset_sequences()
        return CopyResult([self.results[step] for step in steps])

    def run_unit(self, unit):
        if unit[0].group is None:
            self.run_step(unit[0])
        else:
            self.run_group(unit)

    def run_parallel(self, units, jobs):
        """Run units on `jobs` threads, each once every unit it depends on has finished."""
        needs = _unit_dependencies(units)
        pending, running, done = list(range(len(units))), {}, set()
        # SQLite takes one writer at a time: more would only wait on its lock.
        writers = {dest: self.dialect(dest).max_concurrent_writers for dest in self.plan.dests}
        busy = {dest: 0 for dest in self.plan.dests}
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dbcopy") as pool:
            while pending or running:
                for index in list(pending):
                    dest = units[index][0].dest
                    if len(running) >= jobs or not needs[index] <= done or busy[dest] >= writers[dest]:
                        continue
                    pending.remove(index)
                    busy[dest] += 1
                    running[pool.submit(self.run_unit_in_worker, units[index])] = index
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = running.pop(future)
                    busy[units[index][0].dest] -= 1
                    done.add(index)
                    future.result()  # a bug in a worker surfaces here, not silently

    def run_unit_in_worker(self, unit):
        try:
            self.run_unit(unit)
        finally:
            connections.close_all()  # this thread's connections; the main thread keeps its own

    def run_step(self, step):
        blocker = self.failed_dependency(step)
        if blocker:
            self.results[step] = StepResult(step, SKIPPED, message=f"not copied: it depends on {blocker}, which failed")
            self.broken[(step.dest, step.model)] = blocker
            self.progress("skipped", step, message=self.results[step].message)
            return
        self.progress("start", step, total=step.source_rows)
        result = StepResult(step)
        self.results[step] = result
        started = time.monotonic()
        try:
            if step.kind == REMAP:
                result.method = "remap"
                result.copied = self.remap(step)
            else:
                if step.kind == REPLACE:
                    self.replace_seeded(step)
                result.dest_rows_before = step.model._base_manager.using(step.dest).count()
                self.copy_rows(step, result)
        except CopyError as exc:
            self.mark_failed(step, result, str(exc))
        finally:
            result.seconds = time.monotonic() - started
        self.progress("finish", step, result=result)

    def run_group(self, group):
        """Copy a cycle of NOT NULL foreign keys with constraint checks deferred until it is whole."""
        dialect = self.dialect(group[0].dest)
        try:
            with dialect.constraints_deferred([s.table for s in group]):
                for step in group:
                    self.run_step(step)
                failed = [s for s in group if self.results[s].status != OK]
                if failed:
                    raise CopyError(failed[0].label, failed[0].dest, reason=self.results[failed[0]].message)
        except (DatabaseError, CopyError) as exc:
            labels = ", ".join(s.label for s in group)
            message = f"the cycle {labels} could not be copied with deferred constraint checks: {first_line(exc)}"
            for step in group:
                self.mark_failed(step, self.results[step], message)

    def mark_failed(self, step, result, message):
        result.status, result.message = FAILED, message
        self.broken[(step.dest, step.model)] = step.label
        self.progress("error", step, message=message)

    def failed_dependency(self, step):
        for target in required_targets(step):
            blocker = self.broken.get((step.dest, target))
            if blocker and target is not step.model:
                return blocker
        return None

    # --- copying rows --------------------------------------------------------------------------

    def copy_rows(self, step, result):
        if self.writer == "fast" and self.stream(step, result):
            result.method = "stream"
            return
        result.method = self.writer
        reader = RowReader(step.model, step.source, step.fields)
        dialect = self.dialect(step.dest)
        writer = RowWriter(step, self.remaps, dialect.connection, for_compiler=self.writer == "bulk_create")
        for rows in reader.chunks(self.chunk_size):
            prepared = writer.prepare(rows, reader.pk_value)
            try:
                with transaction.atomic(using=step.dest):
                    dialect.write_rows(step, prepared, self.writer)
            except WRITE_ERRORS as exc:
                self.insert_one_by_one(step, reader, rows, prepared, exc, result)
            result.copied += len(rows)
            self.progress("chunk", step, rows=len(rows), copied=result.copied)

    def stream(self, step, result):
        """Stream the table database-to-database where the dialect can; False to copy chunk by chunk."""
        if step.kind != COPY:
            return False
        translations = {f: self.remaps.mapping(step, f) for f in step.fields if f.is_relation}
        translations = {f: mapping for f, mapping in translations.items() if mapping is not None}
        if any(self.has_unmapped_ids(step, f, mapping) for f, mapping in translations.items()):
            return False  # the value-by-value path names the row with the dangling id
        on_rows = lambda copied: self.progress("chunk", step, rows=None, copied=copied)  # noqa: E731
        try:
            copied = self.dialect(step.dest).stream_table(step, self.dialect(step.source), on_rows, translations)
        except WRITE_ERRORS as exc:
            # Nothing was committed; the chunked path finds and names the row the destination refuses.
            self.progress("note", step, message=f"streaming failed ({first_line(exc)}); copying in chunks")
            return False
        if copied is None:
            return False
        result.copied = copied
        return True

    def has_unmapped_ids(self, step, field, mapping):
        """Return whether the source column holds an id the map lacks (a dangling reference)."""
        rows = step.model._base_manager.using(step.source).filter(**{f"{field.attname}__isnull": False})
        return rows.exclude(**{f"{field.attname}__in": list(mapping)}).exists()

    def find_rejected_row(self, step, reader, rows, prepared, chunk_error, write, on_row=None):
        """Write the failed chunk row by row with `write`, keeping the good rows; raise CopyError for
        the first row the destination refuses."""
        dialect = self.dialect(step.dest)
        for row, values in zip(rows, prepared):
            try:
                with transaction.atomic(using=step.dest):
                    write([values])
            except WRITE_ERRORS as exc:
                field, reason, fix = explain_rejection(step, dialect, row, values, exc)
                raise CopyError(
                    step.label, step.dest, reader.pk_value(row), field and field.name, reason, fix
                ) from exc
            if on_row:
                on_row()
        # Every row went in on its own: the chunk as a whole was refused (size, lock, deadlock).
        raise CopyError(step.label, step.dest, reason=first_line(chunk_error), fix="lower --chunk-size and retry")

    def insert_one_by_one(self, step, reader, rows, prepared, chunk_error, result):
        """Find the row that made an insert chunk fail, counting the rows that go in on their own."""
        dialect = self.dialect(step.dest)

        def counted():
            result.copied += 1
            self.progress("chunk", step, rows=1, copied=result.copied)

        write = lambda values: dialect.write_rows(step, values, self.writer)  # noqa: E731
        self.find_rejected_row(step, reader, rows, prepared, chunk_error, write, counted)

    def replace_seeded(self, step):
        """Delete the rows `migrate` put in a seeded table (the default Site) before copying the source's."""
        dialect = self.dialect(step.dest)
        with transaction.atomic(using=step.dest):
            dialect.execute(dialect.delete_all_sql(step.table))

    # --- content types and permissions ---------------------------------------------------------

    def remap(self, step):
        """Match content types / permissions by natural key, add the missing ones, record id maps."""
        natural_key = _NATURAL_KEYS[step.model._meta.label_lower]
        source_rows = natural_key(step.model._base_manager.using(step.source), self.remaps, step, source=True)
        dest_rows = natural_key(step.model._base_manager.using(step.dest), self.remaps, step, source=False)
        existing = {key: pk for pk, key, _ in dest_rows}
        missing = [(key, values) for _, key, values in source_rows if key not in existing]
        if missing:
            fields = [step.model._meta.get_field(name) for name in missing[0][1]]
            connection = connections[step.dest]
            rows = [[f.get_db_prep_save(v, connection) for f, v in zip(fields, values.values())] for _, values in missing]
            with transaction.atomic(using=step.dest):
                self.dialect(step.dest).insert_rows(step.table, fields, rows)
            dest_rows = natural_key(step.model._base_manager.using(step.dest), self.remaps, step, source=False)
            existing = {key: pk for pk, key, _ in dest_rows}
        self.remaps.set(step.dest, step.model, {pk: existing[key] for pk, key, _ in source_rows})
        return len(missing)

    # --- cycles, truncation, sequences ---------------------------------------------------------

    def fill_deferred(self, step):
        """Set the nullable FKs that were inserted as NULL, now that the rows they point at exist."""
        fields = [f for f in step.deferred_fields if not self.broken.get((step.dest, relation_target(f)))]
        if not fields:
            return
        reader = RowReader(step.model, step.source, pk_fields(step.model) + fields)
        any_set = models.Q()
        for field in fields:
            any_set |= models.Q(**{f"{field.attname}__isnull": False})
        manager = step.model._base_manager.db_manager(step.dest)
        translators = [self.remaps.translator(step, f) or (lambda v: v) for f in fields]
        width = len(reader.pk_fields)
        for rows in reader.chunks(self.chunk_size, extra_filter=any_set):
            for batch in _batches(rows, _update_batch_size(step.dest, len(fields))):
                keys = [reader.pk_value(row) for row in batch]
                updates = {}
                for i, (field, translate) in enumerate(zip(fields, translators)):
                    whens = [When(pk=key, then=Value(translate(row[width + i]), output_field=field)) for key, row in zip(keys, batch)]
                    updates[field.attname] = Case(*whens, output_field=field)
                # QuerySet.update() sends no signals and leaves auto_now columns alone.
                with transaction.atomic(using=step.dest):
                    manager.filter(pk__in=keys).update(**updates)

    def truncate(self, dest):
        """Delete the destination rows of every planned table, referrers first, in one transaction."""
        dialect = self.dialect(dest)
        steps = [s for s in reversed(self.plan.steps_for(dest)) if s.kind != REMAP]
        try:
            with transaction.atomic(using=dest):
                # MySQL checks FKs row by row: unlink the rows of every cycle before deleting any of them.
                for step in steps:
                    dialect.execute(dialect.null_out_sql(step.table, [f.column for f in step.deferred_fields]))
                for unit in _units(steps):
                    with self.group_context(unit):
                        for step in unit:
                            dialect.execute(dialect.delete_all_sql(step.table))
        except DatabaseError as exc:
            raise DbcopyError(
                f"--truncate could not empty the planned tables of '{dest}' and deleted nothing: {first_line(exc)}"
            ) from exc

    def group_context(self, unit):
        if unit[0].group is None:
            return nullcontext()
        return self.dialect(unit[0].dest).constraints_deferred([s.table for s in unit])

    def reset_sequences(self):
        for dest in self.plan.dests:
            dialect = self.dialect(dest)
            copied = [s.model for s in self.plan.steps_for(dest) if s.kind in (COPY, REPLACE)]
            statements = dialect.sequence_reset_sql(copied)
            if statements:
                with transaction.atomic(using=dest):
                    dialect.execute(statements)


def required_targets(step):
    """Yield the models whose rows the step's FKs need before its own rows can be written."""
    for field in step.fields:
        if field.is_relation and field not in step.deferred_fields:
            yield relation_target(field)


def _unit_dependencies(units):
    """Return, per unit, the indexes of the units holding rows its foreign keys need first."""
    where = {}
    for index, unit in enumerate(units):
        for step in unit:
            where[(step.dest, step.model)] = index
    needs = []
    for index, unit in enumerate(units):
        wanted = {where.get((step.dest, target)) for step in unit for target in required_targets(step)}
        needs.append(wanted - {None, index})
    return needs


def _units(steps):
    """Split steps into runs to execute together: a constraint group, or a single step."""
    units = []
    for step in steps:
        if units and step.group is not None and units[-1][0].group == step.group:
            units[-1].append(step)
        else:
            units.append([step])
    return units


def _content_type_keys(queryset, remaps, step, source):
    return [(pk, (a, m), {"app_label": a, "model": m}) for pk, a, m in queryset.values_list("pk", "app_label", "model")]


def _permission_keys(queryset, remaps, step, source):
    """Key permissions by (codename, destination content type id)."""
    content_types = remaps.maps.get((step.dest, relation_target(step.model._meta.get_field("content_type"))), {})
    keyed = []
    for pk, name, codename, ct_id in queryset.values_list("pk", "name", "codename", "content_type_id"):
        dest_ct = content_types.get(ct_id) if source else ct_id
        keyed.append((pk, (codename, dest_ct), {"name": name, "codename": codename, "content_type": dest_ct}))
    return keyed


_NATURAL_KEYS = {"contenttypes.contenttype": _content_type_keys, "auth.permission": _permission_keys}


def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _update_batch_size(alias, field_count):
    # Each row costs two parameters per CASE plus one in the IN list; SQLite allows 999 per query.
    ops = connections[alias].ops
    probe = [None] * 1000
    limit = ops.bulk_batch_size([None] * (2 * field_count + 1), probe) or 1000
    return max(1, min(500, limit))
