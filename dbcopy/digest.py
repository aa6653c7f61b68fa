"""Range digests computed inside each database: proof of content at database speed, across vendors.

A table's rows are split into buckets by primary key (ranges of an integer key, else a hash of the
key); each side returns, per bucket, the row count and the exact sum of the rows' 60-bit hashes over
their canonical text (canonical.py). Equal buckets need no row read; a differing one is split again
until few rows remain, and only those are read and compared value by value. Where a column has no
canonical SQL form across the two vendors (float and JSON text), the table is digested in Python,
chunk by chunk, with the same rules.
"""

import math
from dataclasses import dataclass, field as dataclass_field

from django.db import models
from django.db.models.expressions import RawSQL
from django.db.models.lookups import In

from . import canonical as canon
from .dialects import dialect_for
from .dialects.base import translated_column_sql
from .rows import RowReader, key_value, pk_fields
from .storage import column_field, column_type_field, is_json, selected, where

# Rows per bucket of the first pass; a differing bucket is split SPLIT ways until LEAF_ROWS remain.
BUCKET_ROWS = 4096
SPLIT = 16
LEAF_ROWS = 256
# Ranges per query when rows of differing ranges are read.
_RANGES_PER_QUERY = 64

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


@dataclass
class Buckets:
    """Per bucket number: (rows, sum of row hashes), for one side."""

    sums: dict = dataclass_field(default_factory=dict)

    def add(self, bucket, row_hash):
        rows, total = self.sums.get(bucket, (0, 0))
        self.sums[bucket] = (rows + 1, total + row_hash)


@dataclass(frozen=True)
class Difference:
    """One row that differs: its key (the source's spelling), and what differs."""

    pk: object
    fields: tuple = ()  # names of the fields whose values differ
    missing: str = ""  # "at the destination" / "at the source" for a row one side lacks

    def describe(self):
        if self.missing:
            return f"pk={self.pk!r}: missing {self.missing}"
        return f"pk={self.pk!r}: {', '.join(self.fields)} differ"


