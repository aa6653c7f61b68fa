"""Check, before any write, that source and destination are ready; collect every problem at once."""

from django.apps import apps
from django.db import DatabaseError, connections

from .dialects import dialect_for
from .dialects.base import ForeignKeyReferrer
from .exceptions import PreflightError
from .graph import model_label
from .identity import connection_failure
from .plan import COPY, REMAP, relation_target
from .rows import RowReader, pk_fields


def check_connections(aliases):
    """Return a problem, naming host and port, for every alias that cannot be connected to."""
    problems = []
    for alias in dict.fromkeys(aliases):
        try:
            connections[alias].ensure_connection()
        except Exception as exc:  # every driver has its own connection error types
            problems.append(connection_failure(alias, exc))
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
        present = [step for step in steps if step.table in tables]
        columns = dialect.column_names_of(sorted({step.table for step in present}))
        for step in steps:
            if step.table not in tables:
                problems.append(
                    f"Table {step.table} ({step.label}) does not exist in '{alias}': "
                    f"run `python manage.py migrate --database {alias}` first"
                )
                continue
            # A table the catalog query did not find by that name is asked as Django asks.
            actual = columns[step.table] if step.table in columns else dialect.column_names(step.table)
            problems += _column_drift(step, alias, dialect, actual)
    return problems


def _column_drift(step, alias, dialect, actual):
    actual = set(actual)
    expected = {f.column for f in step.model._meta.local_concrete_fields}
    problems = []
    # A model may declare a column the database provides without listing it (SQLite's rowid).
    missing = sorted(expected - actual - _implicit_columns(dialect, step.table, expected - actual))
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


def _implicit_columns(dialect, table, missing):
    """Return those of the missing columns the table provides implicitly (asked only when some are missing)."""
    if not missing:
        return set()
    implicit = {name.lower() for name in dialect.implicit_column_names(table)}
    return {column for column in missing if column.lower() in implicit}  # SQLite ignores the case of names


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


# Seed rows are few: a table holding more than this at the destination was filled by something else.
SEED_ROWS_LIMIT = 1000


def occupied_message(occupied):
    """Say what the destination holds and the flag that fits: seeded by migrations, or written before."""
    listed = ", ".join(f"{s.table} in '{s.dest}' ({n} rows)" for s, n in occupied)
    if all(looks_seeded(step, rows) for step, rows in occupied):
        return (
            f"The destination already holds rows whose every primary key the source has too: {listed}. "
            f"If an interrupted dbcopy copy wrote them, pass --resume to continue it. If the destination's "
            f"migrations seem to have created them (apps such as Wagtail seed their root page, default site, "
            f"locale, collection and groups), pass --truncate to replace them with the source's rows (it asks "
            f"first; --no-input in scripts)."
        )
    return (
        f"The destination already holds rows: {listed}. Pass --resume to continue an interrupted "
        f"copy, --truncate to delete them first, or --append to add to them."
    )


def looks_seeded(step, rows):
    """Return whether the destination's few rows all have keys the source has (what a data migration makes)."""
    if rows > SEED_ROWS_LIMIT:
        return False
    reader = RowReader(step.model, step.source, pk_fields(step.model))
    keys = list(step.model._base_manager.using(step.dest).values_list(*reader.key_columns()))
    return reader.with_keys(step.model._base_manager.using(step.source), keys).count() == len(keys)


def truncate_blockers(plan):
    """Return problems for rows outside the plan that emptying the planned tables would delete or orphan.

    Asks the database catalog (it knows tables no model maps, and their ON DELETE rules) and the
    models (a db_constraint=False FK has no catalog entry but still points at rows), each FK once.
    """
    problems = []
    for dest in plan.dests:
        emptied = {s.table: s.model for s in plan.steps_for(dest) if s.kind != REMAP}
        dialect = dialect_for(dest)
        constrained = [r for r in dialect.foreign_key_referrers(list(emptied)) if not _emptied_too(r, emptied)]
        seen = {_fk_key(r) for r in constrained}
        unconstrained = [r for r in _model_referrers(dialect, emptied) if _fk_key(r) not in seen]
        owners = _models_by_table()
        effects = [(r, _on_delete_effect(r)) for r in constrained] + [(r, None) for r in unconstrained]
        for referrer, effect in effects:
            if dialect.has_referring_rows(referrer):
                problems.append(_truncate_blocker_message(dest, referrer, emptied, owners, effect))
    return problems


