"""Decide what a copy does before anything is written: a read-only CopyPlan of one step per table."""

from dataclasses import dataclass, field as dataclass_field, replace

from django.apps import apps
from django.db import DatabaseError, connections, models as django_models, router

from . import conf
from .aliases import describe, is_url_alias, same_database
from .dialects import dialect_for
from .exceptions import PlanError
from .graph import model_label, order_models

COPY, REMAP, REPLACE = "copy", "remap", "replace"
# Primary keys a table can be split on into key ranges: Django's own integer fields, exactly these
# types (a subclass may store or hand out its values otherwise).
INTEGER_KEYS = (
    django_models.AutoField, django_models.BigAutoField, django_models.SmallAutoField,
    django_models.IntegerField, django_models.BigIntegerField, django_models.SmallIntegerField,
    django_models.PositiveIntegerField, django_models.PositiveBigIntegerField, django_models.PositiveSmallIntegerField,
)
# Tables counted per query; SQLite takes at most 500 terms in one compound SELECT.
TABLES_PER_COUNT = 100


@dataclass(frozen=True)
class Step:
    """Copy one concrete table of `model` from `source` to `dest`.

    kind: COPY (rows keep their primary keys), REPLACE (a table `migrate` fills, replaced by the
    source's rows) or REMAP (content types / permissions matched by natural key, ids translated).
    """

    model: type
    source: str
    dest: str
    fields: tuple
    deferred_fields: tuple = ()
    kind: str = COPY
    group: int | None = None
    source_rows: int | None = None
    # (low, high): this step copies only the rows whose integer primary key is > low and <= high
    # (None: unbounded on that side). The runner splits a big table into such ranges for --jobs.
    key_range: tuple | None = None

    @property
    def label(self):
        return model_label(self.model)

    @property
    def table(self):
        return self.model._meta.db_table


@dataclass(frozen=True)
class Skipped:
    """A model the plan leaves alone, and why."""

    label: str
    table: str
    dest: str | None
    reason: str


@dataclass(frozen=True)
class CopyPlan:
    source: str
    steps: tuple
    skipped: tuple = ()
    warnings: tuple = ()
    explicit_dest: str | None = None
    groups: dict = dataclass_field(default_factory=dict)  # group id -> tuple of labels
    # Abstract bases have no table, so they are counted for the summary rather than listed as skipped.
    abstract_count: int = 0

    @property
    def dests(self):
        return tuple(dict.fromkeys(step.dest for step in self.steps))

    def steps_for(self, dest):
        return [step for step in self.steps if step.dest == dest]


# --- choosing models ---------------------------------------------------------------------------


def _resolve_labels(labels, option):
    """Return (app_labels, models) named by 'app_label' / 'app_label.ModelName' labels."""
    app_labels, models = set(), set()
    for label in labels:
        app_label, _, model_name = label.partition(".")
        try:
            app_config = apps.get_app_config(app_label)
        except LookupError:
            raise PlanError(f"{option} {label!r}: no installed app with label {app_label!r}") from None
        if not model_name:
            app_labels.add(app_label)
            continue
        try:
            models.add(app_config.get_model(model_name))
        except LookupError:
            raise PlanError(f"{option} {label!r}: app {app_label!r} has no model {model_name!r}") from None
    return app_labels, models


def _matches(model, app_labels, models):
    owner = model._meta.auto_created  # an auto-created M2M through table belongs to its model
    return (
        model._meta.app_label in app_labels
        or model in models
        or (owner and (owner in models or owner._meta.app_label in app_labels))
    )


def select_models(labels=(), exclude=()):
    """Return the installed models (auto-created through tables included) the labels select."""
    app_labels, models = _resolve_labels(labels, "label")
    ex_apps, ex_models = _resolve_labels(exclude, "--exclude")
    chosen = []
    for model in apps.get_models(include_auto_created=True):
        if labels and not _matches(model, app_labels, models):
            continue
        if _matches(model, ex_apps, ex_models):
            continue
        chosen.append(model)
    return chosen


def abstract_models(models):
    """Return the abstract bases of the models, which have no table to copy."""
    seen = {}
    for model in models:
        for base in model.__mro__[1:]:
            meta = getattr(base, "_meta", None)
            if meta is not None and getattr(meta, "abstract", False):
                # An abstract base outside any app (a shared mixin module) has no app_label.
                owner = meta.app_label or base.__module__
                seen.setdefault(f"{owner}.{base.__name__}", base)
    return seen