class TableDigest:
    """Digest one step's table on its source and its destination and find the rows that differ.

    keys_only: digest the primary key alone (rows present on one side only, for sync's deletes).
    """

    def __init__(self, step, remaps, keys_only=False, bucket_rows=BUCKET_ROWS):
        self.step, self.remaps, self.bucket_rows = step, remaps, bucket_rows
        self.pk_fields = pk_fields(step.model)
        self.fields = list(self.pk_fields) if keys_only else list(step.fields)
        self.source, self.dest = dialect_for(step.source), dialect_for(step.dest)
        self.same_vendor = self.source.connection.vendor == self.dest.connection.vendor
        self.kinds = [column_kind(f) for f in self.fields]
        self.mappings = [remaps.mapping(step, f) if f.is_relation else None for f in self.fields]
        self.python_reason = self._python_reason()
        self.layout = None
        self.equal_rows = 0  # source rows differing() found in ranges whose digests agree

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
        """Choose the buckets: ranges of an integer key sized from both sides' counts, else key hashes."""
        rows, low, high = 0, None, None
        key = self._integer_key()
        for alias in (self.step.source, self.step.dest):
            qs = self.step.model._base_manager.using(alias)
            if key is not None:
                stats = qs.aggregate(n=models.Count("pk"), low=models.Min(selected(key)), high=models.Max(selected(key)))
                if stats["n"]:
                    low = stats["low"] if low is None else min(low, stats["low"])
                    high = stats["high"] if high is None else max(high, stats["high"])
                rows = max(rows, stats["n"])
            else:
                rows = max(rows, qs.count())
        count = max(1, math.ceil(rows / self.bucket_rows))
        if key is not None:
            span = 1 if low is None else int(high) - int(low) + 1
            self.layout = Layout(key=key, width=max(1, math.ceil(span / count)))
        else:
            self.layout = Layout(modulus=count)
        return self.layout

    # --- digests ------------------------------------------------------------------------------------

    def buckets(self, side, width=None, within=None):
        """Return {bucket: (rows, hash sum)} at 'source' or 'dest' (ranges of `width` inside `within`)."""
        layout = self.layout or self.plan_layout()
        if self.python_reason:
            return self._python_buckets(side, layout, width, within).sums
        dialect = self.source if side == "source" else self.dest
        dialect.prepare_digests()
        bucket = self._bucket_sql(dialect, side, layout, width)
        row_hash = dialect.hash60_sql(self._row_text_sql(dialect, side, self.fields))
        sql = f"SELECT {bucket}, COUNT(*), {dialect.digest_sum_sql(row_hash)} FROM {dialect.quote(self.step.table)}"
        params = []
        if within is not None:
            sql += f" WHERE {self._column(dialect, layout.key)} BETWEEN %s AND %s"
            params = list(within)
        sql += " GROUP BY 1"
        with dialect.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {int(b): (int(n), int(total)) for b, n, total in cursor.fetchall()}

    def differing(self):
        """Return the leaves whose rows differ: (low, high) key ranges, or bucket numbers of key hashes."""
        layout = self.layout or self.plan_layout()
        self.equal_rows = 0
        if layout.key is None:
            source, dest = self.buckets("source"), self.buckets("dest")
            self.equal_rows = sum(n for b, (n, _) in source.items() if dest.get(b) == (n, _))
            return sorted(b for b in set(source) | set(dest) if source.get(b) != dest.get(b))
        return self._drill(layout.width, None)

    def _drill(self, width, within):
        source, dest = self.buckets("source", width, within), self.buckets("dest", width, within)
        leaves = []
        for bucket in sorted(set(source) | set(dest)):
            if source.get(bucket) == dest.get(bucket):
                self.equal_rows += source[bucket][0]
                continue
            low, high = bucket_bounds(bucket, width)
            if within is not None:
                low, high = max(low, within[0]), min(high, within[1])
            rows = max(source.get(bucket, (0, 0))[0], dest.get(bucket, (0, 0))[0])
            if width <= SPLIT or rows <= LEAF_ROWS:
                leaves.append((low, high))
            else:
                leaves.extend(self._drill(math.ceil(width / SPLIT), (low, high)))
        return leaves

    # --- SQL ----------------------------------------------------------------------------------------

    def _column(self, dialect, field):
        return f"{dialect.quote(self.step.table)}.{dialect.quote(field.column)}"

    def _value_sql(self, dialect, side, index):
        column = self._column(dialect, self.fields[index])
        mapping = self.mappings[index]
        if side == "source" and mapping is not None:
            column = translated_column_sql(column, mapping)  # an id the map lacks reads as NULL: it differs
        return column

    def _row_text_sql(self, dialect, side, fields):
        parts = []
        for index in (self.fields.index(f) for f in fields):
            value = self._value_sql(dialect, side, index)
            text = dialect.canonical_sql(self.kinds[index], value, type_field(self.fields[index]), self.same_vendor)
            encoded = dialect.concat_sql(["'V'", dialect.text_length_sql(text), "':'", text])
            parts.append(f"CASE WHEN {value} IS NULL THEN 'N' ELSE {encoded} END")
        return dialect.concat_sql(parts) if len(parts) > 1 else parts[0]

    def _bucket_sql(self, dialect, side, layout, width=None):
        if layout.key is not None:
            return dialect.bucket_sql(self._column(dialect, layout.key), width or layout.width)
        key_hash = dialect.hash60_sql(self._row_text_sql(dialect, side, self.pk_fields))
        return dialect.modulo_sql(key_hash, layout.modulus)

    # --- Python, for tables without a canonical SQL form ----------------------------------------

    def _python_buckets(self, side, layout, width=None, within=None):
        buckets = Buckets()
        for key, text in self._python_rows(side, within):
            buckets.add(self._python_bucket(layout, key, width), canon.hash60(text))
        return buckets

    def _python_bucket(self, layout, key, width=None):
        if layout.key is not None:
            return truncated_division(key[0], width or layout.width)
        return canon.hash60("".join(canon.encoded(c) for c in key)) % layout.modulus

    def _python_rows(self, side, within=None, keep=None):
        """Yield (canonical key texts, canonical row text) of every row at a side (inside `within`)."""
        alias = self.step.source if side == "source" else self.step.dest
        reader = RowReader(self.step.model, alias, self.fields)
        extra = None
        if within is not None:
            extra = key_range(self.layout.key, within)
        translate = [self._lenient(f) if side == "source" and m is not None else None
                     for f, m in zip(self.fields, self.mappings)]
        places = [getattr(type_field(f), "decimal_places", None) for f in self.fields]
        for rows in reader.chunks(2000, extra_filter=extra):
            for row in rows:
                values = [t(v) if t else v for t, v in zip(translate, row)]
                texts = [canon.canonical(k, v, p) for k, v, p in zip(self.kinds, values, places)]
                key = tuple(values[i] for i in reader.pk_positions) if self.layout.key is not None else tuple(
                    texts[i] for i in reader.pk_positions)
                yield key, "".join(canon.encoded(t) for t in texts)

    def _lenient(self, field):
        mapping = self.mappings[self.fields.index(field)]
        return lambda value: None if value is None else mapping.get(value)

    # --- reading the rows of differing leaves -------------------------------------------------

    def leaf_filter(self, side, leaves):
        """Return a Q selecting the rows of these leaves at a side (SQL digests only)."""
        layout = self.layout
        if layout.key is not None:
            q = models.Q()
            for low, high in leaves:
                q |= key_range(layout.key, (low, high))
            return q
        dialect = self.source if side == "source" else self.dest
        dialect.prepare_digests()
        bucket = RawSQL(self._bucket_sql(dialect, side, layout), [], output_field=models.BigIntegerField())
        return models.Q(In(bucket, list(leaves)))

    def leaf_chunks(self, side, reader, leaves, size):
        """Yield chunks of `reader`'s rows at a side that lie in the leaves."""
        if self.python_reason and self.layout.key is None:
            # No SQL spells the bucket: read every row and keep the leaves' (small tables, in practice).
            wanted = set(leaves)
            key_of = reader.key
            for rows in reader.chunks(size):
                kept = [r for r in rows if self._python_bucket(self.layout, self._key_texts(side, key_of(r))) in wanted]
                if kept:
                    yield kept
            return
        for start in range(0, len(leaves), _RANGES_PER_QUERY):
            part = leaves[start:start + _RANGES_PER_QUERY]
            yield from reader.chunks(size, extra_filter=self.leaf_filter(side, part))

    def _key_texts(self, side, key):
        texts = []
        for field, value in zip(self.pk_fields, key):
            index = self.fields.index(field)
            mapping = self.mappings[index]
            if side == "source" and mapping is not None and value is not None:
                value = mapping.get(value)
            places = getattr(type_field(field), "decimal_places", None)
            texts.append(canon.canonical(self.kinds[index], value, places))
        return tuple(texts)

    # --- naming the rows that differ ----------------------------------------------------------

    def differences(self, limit=None):
        """Return the Differences (the first `limit`, in key order of each leaf) and how many there are."""
        leaves = self.differing()
        if not leaves:
            return [], 0
        keys = self.remaps.keys(self.step)
        source_reader = RowReader(self.step.model, self.step.source, self.fields)
        dest_reader = RowReader(self.step.model, self.step.dest, self.fields)
        found, total = [], 0
        for start in range(0, len(leaves), _RANGES_PER_QUERY):
            part = leaves[start:start + _RANGES_PER_QUERY]
            source_rows = {source_reader.key(r): r for rows in self.leaf_chunks("source", source_reader, part, 2000)
                           for r in rows}
            dest_rows = {dest_reader.key(r): r for rows in self.leaf_chunks("dest", dest_reader, part, 2000)
                         for r in rows}
            matched = set()
            for key, row in source_rows.items():
                dest_key = keys.to_dest(key)
                other = dest_rows.get(dest_key) if dest_key is not None else None
                if other is None:
                    difference = Difference(key_value(key), missing="at the destination")
                else:
                    matched.add(dest_key)
                    fields = self._differing_fields(row, other)
                    if not fields:
                        continue
                    difference = Difference(key_value(key), fields=fields)
                total += 1
                if limit is None or len(found) < limit:
                    found.append(difference)
            for key in dest_rows:
                if key not in matched:
                    total += 1
                    if limit is None or len(found) < limit:
                        source_key = keys.to_source(key)
                        found.append(Difference(key_value(source_key or key), missing="at the source"))
        return found, total

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