def _emptied_too(referrer, emptied):
    """Return whether the plan empties the referring table itself (a schema-qualified one never is)."""
    return referrer.schema is None and referrer.table in emptied


def _fk_key(referrer):
    return referrer.schema, referrer.table, referrer.columns, referrer.referenced_table


def _models_by_table():
    models = apps.get_models(include_auto_created=True)
    return {model._meta.db_table: model for model in models if not model._meta.proxy}


def _model_referrers(dialect, emptied):
    """Return a ForeignKeyReferrer (rule unknown) per model FK from an unplanned table to an emptied one."""
    tables = dialect.table_names()
    found = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or meta.db_table in emptied or meta.db_table not in tables:
            continue
        for field in meta.local_concrete_fields:
            target = relation_target(field)._meta.db_table if field.is_relation else None
            if target in emptied:
                name = f"{meta.label}.{field.name}"
                found.append(ForeignKeyReferrer(name, meta.db_table, (field.column,), target))
    return found


# What emptying the referenced table does to a referrer's rows, by ON DELETE rule.
_REFUSED_OR_ORPHANED = "would refuse the delete (or, with constraint checks off, leave its rows pointing at nothing)"
_ON_DELETE_EFFECTS = {
    "CASCADE": "would delete its rows",
    "SET NULL": "would set {columns} to NULL in its rows",
    "SET DEFAULT": "would set {columns} to the column default in its rows",
    "RESTRICT": _REFUSED_OR_ORPHANED,
    "NO ACTION": _REFUSED_OR_ORPHANED,
}
_UNCONSTRAINED_EFFECT = "no database constraint guards them, so its rows would point at rows that no longer exist"


def _on_delete_effect(referrer):
    if referrer.on_delete is None:
        return f"its foreign key {referrer.name} would refuse the delete, or change or delete its rows"
    effect = _ON_DELETE_EFFECTS.get(referrer.on_delete, "would change its rows")
    return f"ON DELETE {referrer.on_delete} {effect.format(columns=', '.join(referrer.columns))}"


def _truncate_blocker_message(dest, referrer, emptied, owners, effect):
    """Name the outside table, its columns, the planned table, the effect and the fixes.

    effect: what the constraint does to the rows, None for a model FK without a constraint.
    """
    planned = emptied[referrer.referenced_table]
    columns = ", ".join(referrer.columns)
    owner = owners.get(referrer.table) if referrer.schema is None else None
    if owner is None:
        outside = f"table {referrer.qualified_table}, which no model maps,"
        fixes = [f"empty {referrer.qualified_table} first", f"drop its constraint {referrer.name}"]
    else:
        # The model's migrations own its constraints: dropping one by hand is no fix.
        outside = f"{model_label(owner)} ({referrer.table}), which is not in the plan,"
        fixes = [f"add {model_label(owner)} to the labels", f"empty {referrer.table} first"]
    refer = "refers" if len(referrer.columns) == 1 else "refer"
    return (
        f"--truncate would empty {model_label(planned)} ({referrer.referenced_table}) in '{dest}', "
        f"but {outside} has rows whose {columns} {refer} to it: {effect or _UNCONSTRAINED_EFFECT}. "
        f"Fix: {_one_of(fixes)}."
    )


def _one_of(choices):
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


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
                problems.append(occupied_message(occupied))
    except DatabaseError as exc:
        problems.append(f"Cannot inspect the databases: {exc}")
    if problems:
        raise PreflightError(problems)
