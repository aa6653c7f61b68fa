"""Receivers that must NOT fire while dbcopy copies rows.

``COUNTS`` counts model signals sent for copytest models; the post_save receiver on Author
also writes a side row (AuditLog), as real projects do.
"""

from collections import Counter

from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

COUNTS = Counter()


def _is_copytest(sender):
    meta = getattr(sender, "_meta", None)
    return meta is not None and meta.app_label == "copytest"


@receiver(pre_save, dispatch_uid="copytest-count-pre-save")
def count_pre_save(sender, **kwargs):
    if _is_copytest(sender):
        COUNTS["pre_save"] += 1


@receiver(post_save, dispatch_uid="copytest-count-post-save")
def count_post_save(sender, **kwargs):
    if _is_copytest(sender):
        COUNTS["post_save"] += 1


@receiver(m2m_changed, dispatch_uid="copytest-count-m2m")
def count_m2m_changed(sender, **kwargs):
    if _is_copytest(sender):
        COUNTS["m2m_changed"] += 1


@receiver(post_save, sender="copytest.Author", dispatch_uid="copytest-author-audit")
def author_saved(sender, instance, created, using, **kwargs):
    from .models import AuditLog

    COUNTS["author_post_save"] += 1
    AuditLog.objects.using(using).create(
        message=f"author {instance.pk} {'created' if created else 'changed'}", author_pk=instance.pk
    )
