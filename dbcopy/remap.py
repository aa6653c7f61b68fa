"""Content types and permissions: matched by natural key at each destination, never copied by id.

`migrate` numbers these rows in its own order at every database, so a copied id would point at
another model. The remap step adds the source's missing rows and records source id → destination id;
the copy and sync strategies translate every column that refers to them.
"""

from django.db import connections, transaction

from .plan import REMAP, relation_target
from .rows import Remaps


class RemapStrategy:
    """Match one remapped model's rows by natural key and record the id map for its destination."""

    def __init__(self, runner):
        self.runner = runner

    def run(self, step, result):
        runner = self.runner
        runner.reader(step)
        result.method = "remap"
        natural_key = NATURAL_KEYS[step.model._meta.label_lower]
        source_rows = natural_key(step.model._base_manager.using(step.source), runner.remaps, step, source=True)
        result.source_rows = len(source_rows)
        existing = self.destination_rows(step, natural_key)
        missing = [(key, values) for _, key, values in source_rows if key not in existing]
        if missing:
            self.insert(step, [values for _, values in missing])
            existing = self.destination_rows(step, natural_key)
        updated = self.update_matched(step, source_rows, existing)
        runner.remaps.set(step.dest, step.model, {pk: existing[key][0] for pk, key, _ in source_rows})
        result.copied = len(missing) + updated
        if updated:
            runner.on_progress(
                "note", step, message=f"{updated:,} rows matched by natural key took the source's other values"
            )

    def destination_rows(self, step, natural_key):
        """Return {natural key: (destination id, column values)} of the destination's rows."""
        rows = natural_key(step.model._base_manager.using(step.dest), self.runner.remaps, step, source=False)
        return {key: (pk, values) for pk, key, values in rows}

    def insert(self, step, rows):
        """Insert the source's rows (dicts of column values) the destination lacks, under new ids."""
        fields = [step.model._meta.get_field(name) for name in rows[0]]
        with transaction.atomic(using=step.dest):
            self.runner.dialect(step.dest).insert_rows(step.table, fields, self.prepared(step, fields, rows))

    def update_matched(self, step, source_rows, existing):
        """Give the destination's matched rows the source's other values (a permission renamed at the
        source); their ids stay the destination's. Return how many rows changed."""
        changed = [(existing[key][0], values) for _, key, values in source_rows if existing[key][1] != values]
        if not changed:
            return 0
        fields = [step.model._meta.get_field(name) for name in changed[0][1]]
        connection = connections[step.dest]
        ids = [step.model._meta.pk.get_db_prep_save(pk, connection) for pk, _ in changed]
        rows = [values + [pk] for values, pk in zip(self.prepared(step, fields, [v for _, v in changed]), ids)]
        with transaction.atomic(using=step.dest):
            self.runner.dialect(step.dest).update_rows(step.table, fields, [step.model._meta.pk], rows)
        return len(changed)

    def prepared(self, step, fields, rows):
        connection = connections[step.dest]
        return [[f.get_db_prep_save(row[f.name], connection) for f in fields] for row in rows]

    def post_steps(self, steps):
        return ()


def read_remaps(plan):
    """Return the Remaps a copy would use, from the rows both sides hold now, writing nothing.

    A source row whose natural key the destination lacks has no entry: its id reads as unmapped.
    """
    remaps = Remaps()
    for step in plan.steps:
        if step.kind != REMAP:
            continue
        natural_key = NATURAL_KEYS[step.model._meta.label_lower]
        source_rows = natural_key(step.model._base_manager.using(step.source), remaps, step, source=True)
        dest_rows = natural_key(step.model._base_manager.using(step.dest), remaps, step, source=False)
        at_dest = {key: pk for pk, key, _ in dest_rows}
        remaps.set(step.dest, step.model, {pk: at_dest[key] for pk, key, _ in source_rows if key in at_dest})
    return remaps


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


NATURAL_KEYS = {"contenttypes.contenttype": _content_type_keys, "auth.permission": _permission_keys}
