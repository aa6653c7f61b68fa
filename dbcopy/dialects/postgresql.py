"""PostgreSQL: deferrable foreign keys, sequences behind serial/identity columns, no NUL in text, COPY."""

import datetime
import hashlib
import io
import os
import struct
import threading
import uuid
from decimal import Decimal

from dataclasses import dataclass

from django.db import DatabaseError, IntegrityError, transaction

from ..exceptions import SourceFault
from . import lines
from .base import (
    Dialect, ForeignKeyReferrer, StreamPlan, atomic_with_deferred_checks, key_range_sql, translated_column_sql,
)

# COPY's text format: backslash escapes for the characters that delimit values and rows.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# Rows per progress report while a table streams through COPY.
_STREAM_REPORT_EVERY = 20_000

# pg_constraint.confdeltype, spelled as SQL spells the rule.
_ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
# Foreign keys on the visible tables named by %s, from tables of any schema. conparentid = 0 keeps
# a partitioned table's constraint and leaves out the copies its partitions inherit.
_REFERRERS_SQL = """
SELECT con.conname, ns.nspname, rel.relname, pg_catalog.pg_table_is_visible(rel.oid),
       ARRAY(SELECT att.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS fk(attnum, ord)
             JOIN pg_catalog.pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = fk.attnum
             ORDER BY fk.ord),
       ref.relname, con.confdeltype
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class rel ON rel.oid = con.conrelid
JOIN pg_catalog.pg_namespace ns ON ns.oid = rel.relnamespace
JOIN pg_catalog.pg_class ref ON ref.oid = con.confrelid
WHERE con.contype = 'f' AND con.conparentid = 0
  AND ref.relname = ANY(%s) AND pg_catalog.pg_table_is_visible(ref.oid)
ORDER BY ns.nspname, rel.relname, con.conname
"""


# serialization_failure, deadlock_detected, lock_not_available, admin/crash shutdown, cannot_connect_now,
# and the connection_exception class.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001"}


class UnsupportedValue(TypeError):
    """A prepared value COPY's text format has no rule for here; the caller falls back to INSERT."""


def _duration(value):
    return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"


def _binary(value):
    return "\\\\x" + bytes(value).hex()


_COPY_TEXT = {
    str: lambda v: v.translate(_COPY_ESCAPES),
    bool: lambda v: "t" if v else "f",
    int: str,
    float: repr,
    Decimal: str,
    uuid.UUID: str,
    datetime.datetime: datetime.datetime.isoformat,
    datetime.date: datetime.date.isoformat,
    datetime.time: datetime.time.isoformat,
    datetime.timedelta: _duration,
    bytes: _binary,
    bytearray: _binary,
    memoryview: _binary,
}


def copy_text(value):
    """Return the value in COPY's text format."""
    if value is None:
        return "\\N"
    encode = _COPY_TEXT.get(type(value))
    if encode is None:
        adapted = getattr(value, "adapted", None)  # psycopg2.Binary() and friends wrap the real value
        if adapted is not None and type(adapted) in _COPY_TEXT:
            return _COPY_TEXT[type(adapted)](adapted)
        raise UnsupportedValue(f"no COPY text rule for {type(value).__name__}")
    return encode(value)


