"""MySQL/MariaDB: immediate FK checks, strict mode, per-column charsets, AUTO_INCREMENT and id 0,
and LOAD DATA LOCAL INFILE fed straight from PostgreSQL's COPY."""

import os
import re
import tempfile
import threading
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError

from .base import Dialect, ForeignKeyReferrer, error_chain, translated_column_sql
from .postgresql import PostgreSQLDialect

_SESSION_MODES = "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_TRANS_TABLES', 'NO_AUTO_VALUE_ON_ZERO')"

# How PostgreSQL spells each column type in the text MySQL's LOAD DATA reads, by internal type.
# Types missing here (custom db types, arrays, floats' NaN…) take the value-by-value path.
_FROM_POSTGRESQL = {
    **dict.fromkeys(
        ["AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
         "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField", "CharField", "TextField",
         "SlugField", "EmailField", "URLField", "FilePathField", "FileField", "ImageField", "DecimalField",
         "DateField", "TimeField"],
        "{}",
    ),
    "BooleanField": "({})::int",
    "UUIDField": "replace(({})::text, '-', '')",  # MySQL keeps UUIDs as char(32) hex
    "JSONField": "({})::text",
    "GenericIPAddressField": "host({})",
    "DurationField": "(extract(epoch from {}) * 1000000)::bigint",  # MySQL keeps microseconds
    "BinaryField": "encode({}, 'hex')",
}
# COPY writes \f and \v for form feed and vertical tab; LOAD DATA would read them as 'f' and 'v'.
_COPY_ONLY_ESCAPES = re.compile(rb"\\\\|\\f|\\v")
_RAW_CONTROL = {b"\\f": b"\x0c", b"\\v": b"\x0b"}
# One row per column of every FK on a table of this database, from tables of any database on the
# server (InnoDB allows FKs across databases); the tables' names fill the IN list.
_REFERRERS_SQL = """
SELECT k.CONSTRAINT_NAME, k.TABLE_SCHEMA, k.TABLE_SCHEMA = DATABASE(), k.TABLE_NAME, k.COLUMN_NAME,
       k.REFERENCED_TABLE_NAME, r.DELETE_RULE
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME
 AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE k.REFERENCED_TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IN ({})
ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""


# Lock wait timeout, deadlock, server gone away / lost, connection killed (MariaDB), shutdown,
# "lost connection" variants, and a disconnect for inactivity (MySQL 8).
_TRANSIENT_CODES = {1205, 1213, 2006, 2013, 1927, 1053, 2055, 4031}


# A packet over max_allowed_packet, refused by the server or by the client library. A server may
# instead just drop the connection (gone away, lost), which counts when the statement was big:
# 1 MiB is the smallest max_allowed_packet MySQL ever shipped with.
_PACKET_TOO_LARGE = {1153, 2020}
_CONNECTION_DROPPED = {2006, 2013}
_BIG_STATEMENT_BYTES = 1024 * 1024
# Rows between two progress reports (and interrupt checks) of a stream.
_STREAM_REPORT_EVERY = 20_000


class MySQLDialect(Dialect):
    # InnoDB checks FKs row by row and cannot defer them; it can switch them off for the session.
    can_defer_constraints = True
    connect_timeout_option = "connect_timeout"
    default_port = 3306

    def server_identity(self):
        # MySQL names itself with server_uuid; MariaDB has none, but server_uid (a hash of a MAC
        # address and the port). SHOW lists the ones this server has. Hostname, port and datadir are
        # the server's own settings, the same whichever way a client reached it.
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_uuid', 'server_uid', 'hostname', 'port', 'datadir')"
            )
            variables = tuple(sorted(tuple(row) for row in cursor.fetchall()))
            cursor.execute("SELECT DATABASE()")
            return (*variables, cursor.fetchone()[0])

    def prepare_session(self):
        # Strict mode turns silent truncation into errors; NO_AUTO_VALUE_ON_ZERO stores an explicit
        # id 0 as 0 instead of a fresh AUTO_INCREMENT value.
        self.execute([_SESSION_MODES])
        # Django reads sql_mode once, through a separate connection, so it would still refuse id 0:
        # tell it what this session's mode is.
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.sql_mode")
            modes = set(cursor.fetchone()[0].split(","))
        self.connection.__dict__["sql_mode"] = modes
        self.connection.features.__dict__["allows_auto_pk_0"] = "NO_AUTO_VALUE_ON_ZERO" in modes

    def refused_for_size(self, exc, statement_bytes):
        codes = {error.args[0] for error in error_chain(exc) if error.args and isinstance(error.args[0], int)}
        return bool(codes & _PACKET_TOO_LARGE) or (
            bool(codes & _CONNECTION_DROPPED) and statement_bytes >= _BIG_STATEMENT_BYTES
        )

    def column_charset(self, table, column):
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
                [table, column],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    def sync_lock(self):
        return NamedLock(self.connection)

    def transient_driver_error(self, error):
        args = getattr(error, "args", ())
        return bool(args) and args[0] in _TRANSIENT_CODES

    snapshot_scope = "connection"

    def begin_read_snapshot(self):
        # Django sets READ COMMITTED for its sessions, where a snapshot lasts one statement only.
        self.execute([
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        ])

    def foreign_key_referrers(self, tables):
        tables = sorted(tables)
        if not tables:
            return []
        with self.connection.cursor() as cursor:
            cursor.execute(_REFERRERS_SQL.format(", ".join(["%s"] * len(tables))), tables)
            rows = cursor.fetchall()
        # A composite key comes as one row per column, in order: gather them per constraint.
        columns, details = {}, {}
        for name, schema, local, table, column, referenced, rule in rows:
            key = (schema, table, name)
            columns.setdefault(key, []).append(column)
            details[key] = (referenced, rule, None if local else schema)
        return [
            ForeignKeyReferrer(name, table, tuple(key_columns), *details[(schema, table, name)])
            for (schema, table, name), key_columns in columns.items()
        ]

    @contextmanager
    def constraints_deferred(self, tables):
        # MySQL does not re-validate rows when checks come back on, so verify the tables afterwards.
        with self.connection.constraint_checks_disabled():
            yield
        self.check_constraints(tables)

    # --- PostgreSQL → MySQL without Python per row ---------------------------------------------

    def export_expression(self, source, field, deferred, translations):
        """Return the PostgreSQL expression that prints the column as LOAD DATA reads it, or None."""
        if field in deferred:
            return "NULL"
        target = field.target_field if field.is_relation else field
        internal_type = target.get_internal_type()
        column = source.quote(field.column)
        if field in translations:
            column = translated_column_sql(column, translations[field])
            if column is None:
                return None
        if internal_type == "DateTimeField":
            if not settings.USE_TZ:
                return column
            zone = self.connection.timezone_name.replace("'", "''")
            return f"to_char({column} AT TIME ZONE '{zone}', 'YYYY-MM-DD HH24:MI:SS.US')"
        template = _FROM_POSTGRESQL.get(internal_type)
        return template and template.format(column)

    def load_data_sql(self, step, path):
        targets, assignments = [], []
        for index, field in enumerate(step.fields):
            column = self.quote(field.column)
            target = field.target_field if field.is_relation else field
            if target.get_internal_type() == "BinaryField":
                targets.append(f"@v{index}")
                assignments.append(f"{column} = UNHEX(@v{index})")
            else:
                targets.append(column)
        sql = (
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {self.quote(step.table)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({', '.join(targets)})"
        )
        return sql + (f" SET {', '.join(assignments)}" if assignments else "")

    def stream_table(self, step, source, on_rows, translations=None):
        """Pipe PostgreSQL's `COPY (SELECT …) TO STDOUT` into `LOAD DATA LOCAL INFILE` through a FIFO.

        LOCAL turns data errors into warnings, so any warning rolls the table back and the caller
        copies it value by value instead, which names the row the server refuses.
        """
        if not (isinstance(source, PostgreSQLDialect) and source.has_copy):
            return None
        deferred = set(step.deferred_fields)
        expressions = [self.export_expression(source, field, deferred, translations or {}) for field in step.fields]
        if None in expressions:
            return None
        copy_out = f"COPY (SELECT {', '.join(expressions)} FROM {source.quote(step.table)}) TO STDOUT"
        loader = self._loading_connection()
        if loader is None:
            return None
        source.connection.ensure_connection()
        raw_source = source.connection.connection  # Django's wrapper is bound to this thread
        with tempfile.TemporaryDirectory(prefix="dbcopy-") as folder:
            fifo = os.path.join(folder, "rows.tsv")
            os.mkfifo(fifo, 0o600)
            producer = _Producer(raw_source, copy_out, fifo, on_rows)
            producer.start()
            try:
                with self.connection.wrap_database_errors:
                    rows = self._load(loader, step, fifo)
                producer.join()
                if producer.failure:
                    loader.rollback()
                    with source.connection.wrap_database_errors:
                        raise producer.failure
                loader.commit()
                return rows
            finally:
                producer.stop()
                loader.close()
                if producer.failure:
                    source.connection.close()  # an aborted COPY leaves the session unusable

    def _verify_references(self, cursor, step):
        """Refuse the load if a row points at a missing row (what foreign_key_checks would have said)."""
        deferred = set(step.deferred_fields)
        for field in step.fields:
            if field.is_relation and field.db_constraint and field not in deferred:
                cursor.execute(_orphan_sql(self.quote, step, field))
                if cursor.fetchone():
                    raise LoadDataWarning(f"{step.label}.{field.name} refers to rows that do not exist")

    def _loading_connection(self):
        """Open a second connection allowed to send local files, or None if the server forbids it."""
        params = dict(self.connection.get_connection_params(), local_infile=True)
        with self.connection.wrap_database_errors:
            loader = self.connection.Database.connect(**params)
        cursor = loader.cursor()
        cursor.execute("SELECT @@GLOBAL.local_infile")
        if not cursor.fetchone()[0]:
            loader.close()
            return None
        cursor.execute(_SESSION_MODES)
        # InnoDB checks each row's FKs one random index lookup at a time, which dominates a large
        # load; the rows are checked all at once in _verify_references() before the commit instead.
        cursor.execute("SET SESSION foreign_key_checks = 0")
        loader.autocommit(False)
        return loader

    def _load(self, loader, step, fifo):
        cursor = loader.cursor()
        try:
            cursor.execute(self.load_data_sql(step, fifo))
            rows = cursor.rowcount
            if loader.warning_count():
                cursor.execute("SHOW WARNINGS LIMIT 1")
                level, code, message = cursor.fetchone()
                raise LoadDataWarning(f"LOAD DATA reported {level.lower()} {code}: {message}")
            self._verify_references(cursor, step)
        except Exception:
            loader.rollback()
            raise
        return rows


def _orphan_sql(quote, step, field):
    """Return a query finding one loaded row whose FK value has no target row."""
    target = field.remote_field.model._meta
    column, target_column = quote(field.column), quote(field.target_field.column)
    return (
        f"SELECT 1 FROM {quote(step.table)} AS child LEFT JOIN {quote(target.db_table)} AS parent "
        f"ON child.{column} = parent.{target_column} "
        f"WHERE child.{column} IS NOT NULL AND parent.{target_column} IS NULL LIMIT 1"
    )


class NamedLock:
    """MySQL's GET_LOCK: server-wide names, so the database's name is part of it; dies with the session."""

    def __init__(self, connection):
        self.connection = connection
        self.name = f"dbcopy-sync:{connection.settings_dict['NAME']}"[:64]

    def acquire(self):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", [self.name])
            return cursor.fetchone()[0] == 1

    def release(self):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT RELEASE_LOCK(%s)", [self.name])


class LoadDataWarning(DatabaseError):
    """LOAD DATA LOCAL accepted a row with a warning (truncated, converted, or skipped as duplicate)."""


class _Producer(threading.Thread):
    """Write the source's COPY output into the FIFO, turning \\f and \\v back into their characters."""

    def __init__(self, raw_source, copy_out, fifo, on_rows):
        super().__init__(name="dbcopy-copy-out", daemon=True)
        self.raw_source, self.copy_out, self.fifo, self.on_rows = raw_source, copy_out, fifo, on_rows
        self.failure = None
        self.rows = 0

    def run(self):
        try:
            with open(self.fifo, "wb") as sink, self.raw_source.cursor() as cursor:
                cursor.copy_expert(self.copy_out, _Rewriter(sink, self))
        except Exception as exc:  # re-raised by the loading thread
            self.failure = exc

    def stop(self):
        """Unblock a producer still waiting for a reader (LOAD DATA failed before opening the FIFO)."""
        if self.is_alive():
            try:
                os.close(os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK))
            except OSError:
                pass
            self.join()


class _Rewriter:
    """A file-like sink for copy_expert(): rewrite COPY-only escapes, count rows, pass bytes on."""

    def __init__(self, sink, producer):
        self.sink, self.producer = sink, producer
        self.reported = 0

    def write(self, data):
        data = bytes(data) if not isinstance(data, bytes) else data
        if b"\\f" in data or b"\\v" in data:
            # COPY sends whole rows per write, so an escape never straddles two writes.
            data = _COPY_ONLY_ESCAPES.sub(lambda m: _RAW_CONTROL.get(m.group(0), m.group(0)), data)
        self.producer.rows += data.count(b"\n")
        if self.producer.rows - self.reported >= _STREAM_REPORT_EVERY:
            self.producer.on_rows(self.producer.rows)
            self.reported = self.producer.rows
        self.sink.write(data)
        return len(data)
