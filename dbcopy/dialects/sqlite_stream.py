"""PostgreSQL or MariaDB/MySQL → SQLite without Python per value: the source spells each column as
Django's sqlite3 backend stores it, the client hands the rows on as the driver returns them, and
SQLite takes them with executemany() of one INSERT in one transaction.

What Django stores in SQLite, for the value the source holds (sqlite3/operations.py, base.py):
datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text, naive in the destination's time zone (str() of
the datetime: no fraction when the microseconds are 0); dates 'YYYY-MM-DD'; times 'HH:MM:SS[.ffffff]';
decimals as str(Decimal), which the column's NUMERIC affinity turns into a number; UUIDs as 32 lower-case
hex digits; durations as integer microseconds; booleans, integers, floats, text and blobs as they are;
JSON as the source's stored text (dbcopy reads it cast to text, never decoded).

Each column gets a `Spelling`: the source's SQL for it, and a *guard*, SQL true for a value this
spelling would not store as Django does (a float NaN, which Django's path refuses; a zero date, which
the driver reads as NULL; a time of 24:00). One query looks for such a value first; if there is one
the table takes the value-by-value path, which stores or refuses it as always. A type with no exact
spelling (a type of its own, datetimes in another time zone) sends the whole table that way.
"""

import queue
import threading
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, models, transaction

from ..exceptions import SourceFault
from ..storage import INTEGER_TYPES, TEXT_TYPES, column_field, column_type_field, is_django_field, is_json, stand_in
from .base import StreamPlan, key_range_sql, translated_column_sql

# Rows fetched from the source, and handed to one executemany(), at a time.
BATCH_ROWS = 10_000
# Rows per progress report (reporting raises Interrupted after a signal).
STREAM_REPORT_EVERY = 20_000

# str(Decimal(text)) is the text itself for a plain decimal with at most 6 digits after the point;
# with more, Python writes small values with an exponent ('1E-7'), so the text is rewritten as Django would.
_PLAIN_DECIMAL_PLACES = 6


@dataclass(frozen=True)
class Spelling:
    """How the source spells one column: `sql`, with `guard` (SQL, or None) true for a value the
    spelling cannot store as Django does, and `prepare` (or None) for the rare column whose values
    need Django's own preparation in Python."""

    sql: str
    guard: str | None = None
    prepare: object = None


def stream_table(dest, step, source, on_rows, translations=None):
    """Copy the step's rows from `source` into the SQLite `dest` in one transaction.

    Return the rows copied, or None where this pair or table can't be spelled exactly (the caller
    copies it value by value). A database error at the destination is raised as it comes (the caller
    falls back to the chunks, which name the row); one at the source as SourceFault.
    """
    speller = _SPELLERS.get(source.connection.vendor)
    if speller is None or not speller.can_read(source):
        return None
    spellings = column_spellings(speller, step, source, dest, translations or {})
    if spellings is None:
        return None
    where = key_range_sql(source.quote, step)
    guards = [f"({s.guard})" for s in spellings if s.guard]
    reader = speller.reader(source)
    table = source.quote(step.table)
    if guards:
        conditions = " OR ".join(guards)
        found = reader.first_row(
            f"SELECT 1 FROM {table} WHERE ({conditions})" + (f" AND {where}" if where else "") + " LIMIT 1"
        )
        if found:
            return None  # a value only the value-by-value path stores (or refuses) as always
    select = f"SELECT {', '.join(s.sql for s in spellings)} FROM {table}" + (f" WHERE {where}" if where else "")
    return _load(dest, step, reader, select, [s.prepare for s in spellings], on_rows)


def stream_plan(dest, step, source):
    """Return a StreamPlan: whether the step's table streams from `source` into SQLite, how, or why not."""
    speller = _SPELLERS.get(source.connection.vendor)
    if source.connection.vendor == "sqlite":
        # Copying stored values as they are would also copy what Django cannot read (an impossible
        # date, text that is not UTF-8), which the value-by-value path names and refuses.
        return StreamPlan(False, "SQLite to SQLite goes value by value, which refuses values Django cannot read")
    if speller is None or not speller.can_read(source):
        return StreamPlan(False, f"no stream from {source.connection.vendor} into SQLite")
    spellings = column_spellings(speller, step, source, dest, {})
    if spellings is None:
        return StreamPlan(False, "a column has no exact spelling as Django's SQLite backend stores it")
    guarded = " (unless a value only the value-by-value path stores as Django does is found first)"
    how = f"{source.connection.display_name} SELECT spelling SQLite's values → executemany() in one transaction"
    return StreamPlan(True, how + (guarded if any(s.guard for s in spellings) else ""))