# --- special models ----------------------------------------------------------------------------


def remapped_models():
    """Return the models whose ids each database assigns itself: matched by natural key, not copied."""
    found = []
    if apps.is_installed("django.contrib.contenttypes"):
        found.append(apps.get_model("contenttypes", "ContentType"))
    if apps.is_installed("django.contrib.auth"):
        found.append(apps.get_model("auth", "Permission"))
    return found


def seeded_models():
    found = []
    for label in conf.get("SEEDED_MODELS"):
        try:
            found.append(apps.get_model(label))
        except (LookupError, ValueError):
            continue
    return found


def written_fields(model):
    """Return the model's own columns that an INSERT writes (generated columns compute themselves)."""
    return tuple(f for f in model._meta.local_concrete_fields if not getattr(f, "generated", False))


def relation_target(field):
    return field.remote_field.model._meta.concrete_model


# --- building the plan -------------------------------------------------------------------------


def _skip_reason(model, source, dest, include_unmanaged, reading_only=False):
    meta = model._meta
    if meta.proxy:
        return f"proxy model: shares table {meta.db_table} with {model_label(meta.concrete_model)}"
    if meta.swapped:
        return f"swapped out for {meta.swapped}"
    if not meta.managed and not include_unmanaged:
        return "unmanaged model (Meta.managed = False); pass --include-unmanaged to copy it"
    if not router.allow_migrate_model(dest, model):
        return f"the database router does not allow it on '{dest}'"
    if not reading_only and same_database(source, dest):
        return f"its destination '{dest}' is the source database"
    return None


def _destination(model, explicit_dest):
    return explicit_dest or router.db_for_write(model)


def build_plan(source, dest=None, labels=(), exclude=(), include_unmanaged=False, count_rows=True,
               reading_only=False):
    """Return the CopyPlan that copies the selected models from source to dest (or router choices).

    reading_only: plan a run that only reads the source (an export, dest = source): every cycle is
    grouped whatever the vendor, as the run that writes the rows decides how to break it.
    """
    selected = select_models(labels, exclude)
    remapped = set(remapped_models())
    seeded = set(seeded_models())
    skipped, dest_of = [], {}
    for model in selected:
        model_dest = _destination(model, dest)
        reason = _skip_reason(model, source, model_dest, include_unmanaged, reading_only)
        if reason:
            skipped.append(Skipped(model_label(model), model._meta.db_table, model_dest, reason))
        else:
            dest_of[model] = model_dest
    abstract_count = len(abstract_models({m._meta.concrete_model for m in selected}))

    copied = [m for m in dest_of if m not in remapped]
    remap_dests = _remap_destinations(copied, dest_of, remapped)
    ordering = order_models(
        copied + [m for m in remapped if remap_dests.get(m)],
        can_defer_constraints=lambda group: reading_only or _can_defer(group, dest_of),
    )
    group_of = {m: i for i, group in enumerate(ordering.constraint_groups) for m in group}

    steps = []
    for model in ordering.models:
        if model in remapped:
            for model_dest in remap_dests[model]:
                steps.append(Step(model, source, model_dest, written_fields(model), kind=REMAP))
            continue
        steps.append(
            Step(
                model,
                source,
                dest_of[model],
                written_fields(model),
                deferred_fields=ordering.deferred.get(model, ()),
                kind=REPLACE if model in seeded else COPY,
                group=group_of.get(model),
            )
        )
    tables_of = _TableNames()
    steps, index_skips = _split_search_indexes(steps, tables_of)
    skipped += index_skips
    _require_source_tables(source, steps, tables_of)
    if count_rows:
        steps = _with_counts(steps)
    plan_steps = tuple(steps)
    warnings = tuple(_relation_warnings(plan_steps, dest_of, remapped, source))
    groups = {i: tuple(model_label(m) for m in g) for i, g in enumerate(ordering.constraint_groups)}
    return CopyPlan(source, plan_steps, tuple(skipped), warnings, dest, groups, abstract_count=abstract_count)


class _TableNames:
    """Return an alias' table names, asking its database once per plan."""

    def __init__(self):
        self.tables = {}

    def __call__(self, alias):
        if alias not in self.tables:
            self.tables[alias] = dialect_for(alias).table_names()
        return self.tables[alias]


