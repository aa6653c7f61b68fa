"""`manage.py dbcopy plan|copy|compare|sync|export|import`: parse options, confirm, call the library, map outcome → exit."""

import gc
import logging
import os
import shlex
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from ... import conf
from ...aliases import describe, is_url_alias, mask_url, resolve_alias, same_database  # noqa: F401
from ...content import DEFAULT_SHOWN, DIFFERS, ContentChecker, digest_methods
from ...diagnose import first_line
from ...engine import WRITERS, run_plan, stream_plans
from ...exceptions import ConfigError, DbcopyError, DumpError, DumpMismatch, Interrupted
from ...identity import open_databases
from ...plan import COPY, REPLACE, build_plan, range_count, select_models
from ...preflight import preflight
from ...reconcile import failing, is_ok, reconcile
from ...report import Report
from ...results import Status, Timings
from ...runner import MAX_DEFAULT_JOBS, default_jobs, describe_consistency, destination_locks
from ...sync import DEFAULT_LOOKBACK, SyncOptions, cursor_fields, cursor_only, parse_lookback, run_sync

SUBCOMMANDS = ("plan", "copy", "compare", "sync", "export", "import")
COPY_ONLY = ("truncate", "append", "writer", "resume")
SYNC_ONLY = ("since_field", "lookback", "deletes", "cursor_only", "full_refresh")
# Which subcommands take which options; `plan` takes them all, to show the run they describe.
OPTION_SCOPES = (
    (COPY_ONLY, ("copy", "plan", "import")),
    (SYNC_ONLY, ("sync", "plan")),
    (("chunk_size", "retries"), ("copy", "sync", "plan", "export", "import")),
    (("jobs",), ("copy", "sync", "plan")),
    (("checksum",), ("compare", "plan")),
    (("verify",), ("copy", "plan")),
    (("show_diffs",), ("compare", "copy")),
    (("dest", "report_json"), ("plan", "copy", "compare", "sync", "import")),
    (("source",), ("plan", "copy", "compare", "sync", "export")),
    (("output",), ("export",)),
)


class IntermixedParser(CommandParser):
    """Accept labels and options in any order after the subcommand, as users type them."""

    def parse_args(self, args=None, namespace=None):
        return self.parse_intermixed_args(args, namespace)


