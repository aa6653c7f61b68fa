from django.apps import AppConfig


class DbcopyConfig(AppConfig):
    """Register the `dbcopy` management command; nothing runs at import time."""

    name = "dbcopy"
    verbose_name = "dbcopy"
