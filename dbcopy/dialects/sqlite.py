"""SQLite: deferrable foreign keys inside one transaction; AUTOINCREMENT advances by itself."""

from .base import Dialect, atomic_with_deferred_checks


class SQLiteDialect(Dialect):
    can_defer_constraints = True

    def constraints_deferred(self, tables):
        # PRAGMA foreign_keys is ignored inside a transaction, but Django declares SQLite FKs
        # DEFERRABLE INITIALLY DEFERRED, so one transaction defers them until commit.
        return atomic_with_deferred_checks(self, tables)
