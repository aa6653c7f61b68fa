"""SQLite: deferrable foreign keys inside one transaction; AUTOINCREMENT advances by itself."""

import fcntl

from .base import Dialect, NoLock, atomic_with_deferred_checks


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

    def sync_lock(self):
        name = str(self.connection.settings_dict["NAME"] or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            return NoLock()  # an in-memory database belongs to this process alone
        return FileLock(f"{name}.dbcopy-sync.lock")


class FileLock:
    """An exclusive flock() on a file beside the database; the kernel drops it if the process dies."""

    def __init__(self, path):
        self.path, self.handle = path, None

    def acquire(self):
        self.handle = open(self.path, "a")  # noqa: SIM115 - held open for as long as the lock
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            self.handle = None
            return False
        return True

    def release(self):
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