class PostgreSQLDialect(Dialect):
    can_defer_constraints = True
    rejects_nul_in_text = True
    stores_float_nan = True
    stores_float_infinity = True
    connect_timeout_option = "connect_timeout"
    default_port = 5432

    def server_identity(self):
        # initdb picks system_identifier; only the cluster's physical replicas share it, and they
        # hold the very same data.
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT system_identifier, current_database() FROM pg_control_system()")
            return tuple(cursor.fetchone())

    def columns_query(self, tables):
        # The tables Django's introspection sees: on the search path; plain, partitioned, foreign, views.
        return (
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON a.attrelid = c.oid "
            "JOIN pg_namespace n ON c.relnamespace = n.oid "
            "WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v') AND c.relname = ANY(%s) "
            "AND n.nspname NOT IN ('pg_catalog', 'pg_toast') AND pg_catalog.pg_table_is_visible(c.oid) "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum",
            [list(tables)],
        )

    @property
    def has_copy(self):
        # COPY through copy_expert() is psycopg2's API; psycopg 3 takes the INSERT path.
        return self.connection.Database.__name__ == "psycopg2"

    def constraints_deferred(self, tables):
        # Django creates FKs DEFERRABLE INITIALLY DEFERRED; deferral lasts only until the transaction
        # ends, so the whole cycle is copied in one transaction.
        return atomic_with_deferred_checks(self, tables, before=["SET CONSTRAINTS ALL DEFERRED"])

    def sync_lock(self):
        return AdvisoryLock(self.connection)

    def transient_driver_error(self, error):
        if not type(error).__module__.startswith("psycopg"):
            return False  # another vendor's error (the other side of the step), or Django's wrapper
        if getattr(error, "pgcode", None) in _TRANSIENT_SQLSTATES:
            return True
        # A terminated backend surfaces without a SQLSTATE ("server closed the connection
        # unexpectedly"), as AdminShutdown inside a SystemError mid-COPY, or as InterfaceError after.
        name = type(error).__name__
        return name in ("AdminShutdown", "InterfaceError") or (
            name == "OperationalError" and getattr(error, "pgcode", None) is None
        )

    snapshot_scope = "shared"

    def export_snapshot(self):
        """Open a connection of its own that holds a snapshot; return (that connection, the snapshot's id).

        Readers join it by id; one of them dying (a fault, a retry) does not end the snapshot.
        """
        with self.connection.wrap_database_errors:
            holder = self.connection.get_new_connection(self.connection.get_connection_params())
            holder.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
            with holder.cursor() as cursor:
                cursor.execute("SELECT pg_export_snapshot()")
                return holder, cursor.fetchone()[0]

    def join_read_snapshot(self, token):
        with self.connection.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute("SET TRANSACTION SNAPSHOT %s", [token])

    def foreign_key_referrers(self, tables):
        # The tables are the ones unqualified names reach through search_path (as Django's queries
        # do); their referrers may live in any schema, and are qualified when search_path misses them.
        with self.connection.cursor() as cursor:
            cursor.execute(_REFERRERS_SQL, [sorted(tables)])
            return [
                ForeignKeyReferrer(
                    name, table, tuple(columns), referenced, _ON_DELETE[rule], None if visible else schema
                )
                for name, schema, table, visible, columns, referenced, rule in cursor.fetchall()
            ]

    def copy_from_sql(self, table, fields, binary=False):
        columns = ", ".join(self.quote(field.column) for field in fields)
        return f"COPY {self.quote(table)} ({columns}) FROM STDIN" + (" (FORMAT binary)" if binary else "")

    def fast_insert_rows(self, table, fields, rows):
        """Load prepared values with COPY FROM STDIN; fall back to INSERT for values COPY can't spell."""
        if not self.has_copy:
            return self.insert_rows(table, fields, rows)
        try:
            text = "".join("\t".join(map(copy_text, row)) + "\n" for row in rows)
        except UnsupportedValue:
            return self.insert_rows(table, fields, rows)
        # copy_expert() is psycopg2's own: wrap its errors into Django's, as cursor.execute() does.
        with self.connection.cursor() as cursor, self.connection.wrap_database_errors:
            cursor.copy_expert(self.copy_from_sql(table, fields), io.StringIO(text))

    def canonical_sql(self, kind, column, field, same_vendor=False, mixed_collations=False):
        if kind == "decimal":
            return f"round({column}, {int(field.decimal_places)})::text"
        template = _CANONICAL.get(kind) or (_OWN_TEXT.get(kind) if same_vendor else None)
        return template and template.format(column)

    def row_hash_sql(self, columns, kinds):
        # Each column hashed by its type's own hash function (PostgreSQL 14+): no text is built, three
        # times faster than an MD5 of the row's text. A type of its own may have no hash function.
        # hash_record_extended combines its columns' hashes linearly (h * 31 + next), so a range's sum
        # would not change when rows swap values: the row's hash is hashed again, which mixes.
        if self.connection.pg_version < 140000 or "other" in kinds:
            return None
        return f"hashint8extended(hash_record_extended(ROW({', '.join(columns)}), 0), 0)"

    def row_text_sql(self, columns):
        # A row value's text: every type's own output function, NULL as an empty field, quoted where
        # needed. Both servers' sessions are Django's (UTC, ISO dates, shortest float text).
        return f"(ROW({', '.join(columns)}))::text"

    def hash60_sql(self, text):
        return f"('x' || substr(md5({text}), 1, 15))::bit(60)::bigint"

    def key_bit_sql(self, key, width):
        return f"(1::bigint << ({key} %% {int(width)} + {int(width) - 1})::int)"

    # --- streams into PostgreSQL ------------------------------------------------------------------

    def wire_kinds(self, step):
        """Return {field: the wire kind COPY's text format reads for it} (lines.py)."""
        return {field: lines.wire_kinds(field, duration="interval", binary="bytea") for field in step.fields}

    def stream_plan(self, step, source):
        if not (self.has_copy and getattr(source, "has_copy", True)):
            return StreamPlan(False, "psycopg 3 has no copy_expert(): INSERT in chunks")
        if isinstance(source, PostgreSQLDialect):
            form = "binary" if self.same_column_types(step, source) is not None else "text: column types differ"
            how = f"COPY TO STDOUT → COPY FROM STDIN ({form})"
        else:
            sql = lines.line_select_sql(source, self, step, self.wire_kinds(step))
            if not sql:
                return StreamPlan(False, sql.reason)
            how = f"{source.connection.display_name} SELECT spelling COPY lines → COPY FROM STDIN"
        return StreamPlan(True, f"{how}; {self.load_checks(step.table).reason}")

    def checks_references_after_loading(self, step):
        # Under REPEATABLE READ (a user's OPTIONS) the check could not see rows committed after the load began.
        return self.has_copy and self.reads_latest_commits() and self.load_checks(step.table).once_per_table

    def reads_latest_commits(self):
        """Return whether the connection's statements each see the latest commits (READ COMMITTED)."""
        if "isolation" not in self.__dict__:
            with self.connection.cursor() as cursor:
                cursor.execute("SHOW transaction_isolation")
                self.isolation = cursor.fetchone()[0]
        return self.isolation in ("read committed", "read uncommitted")

    def stream_table(self, step, source, on_rows, translations=None, parents_loaded=None):
        """Stream the table into `COPY … FROM STDIN` in one transaction; None where this pair can't.

        From PostgreSQL the source's own `COPY (SELECT …) TO STDOUT` feeds it, no Python per row; from
        MariaDB/MySQL and SQLite the source's SELECT spells each row as one COPY line (lines.py).
        Foreign keys are checked once per table where the role may switch the row triggers off
        (load_checks). Returns the number of rows copied.
        """
        if not self.has_copy:
            return None
        if isinstance(source, PostgreSQLDialect):
            if not source.has_copy:
                return None
            return self._stream_from_postgresql(step, source, on_rows, translations, parents_loaded)
        sql = lines.line_select_sql(source, self, step, self.wire_kinds(step), translations)
        if not sql:
            return None
        feed = lines.LineFeed(source, sql)
        reader = _FeedReader(feed, on_rows)
        try:
            self._copy_in(step, reader, parents_loaded=parents_loaded)
        except DatabaseError as exc:
            if exc is reader.failure:  # reading failed, not loading
                raise SourceFault(source.alias, exc) from exc
            raise
        except BaseException:
            feed.abandon()  # an interrupt: close the source rather than read the rest of the table
            raise
        finally:
            reader.close()  # reads the rest of a result cut short by the destination, keeping the snapshot
        return feed.rows

    def _stream_from_postgresql(self, step, source, on_rows, translations, parents_loaded=None):
        """Pipe the source's `COPY (SELECT …) TO STDOUT` into `COPY … FROM STDIN`, no Python per row.

        In COPY's binary format where every column has the same type on both sides (a quarter less
        work for both servers than text); else in text, which the destination parses by its own types.
        """
        deferred, translations = set(step.deferred_fields), translations or {}
        types = self.same_column_types(step, source)  # None: not the same, so text
        columns = []
        for field in step.fields:
            column = "NULL" if field in deferred else source.quote(field.column)
            if field in translations and field not in deferred:
                column = translated_column_sql(column, translations[field])
                if column is None:
                    return None
            if types is not None and column != source.quote(field.column):
                column = f"({column})::{types[field.column]}"  # binary values carry no type: give the column's
            columns.append(column)
        where = key_range_sql(source.quote, step)
        selected = f"SELECT {', '.join(columns)} FROM {source.quote(step.table)}" + (f" WHERE {where}" if where else "")
        binary = types is not None
        copy_out = f"COPY ({selected}) TO STDOUT" + (" (FORMAT binary)" if binary else "")
        source.connection.ensure_connection()
        # Django's connection wrappers are bound to their thread: the reader gets the raw connection.
        raw_source = source.connection.connection
        read_fd, write_fd = os.pipe()
        failure = []

        def produce():
            try:
                with os.fdopen(write_fd, "wb") as sink, raw_source.cursor() as cursor:
                    cursor.copy_expert(copy_out, sink, size=_COPY_BLOCK)
            except Exception as exc:  # re-raised in the consuming thread
                failure.append(exc)

        def source_failed():
            producer.join()
            if failure:  # a source that failed half-way must not commit half a table
                with source.connection.wrap_database_errors:
                    raise failure[0]

        producer = threading.Thread(target=produce, name=f"dbcopy-copy-out-{step.table}", daemon=True)
        counter = (_BinaryCountingReader if binary else _CountingReader)(os.fdopen(read_fd, "rb"), on_rows)
        producer.start()
        try:
            rows = self._copy_in(step, counter, before_commit=source_failed, binary=binary, parents_loaded=parents_loaded)
        finally:
            counter.close()  # unblocks a producer still writing when the destination gave up
            producer.join()
        return rows

    def same_column_types(self, step, source):
        """Return {column: its type} if each of the step's columns has the same type in both databases, else None."""
        wanted = [field.column for field in step.fields]
        found = [dialect.column_types(step.table) for dialect in (source, self)]
        if any(column not in found[0] or found[0][column] != found[1].get(column) for column in wanted):
            return None
        return found[0]

    def column_types(self, table):
        """Return {column: its type as SQL spells it} of the table (asked once per table and dialect:
        the stream plan and the stream both need it)."""
        cache = self.__dict__.setdefault("column_types_by_table", {})
        if table not in cache:
            with self.connection.cursor() as cursor:
                cursor.execute(_COLUMN_TYPES_SQL, [self.quote(table)])
                cache[table] = dict(cursor.fetchall())
        return cache[table]

    def _copy_in(self, step, reader, before_commit=lambda: None, binary=False, parents_loaded=None):
        """Run `COPY … FROM STDIN` from the reader in one transaction, checking FKs once where it may.

        Return the number of rows COPY loaded.
        """
        parents_loaded = parents_loaded or (lambda: None)
        with transaction.atomic(using=self.alias):
            checked_here = self.load_checks(step.table).once_per_table
            if checked_here:
                self.execute(["SET LOCAL session_replication_role = replica"])
            else:
                parents_loaded()  # the FK triggers check each row as COPY reads it
            try:
                with self.connection.cursor() as cursor, self.connection.wrap_database_errors:
                    cursor.copy_expert(self.copy_from_sql(step.table, step.fields, binary), reader, size=_COPY_BLOCK)
                    rows = cursor.rowcount
            except Exception:
                if reader.failure is not None:  # psycopg2 reports its own error for the one read() raised
                    raise reader.failure from None
                raise
            before_commit()
            if checked_here:
                # The rows referred to may have been loaded meanwhile by other workers: the anti-join
                # runs once they are committed (READ COMMITTED: each statement sees the latest commits).
                parents_loaded()
                self.verify_references(step)
        reader.finished(rows)
        return rows

    def load_checks(self, table):
        """Return how a stream into the table checks its foreign keys (LoadChecks), asked once per table.

        Row triggers off (`session_replication_role = replica`) and one anti-join per FK instead, where
        the role may set it and nothing else on the table would be skipped with the FK triggers: a
        trigger or rule of the table's own, or a MATCH FULL key (the anti-join checks MATCH SIMPLE).
        """
        cache = self.__dict__.setdefault("load_checks_by_table", {})
        if table not in cache:
            cache[table] = self._load_checks(table)
        return cache[table]

    def _load_checks(self, table):
        with self.connection.cursor() as cursor:
            may_set = _MAY_SET_ROLE[self.connection.pg_version >= 150000]
            cursor.execute(_LOAD_CHECKS_SQL.format(may_set=may_set), [self.quote(table)])
            may_set, triggers, rules, full_match = cursor.fetchone()
        if not may_set:
            return LoadChecks(False, "the role may not set session_replication_role: FK triggers check each row")
        if triggers or rules:
            return LoadChecks(False, "the table has triggers or rules of its own: FK triggers check each row")
        if full_match:
            return LoadChecks(False, "a foreign key is MATCH FULL: FK triggers check each row")
        return LoadChecks(True, "FK triggers off, one anti-join per foreign key before the commit")

    def verify_references(self, step):
        """Raise DanglingReference if a loaded row of the step refers to a row that does not exist.

        Every FK constraint of the table in the catalog, not only the model's: the triggers were off
        for all of them. Only the step's key range is checked (the other ranges check their own).
        """
        with self.connection.cursor() as cursor:
            cursor.execute(_TABLE_FOREIGN_KEYS_SQL, [self.quote(step.table)])
            keys = cursor.fetchall()
            where = key_range_sql(lambda name: "child." + self.quote(name), step)
            for name, columns, referenced, referenced_columns in keys:
                cursor.execute(_dangling_sql(self.quote, step.table, columns, referenced, referenced_columns, where))
                row = cursor.fetchone()
                if row is not None:
                    raise DanglingReference(
                        f"{step.label}: a row refers through {name} ({', '.join(columns)} = "
                        f"{', '.join(map(str, row))}) to a row of {referenced} that does not exist"
                    )


