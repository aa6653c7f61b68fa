"""Everything dbcopy prints: the plan, progress, the reconciliation table and the JSON report."""

import json
import signal
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .aliases import describe
from .content import DIFFERS
from .plan import REMAP, REPLACE
from .reconcile import describe_dest, is_ok

STATUS_STYLE = {"ok": "green", "mismatch": "bold red", "failed": "bold red", "blocked": "bold red",
                "interrupted": "bold red", "skipped": "yellow"}
CONTENT_STYLE = {"equal": "green", "differs": "bold red", "not checked": "yellow"}


def _stream(wrapper):
    # Django's OutputWrapper appends a newline to every write(); rich needs the raw stream.
    return getattr(wrapper, "_out", wrapper)


class Report:
    """Print through the command's stdout/stderr; verbosity 0 errors only, 1 summary, 2 chunks, 3 SQL."""

    def __init__(self, stdout, stderr, verbosity=1, no_color=False):
        self.verbosity = verbosity
        out, err = _stream(stdout), _stream(stderr)
        terminal = hasattr(out, "isatty") and out.isatty()
        self.console = Console(file=out, no_color=no_color, width=None if terminal else 160, soft_wrap=not terminal)
        self.errors = Console(file=err, no_color=no_color, width=None if terminal else 160, soft_wrap=True, stderr=True)
        self.terminal = terminal

    def say(self, text, level=1):
        if self.verbosity >= level:
            self.console.print(text, highlight=False)

    def error(self, text):
        self.errors.print(f"[red]error:[/] {text}", highlight=False, markup=True)

    # --- plan ----------------------------------------------------------------------------------

    def plan(self, plan, sync_options=None, consistency=None, digests=None, jobs=None, splits=None, paths=None):
        """Print the ordered steps, skipped models and warnings; for a sync, how each model is read;
        with digests (content.digest_methods()), which tables a content check digests in Python; with
        jobs ((workers, why)), how many workers run, and splits ({step: key ranges}), the big tables they
        copy in key ranges."""
        if self.verbosity < 1:
            return
        verb = "sync" if sync_options else "copy"
        table = Table(title=f"Plan: {verb} from {describe(plan.source)}", title_justify="left")
        columns = ["#", "model", "table", "dest", "source rows"] + (["sync reads"] if sync_options else []) + ["notes"]
        for column in columns:
            table.add_column(column, justify="right" if column in ("#", "source rows") else "left")
        for number, step in enumerate(plan.steps, 1):
            cells = [str(number), step.label, step.table, describe_dest(step.dest), _num(step.source_rows)]
            if sync_options:
                cells.append(_sync_reads(step, sync_options))
            table.add_row(*cells, _notes(step, plan, (splits or {}).get(step, 1)))
        self.console.print(table)
        for skipped in plan.skipped:
            where = f" (→ '{skipped.dest}')" if skipped.dest else ""
            self.say(f"[yellow]skipped[/] {skipped.label}{where}: {skipped.reason}")
        self.warnings(plan.warnings)
        total = sum(step.source_rows or 0 for step in plan.steps)
        dests = ", ".join(f"'{describe_dest(d)}'" for d in plan.dests) or "no destination"
        left_out = [f"{len(plan.skipped)} models skipped", _abstract_note(plan.abstract_count),
                    f"{len(plan.warnings)} warnings"]
        self.say(f"{len(plan.steps)} steps, {total} rows at the source, into {dests}; {_listing(left_out)}.")
        if jobs is not None:
            self.say(f"Workers: --jobs {jobs[0]} ({jobs[1]})")
        if consistency is not None:
            self.say(f"Source snapshot: {consistency.describe()}")
        if digests is not None:
            self.digests([(step.label, describe_dest(step.dest), method, reason) for step, method, reason in digests])
        if paths is not None:
            self.paths(paths)

    def paths(self, paths, level=2):
        """Say (-v 2) how each table's rows travel: which stream and how it checks keys, or why in chunks.

        paths: {step: StreamPlan}.
        """
        streams = sum(1 for how in paths.values() if how)
        self.say(f"Paths: {streams} tables stream database to database, {len(paths) - streams} go in chunks.", level)
        for step, how in paths.items():
            kind = "stream" if how else "chunks"
            self.say(f"  {step.label} → '{describe_dest(step.dest)}': {kind}: {how.how}", level)

    def digests(self, tables, level=1):
        """Say how many tables the content check digests inside the databases, and which in Python and why.

        tables: (model, dest, method, python_reason) per digested table.
        """
        in_python = [(model, dest, reason) for model, dest, method, reason in tables if method == "python"]
        self.say(f"Content check: {len(tables) - len(in_python)} tables digested inside the databases, "
                 f"{len(in_python)} in Python.", level)
        for model, dest, reason in in_python:
            self.say(f"  digested in Python: {model} → '{dest}': {reason}", level)

    def warnings(self, warnings):
        for warning in warnings:
            self.say(f"[yellow]warning:[/] {warning}")

    def run_facts(self, result, jobs=None):
        """Print what the reconciliation table cannot: snapshot, retries, interrupts, run-wide problems;
        at -v 2, the workers (jobs: (workers, why)) and the tables copied in key ranges."""
        if jobs is not None:
            self.say(f"Workers: --jobs {jobs[0]} ({jobs[1]})", level=2)
        split = [f"{r.step.label} ({r.key_ranges})" for r in result.results if r.key_ranges > 1]
        if split:
            self.say(f"Copied in key ranges: {', '.join(split)}", level=2)
        if result.consistency is not None:
            self.say(f"Source snapshot: {result.consistency.describe()}")
        if result.retries:
            retried = ", ".join(f"{r.step.label} ({r.retries})" for r in result.results if r.retries)
            self.say(f"[yellow]Retried after transient faults:[/] {retried}")
        for problem in result.problems:
            self.error(problem)

    # --- progress ------------------------------------------------------------------------------

    def progress(self):
        """Return a context manager yielding the on_progress callback for run_plan()."""
        if self.verbosity >= 1 and self.terminal:
            return _RichProgress(self)
        return _PlainProgress(self)

    # --- results -------------------------------------------------------------------------------

    def reconciliation(self, rows, title="Reconciliation"):
        """Print the table of counts (and content, when it was checked), then the rows that differ."""
        if self.verbosity < 1:
            for row in rows:
                # Failures of the run were reported as they happened; a content check's were not.
                if row.status == "mismatch" or (row.content is not None and row.content.error):
                    self.error(f"{row.model} ({row.table}): {row.status} — {row.reason}")
            for line in _content_differences(rows):
                self.errors.print(line, highlight=False, markup=False)
            return
        with_content = any(row.content is not None for row in rows)
        columns = ["model", "dest", "source", "dest rows", "copied", "status"] + (["content"] if with_content else [])
        table = Table(title=title, title_justify="left")
        for column in columns + ["reason"]:
            table.add_column(column, justify="right" if column in ("source", "dest rows", "copied") else "left")
        for row in rows:
            if row.status == "skipped" and row.source_rows is None and self.verbosity < 2:
                continue  # models skipped by the plan were listed there; -v 2 shows them again
            style = STATUS_STYLE.get(str(row.status), "")
            cells = [row.model, row.dest or "", _num(row.source_rows), _num(row.dest_rows), _num(row.copied_rows),
                     f"[{style}]{row.status}[/]"]
            if with_content:
                cells.append(_content_cell(row.content))
            table.add_row(*cells, row.reason)
        self.console.print(table)
        for line in _content_differences(rows):
            self.console.print(line, highlight=False, markup=False)
        if with_content:
            self.digests([(r.model, r.dest, r.content.method, r.content.python_reason)
                          for r in rows if r.content is not None and r.content.method is not None], level=2)
        if self.verbosity < 2:
            for row in rows:
                if row.status == "skipped" and row.source_rows is None:
                    self.say(f"[yellow]skipped[/] {row.model}: {row.reason}")
        counts = {}
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        summary = _listing([f"{n} {status}" for status, n in sorted(counts.items())]
                           + [_abstract_note(getattr(rows, "abstract_count", 0))])
        verdict = "[green]All planned tables reconcile.[/]" if is_ok(rows) else "[bold red]Tables differ.[/]"
        self.say(f"{verdict} ({summary})")

    def sync_summary(self, rows):
        """Print what a sync did per model: rows inserted, updated, deleted, unchanged; new watermark."""
        if self.verbosity < 1:
            return
        table = Table(title="Sync", title_justify="left")
        for column in ("model", "dest", "inserted", "updated", "deleted", "unchanged", "watermark", "seconds"):
            table.add_column(column, justify="left" if column in ("model", "dest", "watermark") else "right")
        for row in rows:
            if row.inserted is None:
                continue
            table.add_row(row.model, row.dest or "", _num(row.inserted), _num(row.updated), _num(row.deleted),
                          _num(row.unchanged), row.watermark or "(compared in full)", f"{row.seconds or 0:.2f}")
        self.console.print(table)

    def export_summary(self, result, target, skipped=()):
        """Print what an export wrote: rows and seconds per model, the models it left out, the totals."""
        if self.verbosity < 1:
            return
        table = Table(title=f"Export to {target}", title_justify="left")
        for column in ("model", "table", "rows", "seconds", "rows/s"):
            table.add_column(column, justify="left" if column in ("model", "table") else "right")
        for model in result.models:
            rate = model.rows / model.seconds if model.seconds > 0 else 0
            table.add_row(model.label, model.table, _num(model.rows), f"{model.seconds:.2f}", f"{rate:,.0f}")
        self.console.print(table)
        for left_out in skipped:
            self.say(f"[yellow]skipped[/] {left_out.label}: {left_out.reason}")
        if result.consistency is not None:
            self.say(f"Source snapshot: {result.consistency.describe()}")
        rate = result.rows / result.seconds if result.seconds > 0 else 0
        self.say(f"[green]Exported {result.rows:,} rows of {len(result.models)} models[/] to {target}: "
                 f"{result.bytes_written:,} bytes in {result.seconds:.2f} s ({rate:,.0f} rows/s).")

    def timings(self, timings):
        """Print the seconds each phase of the command took (-v 2): the fixed costs beside the copy."""
        if timings:
            self.say("Timings: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()), level=2)

    def write_json(self, path, command, source, rows, result=None, timings=None, jobs=None):
        by_table = {}
        for step_result in result.results if result is not None else ():
            by_table[(step_result.step.label, describe_dest(step_result.step.dest))] = step_result
        models = []
        for row in rows:
            entry = row.as_dict()
            step_result = by_table.get((row.model, row.dest))
            if step_result is not None:
                entry["key_ranges"] = step_result.key_ranges
                entry["path"] = step_result.path  # how the table streamed, or why it went in chunks
            models.append(entry)
        document = {
            "command": command,
            "ok": is_ok(rows) and not (result and (result.problems or result.interrupted)),
            "source": describe(source),
            "models": models,
            # Abstract models have no table to copy or count: a number, so consumers see no entry for them.
            "abstract_models_without_table": getattr(rows, "abstract_count", 0),
        }
        if result is not None:
            consistency = result.consistency
            document.update({
                "consistent": consistency.consistent if consistency else None,
                "snapshot": consistency.how if consistency else None,
                "retries": result.retries,
                "interrupted_by": signal.Signals(result.interrupted).name if result.interrupted else None,
                "problems": list(result.problems),
                "jobs": jobs,
            })
        if timings is not None:
            document["timings"] = timings
        Path(path).write_text(json.dumps(document, indent=2, default=str) + "\n")
        self.say(f"Report written to {path}", level=2)


def _content_cell(content):
    if content is None:
        return ""
    text = str(content.status)
    if content.status is DIFFERS:
        text += f" ({content.differing_rows:,})"
    return f"[{CONTENT_STYLE.get(str(content.status), '')}]{text}[/]"


def _content_differences(rows):
    """Yield, per table whose content differs, its rows that differ (the first --show-diffs) and how many more."""
    for row in rows:
        content = row.content
        if content is None or content.status is not DIFFERS:
            continue
        noun = "row differs" if content.differing_rows == 1 else "rows differ"
        yield f"{row.model} → '{row.dest}': {content.differing_rows:,} {noun}"
        for difference in content.differences:
            yield f"  {row.model} pk={_pk_text(difference.pk)}: {_what_differs(difference)}"
        more = content.differing_rows - len(content.differences)
        if more:
            shown = "" if content.differences else " (--show-diffs N names them)"
            yield f"  … and {more:,} more{shown}"


def _what_differs(difference):
    if difference.missing:
        return f"missing {difference.missing}"
    verb = "differs" if len(difference.fields) == 1 else "differ"
    return f"{', '.join(difference.fields)} {verb}"


def _pk_text(pk):
    """Spell a key as a user types it in pk=…: quoted text, bare numbers and UUIDs, a tuple for composite keys."""
    if isinstance(pk, tuple):
        return "(" + ", ".join(_pk_text(part) for part in pk) + ")"
    return repr(pk) if isinstance(pk, str) else str(pk)


def _listing(parts):
    return ", ".join(part for part in parts if part)


def _abstract_note(count):
    """Say how many abstract models were left out for having no table (nothing when there are none)."""
    if not count:
        return ""
    return f"{count} abstract model{'s' if count != 1 else ''} {'have' if count != 1 else 'has'} no table"


def _num(value):
    return "" if value is None else f"{value:,}"


def _sync_reads(step, sync_options):
    """Say how a sync reads the step's model: by its cursor, or every row."""
    if step.kind == REMAP:
        return "by natural key"
    model = step.model._meta.auto_created or step.model
    cursor = None if model in sync_options.full_refresh else sync_options.cursors.get(model)
    return f"by cursor {cursor}" if cursor else "in full"


def _notes(step, plan, key_ranges=1):
    notes = []
    if key_ranges > 1:
        notes.append(f"split into {key_ranges} key ranges, copied at once")
    if step.kind == REMAP:
        notes.append("match by natural key, translate ids")
    if step.kind == REPLACE:
        notes.append("replaces the rows migrate created")
    if step.deferred_fields:
        notes.append("deferred FK: " + ", ".join(f.name for f in step.deferred_fields))
    if step.group is not None:
        notes.append("FK checks deferred for cycle: " + ", ".join(plan.groups[step.group]))
    return "; ".join(notes)


class _PlainProgress:
    """Log lines for pipes and files: one per step, one per chunk at -v 2."""

    def __init__(self, report):
        self.report = report
        self.started = {}

    def __enter__(self):
        return self.on_progress

    def __exit__(self, *exc):
        return False

    def on_progress(self, event, step, **data):
        report = self.report
        if event == "interrupt":
            report.error(data["message"])
        elif event == "retry":
            report.say(f"[yellow]retrying[/] {data['message']}")
        elif event == "start":
            self.started[step] = time.monotonic()
            total = data.get("total")
            rows = f" ({total:,} rows)" if total is not None else ""
            report.say(f"Copying {step.label} → '{describe_dest(step.dest)}'{rows}", level=2)
        elif event == "chunk":
            report.say(f"  {step.label}: {_num(data['copied'])} rows", level=2)
        elif event == "finish":
            result = data["result"]
            if result.counts is not None and result.status == "ok":
                counts = result.counts
                report.say(f"synced {step.label} → '{describe_dest(step.dest)}': {counts.inserted:,} inserted, "
                           f"{counts.updated:,} updated, {counts.unchanged:,} unchanged in {result.seconds:.2f} s", level=2)
                return
            if result.status != "ok":
                report.say(f"[red]{result.status}[/] {step.label} → '{describe_dest(step.dest)}' after {result.copied:,} rows")
                return
            if step.kind == REMAP:
                report.say(f"matched {step.label} → '{describe_dest(step.dest)}' by natural key: {result.copied:,} added")
                return
            rate = result.copied / result.seconds if result.seconds > 0 else 0
            ranges = f", {result.key_ranges} key ranges" if result.key_ranges > 1 else ""
            report.say(f"copied {step.label} → '{describe_dest(step.dest)}': {result.copied:,} rows in "
                       f"{result.seconds:.2f} s ({rate:,.0f} rows/s, {result.method}{ranges})")
        elif event == "error":
            report.error(data["message"])
        elif event == "skipped":
            report.say(f"[yellow]skipped[/] {step.label}: {data['message']}")
        elif event == "note":
            report.say(f"[yellow]note[/] {step.label + ': ' if step is not None else ''}{data['message']}")


class _RichProgress(_PlainProgress):
    """A progress bar per step with rows, rows/s and ETA, for a terminal."""

    def __enter__(self):
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeRemainingColumn(),
            console=self.report.console,
        )
        self.bars.__enter__()
        self.tasks = {}
        return self.on_progress

    def __exit__(self, *exc):
        return self.bars.__exit__(*exc)

    def on_progress(self, event, step, **data):
        if event == "start":
            self.started[step] = time.monotonic()
            self.tasks[step] = self.bars.add_task(f"{step.label} → {describe_dest(step.dest)}", total=data.get("total") or 0, rate="–")
        elif event == "chunk" and step in self.tasks:
            elapsed = max(time.monotonic() - self.started[step], 1e-6)
            self.bars.update(self.tasks[step], completed=data["copied"], rate=f"{data['copied'] / elapsed:,.0f}")
        elif event == "finish" and step in self.tasks:
            result = data["result"]
            total = step.source_rows or 0
            # A remap step matches rows rather than copying them: show it as complete.
            done = total if step.kind == REMAP else result.copied
            self.bars.update(self.tasks[step], completed=done, total=max(done, total))
        elif event in ("error", "skipped", "note", "retry", "interrupt"):
            super().on_progress(event, step, **data)
