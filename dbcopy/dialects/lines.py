"""A table's rows as the text a bulk loader reads, spelled by the source database itself.

PostgreSQL's `COPY … FROM STDIN` (text format) and MySQL's `LOAD DATA … FIELDS TERMINATED BY '\\t'
ESCAPED BY '\\\\'` read the same lines: a tab between values, a newline after each row, `\\N` for NULL,
and a backslash before a backslash, tab, newline or carriage return inside a value. So:

- the destination names the *wire kind* it reads for each column (`wire_kinds()`: how a duration or
  a binary value must look to its loader);
- the source spells each kind from the way its vendor stores the field (`_MYSQL`, `_SQLITE`), escapes
  text, and joins a row into one line (`line_select_sql()`), all in one SELECT;
- the client hands the lines on as bytes (`read_lines()`) and never looks at a value.

A column the pair cannot spell exactly (a type of its own, floats out of SQLite, a decimal wider than
SQLite keeps, datetimes stored in another time zone) makes the whole table take the value-by-value
path; `line_select_sql()` says which column and why. PostgreSQL sources use `COPY (SELECT …) TO STDOUT`
instead (the dialects' own streams), which escapes by itself.
"""

from contextlib import suppress
from dataclasses import dataclass

from ..storage import INTEGER_TYPES, TEXT_TYPES, column_type_field
from .base import key_range_sql, translated_column_sql

# Rows fetched from the source per round trip.
FETCH_ROWS = 5_000
# A day in microseconds: PostgreSQL keeps an interval's days apart from its time of day.
_DAY_US = 86_400_000_000

# The wire kind of each column type both loaders share; "duration" and "binary" are the destination's choice.
_KINDS = {
    **dict.fromkeys(INTEGER_TYPES, "int"),
    **dict.fromkeys(TEXT_TYPES, "text"),
    "BooleanField": "bool",
    "GenericIPAddressField": "text",
    "DecimalField": "decimal",
    "DateField": "date",
    "DateTimeField": "datetime",
    "TimeField": "time",
    "UUIDField": "uuid",
    "JSONField": "json",
    "FloatField": "float",
    "DurationField": "duration",
    "BinaryField": "binary",
}
# Kinds whose values may hold a tab, newline, carriage return or backslash.
_ESCAPED = {"text", "json"}


@dataclass(frozen=True)
class Unspellable:
    """Why a table cannot stream between this pair of vendors (the value-by-value path takes it)."""

    reason: str

    def __bool__(self):
        return False


def wire_kinds(field, duration, binary):
    """Return the wire kind the destination reads for the field, or None for a type it has no rule for.

    duration / binary: how this destination's loader reads them ("interval" or "microseconds";
    "bytea" or "hex").
    """
    kind = _KINDS.get(column_type_field(field).get_internal_type())
    if kind == "duration":
        return f"duration_{duration}"
    if kind == "binary":
        return f"binary_{binary}"
    return kind


def line_select_sql(source, dest, step, kinds, translations=None):
    """Return the SELECT giving one loader line per source row of the step, or Unspellable(reason).

    kinds: {field: wire kind} from the destination. Deferred FKs are sent as NULL; content type and
    permission ids are translated inside the SELECT (translations: {field: {source id: dest id}}).
    """
    spelling = _SPELLERS.get(source.connection.vendor)
    if spelling is None:
        return Unspellable(f"no line spelling for a {source.connection.vendor} source")
    if "datetime" in kinds.values() and source.connection.timezone_name != dest.connection.timezone_name:
        return Unspellable(
            f"the source stores datetimes in {source.connection.timezone_name}, the destination reads them in "
            f"{dest.connection.timezone_name}"
        )
    deferred, translations = set(step.deferred_fields), translations or {}
    values = []
    for field in step.fields:
        kind = kinds[field]
        if field in deferred:
            values.append(spelling.null)
            continue
        column = source.quote(field.column)
        if field in translations:
            column = translated_column_sql(column, translations[field])
            if column is None:
                return Unspellable(f"{field.name}: its ids are not integers, so they cannot be translated in SQL")
        expression = spelling.spell(kind, column, field) if kind else None
        if expression is None:
            type_name = column_type_field(field).get_internal_type()
            return Unspellable(f"{field.name} ({type_name}) has no exact spelling from {source.connection.vendor}")
        if kind in _ESCAPED:
            expression = spelling.escape(expression)
        values.append(spelling.or_null(expression))
    where = key_range_sql(source.quote, step)
    return (
        f"SELECT {spelling.line(values)} FROM {source.quote(step.table)}"
        + (f" WHERE {where}" if where else "")
    )