class Command(BaseCommand):
    help = "Copy or sync data between databases in foreign-key order, then reconcile row counts (and content)."
    # The models' own checks only: moving rows needs sound models, not a sound URLconf, admin or templates
    # (checking those imported every view and took most of the checks' time).
    requires_system_checks = [Tags.models]

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = IntermixedParser
        return parser

    def add_arguments(self, parser):
        parser.add_argument("subcommand", choices=SUBCOMMANDS, help="plan: show the steps; copy: run them; compare: count both sides (--checksum: digest their content); export: write the source's rows to a dump file (-o); import PATH: write a dump's rows into --dest")
        parser.add_argument("labels", nargs="*", metavar="LABEL", help="app_label or app_label.ModelName; none means every model")
        parser.add_argument("--source", help="alias of settings.DATABASES or a database URL to read from")
        parser.add_argument("--dest", help="alias or URL to write to; default: router.db_for_write(model) per model")
        parser.add_argument("--connect-timeout", type=int, metavar="SECONDS", help=f"give up connecting to a server after SECONDS (default: connect_timeout in the alias' OPTIONS, else DBCOPY_CONNECT_TIMEOUT, else {conf.DEFAULTS['CONNECT_TIMEOUT']}); overrides OPTIONS when given")
        parser.add_argument("-e", "--exclude", action="append", default=[], metavar="LABEL", help="app_label or app_label.ModelName to leave out (repeatable)")
        parser.add_argument("--chunk-size", type=int, help=f"rows per keyset chunk (default {conf.DEFAULTS['CHUNK_SIZE']})")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--truncate", action="store_true", help="delete destination rows of the planned tables first")
        mode.add_argument("--append", action="store_true", help="add to destination tables that already hold rows")
        mode.add_argument("--resume", action="store_true", help="continue an interrupted copy: finished tables are kept, a partly copied one continues after its last copied key")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive", help="do not prompt before deleting rows")
        parser.add_argument("--writer", choices=WRITERS, help="fast: the destination's bulk-load path (COPY on PostgreSQL, default); bulk_create: Django's insert compiler, the reference")
        parser.add_argument("--jobs", type=int, help=f"copy up to N independent tables at once, each with its own connections, a big table as N key ranges (default: min({MAX_DEFAULT_JOBS}, cores) from a PostgreSQL source, whose one snapshot every worker reads; 1 from MySQL/MariaDB or SQLite, whose snapshot belongs to one connection)")
        parser.add_argument("--retries", type=int, help="retries of a table after a dropped connection, deadlock or lock timeout (default 3)")
        sync = parser.add_argument_group("sync")
        sync.add_argument("--since-field", metavar="FIELD", help="DateTimeField to sync by, e.g. updated_at (DBCOPY_SYNC_FIELDS overrides per model); models without it are compared in full")
        sync.add_argument("--lookback", metavar="AGE", help=f"re-read rows this much older than the destination's newest (30s, 10m, 2h, 1d; default {DEFAULT_LOOKBACK})")
        sync.add_argument("--deletes", action="store_true", help="delete destination rows whose primary key is gone from the source")
        sync.add_argument("--cursor-only", action="store_true", help="sync only the models that have the cursor field")
        sync.add_argument("--full-refresh", nargs="+", action="extend", default=[], metavar="LABEL", help="compare these models in full, ignoring the watermark")
        content = parser.add_argument_group("content")
        content.add_argument("--checksum", action="store_true", help="(compare) digest every table's rows on both sides too and name the rows that differ; with plan: say which tables are digested in Python and why")
        content.add_argument("--verify", action="store_true", help="(copy) run compare --checksum on the copied tables right after the copy")
        content.add_argument("--show-diffs", type=int, metavar="N", help=f"name the first N differing rows per model (default {DEFAULT_SHOWN}; 0: count them only); with --checksum or --verify")
        parser.add_argument("--report-json", metavar="PATH", help="write the reconciliation as JSON to PATH")
        parser.add_argument("-o", "--output", metavar="PATH", help="(export) the dump file to write, '-' for standard output; written under a temporary name and renamed when complete")
        parser.add_argument("--include-unmanaged", action="store_true", help="copy models with Meta.managed = False too")

    def run_from_argv(self, argv):
        self.whole_process = True  # the command line started this process: its start is the command's
        # The process ends with this command, so the garbage collector need not walk what Django set up
        # (apps, models, modules) again: not in the run's collections, nor in its pass at exit (70 ms).
        gc.freeze()
        return super().run_from_argv(argv)

    def handle(self, subcommand, labels, **options):
        self.timings = Timings(whole_process=getattr(self, "whole_process", False))
        self.report = Report(self.stdout, self.stderr, options["verbosity"], options.get("no_color", False))
        try:
            return self.run(subcommand, labels, options)
        except DbcopyError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from None
        except KeyboardInterrupt:
            raise CommandError(
                "Stopped at once by a second interrupt; the database rolled back the statement in progress. "
                "Run `dbcopy compare` to see what arrived, and `dbcopy copy --resume` to continue a copy "
                "(`dbcopy import THE_DUMP --resume` an import).",
                returncode=130,
            ) from None
        except DatabaseError as exc:
            if options.get("traceback"):
                raise
            raise CommandError(f"Database error: {first_line(exc)} (rerun with --traceback for details)", returncode=1) from None

    def run(self, subcommand, labels, options):
        options["_labels"] = tuple(labels)  # for the --resume command line
        self.check_options(subcommand, options)
        if subcommand == "export":
            return self.export(labels, options)
        if subcommand == "import":
            return self.import_dump(labels, options)
        plan = self.build(subcommand, labels, options)
        sync_options = None
        if subcommand == "sync" or (subcommand == "plan" and any(options.get(o) for o in SYNC_ONLY)):
            plan, sync_options = self.sync_setup(plan, options)
        if plan.steps and subcommand in ("plan", "copy", "sync"):
            options["_jobs"] = self.choose_jobs(plan, options)
        if subcommand == "plan":
            jobs = options.get("_jobs", (1, ""))
            consistency = describe_consistency(plan.source, jobs[0]) if plan.steps else None
            digests = digest_methods(plan) if options["checksum"] or options["verify"] else None
            paths = splits = None
            if not sync_options:
                paths = stream_plans(plan, options["writer"] or "fast")
                splits = {step: range_count(step, jobs[0], streams=bool(paths[step])) for step in plan.steps}
                if self.report.verbosity < 2:
                    paths = None
            self.report.plan(plan, sync_options=sync_options, consistency=consistency, digests=digests,
                             jobs=jobs if plan.steps else None, splits=splits, paths=paths)
            return self.report.timings(self.timings.as_dict())
        if subcommand == "compare":
            with self.timings.phase("preflight"):
                preflight(plan, require_empty=False)
            with self.timings.phase("reconcile"):
                rows = reconcile(plan, content=self.content_checker(plan, options))
            return self.finish(subcommand, plan, rows, options)
        with ExitStack() as locked:
            with self.timings.phase("preflight"):
                locked.enter_context(destination_locks(plan))
                self.prepare_writes(plan, options, require_empty=subcommand == "copy")
            with self.timings.phase(subcommand):
                result = self.run_steps(subcommand, plan, options, sync_options)
        # --verify after an interrupt would keep the user waiting for proof of a copy they stopped.
        verify = subcommand == "copy" and options["verify"] and not result.interrupted
        with self.timings.phase("reconcile"):
            rows = reconcile(plan, result, content=self.content_checker(plan, options) if verify else None)
        if subcommand == "sync":
            self.report.sync_summary(rows)
        self.finish(subcommand, plan, rows, options, result)

    def export(self, labels, options):
        """Write the selected models' rows to -o PATH (or standard output) as a dump file."""
        # Imported here: the dump format (msgpack, zstandard) costs every other subcommand ~20 ms of start-up.
        from ...export import build_export_plan, check_output_path, export_plan, written_atomically

        output = options["output"]
        if not output:
            raise ConfigError("export needs -o PATH, or -o - to write the dump to standard output")
        if output == "-":
            stdout = self.binary_stdout()
            # Standard output carries the dump alone: every message goes to standard error.
            self.report = Report(self.stderr, self.stderr, options["verbosity"], options.get("no_color", False))
        else:
            check_output_path(output)
        source, _ = self.connect("export", options)
        plan = build_export_plan(source, labels, options["exclude"], options["include_unmanaged"])
        target = "standard output" if output == "-" else output
        self.report.warnings(plan.warnings)
        self.report.say(f"Exporting {len(plan.steps)} tables from {describe(source)} to {target}…")
        on_progress = self.export_progress if options["verbosity"] >= 2 else None
        try:
            if output == "-":
                result = export_plan(plan, stdout, options["chunk_size"], on_progress)
            else:
                with written_atomically(output) as stream:
                    result = export_plan(plan, stream, options["chunk_size"], on_progress)
        except Interrupted as exc:
            kept = "the dump on standard output lacks its trailer" if output == "-" else f"nothing was written to {output}"
            raise CommandError(f"Export interrupted by {signal.Signals(exc.signum).name}: {kept}",
                               returncode=exc.returncode) from None
        except BrokenPipeError:
            _silence_stdout()
            raise CommandError("Export stopped: the program reading standard output closed it", returncode=1) from None
        self.report.export_summary(result, target, plan.skipped)

    def import_dump(self, labels, options):
        """Write the rows of the dump file labels[0] (- for standard input) into the destination."""
        from ...importer import (DumpFeed, build_import_plan, describe_dump, describe_stop, open_dump, shadow_source,
                                 use_tz_problem, verify_before_writing)

        if not labels:
            raise ConfigError("import needs the dump to read: `dbcopy import PATH --dest ALIAS` (- for standard input)")
        path, labels = labels[0], labels[1:]
        if path == "-" and _has_terminal():
            raise ConfigError("import -: standard input is a terminal, not a dump; pipe the dump in "
                              "(`… dbcopy export -o - | … dbcopy import - …`) or give the dump file's PATH")
        if path == "-" and options["truncate"] and options["interactive"]:
            raise ConfigError("--truncate asks for confirmation, but standard input carries the dump: "
                              "pass --no-input to confirm in advance")
        if options["truncate"] and options["interactive"] and not _has_terminal():
            raise ConfigError("--truncate asks for confirmation, but there is no terminal to answer on: "
                              "pass --no-input to confirm in advance")
        _, dest = self.connect("import", options)  # refuses the options import does not take, before any reading
        counts = None
        if path != "-":
            self.report.say(f"Verifying {path} before writing anything…", level=2)
            try:
                counts = verify_before_writing(path)
            except KeyboardInterrupt:
                raise CommandError(f"Interrupted while verifying {path}: nothing was written", returncode=130) from None
        with open_dump(path) as reader:
            header = reader.header
            problem = use_tz_problem(header)
            if problem:
                raise DumpMismatch([problem])
            with shadow_source(header, describe_dump(path)) as source:
                plan = build_import_plan(header, source, dest, labels, options["exclude"], options["include_unmanaged"],
                                         counts)
                feed = DumpFeed(reader, [step.label for step in plan.steps])
                with destination_locks(plan):
                    self.prepare_writes(plan, options, require_empty=True)
                    result = self.run_import_steps(plan, feed, header, options, check_end=path == "-")
                rows = reconcile(plan, result)
        try:
            self.finish("import", plan, rows, options, result)
        except CommandError:
            if feed.broken is None or result.interrupted:
                raise
            # The dump broke mid-stream: say what was written and how to finish, not only which table failed.
            again = resume_command("import", plan, options)
            whole = "the whole dump on standard input" if path == "-" else "a complete copy of the dump"
            raise CommandError(f"{describe_stop(feed, result)}. To finish, run with {whole}: {again}",
                               returncode=1) from None

    def run_import_steps(self, plan, feed, header, options, check_end):
        """Run the import with a progress display; with check_end (standard input, not verified up front),
        then read the rest of the dump, its trailer included."""
        from ...importer import DumpRows, dump_consistency, run_import

        self.report.say(f"Importing {len(plan.steps)} tables from {describe(plan.source)}…")
        with self.report.progress() as on_progress:
            result = run_import(
                plan, DumpRows(feed, header), chunk_size=options["chunk_size"], truncate=options["truncate"],
                on_progress=on_progress, writer=options["writer"] or "fast", resume=options["resume"],
                retries=3 if options["retries"] is None else options["retries"], debug=options.get("traceback", False),
            )
        result.consistency = dump_consistency(header)
        if check_end and not result.interrupted and feed.broken is None:
            try:
                feed.finish()
            except DumpError as exc:
                result.problems.append(f"the rows written are as the dump holds them, but {exc}")
        return result

    def binary_stdout(self):
        """Return the binary stream under standard output, refusing a terminal."""
        if self.stdout.isatty():
            raise ConfigError("-o -: standard output is a terminal, and a dump is binary; redirect it "
                              "(`… -o - > data.dbcopy`, `… -o - | ssh host …`) or give -o PATH")
        buffer = getattr(self.stdout, "buffer", None)  # OutputWrapper passes attributes through
        if buffer is None:
            raise ConfigError("-o -: this standard output takes text only; give -o PATH")
        self.stdout.flush()
        return buffer

    def export_progress(self, event, step, **data):
        if event == "finish":
            done = data["result"]
            self.report.say(f"exported {done.label}: {done.rows:,} rows in {done.seconds:.2f} s", level=2)

    def prepare_writes(self, plan, options, require_empty):
        """Check everything before the first write (an empty destination where require_empty, unless
        --truncate, --append or --resume says otherwise), show the warnings, and confirm a --truncate."""
        require_empty = require_empty and not (options["truncate"] or options["append"] or options["resume"])
        preflight(plan, require_empty=require_empty, truncate=options["truncate"])
        if options["verbosity"] >= 3:
            self.show_sql(plan)
        self.report.warnings(plan.warnings)
        if options["truncate"]:
            self.confirm(plan, options["interactive"])

    def check_options(self, subcommand, options):
        """Refuse, before connecting anywhere, what would only fail after the copy."""
        if options.get("retries") is not None and options["retries"] < 0:
            raise ConfigError("--retries must be 0 or more")
        path = options.get("report_json")
        if path and subcommand != "plan":
            target = Path(path)
            folder = target.parent if str(target.parent) else Path(".")
            if target.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK) or (
                target.exists() and not os.access(target, os.W_OK)
            ):
                raise ConfigError(f"--report-json {path}: cannot write there (check the folder exists and is writable)")
        if options.get("show_diffs") is not None:
            if options["show_diffs"] < 0:
                raise ConfigError("--show-diffs must be 0 or more")
            if not (options.get("checksum") or options.get("verify")):
                raise ConfigError("--show-diffs needs --checksum (compare) or --verify (copy)")
        if subcommand == "copy" and options.get("truncate") and options["interactive"] and not _has_terminal():
            raise ConfigError("--truncate asks for confirmation, but there is no terminal to answer on: "
                              "pass --no-input to confirm in advance")

    def content_checker(self, plan, options):
        """Return the ContentChecker of --checksum / --verify, or None when content was not asked for."""
        if not (options["checksum"] or options["verify"]):
            return None
        self.report.say(f"Digesting the content of {len(plan.steps)} tables on both sides…")
        return ContentChecker(plan, shown=options["show_diffs"])

    def run_steps(self, subcommand, plan, options, sync_options):
        """Run the copy or the sync with a progress display; return its RunResult."""
        verb = "Syncing" if subcommand == "sync" else "Copying"
        self.report.say(f"{verb} {len(plan.steps)} tables from {describe(plan.source)}…")
        common = dict(
            chunk_size=options["chunk_size"], jobs=options.get("_jobs", (1, ""))[0],
            retries=3 if options["retries"] is None else options["retries"], debug=options.get("traceback", False),
        )
        with self.report.progress() as on_progress:
            if subcommand == "sync":
                return run_sync(plan, sync_options, on_progress=on_progress, **common)
            return run_plan(
                plan, truncate=options["truncate"], on_progress=on_progress, writer=options["writer"] or "fast",
                resume=options["resume"], **common,
            )

    def build(self, subcommand, labels, options):
        with self.timings.phase("connect"):
            source, dest = self.connect(subcommand, options)
        # A copy counts every table inside its snapshot as it starts, and a comparison counts both
        # sides: a count at planning time would only read every source table once more.
        count_rows = subcommand not in ("copy", "compare")
        with self.timings.phase("plan"):
            return build_plan(source, dest, labels, options["exclude"], options["include_unmanaged"],
                              count_rows=count_rows)

    def choose_jobs(self, plan, options):
        """Return (jobs, why): --jobs as given, else the source's default (runner.default_jobs)."""
        if options["jobs"] is not None:
            return options["jobs"], "as given"
        return default_jobs(plan.source)

    def connect(self, subcommand, options):
        """Refuse options the subcommand does not take; return the (source, dest) aliases, reachable."""
        for names, allowed in OPTION_SCOPES:
            for option in names:
                if subcommand not in allowed and options.get(option):
                    only = " and ".join(f"`dbcopy {name}`" for name in allowed)
                    raise ConfigError(f"--{option.replace('_', '-')} applies to {only} only")
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise ConfigError("--chunk-size must be a positive number of rows")
        if options["jobs"] is not None and options["jobs"] < 1:
            raise ConfigError("--jobs must be at least 1")
        timeout = options.get("connect_timeout")
        if timeout is not None and timeout < 1:
            raise ConfigError("--connect-timeout must be at least 1 second")
        dest = resolve_alias(options["dest"], "dest") if options["dest"] else None
        if subcommand == "import":  # the dump is the source
            if dest:
                open_databases(dest, connect_timeout=timeout)
            return None, dest
        source = resolve_alias(options["source"], "source")
        # Before planning counts rows: an unreachable server or a missing SQLite file is a clean
        # error, and a destination that is the source in another spelling is refused.
        open_databases(source, dest, connect_timeout=timeout)
        return source, dest

    def sync_setup(self, plan, options):
        """Return the plan a sync runs (restricted by --cursor-only) and its SyncOptions."""
        sync_options = SyncOptions(
            lookback=parse_lookback(options["lookback"] or DEFAULT_LOOKBACK),
            deletes=options["deletes"],
            full_refresh=frozenset(select_models(options["full_refresh"])) if options["full_refresh"] else frozenset(),
            cursors=cursor_fields(plan, options["since_field"]),
        )
        if options["cursor_only"]:
            if not options["since_field"]:
                raise ConfigError("--cursor-only needs --since-field")
            plan = cursor_only(plan, sync_options.cursors, options["since_field"])
        return plan, sync_options

    def show_sql(self, plan):
        """Print every statement sent to the planned databases (Django's own query logging)."""
        handler = logging.StreamHandler(self.stdout)
        handler.setFormatter(logging.Formatter("  SQL [%(alias)s] %(sql)s"))
        logger = logging.getLogger("django.db.backends")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        for alias in {plan.source, *plan.dests}:
            connections[alias].force_debug_cursor = True

    def confirm(self, plan, interactive):
        """Ask before deleting, naming every destination, as Django's flush does."""
        if not interactive:
            return
        targets = "; ".join(
            f"{len([s for s in plan.steps_for(d) if s.kind in (COPY, REPLACE)])} tables in {describe(d)}" for d in plan.dests
        )
        answer = input(
            f"This will DELETE all rows of {targets} before copying.\n"
            "Are you sure you want to do this?\n\n    Type 'yes' to continue, or 'no' to cancel: "
        )
        if answer != "yes":
            raise CommandError("Copy cancelled; nothing was deleted.", returncode=2)

    def finish(self, subcommand, plan, rows, options, result=None):
        self.report.reconciliation(rows)
        if result is not None:
            self.report.run_facts(result, jobs=options.get("_jobs"))
        timings = self.timings.as_dict()
        self.report.timings(timings)
        if options["report_json"]:
            self.report.write_json(options["report_json"], subcommand, plan.source, rows, result, timings=timings,
                                   jobs=options.get("_jobs", (None,))[0])
        if result is not None and result.interrupted:
            self.report.say(f"To continue: {resume_command(subcommand, plan, options)}", level=0)
            copied = sum(r.copied for r in result.results)
            raise CommandError(
                f"Interrupted: {copied:,} rows written before the run stopped; nothing half-written was kept",
                returncode=128 + result.interrupted,
            )
        if is_ok(rows) and not (result and result.problems):
            return
        verb = subcommand.capitalize()
        failed = failing(rows, Status.FAILED)
        if failed:
            raise CommandError(f"{verb} failed for {len(failed)} model(s): {', '.join(failed)}", returncode=1)
        blocked = failing(rows, Status.BLOCKED)
        if blocked:
            raise CommandError(f"{verb} did not reach {len(blocked)} model(s): {', '.join(blocked)}", returncode=1)
        differ = failing(rows, Status.MISMATCH)
        if differ:
            raise CommandError(_differ_message(rows), returncode=1)
        raise CommandError(f"{verb} finished with problems: " + "; ".join(result.problems), returncode=1)


