"""Range digests computed inside each database: proof of content at database speed, across vendors.

A table's rows are split into buckets by primary key (ranges of an integer key, else a hash of the
key); each side returns, per bucket, the row count and the exact sum of the rows' 60-bit hashes over
their canonical text (canonical.py). Equal buckets need no row read. The buckets that differ are
asked again for a key and a hash per row, which names the rows that differ; only those rows are read
and compared value by value. Source and destination compute at the same time, each on its own
connection. Where a column has no canonical SQL form across the two vendors (float and JSON text),
the table is digested in Python, chunk by chunk, with the same rules.
"""

import math
import threading
from dataclasses import dataclass, field as dataclass_field

from django.db import connections, models

from . import canonical as canon
from .dialects import dialect_for
from .dialects.base import translated_column_sql
from .rows import RowReader, key_value, pk_fields
from .storage import column_field, column_type_field, is_json, selected, where

# Rows per bucket: small, so that changes spread over a table (1 % of rows) leave most buckets equal
# (16 costs the databases no more than 32 to group, measured; 8 does).
# The buckets that differ are compared row by row (key and hash), ROWS_PER_BATCH rows at a time.
BUCKET_ROWS = 16
ROWS_PER_BATCH = 50_000
# Key ranges one query ORs together; more are selected by bucket number.
MAX_RANGES = 32
# Keys-only digests of an integer key use buckets of at most KEY_BITS keys, each key one bit of the
# bucket's sum: exact, and no text or hash to compute per row.
KEY_BITS = 32
# A table of at least SLICED_ROWS rows is digested in SLICES key ranges at once on each side.
SLICED_ROWS = 100_000
SLICES = 2

_KINDS = {
    **dict.fromkeys(
        ["AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
         "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField"], "int"),
    **dict.fromkeys(["BooleanField", "NullBooleanField"], "bool"),
    **dict.fromkeys(
        ["CharField", "TextField", "SlugField", "EmailField", "URLField", "FilePathField", "FileField",
         "ImageField", "IPAddressField"], "text"),
    "GenericIPAddressField": "inet",
    "UUIDField": "uuid",
    "DecimalField": "decimal",
    "FloatField": "float",
    "DateField": "date",
    "DateTimeField": "datetime",
    "TimeField": "time",
    "DurationField": "duration",
    "BinaryField": "binary",
}
# Kinds whose text each vendor writes its own way: canonical only in Python across two vendors.
VENDOR_TEXT_KINDS = {"float": "floats", "json": "JSON text", "other": "a type of its own"}


def column_kind(field):
    """Return the canonical kind of the column's stored values (see canonical.py)."""
    if is_json(field):
        return "json"
    return _KINDS.get(type_field(field).get_internal_type(), "other")


def type_field(field):
    """Return the built-in field whose type the column holds (a custom field's stand-in, a FK's target)."""
    return column_type_field(column_field(field))


@dataclass(frozen=True)
class Difference:
    """One row that differs: its key (the source's spelling), and what differs."""

    pk: object
    fields: tuple = ()  # names of the fields whose values differ
    missing: str = ""  # "at the destination" / "at the source" for a row one side lacks