def _split_search_indexes(steps, tables_of):
    """Set aside the steps whose table is a search index the two databases cannot share.

    Apps build full-text indexes per vendor: a table on some vendors only (an SQLite FTS5 table),
    or one whose columns differ by vendor (Wagtail's index entries: text on SQLite, tsvector on
    PostgreSQL). There is nothing to copy, and the app's own command rebuilds the index from the
    copied rows. Return the remaining steps and a Skipped per step set aside.
    """
    kept, skipped = [], []
    for step in steps:
        reason = _vendor_index_reason(step) or _one_sided_index_reason(step, tables_of)
        if reason:
            skipped.append(Skipped(step.label, step.table, step.dest, reason))
        else:
            kept.append(step)
    return kept, skipped


def _rebuild_hint(step):
    command = conf.get("SEARCH_INDEX_MODELS").get(step.label)
    if command:
        return f"rebuild it in '{step.dest}' with `{command}` after the copy"
    return f"rebuild the index of {step.label} in '{step.dest}' with its app's own command after the copy"


def _vendor_index_reason(step):
    if step.label not in conf.get("SEARCH_INDEX_MODELS"):
        return None
    source, dest = dialect_for(step.source).connection.vendor, dialect_for(step.dest).connection.vendor
    if source == dest:
        return None
    return f"a search index its app shapes per database vendor ({source} → {dest}): {_rebuild_hint(step)}"


def _one_sided_index_reason(step, tables_of):
    if step.table in tables_of(step.source):
        if not dialect_for(step.source).is_search_index(step.table):
            return None
        try:
            if step.table in tables_of(step.dest):
                return None
        except DatabaseError:
            return None  # the preflight names the unreachable destination
        return f"a search index whose table {step.table} exists only at the source '{step.source}': {_rebuild_hint(step)}"
    try:
        if step.table in tables_of(step.dest) and dialect_for(step.dest).is_search_index(step.table):
            return f"a search index whose table {step.table} exists only at the destination: {_rebuild_hint(step)}"
    except DatabaseError:
        pass  # the source lacks the table either way: _require_source_tables says so
    return None


def _require_source_tables(source, steps, tables_of):
    """Refuse a source that lacks planned tables (not migrated, or another project's database)."""
    if not steps:
        return
    present = tables_of(source)
    missing = sorted({f"{step.table} ({step.label})" for step in steps if step.table not in present})
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        migrate = "apply the project's migrations to it" if is_url_alias(source) else (
            f"run `python manage.py migrate --database {source}`"
        )
        raise PlanError(
            f"The source {describe(source)} has no table {shown}: {migrate}, or leave the models out with --exclude"
        )


def _remap_destinations(copied, dest_of, remapped):
    """Return, per remapped model, the destinations whose rows refer to it (or that it is copied to)."""
    needed = {model: set() for model in remapped}
    for model in remapped:
        if model in dest_of:
            needed[model].add(dest_of[model])
    for model in copied:
        for field in written_fields(model):
            if field.is_relation and relation_target(field) in needed:
                needed[relation_target(field)].add(dest_of[model])
    # A permission names its content type, so every permission destination needs the content types.
    for model in remapped:
        for field in written_fields(model):
            if field.is_relation and relation_target(field) in needed:
                needed[relation_target(field)] |= needed[model]
    return {model: sorted(dests) for model, dests in needed.items()}


def _can_defer(group, dest_of):
    dests = {dest_of[m] for m in group if m in dest_of}
    return len(dests) == 1 and dialect_for(dests.pop()).can_defer_constraints


