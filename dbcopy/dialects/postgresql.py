"""PostgreSQL: deferrable foreign keys, sequences behind serial/identity columns, no NUL in text, COPY."""

import datetime
import hashlib
import io
import os
import threading
import uuid
from decimal import Decimal

from django.db import transaction

from .base import Dialect, ForeignKeyReferrer, atomic_with_deferred_checks, translated_column_sql

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

    def copy_from_sql(self, table, fields):
        columns = ", ".join(self.quote(field.column) for field in fields)
        return f"COPY {self.quote(table)} ({columns}) FROM STDIN"

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

    def stream_table(self, step, source, on_rows, translations=None):
        """Pipe the source's `COPY (SELECT …) TO STDOUT` into `COPY … FROM STDIN`, no Python per row.

        Only between two PostgreSQL databases, for steps whose values need no translation (content
        type ids do). Runs in one destination transaction; returns the number of rows copied.
        """
        if not (isinstance(source, PostgreSQLDialect) and self.has_copy and source.has_copy):
            return None
        deferred, translations = set(step.deferred_fields), translations or {}
        columns = []
        for field in step.fields:
            column = "NULL" if field in deferred else source.quote(field.column)
            if field in translations and field not in deferred:
                column = translated_column_sql(column, translations[field])
                if column is None:
                    return None
            columns.append(column)
        selected = ", ".join(columns)
        copy_out = f"COPY (SELECT {selected} FROM {source.quote(step.table)}) TO STDOUT"
        source.connection.ensure_connection()
        # Django's connection wrappers are bound to their thread: the reader gets the raw connection.
        raw_source = source.connection.connection
        read_fd, write_fd = os.pipe()
        failure = []

        def produce():
            try:
                with os.fdopen(write_fd, "wb") as sink, raw_source.cursor() as cursor:
                    cursor.copy_expert(copy_out, sink)
            except Exception as exc:  # re-raised in the consuming thread
                failure.append(exc)

        producer = threading.Thread(target=produce, name=f"dbcopy-copy-out-{step.table}", daemon=True)
        counter = _CountingReader(os.fdopen(read_fd, "rb"), on_rows)
        producer.start()
        try:
            with transaction.atomic(using=self.alias):
                try:
                    with self.connection.cursor() as cursor, self.connection.wrap_database_errors:
                        cursor.copy_expert(self.copy_from_sql(step.table, step.fields), counter)
                except Exception:
                    if counter.failure is not None:  # psycopg2 reports its own error for the one read() raised
                        raise counter.failure from None
                    raise
                producer.join()
                if failure:  # a source that failed half-way must not commit half a table
                    with source.connection.wrap_database_errors:
                        raise failure[0]
        finally:
            counter.close()  # unblocks a producer still writing when the destination gave up
            producer.join()
        return counter.rows


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
        self.rows += data.count(b"\n")
        if self.rows - self.reported >= _STREAM_REPORT_EVERY or not data:
            try:
                self.on_rows(self.rows)
            except Exception as exc:
                self.failure = exc
                raise
            self.reported = self.rows
        return data

    def close(self):
        self.stream.close()
        super().close()
