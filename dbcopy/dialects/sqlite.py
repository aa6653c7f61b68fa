"""SQLite: deferrable foreign keys inside one transaction; AUTOINCREMENT advances by itself."""

import fcntl
import os
import re
from urllib.parse import unquote, urlsplit

from ..canonical import register_sqlite_functions
from . import sqlite_stream
from .base import Dialect, ForeignKeyReferrer, NoLock, atomic_with_deferred_checks

# Every FK of every table in the main database, one row per column (Django's get_constraints
# keeps only the first column of a composite key and drops the ON DELETE rule).
_REFERRERS_SQL = """
SELECT m.name, fk.id, fk."table", fk."from", fk.on_delete
FROM sqlite_master AS m JOIN pragma_foreign_key_list(m.name) AS fk
WHERE m.type = 'table'
ORDER BY m.name, fk.id, fk.seq
"""


# Every rowid table answers to these names without declaring them; PRAGMA table_info lists none.
_ROWID_ALIASES = frozenset({"rowid", "oid", "_rowid_"})
_WITHOUT_ROWID = re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)
_FULL_TEXT_TABLE = re.compile(r"^\s*CREATE\s+VIRTUAL\s+TABLE\b.*\bUSING\s+fts[345]\b", re.IGNORECASE | re.DOTALL)


# Canonical text of a non-NULL value by kind (canonical.py); dbcopy_* are Python functions registered
# on the connection by prepare_digests().
_CANONICAL = {
    "int": "CAST({} AS TEXT)",
    "bool": "CAST({} AS TEXT)",
    "text": "CAST({} AS TEXT)",
    "inet": "CAST({} AS TEXT)",
    "uuid": "lower({})",
    "date": "CAST({} AS TEXT)",
    "datetime": "dbcopy_datetime({})",
    "time": "dbcopy_time({})",
    "duration": "CAST({} AS TEXT)",  # an integer of microseconds
    "binary": "CASE WHEN {0} IS NOT NULL THEN lower(hex({0})) END",  # hex(NULL) is '', not NULL
}
_OWN_TEXT = {"float": "CAST({} AS TEXT)", "json": "CAST({} AS TEXT)", "other": "CAST({} AS TEXT)"}


