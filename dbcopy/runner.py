"""Run a plan: the one scheduler behind `copy` and `sync`.

The runner owns everything around the rows: the order of steps and the --jobs workers (a big table
split into key ranges, one per worker), the source snapshot, retries after transient faults,
interrupts, truncation, and the post-passes (deferred foreign keys, sequences). A strategy
(engine.CopyStrategy, sync.SyncStrategy, remap.RemapStrategy) moves one table's rows (or one key
range's) and nothing else.
"""

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import replace

from django.db import DatabaseError, connections, transaction

from .aliases import describe
from .diagnose import first_line
from .dialects import dialect_for
from .exceptions import CopyError, DbcopyError, DestinationLocked, Interrupted, ParentFailed, SourceFault
from .plan import COPY, REMAP, REPLACE, describe_range, key_ranges, range_count, relation_target
from .remap import RemapStrategy
from .results import Consistency, RunResult, Status, StepResult
from .rows import Remaps, key_value

# Seconds to wait before each retry of a step after a transient fault (the last repeats).
BACKOFF = (0.5, 2.0, 5.0)
# How long every worker may take to run a task of on_every_worker() (beginning a snapshot, closing).
WORKER_START_SECONDS = 60
# How often the main thread looks up from waiting on --jobs workers (signals are handled then).
POLL_SECONDS = 0.2
# The most --jobs workers a run takes when --jobs is not given (and the source shares its snapshot).
MAX_DEFAULT_JOBS = 4


def _no_progress(event, step, **data):
    """Ignore progress events (the default when nobody listens)."""


