"""Everything dbcopy prints: the plan, progress, the reconciliation table and the JSON report."""

import json
import signal
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .aliases import describe
from .plan import REMAP, REPLACE
from .reconcile import describe_dest, is_ok

STATUS_STYLE = {"ok": "green", "mismatch": "bold red", "failed": "bold red", "blocked": "bold red",
                "interrupted": "bold red", "skipped": "yellow"}


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

    def plan(self, plan, sync_options=None, consistency=None):
        """Print the ordered steps, skipped models and warnings; for a sync, how each model is read."""
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
            table.add_row(*cells, _notes(step, plan))
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
        if consistency is not None:
            self.say(f"Source snapshot: {consistency.describe()}")

    def warnings(self, warnings):
        for warning in warnings:
            self.say(f"[yellow]warning:[/] {warning}")

    def run_facts(self, result):
        """Print what the reconciliation table cannot: snapshot, retries, interrupts, run-wide problems."""
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
        if self.verbosity < 1:
            for row in rows:
                if row.status == "mismatch":  # failures were reported as they happened
                    self.error(f"{row.model} ({row.table}): {row.status} — {row.reason}")
            return
        table = Table(title=title, title_justify="left")
        for column in ("model", "dest", "source", "dest rows", "copied", "status", "reason"):
            table.add_column(column, justify="right" if column in ("source", "dest rows", "copied") else "left")
        for row in rows:
            if row.status == "skipped" and row.source_rows is None and self.verbosity < 2:
                continue  # models skipped by the plan were listed there; -v 2 shows them again
            style = STATUS_STYLE.get(str(row.status), "")
            table.add_row(row.model, row.dest or "", _num(row.source_rows), _num(row.dest_rows), _num(row.copied_rows),
                          f"[{style}]{row.status}[/]", row.reason)
        self.console.print(table)
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

    def write_json(self, path, command, source, rows, result=None):
        document = {
            "command": command,
            "ok": is_ok(rows) and not (result and (result.problems or result.interrupted)),
            "source": describe(source),
            "models": [row.as_dict() for row in rows],
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
            })
        Path(path).write_text(json.dumps(document, indent=2, default=str) + "\n")
        self.say(f"Report written to {path}", level=2)


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


def _notes(step, plan):
    notes = []
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
            report.say(f"Copying {step.label} → '{describe_dest(step.dest)}' ({_num(data.get('total'))} rows)", level=2)
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
            report.say(f"copied {step.label} → '{describe_dest(step.dest)}': {result.copied:,} rows in "
                       f"{result.seconds:.2f} s ({rate:,.0f} rows/s, {result.method})")
        elif event == "error":
            report.error(data["message"])
        elif event == "skipped":
            report.say(f"[yellow]skipped[/] {step.label}: {data['message']}")
        elif event == "note":
            report.say(f"[yellow]note[/] {step.label}: {data['message']}")


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