@dataclass(frozen=True)
class LoadChecks:
    """How a stream into a table checks foreign keys: once per table (triggers off) or row by row."""

    once_per_table: bool
    reason: str


class DanglingReference(IntegrityError):
    """A streamed row points at a missing row: the table is rolled back and copied value by value."""


# Whether the role may set session_replication_role (PostgreSQL 15 grants it per parameter; before,
# superusers only), and what on the table its FK triggers would take with them when switched off.
_LOAD_CHECKS_SQL = """
SELECT {may_set},
       EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = t.oid AND NOT tgisinternal),
       EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite WHERE ev_class = t.oid AND rulename <> '_RETURN'),
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = t.oid AND contype = 'f' AND confmatchtype = 'f')
FROM (SELECT %s::regclass AS oid) AS t
"""
_MAY_SET_ROLE = {
    True: "has_parameter_privilege('session_replication_role', 'SET')",
    False: "(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)",
}
# The FK constraints of a table: name, its columns, the referenced table (qualified) and columns.
_TABLE_FOREIGN_KEYS_SQL = """
SELECT con.conname,
       ARRAY(SELECT att.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = k.attnum
             ORDER BY k.ord),
       con.confrelid::regclass::text,
       ARRAY(SELECT att.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute att ON att.attrelid = con.confrelid AND att.attnum = k.attnum
             ORDER BY k.ord)
FROM pg_catalog.pg_constraint con
WHERE con.conrelid = %s::regclass AND con.contype = 'f'
ORDER BY con.conname
"""
_COLUMN_TYPES_SQL = """
SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
"""
# Bytes psycopg2 asks the reader for at a time (its default, 8 KiB, costs a call per few rows).
_COPY_BLOCK = 256 * 1024