class Runner:
    """Execute a plan's steps with one strategy; return a RunResult."""

    def __init__(self, plan, strategy_class, *, chunk_size, on_progress=None, jobs=1, retries=3,
                 truncate=False, resume=False, debug=False, **strategy_options):
        self.plan, self.chunk_size = plan, chunk_size
        self.listener = on_progress or _no_progress
        self.jobs, self.retries = max(1, jobs), max(0, retries)
        self.truncate_first, self.resume, self.debug = truncate, resume, debug
        self.remaps = Remaps()
        self.results = {}
        self.counted = {}  # step -> its table's source rows, counted with every table in the snapshot
        self.split_tables = {}  # key range step -> the SplitTable it is part of
        self.broken = {}  # (dest, model) -> label of the failed step it depends on
        self.problems = []
        self.local = threading.local()
        self.stop_signal = None
        self.pool = None  # the --jobs worker threads, for the run (worker_pool)
        self.units_done = set()  # indexes of the units that finished (run_parallel)
        self.scheduling = False  # whether run_parallel still starts units and notes the finished ones
        self.unit_finished = threading.Condition()
        self.early = {}  # step -> the units it needs, for a step started while they still run
        self.snapshot = Snapshot(self)
        self.strategy = strategy_class(self, **strategy_options)
        self.remapper = RemapStrategy(self)

    # --- connections ---------------------------------------------------------------------------

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
        elif alias == self.plan.source:
            self.snapshot.enter(dialect)
        return dialect

    def reader(self, step):
        """Return the source dialect, its connection inside the run's snapshot."""
        return self.dialect(step.source)

    def progress(self, event, step, **data):
        if event == "chunk":
            self.checkpoint()  # streams report from inside the COPY: raising there aborts it
        self.on_progress(event, step, **data)

    def on_progress(self, event, step, **data):
        """Tell the listener; the events of a key range become its table's (one bar, one line per table)."""
        split = self.split_tables.get(step)
        if split is None:
            self.listener(event, step, **data)
            return
        data = split.table_event(event, step, data)
        if data is not None:
            self.listener(event, split.step, **data)

    def snapshot_count(self, step):
        """Return the step's source rows as counted with every table at the start, where that count is
        the one its reader sees (every reader in one snapshot); else None: count them when reading."""
        return self.counted.get(step) if self.snapshot.shared_by_every_reader() else None

    # --- the run -------------------------------------------------------------------------------

    def run(self):
        steps = list(self.plan.steps)
        with self.interrupts(), self.worker_pool():
            try:
                self.snapshot.open()
                if self.truncate_first:
                    for dest in self.plan.dests:
                        self.truncate(dest)
                self.run_units(self.units(steps))
                self.finish_split_tables()
                self.post_passes(steps)
            finally:
                self.snapshot.close()
        for step in steps:
            if step not in self.results:
                self.results[step] = StepResult(step, Status.INTERRUPTED, message="not started: the run was interrupted")
        return RunResult(
            [self.results[step] for step in steps], consistency=self.snapshot.consistency(),
            interrupted=self.stop_signal, problems=list(self.problems),
        )

    def units(self, steps):
        """Return the units to run: a cycle group, a table, or one key range of a big table."""
        units = []
        self.counted = self.count_source(steps)
        for unit in _units(steps):
            split = self.split(unit[0]) if len(unit) == 1 else None
            if split is None:
                units.append(unit)
                continue
            for part in split.parts:
                self.split_tables[part] = split
                units.append([part])
        return units

    def count_source(self, steps):
        """Count the source rows of every table in one go, in the run's snapshot (where the strategy reads
        a database): the progress totals, the key ranges and, where every reader shares the snapshot,
        the count the reconciliation compares with."""
        count_tables = getattr(self.strategy, "count_tables", None)
        if count_tables is None:
            return {}
        try:
            return count_tables(steps)
        except DatabaseError as exc:
            self.on_progress("note", None, message=f"could not count the source's tables at once "
                                                   f"({first_line(exc)}); counting each as it is copied")
            if not connection_alive(self.plan.source):
                close_quietly(self.plan.source)
            return {}

    def split(self, step):
        """Return the SplitTable copying a big table as key ranges by several workers, or None."""
        rows = self.counted.get(step)
        if not getattr(self.strategy, "can_split", False) or rows is None:
            return None
        streams = getattr(self.strategy, "streams", lambda step: False)(step)
        parts = range_count(step, self.jobs, rows, streams=streams)
        if parts < 2:
            return None
        self.reader(step)  # the boundaries are read in the snapshot
        try:
            ranges = key_ranges(step, parts, rows)
        except DatabaseError as exc:
            self.on_progress("note", step, message=f"could not split it into key ranges ({first_line(exc)}); "
                                                   "copying it whole")
            if not connection_alive(step.source):
                close_quietly(step.source)
            return None
        return SplitTable(step, ranges, rows) if len(ranges) > 1 else None

    def finish_split_tables(self):
        """Give each split table its result, from those of its ranges (also after an interrupt)."""
        for split in dict.fromkeys(self.split_tables.values()):
            if split.step not in self.results:
                self.merge_ranges(split)

    def merge_ranges(self, split):
        result = split.merged(self.results, self.snapshot_count(split.step))
        self.results[split.step] = result
        if split.started is not None:
            self.listener("finish", split.step, result=result)

    def run_units(self, units):
        if self.jobs == 1:
            for unit in units:
                if self.stop_signal:
                    break
                self.run_unit(unit)
        else:
            self.run_parallel(units)

    def run_unit(self, unit):
        if unit[0].group is None:
            self.run_step(unit[0])
        else:
            self.run_group(unit)
        split = self.split_tables.get(unit[0])
        if split is not None and split.range_done(unit[0]):
            self.merge_ranges(split)

    @contextmanager
    def worker_pool(self):
        """Hold the --jobs worker threads for the run (the snapshot may begin on each of them first)."""
        if self.jobs == 1:
            self.pool = None
            yield
            return
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="dbcopy") as pool:
            self.pool = pool
            try:
                yield
            finally:
                if self.snapshot.synchronized:
                    self.on_every_worker(connections.close_all)  # they kept their source connections

    def on_every_worker(self, action):
        """Run action() once on each worker thread (and wait): a task held at a barrier takes a thread
        of its own, so the pool starts all of them."""
        barrier = threading.Barrier(self.jobs + 1)

        def task():
            try:
                action()
            finally:
                barrier.wait()

        futures = [self.pool.submit(task) for _ in range(self.jobs)]
        barrier.wait(timeout=WORKER_START_SECONDS)
        for future in futures:
            future.result()

    def run_parallel(self, units):
        """Run units on `jobs` threads, each once every unit it depends on has finished, or, where its
        destination checks foreign keys once after loading, while those units still run."""
        needs = _unit_dependencies(units)
        pending, running, done = list(range(len(units))), {}, self.units_done
        # SQLite takes one writer at a time: more would only wait on its lock.
        writers = {dest: self.dialect(dest).max_concurrent_writers for dest in self.plan.dests}
        busy = {dest: 0 for dest in self.plan.dests}
        pool = self.pool  # the run's (worker_pool)
        self.scheduling = True
        try:
            while running or (pending and not self.stop_signal):
                # Units whose parents are done first; then, with workers to spare, those that may load
                # while their parents still do.
                for ready_only in (True, False):
                    for index in list(pending):
                        dest = units[index][0].dest
                        if self.stop_signal or len(running) >= self.jobs or busy[dest] >= writers[dest]:
                            continue
                        if not needs[index] <= done:
                            if ready_only or not self.may_start_early(units, index, needs[index], running.values()):
                                continue
                            self.early[units[index][0]] = needs[index]
                        pending.remove(index)
                        busy[dest] += 1
                        running[pool.submit(self.run_unit_in_worker, units[index])] = index
                # A timeout, so that the main thread returns to Python often enough to handle signals.
                finished, _ = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = running.pop(future)
                    busy[units[index][0].dest] -= 1
                    with self.unit_finished:
                        done.add(index)
                        self.unit_finished.notify_all()
                    future.result()  # a bug in a worker surfaces here, not silently
        finally:
            with self.unit_finished:  # after an error here no unit is noted finished: release the waiting
                self.scheduling = False
                self.unit_finished.notify_all()

    def may_start_early(self, units, index, needed, running):
        """Return whether the unit may start while units it needs still run: a table the strategy loads
        before checking its foreign keys once (the check waits for them: await_parents), whose running
        parents copy rows with the source's own ids (no ids to translate)."""
        unit = units[index]
        if len(unit) != 1 or unit[0].kind != COPY:
            return False
        if not needed <= self.units_done | set(running):
            return False  # a parent not yet started: waiting for it could hold the worker it needs
        if any(step.kind != COPY for i in needed - self.units_done for step in units[i]):
            return False
        loads_first = getattr(self.strategy, "loads_before_parents", None)
        return loads_first is not None and loads_first(unit[0])

    def await_parents(self, step, stopped=lambda: False):
        """Wait until the units the step's foreign keys need have finished, if it started before them.

        Raise ParentFailed if one of them failed (the step's uncommitted rows are then rolled back),
        Interrupted on a signal; return early if stopped() (the caller gave up on the load).
        """
        needed = self.early.get(step)
        if needed is None:
            return
        with self.unit_finished:
            while not needed <= self.units_done:
                self.checkpoint()
                if stopped():
                    return
                if not self.scheduling:
                    raise DbcopyError("the run ended with an error before the tables it refers to were copied")
                self.unit_finished.wait(POLL_SECONDS)
        del self.early[step]
        blocker = self.failed_dependency(step)
        if blocker:
            raise ParentFailed(blocker)

    def run_unit_in_worker(self, unit):
        try:
            self.run_unit(unit)
        finally:
            # This thread's connections (the main thread keeps its own), but a source connection
            # holding the snapshot every worker began together: the next unit reads it too.
            for connection in connections.all(initialized_only=True):
                if not (self.snapshot.synchronized and connection.alias == self.plan.source):
                    connection.close()

    def run_step(self, step):
        blocker = self.failed_dependency(step)
        if blocker:
            self.results[step] = StepResult(step)
            self.mark_blocked(step, self.results[step], blocker)
            return
        if self.stop_signal:
            return
        strategy = self.remapper if step.kind == REMAP else self.strategy
        result = StepResult(step)
        self.results[step] = result
        self.progress("start", step, total=self.counted.get(step, step.source_rows))
        started = time.monotonic()
        try:
            self.attempt(step, result, strategy.run, "copying")
        finally:
            result.seconds = time.monotonic() - started
        self.on_progress("finish", step, result=result)

    def run_group(self, group):
        """Copy a cycle of NOT NULL foreign keys with constraint checks deferred until it is whole."""
        dialect = self.dialect(group[0].dest)
        try:
            with dialect.constraints_deferred([s.table for s in group]):
                for step in group:
                    self.run_step(step)
                failed = [s for s in group if not self.results.get(s) or not self.results[s].ok]
                if failed:
                    result = self.results.get(failed[0])
                    raise CopyError(failed[0].label, failed[0].dest, reason=result.message if result else "interrupted")
        except (DatabaseError, CopyError) as exc:
            labels = ", ".join(s.label for s in group)
            message = f"the cycle {labels} could not be copied with deferred constraint checks: {first_line(exc)}"
            for step in group:
                result = self.results.setdefault(step, StepResult(step))
                if result.status is Status.OK:
                    result.copied = 0  # the whole group was rolled back
                if result.status is not Status.INTERRUPTED:
                    self.mark_failed(step, result, message)

    # --- faults --------------------------------------------------------------------------------

    def attempt(self, step, result, action, doing):
        """Run action(step, result), retrying transient faults; a lasting fault fails the step.

        The action continues from what it already committed (result.last_key), so a retry neither
        duplicates nor skips rows.
        """
        attempt = 0
        while True:
            try:
                action(step, result)
                return True
            except Interrupted:
                result.status = Status.INTERRUPTED
                result.message = f"interrupted after {result.copied:,} rows; the chunk in progress was rolled back"
                self.broken[(step.dest, step.model)] = step.label
                self.recover(step)  # an aborted stream leaves its connections unusable
                return False
            except ParentFailed as exc:  # it loaded before its parents, and one of them failed
                result.copied = 0  # rolled back
                self.mark_blocked(step, result, exc.blocker)
                self.recover(step)
                return False
            except CopyError as exc:  # a refused or unreadable row: a retry would meet it again
                self.mark_failed(step, result, str(exc))
                return False
            except Exception as exc:  # noqa: BLE001 - every driver has its own error classes
                if self.debug and not self.is_database_error(exc):
                    raise
                if attempt < self.retries and self.is_transient(step, exc):
                    attempt += 1
                    result.retries += 1
                    self.on_progress("retry", step, message=f"{describe_fault(step, exc, doing, result)}; "
                                                            f"retry {attempt} of {self.retries}")
                    self.recover(step)
                    self.sleep(BACKOFF[min(attempt, len(BACKOFF)) - 1])
                    continue
                tried = f" (after {attempt} retries)" if attempt else ""
                self.mark_failed(step, result, describe_fault(step, exc, doing, result) + tried)
                self.recover(step)  # later steps, the post-passes and the reconciliation reconnect
                return False

    def is_database_error(self, exc):
        drivers = tuple({connections[a].Database.Error for a in (self.plan.source, *self.plan.dests)})
        return isinstance(exc, (DatabaseError, SourceFault, SystemError, OSError, *drivers))

    def is_transient(self, step, exc):
        """Return whether a fresh connection and another try can get past the fault."""
        if not self.is_database_error(exc):
            return False
        for alias in (step.source, step.dest):
            if not connection_alive(alias):
                return True
        return any(dialect_for(alias).is_transient_error(exc) for alias in (step.source, step.dest))

    def recover(self, step):
        """Drop the connections a fault killed; the next use reconnects (and rejoins the snapshot)."""
        for alias in (step.source, step.dest):
            if not connection_alive(alias):
                if alias == step.source:
                    self.snapshot.lost(step)
                close_quietly(alias)

    def sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.checkpoint()
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def mark_failed(self, step, result, message):
        result.status, result.message = Status.FAILED, message
        self.broken[(step.dest, step.model)] = step.label
        self.on_progress("error", step, message=message)

    def mark_blocked(self, step, result, blocker):
        """Record that the step was not copied because a table it depends on failed."""
        result.status, result.blocked_by = Status.BLOCKED, blocker
        result.message = f"not copied: it depends on {blocker}, which failed"
        self.broken[(step.dest, step.model)] = blocker
        self.on_progress("skipped", step, message=result.message)

    def failed_dependency(self, step):
        for target in required_targets(step):
            blocker = self.broken.get((step.dest, target))
            if blocker and target is not step.model:
                return blocker
        return None

    # --- interrupts ----------------------------------------------------------------------------

    @contextmanager
    def interrupts(self):
        """Turn SIGINT/SIGTERM into a request to stop after the current chunk; a second one stops at once."""
        def handle(signum, frame):
            if self.stop_signal is not None:
                raise KeyboardInterrupt
            self.stop_signal = signum
            self.on_progress("interrupt", None, message=f"{signal.Signals(signum).name} received: "
                                                        "stopping after the current chunk (again to stop at once)")

        with signals_handled(handle):
            yield

    def checkpoint(self):
        """Raise Interrupted if a signal asked the run to stop (called between chunks)."""
        if self.stop_signal is not None:
            raise Interrupted(self.stop_signal)

    # --- before and after the steps ------------------------------------------------------------

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

    def post_passes(self, steps):
        """Finish what was copied: the strategy's passes (deferred FKs, deletes), then sequences.

        After an interrupt only the sequences are reset (cheap, and new rows at the destination
        then get fresh ids); --resume completes the rest.
        """
        if not self.stop_signal:
            for step, action, doing in self.strategy.post_steps(steps):
                result = self.results.get(step)
                if result is None or result.status not in (Status.OK, Status.FAILED) or self.stop_signal:
                    continue
                self.attempt(step, result, action, doing)
        for dest in self.plan.dests:
            self.reset_sequences(dest)

    def reset_sequences(self, dest):
        copied = [s.model for s in self.plan.steps_for(dest) if s.kind in (COPY, REPLACE) and s in self.results]
        try:
            dialect = self.dialect(dest)
            statements = dialect.sequence_reset_sql(copied)
            if statements:
                with transaction.atomic(using=dest):
                    dialect.execute(statements)
        except DatabaseError as exc:
            self.problems.append(
                f"Could not reset the sequences of '{dest}': {first_line(exc)} — run "
                f"`python manage.py sqlsequencereset` for the copied apps there before inserting new rows"
            )


