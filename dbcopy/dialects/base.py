"""What every vendor shares; each method defaults to Django's own connection machinery."""

from contextlib import contextmanager
from dataclasses import dataclass

from django.core.management.color import no_style
from django.db import transaction

from .. import conf
from ..storage import column_field


class Dialect:
    """Describe and drive one destination or source connection.

    SQL builders (`*_sql`) return lists of statements; `execute()` runs them, so `-v 3` can show them.
    """

    # Whether a cycle of NOT NULL foreign keys can be copied with checks deferred.
    can_defer_constraints = False
    # Whether text containing NUL (\x00) is refused.
    rejects_nul_in_text = False
    # Steps written to this database at the same time with --jobs.
    max_concurrent_writers = 64
    # Whether a big table that streams into this database is split into key ranges with --jobs.
    splits_streamed_tables = True
    # Whether a float column keeps NaN / ±Infinity as they are (elsewhere they become NULL or are refused).
    stores_float_nan = False
    stores_float_infinity = False
    # Whether reading can turn a stored date/time the driver cannot parse into None, with no error.
    may_read_invalid_dates_as_null = False
    # The OPTIONS key the driver reads as its connect timeout in seconds (None: it has none).
    connect_timeout_option = None
    # The port the driver uses when PORT is left empty (None: no network server), for messages.
    default_port = None

    def __init__(self, connection):
        self.connection = connection

    @property
    def alias(self):
        return self.connection.alias

    @property
    def ops(self):
        return self.connection.ops

    def quote(self, name):
        return self.ops.quote_name(name)

    # --- session -------------------------------------------------------------------------------

    def prepare_session(self):
        """Set session options a faithful copy needs before any write."""

    def server_identity(self):
        """Return a value equal for two connections exactly when they reach the same database.

        Vendors ask their server; this default can only compare the settings' text.
        """
        settings_dict = self.connection.settings_dict
        return tuple(str(settings_dict.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME"))

    # --- schema --------------------------------------------------------------------------------

    def table_names(self):
        """Return the names of the tables in the database."""
        with self.connection.cursor() as cursor:
            return set(self.connection.introspection.table_names(cursor))

    def column_names(self, table):
        """Return the column names of the table."""
        with self.connection.cursor() as cursor:
            description = self.connection.introspection.get_table_description(cursor, table)
        return [column.name for column in description]

    def column_names_of(self, tables):
        """Return {table: its column names} for the tables, in one catalog query where the vendor has one
        (Django's introspection takes two per table: a round trip each to a remote server)."""
        query = self.columns_query(tables) if tables else None
        if query is None:
            return {table: self.column_names(table) for table in tables}
        with self.connection.cursor() as cursor:
            cursor.execute(*query)
            return _columns_by_table(cursor.fetchall())

    def columns_query(self, tables):
        """Return (sql, params) selecting (table, column) rows of the tables in column order, or None."""
        return None

    def implicit_column_names(self, table):
        """Return the names of columns the table answers to without listing them (none by default)."""
        return frozenset()

    def is_search_index(self, table):
        """Return whether the table is a full-text index only this vendor builds (none by default)."""
        return False

    def refused_for_size(self, exc, statement_bytes):
        """Return whether the database refused a statement of about this many bytes for its size."""
        return False

    def is_undecodable_text(self, exc):
        """Return whether a database error while reading means a stored text is not in the encoding the
        driver expects (rather than a fault of the connection)."""
        return False

    def column_charset(self, table, column):
        """Return the character set of a text column, where the vendor has per-column charsets."""
        return None

    # --- writing -------------------------------------------------------------------------------

    def insert_sql(self, table, fields, row_count):
        """Return one multi-row INSERT for row_count rows of the fields' columns."""
        columns = ", ".join(self.quote(field.column) for field in fields)
        placeholder_rows = [["%s"] * len(fields) for _ in range(row_count)]
        values = self.ops.bulk_insert_sql(fields, placeholder_rows)
        return f"INSERT INTO {self.quote(table)} ({columns}) {values}"

    def insert_batches(self, fields, rows):
        """Split rows into batches the backend accepts: its variable limit and a statement-size cap."""
        limit = max(1, self.ops.bulk_batch_size(list(fields), rows) or len(rows))
        max_bytes = conf.get("MAX_STATEMENT_BYTES")
        batch, size = [], 0
        for row in rows:
            row_bytes = sum(_approximate_size(value) for value in row)
            if batch and (len(batch) >= limit or size + row_bytes > max_bytes):
                yield batch
                batch, size = [], 0
            batch.append(row)
            size += row_bytes
        if batch:
            yield batch

    def insert_rows(self, table, fields, rows):
        """Insert prepared value rows into the table, in as few statements as the backend allows."""
        with self.connection.cursor() as cursor:
            for batch in self.insert_batches(fields, rows):
                sql = self.insert_sql(table, fields, len(batch))
                cursor.execute(sql, [value for row in batch for value in row])

    def bulk_create_rows(self, model, fields, rows):
        """Insert rows of Python values through Django's own batched raw insert (the reference writer).

        This is the path `save_base(raw=True)` takes: the insert compiler prepares every value with
        get_db_prep_save() and never calls pre_save(), so auto_now values are kept.
        """
        # A custom field's stand-in prepares its values: they are as the source stores them.
        fields = [column_field(field) for field in fields]
        attnames = [field.attname for field in fields]
        objs = [_RawRow(zip(attnames, row)) for row in rows]
        manager = model._base_manager.db_manager(self.alias)
        size = max(1, self.ops.bulk_batch_size(fields, objs) or len(objs))
        for start in range(0, len(objs), size):
            manager._insert(objs[start:start + size], fields=fields, using=self.alias, raw=True)

    def write_rows(self, step, rows, writer):
        """Write a chunk with the chosen writer: 'bulk_create' (Python values) or 'fast' (prepared values)."""
        if writer == "bulk_create":
            self.bulk_create_rows(step.model, step.fields, rows)
        else:
            self.fast_insert_rows(step.table, step.fields, rows)

    def fast_insert_rows(self, table, fields, rows):
        """Insert prepared values the fastest way this vendor offers (default: multi-row INSERT)."""
        self.insert_rows(table, fields, rows)

    def stream_plan(self, step, source):
        """Return a StreamPlan: whether the step's table streams from the source dialect, and how or why not."""
        return StreamPlan(
            False, f"no database-to-database stream from {source.connection.vendor} into {self.connection.vendor}"
        )

    def stream_table(self, step, source, on_rows, translations=None, parents_loaded=None):
        """Copy the whole table database to database; None where this pair of vendors can't.

        translations: {field: {source id: destination id}} for content type / permission columns.
        parents_loaded(stopped=None): wait until the tables the step's foreign keys need are loaded and
        committed (the runner may start a table while they still load; see
        checks_references_after_loading); call it before anything that checks those keys.
        """
        return None

    def checks_references_after_loading(self, step):
        """Return whether a stream into the table checks its foreign keys once, after loading the rows:
        then it may load while the tables it refers to still load (parents_loaded() before the check)."""
        return False

    def update_rows(self, table, fields, pk_fields, rows):
        """Update rows by primary key; each row holds the fields' prepared values, then its pk values."""
        assignments = ", ".join(f"{self.quote(f.column)} = %s" for f in fields)
        where = " AND ".join(f"{self.quote(f.column)} = %s" for f in pk_fields)
        with self.connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {self.quote(table)} SET {assignments} WHERE {where}", rows)

    def delete_rows(self, table, pk_fields, keys):
        """Delete the rows with these primary keys (tuples of prepared values), without signals."""
        columns = [self.quote(f.column) for f in pk_fields]
        target = columns[0] if len(columns) == 1 else f"({', '.join(columns)})"
        one = "%s" if len(columns) == 1 else f"({', '.join(['%s'] * len(columns))})"
        size = max(1, (self.ops.bulk_batch_size(list(pk_fields), keys) or len(keys)))
        with self.connection.cursor() as cursor:
            for start in range(0, len(keys), size):
                batch = keys[start:start + size]
                params = [value for key in batch for value in key]
                cursor.execute(f"DELETE FROM {self.quote(table)} WHERE {target} IN ({', '.join([one] * len(batch))})", params)

    def sync_lock(self):
        """Return the lock that keeps two runs (copy or sync) from writing to this database at once."""
        return NoLock()

    # --- faults --------------------------------------------------------------------------------

    def is_transient_error(self, exc):
        """Return whether a retry on a fresh connection can get past the error (deadlock, lock wait)."""
        return any(self.transient_driver_error(error) for error in error_chain(exc))

    def transient_driver_error(self, error):
        """Return whether one driver exception is transient; each vendor knows its codes."""
        return False

    # --- reading one snapshot ------------------------------------------------------------------

    # "shared": a connection of its own exports the snapshot and every reader joins it
    # (export_snapshot, join_read_snapshot); "connection": the snapshot belongs to the connection that
    # began it (begin_read_snapshot); None: the vendor gives no snapshot.
    snapshot_scope = None

    def begin_read_snapshot(self):
        """Start a read-only transaction on this connection that sees one snapshot."""

    def export_snapshot(self):
        """Return (a connection holding a snapshot, its id) for readers to join."""
        raise NotImplementedError(f"{self.connection.vendor} cannot share a snapshot between connections")

    def join_read_snapshot(self, token):
        """Start a read-only transaction on the snapshot another connection exported."""
        raise NotImplementedError(f"{self.connection.vendor} cannot share a snapshot between connections")

    def can_hold_commits(self):
        """Return whether commits_held() works here: connections may then begin snapshots together."""
        return False

    def commits_held(self):
        """Return a context manager during which the server commits nothing (snapshots begun then agree)."""
        raise NotImplementedError(f"{self.connection.vendor} cannot hold its commits")

    def end_read_snapshot(self):
        self.execute(["COMMIT"])

    def delete_all_sql(self, table):
        return [f"DELETE FROM {self.quote(table)}"]

    def null_out_sql(self, table, columns):
        """Return SQL clearing nullable FK columns, so rows that reference each other can be deleted."""
        if not columns:
            return []
        assignments = ", ".join(f"{self.quote(column)} = NULL" for column in columns)
        return [f"UPDATE {self.quote(table)} SET {assignments}"]

    def sequence_reset_sql(self, models):
        return self.ops.sequence_reset_sql(no_style(), list(models))

    def execute(self, statements):
        """Run SQL statements on this connection."""
        with self.connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    # --- constraints ---------------------------------------------------------------------------

    @contextmanager
    def constraints_deferred(self, tables):
        """Copy a cycle of NOT NULL foreign keys: defer checks, then verify the tables."""
        raise NotImplementedError(f"{self.connection.vendor} cannot defer constraint checks")
        yield  # pragma: no cover

    def check_constraints(self, tables):
        """Raise IntegrityError if the tables hold rows whose foreign keys point nowhere."""
        self.connection.check_constraints(table_names=list(tables))

    # --- digests: a row's canonical text, hashed and summed inside the database ------------------

    def prepare_digests(self):
        """Make ready what the digest SQL calls on this connection (SQLite registers functions)."""

    def canonical_sql(self, kind, column, field, same_vendor=False, mixed_collations=False):
        """Return SQL spelling a non-NULL value of the column in its canonical form (canonical.py), or
        None where the vendor's text for it is its own (floats, JSON) and the other side is another
        vendor: that table is digested in Python."""
        raise NotImplementedError(f"{self.connection.vendor} computes no digests")

    def row_hash_sql(self, columns, kinds):
        """Return SQL hashing a row the way this vendor alone does (for two databases of one vendor), or
        None to hash its text."""
        return None

    def row_text_sql(self, columns):
        """Return SQL giving a row's text the way this vendor alone writes it (for two databases of one
        vendor, where it needs no canonical form), or None to spell it column by column."""
        return None

    def mixed_collations(self, table):
        """Return whether the table's text columns have collations that cannot meet in one expression."""
        return False

    def concat_sql(self, parts):
        return "(" + " || ".join(parts) + ")"

    def text_length_sql(self, expression):
        """Return SQL counting the characters (not bytes) of a text."""
        return f"length({expression})"

    def hash60_sql(self, text):
        """Return SQL for the first 60 bits of the MD5 of a text's UTF-8 bytes, as a non-negative integer."""
        raise NotImplementedError(f"{self.connection.vendor} computes no digests")

    def digest_sum_sql(self, expression):
        """Return the aggregate summing 60-bit hashes exactly (a sum the caller reads as an integer)."""
        return f"SUM({expression})"

    def bucket_sql(self, key, width):
        """Return SQL numbering the key's range of `width` integers (truncating division, as every vendor does)."""
        return f"({key} / {int(width)})"

    def key_bit_sql(self, key, width):
        """Return SQL for 2 ** (key % width + width - 1): within one bucket of truncating division by
        width (bucket 0 spans 2 * width - 1 keys), a bit of its own per key."""
        return f"(1 << ({key} %% {int(width)} + {int(width) - 1}))"

    def modulo_sql(self, value, modulus):
        # Digest SQL always runs with a parameter list, so a literal % is written %%.
        return f"({value} %% {int(modulus)})"

    # --- foreign keys pointing at tables -------------------------------------------------------

    def foreign_key_referrers(self, tables):
        """Return a ForeignKeyReferrer for every FK in the database catalog that points at one of the tables.

        The default asks Django's introspection, which knows neither the ON DELETE rule (left None)
        nor other schemas; the vendors override it with their catalog.
        """
        wanted = set(tables)
        found = []
        introspection = self.connection.introspection
        with self.connection.cursor() as cursor:
            for table in sorted(introspection.table_names(cursor)):
                for name, constraint in sorted(introspection.get_constraints(cursor, table).items()):
                    target = constraint.get("foreign_key")
                    if target and target[0] in wanted:
                        found.append(ForeignKeyReferrer(name, table, tuple(constraint["columns"]), target[0]))
        return found

    def quote_table(self, table, schema=None):
        """Return the table's quoted name, qualified by its schema when it is not on the search path."""
        return f"{self.quote(schema)}.{self.quote(table)}" if schema else self.quote(table)

    def referring_rows_sql(self, referrer):
        """Return a query finding one row of the referrer whose FK columns all hold a value."""
        # A row with a NULL in any FK column refers to nothing (MATCH SIMPLE, every vendor's default).
        where = " AND ".join(f"{self.quote(column)} IS NOT NULL" for column in referrer.columns)
        limit = self.ops.limit_offset_sql(0, 1)
        return f"SELECT 1 FROM {self.quote_table(referrer.table, referrer.schema)} WHERE {where} {limit}"

    def has_referring_rows(self, referrer):
        """Return whether the referring table holds a row that points at the referenced table."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.referring_rows_sql(referrer))
            return cursor.fetchone() is not None


@contextmanager
def atomic_with_deferred_checks(dialect, tables, before=()):
    """Run the block in one transaction whose FK checks happen at its end (FKs created DEFERRABLE)."""
    with transaction.atomic(using=dialect.alias):
        dialect.execute(before)
        yield
        dialect.check_constraints(tables)


def _columns_by_table(rows):
    """Return {table: [column, …]} from catalog rows of (table, column), in the rows' order."""
    columns = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def key_range_sql(quote, step):
    """Return the WHERE condition (without WHERE) limiting a query to the step's key range, or "".

    The bounds are integer primary keys written as literals (COPY (SELECT …) takes no parameters;
    int() lets nothing but digits through).
    """
    if step.key_range is None:
        return ""
    low, high = step.key_range
    column = quote(step.model._meta.pk.column)
    conditions = []
    if low is not None:
        conditions.append(f"{column} > {int(low)}")
    if high is not None:
        conditions.append(f"{column} <= {int(high)}")
    return " AND ".join(conditions)


def translated_column_sql(column_sql, mapping):
    """Return SQL mapping a column's ids through `mapping` (CASE … END), or None if they aren't integers.

    The ids are written into the SQL as literals: COPY (SELECT …) takes no parameters, and int()
    guarantees nothing but digits gets there.
    """
    if not mapping or not all(type(k) is int and type(v) is int for k, v in mapping.items()):
        return None
    branches = " ".join(f"WHEN {int(k)} THEN {int(v)}" for k, v in sorted(mapping.items()))
    return f"CASE {column_sql} {branches} END"


def error_chain(exc):
    """Yield the exception and every exception it was raised from (Django wraps driver errors)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


class NoLock:
    """For a backend without a lock of its own: every acquire succeeds."""

    def acquire(self):
        return True

    def release(self):
        pass


@dataclass(frozen=True)
class StreamPlan:
    """Whether a table streams database to database (true) and how it does, or why it does not."""

    streams: bool
    how: str

    def __bool__(self):
        return self.streams


@dataclass(frozen=True)
class ForeignKeyReferrer:
    """A foreign key constraint of `table` (in `schema`, None if on the search path) on `referenced_table`.

    on_delete: the rule as SQL spells it ('CASCADE', 'SET NULL', 'SET DEFAULT', 'RESTRICT', 'NO ACTION'),
    None where the catalog can't tell.
    """

    name: str
    table: str
    columns: tuple
    referenced_table: str
    on_delete: str | None = None
    schema: str | None = None

    @property
    def qualified_table(self):
        return f"{self.schema}.{self.table}" if self.schema else self.table


class _RawRow:
    """A row for the insert compiler: it reads each value with getattr(row, field.attname)."""

    def __init__(self, items):
        self.__dict__.update(items)


def _approximate_size(value):
    if value is None:
        return 4
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return len(value) + 4
    return 16