class TableDigest:
    """Digest one step's table on its source and its destination and find the rows that differ.

    keys_only: digest the primary key alone (rows present on one side only, for sync's deletes).
    source_session: a function that puts a source connection of another thread where the source must
    be read (a sync joins its snapshot), or None to read the source on the calling thread's connection
    only; the source's big tables are digested in slices at once only with it.
    """

    def __init__(self, step, remaps, keys_only=False, bucket_rows=BUCKET_ROWS, source_session=None):
        self.step, self.remaps, self.bucket_rows, self.keys_only = step, remaps, bucket_rows, keys_only
        self.source_session = source_session
        self.pk_fields = pk_fields(step.model)
        self.fields = list(self.pk_fields) if keys_only else list(step.fields)
        self.source, self.dest = dialect_for(step.source), dialect_for(step.dest)
        self.same_vendor = self.source.connection.vendor == self.dest.connection.vendor
        self.kinds = [column_kind(f) for f in self.fields]
        self.mappings = [remaps.mapping(step, f) if f.is_relation else None for f in self.fields]
        self.python_reason = self._python_reason()
        self.layout = None
        self.row_count = self.low = self.high = None  # the larger side's row count, the keys' bounds (plan_layout)
        self.equal_rows = 0  # source rows the digests proved equal, after delta()
        self.source_rows = self.dest_rows = None  # each side's rows as the digests counted them, after delta()
        self.collations = {}  # side -> whether its table's text columns have several collations

    # --- how ----------------------------------------------------------------------------------------

    def _python_reason(self):
        """Return why this table is digested in Python (None: inside the databases)."""
        for field, kind, mapping in zip(self.fields, self.kinds, self.mappings):
            if kind in VENDOR_TEXT_KINDS and not self.same_vendor:
                return f"{field.name} holds {VENDOR_TEXT_KINDS[kind]}, which each vendor writes its own way"
            if kind == "decimal" and type_field(field).decimal_places is None:
                return f"{field.name} is a decimal without decimal_places"
            if mapping is not None and (field in self.pk_fields or translated_column_sql("x", mapping) is None):
                return f"{field.name} holds ids translated for the destination"
        return None

    @property
    def method(self):
        return "python" if self.python_reason else "sql"

    def _integer_key(self):
        """Return the primary key when it is one integer column the destination holds unchanged."""
        if len(self.pk_fields) != 1:
            return None
        index = self.fields.index(self.pk_fields[0])
        if self.kinds[index] != "int" or self.mappings[index] is not None:
            return None  # a content type id as key: its buckets are those of the translated ids
        return self.pk_fields[0]

    def plan_layout(self):
        """Choose the buckets: ranges of an integer key sized by the source's row count (the plan's
        count, where it made one) over both sides' key bounds (two index lookups), else key hashes."""
        rows, low, high = self.step.source_rows, None, None
        if rows is None:
            rows = self.step.model._base_manager.using(self.step.source).count()
        key = self._integer_key()
        if key is not None:
            for alias in (self.step.source, self.step.dest):
                qs = self.step.model._base_manager.using(alias)
                bounds = qs.aggregate(low=models.Min(selected(key)), high=models.Max(selected(key)))
                if bounds["low"] is not None:
                    low = bounds["low"] if low is None else min(low, bounds["low"])
                    high = bounds["high"] if high is None else max(high, bounds["high"])
        self.row_count, self.low, self.high = rows, low, high
        count = max(1, math.ceil(rows / self.bucket_rows))
        if key is not None:
            span = 1 if low is None else int(high) - int(low) + 1
            width = max(1, math.ceil(span / count))
            if self.keys_only and width <= 2 * KEY_BITS:
                width = KEY_BITS  # a bit per key: no hashing, and key sets are cheap to compare whole
            self.layout = Layout(key=key, width=width)
        else:
            self.layout = Layout(modulus=count)
        return self.layout

    # --- digests ------------------------------------------------------------------------------------

    def _dialect(self, side):
        # Looked up in the calling thread: the destination's side runs on a thread of its own.
        return dialect_for(self.step.source if side == "source" else self.step.dest)

    def buckets(self, side):
        """Return {bucket: (rows, hash sum)} of every row at 'source' or 'dest'."""
        layout = self.layout or self.plan_layout()
        if self.python_reason:
            sums = {}
            for _, _, bucket, row_hash in self._python_rows(side):
                rows, total = sums.get(bucket, (0, 0))
                sums[bucket] = (rows + 1, total + row_hash)
            return sums
        sliced = side == "dest" or self.source_session is not None
        if sliced and layout.key is not None and self.row_count >= SLICED_ROWS:
            # A big table is digested in key slices on connections of their own, so that both cores
            # work whichever server is slower (a source slice joins the source's snapshot first).
            jobs = [(bounds, index > 0) for index, bounds in enumerate(self._slices(SLICES))]
            sums = {}
            for part in in_threads(lambda job: self._bucket_sums(side, *job), jobs):
                sums.update(part)
            return sums
        return self._bucket_sums(side, None)

    def _bucket_sums(self, side, bounds, own_thread=False):
        dialect = self._dialect(side)
        if own_thread and side == "source":
            self.source_session(dialect)
        dialect.prepare_digests()
        row_hash = self._row_hash_sql(dialect, side)
        sql = (f"SELECT {self._bucket_sql(dialect, side, self.layout)}, COUNT(*), {dialect.digest_sum_sql(row_hash)} "
               f"FROM {dialect.quote(self.step.table)}")
        params = []
        if bounds is not None:
            sql += f" WHERE {self._column(dialect, self.layout.key)} BETWEEN %s AND %s"
            params = list(bounds)
        with dialect.connection.cursor() as cursor:
            cursor.execute(sql + " GROUP BY 1", params)
            return {int(b): (int(n), int(total)) for b, n, total in cursor.fetchall()}

    def _slices(self, count):
        """Return `count` key ranges covering the table, each made of whole buckets."""
        width = self.layout.width
        first, last = truncated_division(self.low, width), truncated_division(self.high, width)
        step = max(1, math.ceil((last - first + 1) / count))
        starts = range(first, last + 1, step)
        return [(bucket_bounds(start, width)[0], bucket_bounds(min(start + step - 1, last), width)[1])
                for start in starts]

    def differing(self):
        """Return the buckets whose digests differ."""
        return differing_buckets(*on_both_sides(self.buckets))

    def delta(self):
        """Return the Delta: the keys, on each side, of the rows the other side lacks or holds otherwise.

        The buckets that differ are read again row by row — a key and a hash each, computed by the
        database — a batch of buckets at a time, so that memory stays flat.
        """
        source_buckets, dest_buckets = on_both_sides(self.buckets)
        delta = Delta()
        batch, batch_rows = [], 0
        for bucket in differing_buckets(source_buckets, dest_buckets):
            batch.append(bucket)
            batch_rows += max(source_buckets.get(bucket, (0, 0))[0], dest_buckets.get(bucket, (0, 0))[0])
            if batch_rows >= ROWS_PER_BATCH:
                self._compare_rows(batch, delta)
                batch, batch_rows = [], 0
        if batch:
            self._compare_rows(batch, delta)
        # Every source row but those named is the destination's as it is.
        self.source_rows = sum(n for n, _ in source_buckets.values())
        self.dest_rows = sum(n for n, _ in dest_buckets.values())
        self.equal_rows = self.source_rows - len(delta.source_keys)
        return delta

    def _compare_rows(self, buckets, delta):
        source, dest = on_both_sides(lambda side: self._row_hashes(side, buckets))
        for key_id, (key, row_hash) in source.items():
            if dest.get(key_id, (None, None))[1] != row_hash:
                delta.source_keys.append(key)
        for key_id, (key, row_hash) in dest.items():
            if source.get(key_id, (None, None))[1] != row_hash:
                delta.dest_keys.append(key)

    def _row_hashes(self, side, buckets):
        """Return {key id: (key, row hash)} of the rows of these buckets at a side.

        key: the primary key as that side's driver reads it; key id: what both sides agree on (the
        integer key of a range layout, else the key's canonical text, translated at the source).
        """
        if self.python_reason:
            wanted = set(buckets)
            return {key_id: (key, row_hash) for key, key_id, bucket, row_hash
                    in self._python_rows(side, buckets) if bucket in wanted}
        dialect = self._dialect(side)
        dialect.prepare_digests()
        keys = [self._column(dialect, f) for f in self.pk_fields]
        key_text = keys[0] if self.layout.key is not None else self._row_text_sql(dialect, side, self.pk_fields)
        row_hash = self._row_hash_sql(dialect, side)
        where, params = self._bucket_filter_sql(dialect, side, buckets)
        sql = (f"SELECT {', '.join(keys)}, {key_text}, {row_hash} "
               f"FROM {dialect.quote(self.step.table)} WHERE {where}")
        width = len(keys)
        with dialect.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {row[width]: (tuple(row[:width]), row[width + 1]) for row in cursor.fetchall()}

    def _bucket_filter_sql(self, dialect, side, buckets):
        if self.layout.key is None:
            numbers = ", ".join(str(int(b)) for b in buckets)
            return f"{self._bucket_sql(dialect, side, self.layout)} IN ({numbers})", []
        column = self._column(dialect, self.layout.key)
        ranges = merged_ranges(buckets, self.layout.width)
        if len(ranges) <= MAX_RANGES:
            return " OR ".join(f"{column} BETWEEN %s AND %s" for _ in ranges), [v for r in ranges for v in r]
        # Many ranges: a long OR is tested row by row (PostgreSQL plans no index for it); the bucket
        # numbers in one IN list are looked up in a hash, within the batch's bounds on the key's index.
        numbers = ", ".join(str(int(b)) for b in buckets)
        bucket = self._bucket_sql(dialect, side, self.layout)
        return f"{column} BETWEEN %s AND %s AND {bucket} IN ({numbers})", [ranges[0][0], ranges[-1][1]]

    # --- SQL ----------------------------------------------------------------------------------------

    def _column(self, dialect, field):
        return f"{dialect.quote(self.step.table)}.{dialect.quote(field.column)}"

    def _value_sql(self, dialect, side, index):
        column = self._column(dialect, self.fields[index])
        mapping = self.mappings[index]
        if side == "source" and mapping is not None:
            column = translated_column_sql(column, mapping)  # an id the map lacks reads as NULL: it differs
        return column

    def _row_hash_sql(self, dialect, side):
        if self.keys_only and self.layout.key is not None and self.layout.width <= KEY_BITS:
            # Each key of a bucket its own bit: the bucket's sum is its set of keys, exactly.
            return dialect.key_bit_sql(self._column(dialect, self.layout.key), self.layout.width)
        if self.same_vendor:
            values = [self._value_sql(dialect, side, i) for i in range(len(self.fields))]
            own = dialect.row_hash_sql(values, self.kinds)
            if own is not None:
                return own  # both sides hash the row alike, with no text to build
        return dialect.hash60_sql(self._row_text_sql(dialect, side, self.fields))

    def _row_text_sql(self, dialect, side, fields):
        values = [self._value_sql(dialect, side, self.fields.index(f)) for f in fields]
        if self.same_vendor:
            own = dialect.row_text_sql(values)
            if own is not None:
                return own  # both sides write the row alike: the vendor's own text, no per-column work
        pieces = []
        for index, value in zip((self.fields.index(f) for f in fields), values):
            kind = self.kinds[index]
            text = dialect.canonical_sql(kind, value, type_field(self.fields[index]), self.same_vendor,
                                         self._mixed_collations(dialect, side))
            if kind in canon.SHORT_KINDS:
                pieces.append(["'V'", text, "';'"])
            else:
                pieces.append(["'V'", dialect.text_length_sql(text), "':'", text])
        # CONCAT and || give NULL for a NULL value, where that column's part is "N". A row without
        # NULLs takes the one flat concatenation; only a row with a NULL pays for a COALESCE per column.
        each = [f"COALESCE({dialect.concat_sql(p)}, 'N')" for p in pieces]
        every = dialect.concat_sql(each) if len(each) > 1 else each[0]
        return f"COALESCE({dialect.concat_sql([piece for p in pieces for piece in p])}, {every})"

    def _mixed_collations(self, dialect, side):
        if side not in self.collations:
            self.collations[side] = dialect.mixed_collations(self.step.table)
        return self.collations[side]

    def _bucket_sql(self, dialect, side, layout):
        if layout.key is not None:
            return dialect.bucket_sql(self._column(dialect, layout.key), layout.width)
        key_hash = dialect.hash60_sql(self._row_text_sql(dialect, side, self.pk_fields))
        return dialect.modulo_sql(key_hash, layout.modulus)

    # --- Python, for tables without a canonical SQL form ----------------------------------------

    def _python_rows(self, side, buckets=None):
        """Yield (key, key id, bucket, row hash) of the rows at a side (of a range layout's buckets)."""
        layout = self.layout
        alias = self.step.source if side == "source" else self.step.dest
        reader = RowReader(self.step.model, alias, self.fields)
        extra = None
        if buckets is not None and layout.key is not None:
            ranges = merged_ranges(buckets, layout.width)
            extra = key_range(layout.key, (ranges[0][0], ranges[-1][1]))  # the callers keep their buckets' rows
        translate = [self._lenient(i) if side == "source" and m is not None else None
                     for i, m in enumerate(self.mappings)]
        places = [getattr(type_field(f), "decimal_places", None) for f in self.fields]
        for rows in reader.chunks(2000, extra_filter=extra):
            for row in rows:
                values = [t(v) if t else v for t, v in zip(translate, row)]
                texts = [canon.canonical(k, v, p) for k, v, p in zip(self.kinds, values, places)]
                key = reader.key(row)
                if layout.key is not None:
                    key_id = key[0]
                    bucket = truncated_division(key_id, layout.width)
                else:
                    key_id = "".join(canon.encoded(texts[i], self.kinds[i]) for i in reader.pk_positions)
                    bucket = canon.hash60(key_id) % layout.modulus
                yield key, key_id, bucket, canon.hash60("".join(canon.encoded(t, k) for t, k in zip(texts, self.kinds)))

    def _lenient(self, index):
        mapping = self.mappings[index]
        return lambda value: None if value is None else mapping.get(value)

    # --- reading the rows that differ ---------------------------------------------------------

    def rows(self, side, reader, keys, size):
        """Yield chunks of `reader`'s rows at a side with these keys (a Delta's, as that side reads them)."""
        alias = self.step.source if side == "source" else self.step.dest
        manager = self.step.model._base_manager.using(alias)
        columns = [selected(f) for f in reader.fields]
        for start in range(0, len(keys), size):
            batch = keys[start:start + size]
            qs = reader.with_keys(manager, batch).order_by(*[f.attname for f in reader.pk_fields])
            yield reader.fetch(alias, qs.values_list(*columns), keys=batch)

    # --- naming the rows that differ ----------------------------------------------------------

    def differences(self, limit=None):
        """Return the Differences (the first `limit`, in key order) and how many rows differ."""
        delta = self.delta()
        if not delta:
            return [], 0
        keys = self.remaps.keys(self.step)
        source_reader = RowReader(self.step.model, self.step.source, self.fields)
        dest_reader = RowReader(self.step.model, self.step.dest, self.fields)
        source_rows = {source_reader.key(r): r for rows in self.rows("source", source_reader, delta.source_keys, 2000)
                       for r in rows}
        dest_rows = {dest_reader.key(r): r for rows in self.rows("dest", dest_reader, delta.dest_keys, 2000)
                     for r in rows}
        found, matched = [], set()
        for key in sorted(source_rows, key=_sortable):
            dest_key = keys.to_dest(key)
            other = dest_rows.get(dest_key) if dest_key is not None else None
            if other is None:
                found.append(Difference(key_value(key), missing="at the destination"))
                continue
            matched.add(dest_key)
            fields = self._differing_fields(source_rows[key], other)
            if fields:
                found.append(Difference(key_value(key), fields=fields))
        for key in sorted(dest_rows, key=_sortable):
            if key not in matched:
                found.append(Difference(key_value(keys.to_source(key) or key), missing="at the source"))
        return (found if limit is None else found[:limit]), len(found)

    def _differing_fields(self, source_row, dest_row):
        names = []
        for index, field in enumerate(self.fields):
            kind, places = self.kinds[index], getattr(type_field(field), "decimal_places", None)
            value = source_row[index]
            if self.mappings[index] is not None and value is not None:
                value = self.mappings[index].get(value)
            if canon.canonical(kind, value, places) != canon.canonical(kind, dest_row[index], places):
                names.append(field.name)
        return tuple(names)