class Snapshot:
    """Read every table of the source from one snapshot, where the vendor gives one.

    PostgreSQL exports the snapshot from a connection of its own, which every reading connection
    (each --jobs worker, and a connection re-opened after a fault) joins. MySQL/MariaDB and SQLite
    snapshots belong to one connection, so they are consistent only with --jobs 1 and no lost
    connection.
    """

    def __init__(self, runner):
        self.runner = runner
        self.holder = self.token = None
        self.scope = None
        self.broken = ""  # why the run is not consistent after all
        self.began = 0  # connections that began a snapshot of their own ("connection" scope)
        # "connection" scope with workers: every worker's connection (and the main thread's) began its
        # snapshot while the source held its commits, so all saw the same moment.
        self.synchronized = False
        self.lock = threading.Lock()

    def open(self):
        runner = self.runner
        dialect = dialect_for(runner.plan.source)
        self.scope = dialect.snapshot_scope
        if self.scope == "shared":
            try:
                self.holder, self.token = dialect.export_snapshot()
            except DatabaseError as exc:  # a server that exports none (a standby, a proxy): read without
                self.scope, self.broken = None, f"the source could not export a snapshot: {first_line(exc)}"
        elif self.scope == "connection" and runner.pool is not None and dialect.can_hold_commits():
            self.begin_together(dialect)

    def begin_together(self, dialect):
        """Begin the main thread's and every worker's snapshot while the source holds its commits."""
        try:
            with dialect.commits_held():
                self.enter(dialect)
                self.runner.on_every_worker(lambda: self.enter(dialect_for(self.runner.plan.source)))
        except DatabaseError as exc:
            self.broken = f"the source could not hold its commits while the workers began reading: {first_line(exc)}"
            return
        self.synchronized = True

    def enter(self, dialect):
        """Put this thread's source connection in the snapshot, once per server connection."""
        if self.scope is None:
            return
        connection = dialect.connection
        connection.ensure_connection()
        if getattr(connection, "_dbcopy_snapshot_of", None) is connection.connection:
            return
        if self.token is not None:
            self.join(dialect)
        else:
            dialect.begin_read_snapshot()
            with self.lock:
                self.began += 1
        connection._dbcopy_snapshot_of = connection.connection

    def join(self, dialect):
        """Join the exported snapshot; if its holder died with the server connection, export a new one."""
        try:
            dialect.join_read_snapshot(self.token)
            return
        except DatabaseError:
            close_quietly(dialect.alias)  # the failed transaction is of no further use
        with self.lock:
            if not self.broken:
                self.broken = "the connection holding the source snapshot was lost; later tables were read from a new one"
            self.close_holder()
            self.holder, self.token = dialect_for(dialect.alias).export_snapshot()
        dialect.join_read_snapshot(self.token)

    def lost(self, step):
        if self.scope == "connection" and not self.broken:
            self.broken = f"the source connection was lost while reading {step.label} and re-opened on a later snapshot"

    def close(self):
        connection = connections[self.runner.plan.source]
        if connection.connection is not None and getattr(connection, "_dbcopy_snapshot_of", None) is connection.connection:
            try:
                dialect_for(self.runner.plan.source).end_read_snapshot()
            except DatabaseError:
                close_quietly(self.runner.plan.source)
            connection._dbcopy_snapshot_of = None
        self.close_holder()

    def close_holder(self):
        if self.holder is not None:
            try:
                self.holder.close()
            except Exception:  # noqa: BLE001 - the holder may have died with its server; nothing to keep
                pass
            self.holder = None

    def consistency(self):
        return describe_consistency(self.runner.plan.source, self.runner.jobs, self.scope, self.broken,
                                    connections_used=self.began, synchronized=self.synchronized)

    def shared_by_every_reader(self):
        """Return whether every reading so far saw the snapshot the run started with."""
        if self.broken:
            return False
        if self.scope == "shared":
            return self.token is not None
        if self.synchronized:
            return self.began <= self.runner.jobs + 1  # no worker's connection re-opened since
        return self.scope == "connection" and self.runner.jobs == 1