def count_tables(alias, models):
    """Return {model: rows of its table at alias}, counting many tables in one query (one round trip,
    not one per table). A model whose base manager is its own (Meta.base_manager_name) is counted
    through it, as the copy reads it."""
    counts, plain = {}, []
    for model in dict.fromkeys(models):
        if model._meta.base_manager_name:
            counts[model] = model._base_manager.using(alias).count()
        else:
            plain.append(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    for start in range(0, len(plain), TABLES_PER_COUNT):
        batch = plain[start:start + TABLES_PER_COUNT]
        sql = " UNION ALL ".join(
            f"SELECT {number}, COUNT(*) FROM {quote(model._meta.db_table)}" for number, model in enumerate(batch)
        )
        with connection.cursor() as cursor:
            cursor.execute(sql)
            for number, rows in cursor.fetchall():
                counts[batch[number]] = rows
    return counts


def splittable(step):
    """Return whether the step's table can be copied as key ranges: a plain copy outside a cycle of
    deferred checks, keyed by one integer column that holds the same values at the destination."""
    if step.kind != COPY or step.group is not None:
        return False
    field = step.model._meta.pk
    while field.is_relation:  # a child table's link to its parent: the parent's key
        if relation_target(field) in remapped_models():
            return False  # a content type id as key: another value at the destination
        field = field.target_field
    return type(field) in INTEGER_KEYS


def range_count(step, jobs, rows=None, streams=False):
    """Return how many key ranges a run with `jobs` workers copies the step's table in (1: whole).

    rows: the table's source rows (default: the plan's count). A table is split once it holds
    DBCOPY_SPLIT_ROWS rows, into as many ranges as workers may write to its destination at once.
    streams: whether the table streams into its destination, where some bulk loaders take it whole.
    """
    rows = step.source_rows if rows is None else rows
    if jobs < 2 or rows is None or rows < max(1, conf.get("SPLIT_ROWS")) or not splittable(step):
        return 1
    dest = dialect_for(step.dest)
    if streams and not dest.splits_streamed_tables:
        return 1
    return max(1, min(jobs, dest.max_concurrent_writers, rows))


def key_ranges(step, parts, rows):
    """Return up to `parts` key ranges (low, high] of about rows / parts rows each, covering the table.

    Each boundary is the key at its position in key order (one index lookup with OFFSET, parts - 1
    times), read on this thread's connection to the source (the run's snapshot). The first range has
    no low end and the last no high end, so rows the count missed are copied too.
    """
    attname = step.model._meta.pk.attname
    keys = step.model._base_manager.using(step.source).order_by(attname).values_list(attname, flat=True)
    bounds = []
    for part in range(1, parts):
        position = part * rows // parts - 1
        found = list(keys[position:position + 1])
        if not found:
            break  # fewer rows than counted: the ranges found so far cover the rest
        if not bounds or found[0] > bounds[-1]:
            bounds.append(found[0])
    return list(zip([None, *bounds], [*bounds, None]))


def describe_range(key_range):
    """Spell a key range as its rows' keys: 'pk <= 500', '500 < pk <= 900', 'pk > 900'."""
    low, high = key_range
    if low is None and high is None:
        return "every pk"
    if low is None:
        return f"pk <= {high}"
    if high is None:
        return f"pk > {low}"
    return f"{low} < pk <= {high}"


def _with_counts(steps):
    """Return the steps with the source's row count of each table."""
    counts = {}
    for source in dict.fromkeys(step.source for step in steps):
        counts[source] = count_tables(source, [step.model for step in steps if step.source == source])
    return [replace(step, source_rows=counts[step.source][step.model]) for step in steps]


def _relation_warnings(steps, dest_of, remapped, source):
    """Describe relations whose two ends land in different databases, or whose target isn't copied."""
    dests_of = {}
    for step in steps:
        dests_of.setdefault(step.model, set()).add(step.dest)
    for step in steps:
        if step.kind == REMAP:
            continue
        for field in step.fields:
            if not field.is_relation:
                continue
            target = relation_target(field)
            where = f"{step.label}.{field.name} → {model_label(target)}"
            if target not in dests_of:
                yield f"{where}: {model_label(target)} is not copied; '{step.dest}' must already hold its rows"
            elif step.dest not in dests_of[target]:
                others = ", ".join(sorted(dests_of[target]))
                yield f"cross-database relation {where}: '{step.dest}' → '{others}'"
        yield from _generic_relation_warnings(step, dests_of, source)


def _generic_relation_warnings(step, dests_of, source):
    try:
        from django.contrib.contenttypes.fields import GenericForeignKey
        from django.contrib.contenttypes.models import ContentType
    except (ImportError, RuntimeError):
        return
    for private in step.model._meta.private_fields:
        if not isinstance(private, GenericForeignKey):
            continue
        ct_field = step.model._meta.get_field(private.ct_field)
        ct_ids = (
            step.model._base_manager.using(source)
            .exclude(**{f"{ct_field.attname}__isnull": True})
            .values_list(ct_field.attname, flat=True)
            .distinct()
        )
        for ct_id in ct_ids:
            try:
                target = ContentType.objects.db_manager(source).get_for_id(ct_id).model_class()
            except ContentType.DoesNotExist:
                continue
            target_dests = dests_of.get(target and target._meta.concrete_model, set())
            if target is not None and target_dests and step.dest not in target_dests:
                others = ", ".join(sorted(target_dests))
                yield (
                    f"cross-database generic relation {step.label}.{private.name} → {model_label(target)}: "
                    f"'{step.dest}' → '{others}'"
                )