@dataclass
class Delta:
    """The keys of the rows that differ: at the source (new or changed there) and at the destination
    (gone from the source, or changed), each as that side's driver reads them."""

    source_keys: list = dataclass_field(default_factory=list)
    dest_keys: list = dataclass_field(default_factory=list)

    def __bool__(self):
        return bool(self.source_keys or self.dest_keys)


def differing_buckets(source, dest):
    """Return, in order, the bucket numbers whose (rows, hash sum) differ between two sides' digests."""
    return sorted(b for b in set(source) | set(dest) if source.get(b) != dest.get(b))


def on_both_sides(work):
    """Return (work("source"), work("dest")): the destination's on a thread of its own, so that the two
    servers digest at once. The source's stays in the calling thread, inside its snapshot."""
    return tuple(in_threads(work, ["source", "dest"]))


def in_threads(work, items):
    """Return [work(item) for item in items], the first in the calling thread and each other on a
    thread of its own, whose database connections are closed when it ends."""
    results, errors = [None] * len(items), []

    def run(index):
        try:
            results[index] = work(items[index])
        except BaseException as exc:  # noqa: BLE001  (re-raised in the calling thread)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), name="dbcopy-digest", daemon=True)
               for i in range(1, len(items))]
    for thread in threads:
        thread.start()
    try:
        results[0] = work(items[0])
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results