class _MySQLSpelling:
    """MariaDB/MySQL: CONCAT_WS over the columns, as bytes (CAST … AS BINARY: no decoding on the client).

    Special characters come from CHAR(): string literals' backslashes depend on the session's sql_mode.
    Text is converted to utf8mb4 first (a latin1 column's bytes are not what the loader reads), then
    escaped as bytes: in UTF-8 a byte below 128 is never part of another character, so a byte-wise
    REPLACE is exact, and it skips the collation-aware matching that took half the SELECT's time.
    """

    null = "CHAR(92, 78)"  # \N

    def spell(self, kind, column, field):
        if kind in ("int", "bool", "duration_microseconds"):
            return column
        if kind in ("text", "json"):
            return f"CAST(CONVERT({column} USING utf8mb4) AS BINARY)"
        if kind in ("decimal", "date", "datetime", "time", "float"):
            # CAST AS CHAR: datetime(6) with its six digits, doubles in their shortest exact form.
            return f"CAST({column} AS CHAR)"
        if kind == "uuid":
            return f"LOWER(REPLACE(CAST({column} AS CHAR), '-', ''))"  # char(32), or MariaDB's own uuid type
        if kind == "binary_hex":
            return f"HEX({column})"
        if kind == "binary_bytea":
            return f"CONCAT(CHAR(92, 92, 120), HEX({column}))"  # \\x: the loader reads one backslash
        if kind == "duration_interval":
            # Whole days apart, as psycopg2 writes a timedelta: DIV and MOD truncate towards zero.
            days = f"({column} DIV {_DAY_US} - IF({column} MOD {_DAY_US} < 0, 1, 0))"
            return f"CONCAT({days}, ' days ', {column} - {days} * {_DAY_US}, ' microseconds')"
        return None

    def escape(self, expression):
        for char, code in (("92", "92, 92"), ("9", "92, 116"), ("10", "92, 110"), ("13", "92, 114")):
            expression = f"REPLACE({expression}, CHAR({char}), CHAR({code}))"
        return expression

    def or_null(self, expression):
        return f"IFNULL({expression}, {self.null})"

    def line(self, values):
        return f"CAST(CONCAT_WS(CHAR(9), {', '.join(values)}) AS BINARY)"


class _SQLiteSpelling:
    """SQLite: the values as Django's sqlite3 backend stores them, joined with ||. Literals keep backslashes."""

    null = "'\\N'"

    def spell(self, kind, column, field):
        if kind in ("int", "bool", "text", "json", "date", "datetime", "time", "uuid", "duration_microseconds"):
            return column
        spelled = self._converted(kind, column, field)
        # printf() and hex() turn NULL into 0 and '': keep it NULL.
        return spelled and f"(CASE WHEN {column} IS NULL THEN NULL ELSE {spelled} END)"

    def _converted(self, kind, column, field):
        if kind == "decimal":
            # Stored as a REAL (NUMERIC affinity): exact to 15 significant digits, which is what Django
            # reads back (decimal.Context(prec=15)); wider decimals are not.
            if field.max_digits is None or field.max_digits > 15:
                return None
            return f"printf('%.{int(field.decimal_places)}f', {column})"
        if kind == "binary_hex":
            return f"hex({column})"
        if kind == "binary_bytea":
            return f"('\\\\x' || hex({column}))"
        if kind == "duration_interval":
            rest = f"((({column} % {_DAY_US}) + {_DAY_US}) % {_DAY_US})"
            return f"printf('%d days %d microseconds', ({column} - {rest}) / {_DAY_US}, {rest})"
        return None  # floats: SQLite's text for a REAL keeps 15 digits only

    def escape(self, expression):
        for char, escaped in (("'\\'", "'\\\\'"), ("char(9)", "'\\t'"), ("char(10)", "'\\n'"), ("char(13)", "'\\r'")):
            expression = f"replace({expression}, {char}, {escaped})"
        return expression

    def or_null(self, expression):
        return f"ifnull({expression}, {self.null})"

    def line(self, values):
        return " || char(9) || ".join(values)


_SPELLERS = {"mysql": _MySQLSpelling(), "sqlite": _SQLiteSpelling()}


class LineFeed:
    """Read a line SELECT on the source's raw connection (inside the run's snapshot) in blocks of bytes.

    `rows` counts the lines read; `cut_short` says a read began and did not finish (a MySQL connection
    left mid-result is unusable: the caller closes it).
    """

    def __init__(self, source, sql):
        self.source, self.sql = source, sql
        self.rows = 0
        self.started = self.finished = False

    @property
    def cut_short(self):
        return self.started and not self.finished

    def blocks(self):
        """Yield blocks of whole lines, each ending with a newline."""
        connection = self.source.connection
        connection.ensure_connection()
        raw = connection.connection  # Django's wrapper is bound to its thread; a stream may read on another
        vendor = connection.vendor
        self.started = True
        # Around the whole read: a driver error becomes Django's, which the runner judges (retry or fail).
        with connection.wrap_database_errors:
            if vendor == "mysql":
                # SSCursor streams the result from the server instead of holding all of it in memory.
                cursor = raw.cursor(connection.Database.cursors.SSCursor)
            else:
                cursor = raw.cursor()
            try:
                cursor.execute(self.sql)
                while True:
                    rows = cursor.fetchmany(FETCH_ROWS)
                    if not rows:
                        break
                    self.rows += len(rows)
                    if vendor == "mysql":
                        yield b"\n".join(row[0] for row in rows) + b"\n"
                    else:
                        yield ("\n".join(row[0] for row in rows) + "\n").encode()
                self.finished = True
            finally:
                # Closing an unbuffered cursor reads the rest of its result: the connection, and the
                # snapshot its transaction holds, stay usable for the value-by-value path.
                with suppress(Exception):
                    cursor.close()

    def cancel(self):
        """Interrupt a read in progress from another thread, where the driver can."""
        raw = self.source.connection.connection
        if self.source.connection.vendor == "sqlite" and raw is not None:
            raw.interrupt()

    def abandon(self):
        """Close the source connection instead of reading the rest of a cut-short result (an interrupt)."""
        if self.cut_short:
            self.source.connection.close()