def column_spellings(speller, step, source, dest, translations):
    """Return the Spelling of every column of the step, or None if one has no exact spelling."""
    deferred = set(step.deferred_fields)
    spellings = []
    for field in step.fields:
        if field in deferred:
            spellings.append(Spelling("NULL"))  # written once the rows it points at exist
            continue
        column = source.quote(field.column)
        if field in translations:
            column = translated_column_sql(column, translations[field])
            if column is None:
                return None
            spellings.append(Spelling(column))  # content type / permission ids: integers
            continue
        kind = column_kind(field, source.connection)
        spelling = kind and speller.spell(kind, column, field, source, dest)
        if not spelling:
            return None
        spellings.append(spelling)
    return spellings


def column_kind(field, connection):
    """Return the internal type whose rules spell the column, or None for a column type of its own.

    A custom field is read and written through its built-in stand-in (storage.py); its column is
    spelled like the built-in's only if it is the built-in's column type at the source.
    """
    end = column_type_field(field)
    if is_json(end):
        built_in = None if is_django_field(end) else models.JSONField()
        kind = "JSONField"
    else:
        built_in = stand_in(end)
        kind = end.get_internal_type()
    if built_in is not None and built_in.db_type(connection) != end.db_type(connection):
        return None
    return kind


def _load(dest, step, reader, select, preparers, on_rows):
    """Insert the SELECT's rows into the step's table in one transaction; return how many.

    The source is read on a thread of its own, a few batches ahead, so that the source database
    computes the next batch while SQLite writes this one.
    """
    columns = ", ".join(dest.quote(field.column) for field in step.fields)
    placeholders = ", ".join(["%s"] * len(step.fields))
    insert = f"INSERT INTO {dest.quote(step.table)} ({columns}) VALUES ({placeholders})"
    prepare_row = _row_preparer(preparers)
    copied = reported = 0
    prefetch = _Prefetch(reader.batches(select), name=f"dbcopy-read-{step.table}")
    try:
        # Django creates SQLite's foreign keys DEFERRABLE INITIALLY DEFERRED: the commit checks every
        # row, as it does for each chunk of the value-by-value path, and a dangling one fails it.
        with transaction.atomic(using=dest.alias), dest.connection.cursor() as cursor:
            for rows in prefetch:
                if prepare_row is not None:
                    rows = [prepare_row(row) for row in rows]
                cursor.executemany(insert, rows)
                copied += len(rows)
                if copied - reported >= STREAM_REPORT_EVERY:
                    on_rows(copied)
                    reported = copied
            on_rows(copied)
    except (DatabaseError, ValueError, TypeError):
        prefetch.stop()  # the destination refused a row: the rest is read, so the fallback keeps the snapshot
        raise
    except BaseException:
        reader.abandon()  # an interrupt: leave the source rather than read the rest of the table
        prefetch.stop()
        reader.close_if_abandoned()
        raise
    prefetch.stop()
    return copied


class _Prefetch:
    """Iterate over `batches` (a generator reading the source) on a thread of its own, two batches ahead.

    The generator runs, and closes, on that thread alone: the caller only takes what it put in the
    queue. A read error comes out of the iteration as it was raised.
    """

    _END = object()

    def __init__(self, batches, name):
        self.batches = batches
        self.queue = queue.Queue(maxsize=2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for rows in self.batches:
                if not self._put(rows):
                    break
            else:
                self._put(self._END)
        except BaseException as exc:  # handed to the consuming thread, which raises it
            self._put(exc)
        finally:
            self.batches.close()

    def _put(self, item):
        """Queue the item; return False if the consumer stopped listening first."""
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while True:
            item = self.queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self):
        """Stop reading (the reading thread finishes its batch in progress) and wait for the thread."""
        self.stopped.set()
        self.thread.join()


def _row_preparer(preparers):
    """Return a function applying the columns' preparers to a row, or None if no column has one."""
    if not any(preparers):
        return None
    steps = [(i, prepare) for i, prepare in enumerate(preparers) if prepare is not None]

    def prepare_row(row):
        row = list(row)
        for i, prepare in steps:
            if row[i] is not None:
                row[i] = prepare(row[i])
        return row

    return prepare_row


def _django_prepared(field, dest):
    """Return a function preparing a value of the field for SQLite as Django's own path does."""
    prepare = column_field(field).get_db_prep_save
    return lambda value: prepare(value, dest.connection)


def _address(field, dest):
    """Return Django's preparation of an IP address's text for SQLite, skipping the call for the text it
    keeps as it is: a non-empty address without ':' (GenericIPAddressField.get_prep_value() rewrites
    IPv6 only; the adapter turns '' into NULL)."""
    prepare = _django_prepared(field, dest)
    return lambda text: text if text and ":" not in text else prepare(text)