def merged_ranges(buckets, width):
    """Return the (low, high) key ranges of these buckets of truncated division, adjacent ones merged."""
    ranges = []
    for bucket in sorted(buckets):
        low, high = bucket_bounds(bucket, width)
        if ranges and ranges[-1][1] + 1 >= low:
            ranges[-1] = (ranges[-1][0], max(high, ranges[-1][1]))
        else:
            ranges.append((low, high))
    return ranges


def _sortable(key):
    return tuple((value is None, str(type(value)), value if value is not None else 0) for value in key)


@dataclass(frozen=True)
class Layout:
    """How a table's rows fall into buckets: ranges of `width` of an integer key, or key hashes mod `modulus`."""

    key: object = None
    width: int = None
    modulus: int = None


def key_range(key, bounds):
    """Return a Q for low <= key <= high (relations have no range lookup)."""
    return where(key, "gte", bounds[0]) & where(key, "lte", bounds[1])


def truncated_division(value, width):
    """Divide as the databases do with integers: toward zero."""
    value = int(value)
    quotient = abs(value) // width
    return quotient if value >= 0 else -quotient


def bucket_bounds(bucket, width):
    """Return the (low, high) keys of a bucket of truncated division by width."""
    if bucket > 0:
        return bucket * width, bucket * width + width - 1
    if bucket < 0:
        return bucket * width - width + 1, bucket * width
    return -width + 1, width - 1