class SQLiteDialect(Dialect):
    can_defer_constraints = True
    # SQLite locks the whole database for a write: a second writer would only wait.
    max_concurrent_writers = 1
    # REAL keeps ±Infinity, but a NaN is stored as NULL without a word.
    stores_float_infinity = True
    # Django's sqlite3 converters return None for a date/time string they cannot parse.
    may_read_invalid_dates_as_null = True

    def prepare_digests(self):
        self.connection.ensure_connection()
        register_sqlite_functions(self.connection.connection)

    def canonical_sql(self, kind, column, field, same_vendor=False, mixed_collations=False):
        if kind == "decimal":
            return f"dbcopy_decimal({column}, {int(field.decimal_places)})"
        template = _CANONICAL.get(kind) or (_OWN_TEXT.get(kind) if same_vendor else None)
        return template and template.format(column)

    def hash60_sql(self, text):
        return f"dbcopy_hash60({text})"

    def digest_sum_sql(self, expression):
        return f"dbcopy_sum({expression})"

    def is_undecodable_text(self, exc):
        # sqlite3 reports text that is not UTF-8 as an OperationalError, like a real fault of the file.
        return "Could not decode to UTF-8" in str(exc)

    def server_identity(self):
        """Return the database file's (device, inode), the same for every path that reaches it.

        Raise FileNotFoundError for a missing file rather than connect: connecting would create it.
        """
        name = str(self.connection.settings_dict["NAME"] or "")
        path = database_file(name)
        if path is None:
            # In-memory (and temporary) databases belong to their connection; a shared-cache one
            # is reached by its name from anywhere in the process.
            return ("memory", name if "cache=shared" in name else self.alias)
        stat = os.stat(path)
        return (stat.st_dev, stat.st_ino)

    def constraints_deferred(self, tables):
        # PRAGMA foreign_keys is ignored inside a transaction, but Django declares SQLite FKs
        # DEFERRABLE INITIALLY DEFERRED, so one transaction defers them until commit.
        return atomic_with_deferred_checks(self, tables)

    def implicit_column_names(self, table):
        sql = self._table_sql(table)
        # The table options (WITHOUT ROWID, STRICT) follow the column list's closing parenthesis.
        if sql is None or _WITHOUT_ROWID.search(sql[sql.rfind(")"):]):
            return frozenset()
        return _ROWID_ALIASES

    def is_search_index(self, table):
        sql = self._table_sql(table)
        return bool(sql and _FULL_TEXT_TABLE.match(sql))

    def _table_sql(self, table):
        """Return the CREATE statement of a table (virtual ones included), or None for no table."""
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
            row = cursor.fetchone()
        return row[0] if row else None

    def fast_insert_rows(self, table, fields, rows):
        # One prepared single-row statement repeated by executemany() beats multi-row VALUES, which
        # SQLite caps at 999 variables per statement.
        columns = ", ".join(self.quote(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        with self.connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {self.quote(table)} ({columns}) VALUES ({placeholders})", rows)

    def stream_plan(self, step, source):
        return sqlite_stream.stream_plan(self, step, source)

    def stream_table(self, step, source, on_rows, translations=None, parents_loaded=None):
        """Load the table with executemany() of one INSERT in one transaction, from a PostgreSQL or
        MariaDB/MySQL source that spells each value as Django's SQLite backend stores it (sqlite_stream.py).

        Return the rows copied, or None where this pair or table can't be spelled exactly.
        """
        if parents_loaded is not None:
            parents_loaded()  # SQLite checks each row's keys as it is inserted
        return sqlite_stream.stream_table(self, step, source, on_rows, translations)

    def foreign_key_referrers(self, tables):
        # SQLite matches table names case-insensitively; report them as the caller spelled them.
        wanted = {table.lower(): table for table in tables}
        with self.connection.cursor() as cursor:
            cursor.execute(_REFERRERS_SQL)
            rows = cursor.fetchall()
        columns, details = {}, {}
        for table, fk_id, referenced, column, rule in rows:
            if referenced.lower() in wanted:
                key = (table, fk_id)
                columns.setdefault(key, []).append(column)
                details[key] = (wanted[referenced.lower()], rule)
        found = []
        for key, key_columns in columns.items():
            table, referenced, rule = key[0], *details[key]
            name = _constraint_name(key_columns, referenced)
            found.append(ForeignKeyReferrer(name, table, tuple(key_columns), referenced, rule))
        return found

    def transient_driver_error(self, error):
        return type(error).__name__ == "OperationalError" and "database is locked" in str(error)

    snapshot_scope = "connection"

    def begin_read_snapshot(self):
        # One read transaction: the first SELECT fixes what every later one sees.
        self.execute(["BEGIN", "SELECT count(*) FROM sqlite_master"])

    def sync_lock(self):
        name = str(self.connection.settings_dict["NAME"] or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            return NoLock()  # an in-memory database belongs to this process alone
        return FileLock(f"{name}.dbcopy-sync.lock")


def _constraint_name(columns, referenced):
    """SQLite names no FK constraint: describe it as its definition spells it."""
    return f"FOREIGN KEY ({', '.join(columns)}) REFERENCES {referenced}"


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


def database_file(name):
    """Return the path of the file a SQLite NAME opens, or None for an in-memory or temporary database.

    Django opens NAME with uri=True, so it may be a plain path or a file: URI.
    """
    name = str(name or "")
    if name in ("", ":memory:") or "mode=memory" in name:
        return None
    if name.startswith("file:"):
        path = unquote(urlsplit(name).path)
        return path if path not in ("", ":memory:") else None
    return name
