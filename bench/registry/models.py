"""A persistent-identifier registry: identifiers (DOI, ARK, Handle) and the URLs they resolve to."""

import uuid

from django.db import models


class Identifier(models.Model):
    SCHEMES = [("doi", "DOI"), ("ark", "ARK"), ("handle", "Handle")]

    scheme = models.CharField(max_length=8, choices=SCHEMES)
    value = models.CharField(max_length=255, unique=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.value


class Target(models.Model):
    identifier = models.ForeignKey(Identifier, on_delete=models.CASCADE, related_name="targets")
    url = models.URLField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.url
