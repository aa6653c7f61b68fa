"""Content types and permissions: matched by natural key at each destination, never copied by id.

`migrate` numbers these rows in its own order at every database, so a copied id would point at
another model. The remap step adds the source's missing rows and records source id → destination id;
the copy and sync strategies translate every column that refers to them.
"""

from django.db import connections, transaction

from .plan import relation_target


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
        existing = self.destination_keys(step, natural_key)
        missing = [(key, values) for _, key, values in source_rows if key not in existing]
        if missing:
            fields = [step.model._meta.get_field(name) for name in missing[0][1]]
            connection = connections[step.dest]
            rows = [[f.get_db_prep_save(v, connection) for f, v in zip(fields, values.values())] for _, values in missing]
            with transaction.atomic(using=step.dest):
                runner.dialect(step.dest).insert_rows(step.table, fields, rows)
            existing = self.destination_keys(step, natural_key)
        runner.remaps.set(step.dest, step.model, {pk: existing[key] for pk, key, _ in source_rows})
        result.copied = len(missing)

    def destination_keys(self, step, natural_key):
        rows = natural_key(step.model._base_manager.using(step.dest), self.runner.remaps, step, source=False)
        return {key: pk for pk, key, _ in rows}

    def post_steps(self, steps):
        return ()


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
