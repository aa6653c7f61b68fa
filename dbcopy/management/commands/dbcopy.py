"""`manage.py dbcopy plan|copy|compare`: parse options, confirm, call the library, map outcome → exit."""

import logging

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django.db import connections

from ... import conf
from ...aliases import describe, resolve_alias, same_database
from ...engine import WRITERS, run_plan
from ...exceptions import DbcopyError, ConfigError, PlanError, PreflightError
from ...plan import COPY, REPLACE, build_plan, select_models
from ...sync import DEFAULT_LOOKBACK, SyncLocked, SyncOptions, cursor_fields, cursor_only, parse_lookback, run_sync
from ...preflight import preflight
from ...reconcile import is_ok, reconcile
from ...report import Report

SUBCOMMANDS = ("plan", "copy", "compare", "sync")
COPY_ONLY = ("truncate", "append", "writer", "jobs")
SYNC_ONLY = ("since_field", "lookback", "deletes", "cursor_only", "full_refresh")


class IntermixedParser(CommandParser):
    """Accept labels and options in any order after the subcommand, as users type them."""

    def parse_args(self, args=None, namespace=None):
        return self.parse_intermixed_args(args, namespace)


class Command(BaseCommand):
    help = "Copy or sync data between databases in foreign-key order, then reconcile row counts."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = IntermixedParser
        return parser

    def add_arguments(self, parser):
        parser.add_argument("subcommand", choices=SUBCOMMANDS, help="plan: show the steps; copy: run them; compare: count both sides")
        parser.add_argument("labels", nargs="*", metavar="LABEL", help="app_label or app_label.ModelName; none means every model")
        parser.add_argument("--source", help="alias of settings.DATABASES or a database URL to read from")
        parser.add_argument("--dest", help="alias or URL to write to; default: router.db_for_write(model) per model")
        parser.add_argument("-e", "--exclude", action="append", default=[], metavar="LABEL", help="app_label or app_label.ModelName to leave out (repeatable)")
        parser.add_argument("--chunk-size", type=int, help=f"rows per keyset chunk (default {conf.DEFAULTS['CHUNK_SIZE']})")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--truncate", action="store_true", help="delete destination rows of the planned tables first")
        mode.add_argument("--append", action="store_true", help="add to destination tables that already hold rows")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive", help="do not prompt before deleting rows")
        parser.add_argument("--writer", choices=WRITERS, help="fast: the destination's bulk-load path (COPY on PostgreSQL, default); bulk_create: Django's insert compiler, the reference")
        parser.add_argument("--jobs", type=int, help="copy up to N independent tables at once, each with its own connections (default 1)")
        sync = parser.add_argument_group("sync")
        sync.add_argument("--since-field", metavar="FIELD", help="DateTimeField to sync by, e.g. updated_at (DBCOPY_SYNC_FIELDS overrides per model); models without it are compared in full")
        sync.add_argument("--lookback", metavar="AGE", help=f"re-read rows this much older than the destination's newest (30s, 10m, 2h, 1d; default {DEFAULT_LOOKBACK})")
        sync.add_argument("--deletes", action="store_true", help="delete destination rows whose primary key is gone from the source")
        sync.add_argument("--cursor-only", action="store_true", help="sync only the models that have the cursor field")
        sync.add_argument("--full-refresh", nargs="+", action="extend", default=[], metavar="LABEL", help="compare these models in full, ignoring the watermark")
        parser.add_argument("--report-json", metavar="PATH", help="write the reconciliation as JSON to PATH")
        parser.add_argument("--include-unmanaged", action="store_true", help="copy models with Meta.managed = False too")

    def handle(self, subcommand, labels, **options):
        self.report = Report(self.stdout, self.stderr, options["verbosity"], options.get("no_color", False))
        try:
            plan = self.build(subcommand, labels, options)
            if subcommand == "plan":
                return self.report.plan(plan)
            require_empty = subcommand == "copy" and not (options["truncate"] or options["append"])
            preflight(plan, require_empty=require_empty, truncate=options["truncate"])
        except (ConfigError, PlanError, PreflightError) as exc:
            raise CommandError(str(exc), returncode=2) from None
        if options["verbosity"] >= 3:
            self.show_sql(plan)
        if subcommand == "compare":
            return self.finish(subcommand, plan, reconcile(plan), options)
        if subcommand == "sync":
            return self.sync(plan, options)
        if options["truncate"]:
            self.confirm(plan, options["interactive"])
        self.report.say(f"Copying {len(plan.steps)} tables from {describe(plan.source)}…")
        try:
            with self.report.progress() as on_progress:
                result = run_plan(
                    plan, chunk_size=options["chunk_size"], truncate=options["truncate"], on_progress=on_progress,
                    writer=options["writer"] or "fast", jobs=options["jobs"] or 1,
                )
        except DbcopyError as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.finish(subcommand, plan, reconcile(plan, result), options)

    def build(self, subcommand, labels, options):
        for names, allowed in ((COPY_ONLY, ("copy",)), (SYNC_ONLY, ("sync",)), (("chunk_size",), ("copy", "sync"))):
            for option in names:
                if subcommand not in allowed and options.get(option):
                    only = " and ".join(f"`dbcopy {name}`" for name in allowed)
                    raise ConfigError(f"--{option.replace('_', '-')} applies to {only} only")
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise ConfigError("--chunk-size must be a positive number of rows")
        if options["jobs"] is not None and options["jobs"] < 1:
            raise ConfigError("--jobs must be at least 1")
        source = resolve_alias(options["source"], "source")
        dest = resolve_alias(options["dest"], "dest") if options["dest"] else None
        if dest and same_database(source, dest):
            raise ConfigError(f"--source and --dest are the same database ({describe(source)}); choose another destination")
        return build_plan(source, dest, labels, options["exclude"], options["include_unmanaged"])

    def sync(self, plan, options):
        """Run `dbcopy sync`: incremental where a model has the cursor field, full comparison elsewhere."""
        try:
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
        except (ConfigError, PlanError) as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.report.say(f"Syncing {len(plan.steps)} tables from {describe(plan.source)}…")
        try:
            with self.report.progress() as on_progress:
                result = run_sync(plan, sync_options, chunk_size=options["chunk_size"], on_progress=on_progress)
        except SyncLocked as exc:
            raise CommandError(str(exc), returncode=3) from None
        except DbcopyError as exc:
            raise CommandError(str(exc), returncode=1) from None
        rows = reconcile(plan, result)
        self.report.sync_summary(rows)
        self.finish("sync", plan, rows, options)

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

    def finish(self, subcommand, plan, rows, options):
        self.report.reconciliation(rows)
        if options["report_json"]:
            self.report.write_json(options["report_json"], subcommand, plan.source, rows)
        if is_ok(rows):
            return
        failed = [row.model for row in rows if row.status == "failed"]
        differ = [row.model for row in rows if row.status == "mismatch"]
        if failed:
            verb = subcommand.capitalize()
            raise CommandError(f"{verb} failed for {len(failed)} model(s): {', '.join(failed)}", returncode=1)
        blocked = [row.model for row in rows if row.status == "skipped" and row.reason.startswith("not copied")]
        raise CommandError(f"Row counts differ for {len(differ + blocked)} model(s): {', '.join(differ + blocked)}", returncode=1)