def _decimal_text(field):
    """Return None if the source's decimal text is what str(Decimal) gives, else a function rewriting it."""
    places = getattr(column_type_field(field), "decimal_places", None)
    if places is not None and places <= _PLAIN_DECIMAL_PLACES:
        return None
    return lambda text: str(Decimal(text))


def _utc_only(source=None, dest=None):
    """Return whether datetimes can be spelled: aware, and in UTC on the sides that convert them
    (another zone's rules may differ between the database's and Python's time zone data)."""
    return settings.USE_TZ and all(
        side is None or side.connection.timezone_name == "UTC" for side in (source, dest)
    )


class _SourceRows:
    """Read the source on its own connection, inside the run's snapshot, which belongs to that connection
    (MariaDB) or was joined by it (PostgreSQL). batches() runs on a thread of its own, so it uses the
    raw DB-API connection: Django's wrapper belongs to the thread that opened it."""

    # Whether to close the connection rather than the cursor of a read cut short (an interrupt).
    leave_by_closing = False

    def __init__(self, source):
        self.source = source
        source.connection.ensure_connection()
        self.raw = source.connection.connection
        self.cut_short = self.abandoned = False

    def open_cursor(self):
        raise NotImplementedError

    def first_row(self, sql):
        with _read_errors(self.source):
            cursor = self.raw.cursor()
            try:
                cursor.execute(sql)
                return cursor.fetchone()
            finally:
                cursor.close()

    def batches(self, sql):
        """Yield lists of BATCH_ROWS rows at most, as the driver returns them."""
        with _read_errors(self.source):
            cursor = self.open_cursor()
        self.cut_short = True
        try:
            with _read_errors(self.source):
                cursor.execute(sql)
            while True:
                with _read_errors(self.source):
                    rows = cursor.fetchmany(BATCH_ROWS)
                if not rows:
                    self.cut_short = False
                    return
                yield rows
        finally:
            # A read the destination cut short is read to its end here: the connection, and the
            # snapshot its transaction holds, stay usable for the value-by-value path.
            if not self.abandoned:
                with suppress(Exception):
                    cursor.close()

    def abandon(self):
        """Leave a read cut short by an interrupt without reading the rest (before the reading stops)."""
        if self.cut_short and self.leave_by_closing:
            self.abandoned = True

    def close_if_abandoned(self):
        """Close the source connection left mid-result by abandon() (once the reading has stopped)."""
        if self.abandoned:
            self.source.connection.close()


# --- PostgreSQL --------------------------------------------------------------------------------


class _PostgreSQL:
    """PostgreSQL spells what Django's SQLite backend stores; psycopg2 reads ints, floats, text and bytea."""

    def can_read(self, source):
        # Named (server-side) cursors and these type casters are psycopg2's.
        return source.connection.Database.__name__ == "psycopg2"

    def reader(self, source):
        return _PostgreSQLRows(source)

    def spell(self, kind, c, field, source, dest):
        if kind in INTEGER_TYPES or kind in TEXT_TYPES or kind in ("BooleanField", "BinaryField"):
            return Spelling(c)
        if kind == "FloatField":
            return Spelling(c, guard=f"{c} = 'NaN'")  # Django's path refuses NaN, which SQLite stores as NULL
        if kind == "DecimalField":
            return Spelling(
                f"({c})::text", guard=f"({c})::text IN ('NaN', 'Infinity', '-Infinity')", prepare=_decimal_text(field)
            )
        if kind == "UUIDField":
            return Spelling(f"replace(({c})::text, '-', '')")
        if kind == "JSONField":
            return Spelling(f"({c})::text")
        if kind == "GenericIPAddressField":
            # psycopg2 reads inet as its text; IPv6 needs Django's compression (clean_ipv6_address).
            return Spelling(c, prepare=_address(field, dest))
        if kind == "DateField":
            return Spelling(f"to_char({c}, 'YYYY-MM-DD')", guard=f"NOT ({c} BETWEEN '0001-01-01' AND '9999-12-31')")
        if kind == "DateTimeField":
            if not _utc_only(dest=dest):
                return None
            at = f"({c} AT TIME ZONE 'UTC')"
            return Spelling(
                # '.000000' can only be the fraction of a second: str(datetime) leaves it out.
                f"replace(to_char({at}, 'YYYY-MM-DD HH24:MI:SS.US'), '.000000', '')",
                # Python's datetime holds years 1 to 9999 only (and no infinity).
                guard=f"NOT ({at} >= '0001-01-01' AND {at} < '10000-01-01')",
            )
        if kind == "TimeField":
            return Spelling(
                f"replace(to_char({c}, 'HH24:MI:SS.US'), '.000000', '')",
                guard=f"{c} = '24:00:00'",
            )
        if kind == "DurationField":
            if source.connection.pg_version < 140000:
                return None  # extract() gives a float before PostgreSQL 14: not exact
            # psycopg2 counts a month as 30 days and a year as 365; extract(), 30 and 365.25.
            return Spelling(
                f"(extract(epoch from {c}) * 1000000)::bigint",
                guard=f"extract(year from {c}) <> 0 OR extract(month from {c}) <> 0 "
                      f"OR NOT ({c} BETWEEN interval '-999999999 days' AND interval '999999999 days')",
            )
        return None


