"""`dbcopy export`: write the source's rows to a dump file (fileformat.py), read in one snapshot.

The plan is the copy's: the same models in foreign-key order, the same columns, read by the same
RowReader in primary-key order; content types and permissions are exported as ordinary tables, all
their columns, for an importer to match by natural key.
"""

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.db import DatabaseError

from . import conf
from .diagnose import first_line
from .dialects import dialect_for
from .exceptions import ConfigError, Interrupted, SourceFault
from .fileformat import DumpWriter, build_header
from .graph import model_label
from .plan import build_plan, relation_target
from .results import Consistency
from .rows import RowReader
from .runner import Snapshot, signals_handled


@dataclass(frozen=True)
class ModelExport:
    """What the export wrote of one model."""

    label: str
    table: str
    rows: int
    seconds: float


@dataclass
class ExportResult:
    """What an export wrote: a ModelExport per model in plan order, the snapshot, the compressed size."""

    models: list = field(default_factory=list)
    consistency: Consistency | None = None
    bytes_written: int = 0
    seconds: float = 0.0

    @property
    def rows(self):
        return sum(model.rows for model in self.models)


# --- the plan ----------------------------------------------------------------------------------


def build_export_plan(source, labels=(), exclude=(), include_unmanaged=False):
    """Return the CopyPlan an export reads: the selected models of the source in foreign-key order,
    with the content types / permissions they refer to, every step's destination the source itself.

    A search index its app shapes per vendor is exported like any table: the header names the
    source's vendor, so an importer can skip it across vendors as a copy does.
    """
    plan = build_plan(source, source, labels, exclude, include_unmanaged, count_rows=False, reading_only=True)
    return replace(plan, warnings=tuple(_unexported_targets(plan.steps)))


def _unexported_targets(steps):
    """Describe the relations whose target model the export leaves out."""
    exported = {step.model for step in steps}
    for step in steps:
        for column in step.fields:
            target = relation_target(column) if column.is_relation else None
            if target is not None and target not in exported:
                yield (f"{step.label}.{column.name} → {model_label(target)}: {model_label(target)} is not exported; "
                       "the database the dump is imported into must already hold its rows")


# --- the export --------------------------------------------------------------------------------


class _SnapshotOwner:
    """What runner.Snapshot asks of its runner: the plan, the number of reading connections, no workers."""

    def __init__(self, plan):
        self.plan, self.jobs, self.pool = plan, 1, None


def _no_progress(event, step, **data):
    """Ignore progress events (the default when nobody listens)."""


def export_plan(plan, stream, chunk_size=None, on_progress=None):
    """Write a dump of the plan's steps to the binary stream, every table read in one snapshot of the
    source where its vendor gives one; return an ExportResult.

    on_progress(event, step, **data): "start" (total=rows planned), "chunk" (copied=rows so far),
    "finish" (result=ModelExport). SIGINT / SIGTERM stop the export at once with Interrupted.
    """
    chunk_size = chunk_size or conf.get("CHUNK_SIZE")
    on_progress = on_progress or _no_progress
    started = time.monotonic()
    snapshot = Snapshot(_SnapshotOwner(plan))
    with _stopped_by_signals():
        snapshot.open()
        try:
            snapshot.enter(dialect_for(plan.source))
            counts = {step: _count(step) for step in plan.steps}
            result = ExportResult(consistency=snapshot.consistency())
            writer = DumpWriter(stream, build_header(plan, counts, result.consistency))
            for step in plan.steps:
                result.models.append(_export_step(writer, step, counts[step], chunk_size, on_progress))
            writer.close()
        finally:
            snapshot.close()
    result.bytes_written = writer.bytes_written
    result.seconds = time.monotonic() - started
    return result


def _count(step):
    try:
        return step.model._base_manager.using(step.source).count()
    except DatabaseError as exc:
        raise SourceFault(step.source, f"{first_line(exc)} (counting {step.label})") from exc


def _export_step(writer, step, planned, chunk_size, on_progress):
    """Write one step's rows in primary-key order; return its ModelExport."""
    started = time.monotonic()
    on_progress("start", step, total=planned)
    writer.begin(step.label)
    rows = 0
    chunks = RowReader(step.model, step.source, step.fields).chunks(chunk_size)
    try:
        for chunk in chunks:
            rows += writer.write_rows(chunk)
            on_progress("chunk", step, copied=rows)
    except DatabaseError as exc:
        raise SourceFault(step.source, f"{first_line(exc)} (exporting {step.label}, after {rows:,} rows)") from exc
    writer.end()
    done = ModelExport(step.label, step.table, rows, time.monotonic() - started)
    on_progress("finish", step, result=done)
    return done


def _stopped_by_signals():
    """Turn SIGINT and SIGTERM into Interrupted at once: half a dump is of no use, so there is no
    chunk to finish first (the caller removes the file)."""

    def stop(signum, frame):
        raise Interrupted(signum)

    return signals_handled(stop)


# --- the output file ---------------------------------------------------------------------------


def check_output_path(path):
    """Refuse, before connecting anywhere, an output path the export could not write."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise ConfigError(f"-o {path} is a directory: name the dump file, e.g. -o {target / 'data.dbcopy'}")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ConfigError(f"-o {path}: cannot create a file in {folder} (check the folder exists and is writable)")


@contextmanager
def written_atomically(path):
    """Yield a binary file beside `path` that becomes `path` only when the block ends without an error;
    otherwise remove it, leaving any earlier file at `path` as it was."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    stream = open(partial, "wb")  # noqa: SIM115 - closed below, whatever happens
    try:
        yield stream
        stream.flush()
        os.fsync(stream.fileno())
        stream.close()
        os.replace(partial, target)
    except BaseException:
        stream.close()
        partial.unlink(missing_ok=True)
        raise