class SplitTable:
    """A big table copied as key ranges, each a step of its own (its stream or chunks, its transactions)
    run by any worker; their results make the table's one result."""

    # Of the ranges' statuses, the one the table takes (the first present).
    WORST_FIRST = (Status.FAILED, Status.INTERRUPTED, Status.BLOCKED)

    def __init__(self, step, ranges, rows):
        self.step, self.rows = step, rows
        self.parts = [replace(step, key_range=key_range) for key_range in ranges]
        self.copied = {}  # part -> rows it copied so far
        self.done = set()
        self.started = None  # when the first part started
        self.said_skipped = False
        self.lock = threading.Lock()

    def table_event(self, event, part, data):
        """Return the data of a part's progress event as its table's event, or None to say nothing."""
        with self.lock:
            if event == "start":
                first, self.started = self.started is None, self.started or time.monotonic()
                return {**data, "total": self.rows} if first else None
            if event == "chunk":
                self.copied[part] = data["copied"]
                return {**data, "copied": sum(self.copied.values())}
            if event == "finish":
                return None  # the table finishes with its last part
            if event == "skipped":
                first, self.said_skipped = not self.said_skipped, True
                return data if first else None
        if "message" in data:
            return {**data, "message": f"{describe_range(part.key_range)}: {data['message']}"}
        return data

    def range_done(self, part):
        """Record that a part has run; return True once every part has."""
        with self.lock:
            self.done.add(part)
            return len(self.done) == len(self.parts)

    def merged(self, results, table_rows=None):
        """Return the table's StepResult from its parts' (a part never started counts as interrupted).

        table_rows: the table's source rows counted whole in the snapshot every part read, else None
        (the sum of the parts' counts, each in its own reader's snapshot).
        """
        parts = [(part, results.get(part)) for part in self.parts]
        done = [result for _, result in parts if result is not None]
        merged = StepResult(self.step, key_ranges=len(self.parts))
        merged.copied = sum(r.copied for r in done)
        merged.retries = sum(r.retries for r in done)
        merged.resumed_rows = sum(r.resumed_rows for r in done)
        merged.dest_rows_before = sum(r.dest_rows_before for r in done)
        merged.method = "+".join(dict.fromkeys(r.method for r in done if r.method))
        merged.path = "; ".join(dict.fromkeys(r.path for r in done if r.path))
        merged.seconds = time.monotonic() - self.started if self.started is not None else 0.0
        counts = [r.source_rows for r in done]
        if table_rows is not None:
            merged.source_rows = table_rows
        elif len(done) == len(parts) and None not in counts:
            merged.source_rows = sum(counts)
        statuses = {r.status for r in done} | ({Status.INTERRUPTED} if len(done) < len(parts) else set())
        status = next((s for s in self.WORST_FIRST if s in statuses), Status.OK)
        merged.status = status
        if status is Status.FAILED:
            merged.message = "; ".join(f"{describe_range(part.key_range)}: {result.message}"
                                       for part, result in parts if result is not None and result.status is status)
        elif status is Status.INTERRUPTED:
            complete = sum(r.status is Status.OK for r in done)
            merged.message = (f"interrupted after {merged.copied:,} rows ({complete} of {len(parts)} key ranges "
                              "complete); the chunks in progress were rolled back")
        elif status is Status.BLOCKED:
            blocked = next(r for r in done if r.status is status)
            merged.message, merged.blocked_by = blocked.message, blocked.blocked_by
        return merged