def _dangling_sql(quote, table, columns, referenced, referenced_columns, where):
    """Return a query for the key of one row whose FK (MATCH SIMPLE: no NULL in it) finds no row."""
    child = ", ".join(f"child.{quote(c)}" for c in columns)
    present = " AND ".join(f"child.{quote(c)} IS NOT NULL" for c in columns)
    joined = " AND ".join(f"parent.{quote(p)} = child.{quote(c)}" for c, p in zip(columns, referenced_columns))
    # confrelid::regclass::text is already quoted (and qualified) as needed.
    return (
        f"SELECT {child} FROM {quote(table)} AS child WHERE {present}" + (f" AND {where}" if where else "")
        + f" AND NOT EXISTS (SELECT 1 FROM {referenced} AS parent WHERE {joined}) LIMIT 1"
    )


class _FeedReader(io.RawIOBase):
    """A file for copy_expert() over a LineFeed: hand on its blocks, report progress, keep what failed."""

    def __init__(self, feed, on_rows):
        self.feed, self.on_rows = feed, on_rows
        self.blocks = feed.blocks()
        self.reported = 0
        self.failure = None  # what the source or on_rows (an interrupt) raised, re-raised after the COPY

    def readable(self):
        return True

    def read(self, size=-1):
        try:
            data = next(self.blocks, b"")
            rows = self.feed.rows
            if rows - self.reported >= _STREAM_REPORT_EVERY or not data:
                self.on_rows(rows)
                self.reported = rows
        except BaseException as exc:
            self.failure = exc
            raise
        return data

    def finished(self, rows):
        """Report the last rows (read() reports only every _STREAM_REPORT_EVERY)."""
        if rows != self.reported:
            self.on_rows(rows)

    def close(self):
        self.blocks.close()
        super().close()


