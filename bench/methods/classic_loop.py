#!/usr/bin/env python
"""The classic blog recipe: OFFSET-paged querysets into bulk_create, model by model in FK order.

    python bench/methods/classic_loop.py --source default --dest mariadb [--chunk-size 2000]

The destination is freshly migrated, so its own content types and permissions are deleted first and
the source's are copied with their ids, as the recipe's "flush, then copy every model" does.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import manage  # noqa: E402


def ordered_models():
    """Return every concrete model, M2M through tables included, each after the models it points at."""
    from django.apps import apps

    ordered, seen = [], set()

    def visit(model):
        if model in seen:
            return
        seen.add(model)
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is not model:
                visit(field.related_model)
        ordered.append(model)

    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            visit(model)
    return ordered


def main():
    """Copy every model from --source to --dest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--dest", required=True)
    parser.add_argument("--chunk-size", type=int, default=2000)
    args = parser.parse_args()
    manage.setup_path()
    import django

    django.setup()
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    Permission.objects.using(args.dest).all().delete()
    ContentType.objects.using(args.dest).all().delete()
    for model in ordered_models():
        started = time.monotonic()
        queryset = model.objects.using(args.source).order_by("pk")
        total = queryset.count()
        for offset in range(0, total, args.chunk_size):
            model.objects.using(args.dest).bulk_create(queryset[offset:offset + args.chunk_size])
        print(f"{model._meta.label}: {total} rows in {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
