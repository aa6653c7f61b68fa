"""Send every query to one chosen database, so that Wagtail serves a page from it."""

from contextlib import contextmanager
from contextvars import ContextVar

_alias = ContextVar("dbcopy_apps_alias", default=None)


@contextmanager
def reading_from(alias):
    """Route the ORM's reads and writes (Wagtail's page serving) to `alias` inside the block."""
    token = _alias.set(alias)
    try:
        yield
    finally:
        _alias.reset(token)


class ReadFromRouter:
    def db_for_read(self, model, **hints):
        return _alias.get()

    def db_for_write(self, model, **hints):
        return _alias.get()
