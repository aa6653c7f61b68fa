"""Check, before any write, that source and destination are ready; collect every problem at once."""

from django.apps import apps
from django.db import DatabaseError, connections

from .aliases import describe
from .dialects import dialect_for
from .exceptions import PreflightError
from .graph import model_label
from .plan import COPY, REMAP, relation_target


def check_connections(aliases):
    problems = []
    for alias in dict.fromkeys(aliases):
        try:
            connections[alias].ensure_connection()
        except Exception as exc:  # every driver has its own connection error types
            problems.append(f"Cannot connect to {describe(alias)}: {str(exc).strip().splitlines()[0]}")
    return problems


def check_schema(plan, side):
    """Return problems with missing tables or drifted columns on the source or the destinations."""
    problems = []
    by_alias = {}
    for step in plan.steps:
        alias = step.source if side == "source" else step.dest
        by_alias.setdefault(alias, []).append(step)
    for alias, steps in by_alias.items():
        dialect = dialect_for(alias)
        tables = dialect.table_names()
        for step in steps:
            if step.table not in tables:
                problems.append(
                    f"Table {step.table} ({step.label}) does not exist in '{alias}': "
                    f"run `python manage.py migrate --database {alias}` first"
                )
                continue
            problems += _column_drift(step, alias, dialect)
    return problems


def _column_drift(step, alias, dialect):
    actual = set(dialect.column_names(step.table))
    expected = {f.column for f in step.model._meta.local_concrete_fields}
    problems = []
    missing = sorted(expected - actual)
    extra = sorted(actual - expected)
    if missing:
        problems.append(
            f"Schema drift in '{alias}': table {step.table} ({step.label}) lacks column(s) {', '.join(missing)}; "
            f"apply the same migrations to both databases"
        )
    if extra:
        problems.append(
            f"Schema drift in '{alias}': table {step.table} ({step.label}) has column(s) {', '.join(extra)} "
            f"that the model does not define; apply the same migrations to both databases"
        )
    return problems


def occupied_tables(plan):
    """Return (step, rows) for planned tables whose destination already holds rows of its own."""
    found = []
    for step in plan.steps:
        if step.kind != COPY:
            continue  # content types, permissions and the default Site are rows `migrate` made
        rows = step.model._base_manager.using(step.dest).count()
        if rows:
            found.append((step, rows))
    return found


def truncate_blockers(plan):
    """Return problems for unplanned destination tables with rows that refer to tables --truncate empties."""
    problems = []
    for dest in plan.dests:
        emptied = {s.model for s in plan.steps_for(dest) if s.kind != REMAP}
        tables = dialect_for(dest).table_names()
        for model in apps.get_models(include_auto_created=True):
            meta = model._meta
            if model in emptied or meta.proxy or meta.db_table not in tables:
                continue
            targets = {
                relation_target(f) for f in meta.local_concrete_fields if f.is_relation and relation_target(f) in emptied
            }
            if targets and model._base_manager.using(dest).exists():
                names = ", ".join(sorted(model_label(t) for t in targets))
                problems.append(
                    f"--truncate would empty {names} in '{dest}', but {model_label(model)} ({meta.db_table}), "
                    f"which is not in the plan, has rows that refer to it: add {model_label(model)} to the labels "
                    f"or empty it first"
                )
    return problems


def preflight(plan, require_empty, truncate=False):
    """Raise PreflightError listing every problem that would make the copy fail or lose data."""
    aliases = [plan.source, *plan.dests]
    problems = check_connections(aliases)
    if problems:
        raise PreflightError(problems)
    try:
        problems = check_schema(plan, "source") + check_schema(plan, "dest")
        if not problems and truncate:
            problems += truncate_blockers(plan)
        if not problems and require_empty:
            occupied = occupied_tables(plan)
            if occupied:
                listed = ", ".join(f"{s.table} in '{s.dest}' ({n} rows)" for s, n in occupied)
                problems.append(
                    f"The destination already holds rows: {listed}. Pass --truncate to delete them first "
                    f"or --append to add to them."
                )
    except DatabaseError as exc:
        problems.append(f"Cannot inspect the databases: {exc}")
    if problems:
        raise PreflightError(problems)