@contextmanager
def signals_handled(handle):
    """Let handle(signum, frame) take SIGINT and SIGTERM for the block, in the main thread (signal
    handlers belong to it; elsewhere nothing changes), then put the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def describe_consistency(source, jobs, scope=None, broken="", connections_used=1, synchronized=None):
    """Return the Consistency a run with these settings gets (or got).

    synchronized: whether the workers' snapshots began together (None: before the run, whether they will).
    """
    dialect = dialect_for(source)
    if scope is None:
        scope = dialect.snapshot_scope
    vendor = connections[source].display_name
    if broken:
        return Consistency(False, broken)
    if scope == "shared":
        return Consistency(True, f"one {vendor} snapshot (REPEATABLE READ, exported) shared by every reader")
    if scope == "connection" and (jobs == 1 and connections_used <= 1):
        return Consistency(True, f"one {vendor} read transaction")
    if scope == "connection" and jobs > 1 and connections_used <= jobs + 1 and (
        synchronized if synchronized is not None else dialect.can_hold_commits()
    ):
        return Consistency(True, f"one {vendor} snapshot, begun by every worker while the server held its commits")
    if scope == "connection":
        return Consistency(False, f"{vendor} cannot share one snapshot between --jobs workers: each table (each "
                                  "key range of a split table) is read in a transaction of its own; use "
                                  "--jobs 1 for one snapshot of every table")
    return Consistency(False, f"{vendor} offers no read snapshot")


def default_jobs(source):
    """Return (jobs, why) for a run from the source when --jobs is not given.

    Parallel workers read one moment of the source only where they share its snapshot (PostgreSQL
    exports it) or begin theirs together (MariaDB holding its commits meanwhile): there,
    min(MAX_DEFAULT_JOBS, cores) workers. Elsewhere (MySQL, SQLite, a MariaDB role without RELOAD) the
    snapshot belongs to one connection: workers would each read their own moment, which a copy must
    not do unasked, so the default stays 1 and --jobs N trades one snapshot for speed.
    """
    vendor = connections[source].display_name
    dialect = dialect_for(source)
    if dialect.snapshot_scope == "shared" or dialect.can_hold_commits():
        cores = os.cpu_count() or 1
        jobs = max(1, min(MAX_DEFAULT_JOBS, cores))
        return jobs, (f"the default: min({MAX_DEFAULT_JOBS}, {cores} cores); every worker reads the source's "
                      f"one {vendor} snapshot")
    return 1, (f"the default for a {vendor} source: its snapshot belongs to one connection, so workers would read "
               "it at different moments; --jobs N copies N tables (or key ranges) at once, each read on its own")


def connection_alive(alias):
    """Return whether the alias' connection can still be used (or was never opened)."""
    connection = connections[alias]
    if connection.connection is None:
        return not getattr(connection, "_dbcopy_snapshot_of", None)  # dropped by Django after a fault
    try:
        return connection.is_usable()
    except Exception:  # noqa: BLE001 - is_usable() itself may raise on a half-closed socket
        return False