def _differ_message(rows):
    """Say which models differ in content and which in their counts (or their deferred FKs)."""
    mismatched = [row for row in rows if row.status == Status.MISMATCH]
    content = [row.model for row in mismatched if row.content is not None and row.content.status is DIFFERS]
    counts = [row.model for row in mismatched if row.model not in content]
    parts = []
    if content:
        parts.append(f"Content differs for {len(content)} model(s): {', '.join(content)}")
    if counts:
        parts.append(f"{'row counts' if parts else 'Row counts'} differ for {len(counts)} model(s): {', '.join(counts)}")
    return "; ".join(parts)


def _has_terminal():
    return hasattr(sys.stdin, "isatty") and sys.stdin.isatty()


def resume_command(subcommand, plan, options):
    """Return the command line that continues this run (passwords in URLs masked)."""
    program = {"manage.py": "python manage.py dbcopy", "__main__.py": "python -m django dbcopy"}.get(
        os.path.basename(sys.argv[0]), "dbcopy"
    )
    words = [subcommand, *options.get("_labels", ())]
    for name in ("source", "dest"):
        if options.get(name):
            words += [f"--{name}", mask_url(options[name])]
    for label in options.get("exclude") or ():
        words += ["--exclude", label]
    for name in ("chunk_size", "jobs", "retries", "writer", "since_field", "lookback", "connect_timeout", "show_diffs"):
        if options.get(name) is not None:
            words += [f"--{name.replace('_', '-')}", str(options[name])]
    for name in ("deletes", "cursor_only", "include_unmanaged", "verify"):
        if options.get(name):
            words.append(f"--{name.replace('_', '-')}")
    if options.get("full_refresh"):
        words += ["--full-refresh", *options["full_refresh"]]
    if options.get("settings"):
        words.append(f"--settings={options['settings']}")
    if subcommand in ("copy", "import"):
        words.append("--resume")
    return " ".join([program, *map(shlex.quote, words)])


def _silence_stdout():
    """Point standard output at /dev/null, so that Python's flush at exit meets no closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