class _PostgreSQLRows(_SourceRows):
    def open_cursor(self):
        # Server-side, so the client holds a batch at a time. WITH HOLD: psycopg2 refuses a named
        # cursor in autocommit mode (Django's: the snapshot's BEGIN went through a plain cursor);
        # inside that transaction it costs nothing.
        return self.raw.cursor(name="dbcopy_sqlite_stream", withhold=True)


# --- MariaDB / MySQL ---------------------------------------------------------------------------


class _MySQL:
    """MariaDB/MySQL spells what Django's SQLite backend stores: every value arrives as an int, a
    float, text or bytes, which mysqlclient converts in C (float() aside); no decimal, date or time
    reaches a converter written in Python."""

    def can_read(self, source):
        return True

    def reader(self, source):
        return _MySQLRows(source)

    def spell(self, kind, c, field, source, dest):
        if kind in INTEGER_TYPES:
            if kind == "PositiveBigIntegerField":  # bigint unsigned: SQLite's INTEGER stops at 2**63 - 1
                return Spelling(c, guard=f"{c} > 9223372036854775807")
            return Spelling(c)
        if kind in TEXT_TYPES or kind in ("FloatField", "BinaryField", "DurationField"):
            return Spelling(c)  # a duration is a bigint of microseconds on both sides
        if kind == "BooleanField":
            return Spelling(c, guard=f"{c} NOT IN (0, 1)")  # Django refuses another tinyint
        if kind == "DecimalField":
            return Spelling(f"CAST({c} AS CHAR)", prepare=_decimal_text(field))
        if kind == "UUIDField":
            hex_digits = f"LOWER(REPLACE(CAST({c} AS CHAR), '-', ''))"
            if column_type_field(field).db_type(source.connection) == "uuid":
                return Spelling(hex_digits)  # MariaDB's own type holds nothing but UUIDs
            # char(32): uuid.UUID() refuses anything but 32 hex digits there.
            return Spelling(hex_digits, guard=f"NOT ({hex_digits} REGEXP '^[0-9a-f]{{32}}$')")
        if kind == "JSONField":
            return Spelling(f"CAST({c} AS CHAR)")  # as Cast(…, TextField()) reads it
        if kind == "GenericIPAddressField":
            return Spelling(c, prepare=_address(field, dest))
        if kind == "DateField":
            return Spelling(f"DATE_FORMAT({c}, '%Y-%m-%d')", guard=_invalid_mysql_date(c))
        if kind == "DateTimeField":
            if not _utc_only(source=source, dest=dest):
                return None
            return Spelling(
                f"REPLACE(DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f'), '.000000', '')",
                guard=_invalid_mysql_date(c),
            )
        if kind == "TimeField":
            return Spelling(
                f"REPLACE(TIME_FORMAT({c}, '%H:%i:%s.%f'), '.000000', '')",
                guard=f"{c} < '00:00:00' OR {c} >= '24:00:00'",  # TIME spans ±838 hours
            )
        return None


def _invalid_mysql_date(c):
    """SQL true for a zero or impossible date (ALLOW_INVALID_DATES, old sql_modes), which mysqlclient
    reads as None; LAST_DAY() gives the month's real last day even for February 30."""
    return (
        f"{c} < '0001-01-01' OR MONTH({c}) = 0 OR DAYOFMONTH({c}) = 0 "
        f"OR DAYOFMONTH({c}) > DAYOFMONTH(LAST_DAY({c}))"
    )


class _MySQLRows(_SourceRows):
    # Closing an unbuffered cursor reads the rest of its result: after an interrupt, the connection
    # is closed instead.
    leave_by_closing = True

    def open_cursor(self):
        # SSCursor streams the result instead of holding all of it in memory.
        return self.raw.cursor(self.source.connection.Database.cursors.SSCursor)


@contextmanager
def _read_errors(source):
    """Turn a driver error while reading into Django's, then into SourceFault (the runner judges it)."""
    try:
        with source.connection.wrap_database_errors:
            yield
    except DatabaseError as exc:
        raise SourceFault(source.alias, exc) from exc


_SPELLERS = {"postgresql": _PostgreSQL(), "mysql": _MySQL()}
