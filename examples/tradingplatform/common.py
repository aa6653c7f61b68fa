"""Pieces shared by the demo's apps."""

from django.db import models


class Timestamped(models.Model):
    """Record when a row was created and last changed.

    The seed back-dates both columns after saving, so the copy can prove it keeps the
    stored values instead of letting auto_now/auto_now_add stamp the copy time.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def cross_service_fk(to, **kwargs):
    """Return a ForeignKey to a model that lives in another service's database.

    No database can enforce a key that points into another database, and on SQLite a
    REFERENCES clause to a table missing from the file breaks inserts, so the constraint
    is left out; Django still joins and validates in Python.
    """
    kwargs.setdefault("on_delete", models.PROTECT)
    return models.ForeignKey(to, db_constraint=False, **kwargs)