# Canonical text of a non-NULL value by kind (digest.py): the same on every vendor for the same stored value.
_CANONICAL = {
    "int": "({})::text",
    "bool": "({})::int::text",
    "text": "({})::text",
    "inet": "host({})",
    "uuid": "replace(({})::text, '-', '')",
    "date": "to_char({}, 'YYYY-MM-DD')",
    "datetime": "(extract(epoch from {}) * 1000000)::bigint::text",
    "time": "(extract(epoch from {}) * 1000000)::bigint::text",
    "duration": "(extract(epoch from {}) * 1000000)::bigint::text",
    "binary": "encode({}, 'hex')",
}
# Kinds whose text only PostgreSQL itself writes alike (shortest float text, jsonb's normal form).
_OWN_TEXT = {"float": "({})::text", "json": "({})::text", "other": "({})::text"}


class AdvisoryLock:
    """A session-level advisory lock; the server drops it if this connection dies."""

    KEY = int.from_bytes(hashlib.sha1(b"dbcopy sync").digest()[:8], "big", signed=True)

    def __init__(self, connection):
        self.connection = connection

    def acquire(self):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.KEY])
            return bool(cursor.fetchone()[0])

    def release(self):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [self.KEY])


class _CountingReader(io.RawIOBase):
    """Count rows (newlines: COPY text escapes the ones inside values) as the stream goes by."""

    def __init__(self, stream, on_rows):
        self.stream, self.on_rows = stream, on_rows
        self.rows = self.reported = 0
        self.failure = None  # what on_rows raised (an interrupt), to re-raise after the aborted COPY

    def readable(self):
        return True

    def read(self, size=-1):
        data = self.stream.read(size)
        self.count(data)
        if self.rows - self.reported >= _STREAM_REPORT_EVERY or not data:
            try:
                self.on_rows(self.rows)
            except Exception as exc:
                self.failure = exc
                raise
            self.reported = self.rows
        return data

    def count(self, data):
        self.rows += data.count(b"\n")

    def finished(self, rows):
        """Take the number of rows COPY reports having loaded."""
        if rows is not None and rows >= 0 and rows != self.reported:
            self.rows = rows
            self.on_rows(rows)

    def close(self):
        self.stream.close()
        super().close()


