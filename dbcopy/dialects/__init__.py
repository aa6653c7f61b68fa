"""Per-vendor differences, behind one interface: callers ask the dialect, never the vendor name."""

from django.db import connections

from .base import Dialect
from .mysql import MySQLDialect
from .postgresql import PostgreSQLDialect
from .sqlite import SQLiteDialect

_BY_VENDOR = {
    "postgresql": PostgreSQLDialect,
    "mysql": MySQLDialect,
    "sqlite": SQLiteDialect,
}


def dialect_for(alias):
    """Return the dialect for the database alias (the no-op base for vendors we don't specialise)."""
    connection = connections[alias]
    return _BY_VENDOR.get(connection.vendor, Dialect)(connection)


__all__ = ["Dialect", "dialect_for"]