def close_quietly(alias):
    connection = connections[alias]
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - closing a dead connection may complain; it is closed either way
        connection.connection = None
    connection._dbcopy_session_of = connection._dbcopy_snapshot_of = None


def describe_fault(step, exc, doing, result):
    """Say which side failed, where in the table, and the database's reason."""
    where = f" after pk={_key_text(result.last_key)}" if result.last_key is not None else ""
    if isinstance(exc, SourceFault):
        return f"{doing} {step.label}: reading '{exc.alias}'{where} failed: {first_line(exc.error)}"
    return f"{doing} {step.label} into '{step.dest}'{where} failed: {first_line(exc)}"


def _key_text(key):
    return repr(key_value(tuple(key)))


def required_targets(step):
    """Yield the models whose rows the step's FKs need before its own rows can be written."""
    for field in step.fields:
        if field.is_relation and field not in step.deferred_fields:
            yield relation_target(field)


def _unit_dependencies(units):
    """Return, per unit, the indexes of the units holding rows its foreign keys need first (every key
    range of a split table)."""
    where = {}
    for index, unit in enumerate(units):
        for step in unit:
            where.setdefault((step.dest, step.model), set()).add(index)
    needs = []
    for index, unit in enumerate(units):
        own = {(step.dest, step.model) for step in unit}
        wanted = set()
        for step in unit:
            for target in required_targets(step):
                if (step.dest, target) not in own:
                    wanted |= where.get((step.dest, target), set())
        needs.append(wanted)
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


@contextmanager
def destination_locks(plan):
    """Hold each destination's lock for the block: one copy or sync writes to a database at a time.

    Each lock lives on a connection of its own: the runner drops and re-opens the connections it
    writes with after a fault, and a session lock (advisory lock, GET_LOCK) would die with them.
    """
    held, holders = [], []
    try:
        for dest in sorted(plan.dests):
            holder = connections.create_connection(dest)
            holders.append(holder)
            lock = type(dialect_for(dest))(holder).sync_lock()
            if not lock.acquire():
                raise DestinationLocked(
                    f"Another dbcopy copy or sync is writing to {describe(dest)}; this run changed nothing. "
                    "Try again when it has finished (a scheduler can simply run the next sync)."
                )
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            try:
                lock.release()
            except DatabaseError:
                pass  # the lock died with its connection
        for holder in holders:
            holder.close()