class _BinaryCountingReader(_CountingReader):
    """Estimate the rows of a binary COPY stream for progress reports from its size so far.

    Binary rows have no terminator to count, and walking every field in Python would cost more than
    the copy: the first block's rows give the average size. COPY says the exact count at the end.
    """

    def __init__(self, stream, on_rows):
        super().__init__(stream, on_rows)
        self.bytes = 0
        self.row_bytes = None

    def count(self, data):
        if self.row_bytes is None and data:
            self.row_bytes = _average_binary_row_bytes(data)
        self.bytes += len(data)
        if self.row_bytes:
            self.rows = int(self.bytes / self.row_bytes)


def _average_binary_row_bytes(data):
    """Return the average size of the whole rows at the start of a binary COPY stream (None if none)."""
    # Header: 11-byte signature, 32-bit flags, 32-bit length of an extension area, the area.
    if len(data) < 19:
        return None
    position = 19 + struct.unpack_from("!i", data, 15)[0]
    start, rows = position, 0
    while position + 2 <= len(data):
        fields = struct.unpack_from("!h", data, position)[0]
        if fields < 0:  # the trailer
            break
        end = position + 2
        for _ in range(fields):
            if end + 4 > len(data):
                break
            length = struct.unpack_from("!i", data, end)[0]
            end += 4 + max(length, 0)
        if end > len(data):
            break
        position, rows = end, rows + 1
    return (position - start) / rows if rows else None
