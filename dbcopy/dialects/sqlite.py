"""SQLite: deferrable foreign keys inside one transaction; AUTOINCREMENT advances by itself."""

from .base import Dialect, atomic_with_deferred_checks


class SQLiteDialect(Dialect):
    can_defer_constraints = True
    # SQLite locks the whole database for a write: a second writer would only wait.
    max_concurrent_writers = 1

    def constraints_deferred(self, tables):
        # PRAGMA foreign_keys is ignored inside a transaction, but Django declares SQLite FKs
        # DEFERRABLE INITIALLY DEFERRED, so one transaction defers them until commit.
        return atomic_with_deferred_checks(self, tables)

    def fast_insert_rows(self, table, fields, rows):
        # One prepared single-row statement repeated by executemany() beats multi-row VALUES, which
        # SQLite caps at 999 variables per statement.
        columns = ", ".join(self.quote(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        with self.connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {self.quote(table)} ({columns}) VALUES ({placeholders})", rows)
