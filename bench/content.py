"""Compare the content of every table on two databases, row by row, without dbcopy.

The benchmark's own check that a sync left the destination equal to the source: every column of
every row, read with plain DB-API cursors and brought to one form per column type, so that
PostgreSQL and MariaDB values compare equal when they mean the same (timestamps in UTC, JSON parsed
and re-serialised with sorted keys, booleans as 0/1, UUIDs as 32 hex digits). Content types and
permissions are matched by natural key: dbcopy maps them, so their ids may differ between the sides,
and so are the columns that point at them.
"""

import datetime
import json
from collections import Counter

import MySQLdb.cursors
from dataset import connect, is_postgres
from project.settings import DATABASES

BATCH = 5000
# Tables whose rows dbcopy maps by natural key rather than copying: compared without their ids.
NATURAL_KEY_TABLES = {"django_content_type", "auth_permission"}


def differences(source, dest, tables, shown=3):
    """Compare every table's content; return ({table: (rows that differ, the first few of their keys)} for
    the tables that differ, the number of source rows compared)."""
    kinds = column_kinds(source, tables)
    maps = {alias: natural_keys(alias) for alias in (source, dest)}
    found, compared = {}, 0
    for table in tables:
        present = set(columns_of(dest, table))
        columns = [column for column in kinds[table] if column in present]
        if not columns:
            found[table] = (None, ["no such table at the destination"])
            continue
        if table in NATURAL_KEY_TABLES or "id" not in columns:
            source_rows = _whole(source, table, columns, kinds[table], maps[source])
            differing, first = _unmatched(source_rows, _whole(dest, table, columns, kinds[table], maps[dest]), shown)
            compared += len(source_rows)
        else:
            counter = _Counter(_stream(source, table, columns, kinds[table], maps[source]))
            differing, first = _merge(counter, _stream(dest, table, columns, kinds[table], maps[dest]), shown)
            compared += counter.rows
        if differing:
            found[table] = (differing, first)
    return found, compared


def column_kinds(alias, tables):
    """Return {table: {column: data type}} from the PostgreSQL alias, in column order."""
    connection = connect(alias)
    kinds = {table: {} for table in tables}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        )
        for table, column, kind in cursor.fetchall():
            if table in kinds:
                kinds[table][column] = kind
    connection.close()
    return kinds


def columns_of(alias, table):
    """Return the column names of the table on the alias."""
    connection = connect(alias)
    schema = "public" if is_postgres(alias) else DATABASES[alias]["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            [schema, table],
        )
        names = [row[0] for row in cursor.fetchall()]
    connection.close()
    return names


def natural_keys(alias):
    """Return {"content_type_id": {id: (app_label, model)}, "permission_id": {id: (app_label, model, codename)}}."""
    connection = connect(alias)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, app_label, model FROM django_content_type")
        content_types = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
        cursor.execute("SELECT id, content_type_id, codename FROM auth_permission")
        permissions = {row[0]: (*content_types[row[1]], row[2]) for row in cursor.fetchall()}
    connection.close()
    return {"content_type_id": content_types, "permission_id": permissions}


def _select(alias, table, columns, order=True):
    quote = (lambda name: f'"{name}"') if is_postgres(alias) else (lambda name: f"`{name}`")
    sql = f"SELECT {', '.join(map(quote, columns))} FROM {quote(table)}"
    return sql + (f" ORDER BY {quote('id')}" if order else "")


def _normaliser(columns, kinds, maps, drop_id):
    """Return the function that brings one fetched row to its comparable form (id first)."""
    converters = [_converter(column, kinds[column], maps) for column in columns]

    def normalise(row):
        values = tuple(convert(value) for convert, value in zip(converters, row))
        return values[1:] if drop_id else values

    return normalise


def _converter(column, kind, maps):
    if column in maps:
        return lambda value: None if value is None else maps[column][value]
    if kind in ("json", "jsonb"):
        return _json
    if kind == "boolean":
        return lambda value: None if value is None else int(value)
    if kind == "uuid":
        return lambda value: None if value is None else str(value).replace("-", "").lower()
    if kind.startswith("timestamp"):
        return _utc
    return lambda value: value


def _json(value):
    if value is None:
        return None
    parsed = json.loads(value) if isinstance(value, (str, bytes)) else value
    return json.dumps(parsed, sort_keys=True, ensure_ascii=False)


def _utc(value):
    if value is not None and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def _whole(alias, table, columns, kinds, maps):
    """Return every row of a small table in comparable form (without the id for natural-key tables)."""
    columns = ["id", *[c for c in columns if c != "id"]] if "id" in columns else columns
    normalise = _normaliser(columns, kinds, maps, drop_id=table in NATURAL_KEY_TABLES)
    connection = connect(alias)
    with connection.cursor() as cursor:
        cursor.execute(_select(alias, table, columns, order=False))
        rows = [normalise(row) for row in cursor.fetchall()]
    connection.close()
    return rows


def _stream(alias, table, columns, kinds, maps):
    """Yield the table's rows in id order, in comparable form, fetching BATCH rows at a time."""
    columns = ["id", *[c for c in columns if c != "id"]]
    normalise = _normaliser(columns, kinds, maps, drop_id=False)
    connection = connect(alias)
    try:
        if is_postgres(alias):
            connection.autocommit = False  # a server-side cursor lives in a transaction
            cursor = connection.cursor(name=f"bench_{table}")
            cursor.itersize = BATCH
        else:
            cursor = connection.cursor(MySQLdb.cursors.SSCursor)
        cursor.execute(_select(alias, table, columns))
        while batch := cursor.fetchmany(BATCH):
            for row in batch:
                yield normalise(row)
        cursor.close()
    finally:
        connection.close()


class _Counter:
    """Iterate a row stream, counting its rows."""

    def __init__(self, rows):
        self.rows, self._iterator = 0, iter(rows)

    def __iter__(self):
        return self

    def __next__(self):
        row = next(self._iterator)
        self.rows += 1
        return row


def _merge(left, right, shown):
    """Walk two row streams ordered by id (their first value); return (rows that differ, their first ids)."""
    differing, first = 0, []
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            key, a = a[0], next(left, None)  # only in the source
        elif a is None or b[0] < a[0]:
            key, b = b[0], next(right, None)  # only in the destination
        else:
            same, key = a == b, a[0]
            a, b = next(left, None), next(right, None)
            if same:
                continue
        differing += 1
        if len(first) < shown:
            first.append(key)
    return differing, first


def _unmatched(source_rows, dest_rows, shown):
    """Return (rows found on one side only, the first few of them) for two small tables."""
    missing = Counter(source_rows) - Counter(dest_rows)
    extra = Counter(dest_rows) - Counter(source_rows)
    rows = [*missing.elements(), *extra.elements()]
    return len(rows), [repr(row)[:80] for row in rows[:shown]]
