"""Say why a destination refused a row: which field, what rule, and how to fix it."""

import json
import re
import weakref
from decimal import Decimal

from .rows import pk_fields
from .storage import column_type_field, is_json

# Introspection of destination tables, per dialect (one per run and thread) and table: a refused
# row is explained with the schema as it is now, not as an earlier run saw it.
_SCHEMAS = weakref.WeakKeyDictionary()

# How the vendors name the unique index a row collides with (PostgreSQL; MySQL / MariaDB, which
# MySQL 8 prefixes with the table; SQLite for an expression index).
_UNIQUE_INDEX_NAMES = [
    re.compile(r'unique constraint "(?P<name>[^"]+)"'),
    re.compile(r"Duplicate entry .* for key '(?:[^'.]+\.)?(?P<name>[^']+)'"),
    re.compile(r"UNIQUE constraint failed: index '(?P<name>[^']+)'"),
]
# SQLite names the columns instead: "UNIQUE constraint failed: table.a, table.b".
_UNIQUE_COLUMNS = re.compile(r"UNIQUE constraint failed: (?P<columns>[^\s,']+(?:, [^\s,']+)*)\s*$")


def first_line(exc):
    """Return the first line of an exception's message (drivers add DETAIL/CONTEXT lines)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def explain_rejection(step, dialect, row, prepared, exc):
    """Return (field, reason, fix) for a row the destination refused.

    Check the usual suspects in the values first (the database's message often names no column),
    against the model and then against the destination's own columns; then read the error itself:
    a unique index, the packet size, a column it names.
    """
    for field, value, stored in zip(step.fields, row, prepared):
        for candidate in (value, stored):  # a custom field's value is an object until it is prepared
            for rule in VALUE_RULES:
                found = rule(step, dialect, field, candidate)
                if found:
                    return (field, *found)
    for rule in ERROR_RULES:
        found = rule(step, dialect, row, prepared, exc)
        if found:
            return found
    message = first_line(exc)
    # PostgreSQL's CONTEXT quotes the data itself, which can look like any column name.
    detail = str(exc).split("CONTEXT:")[0]
    field = _first_named_field(step.fields, detail)
    if field is not None:
        return field, message, "fix the row at the source or the column at the destination"
    return None, message, "check the row against the destination's constraints"


# --- rules about one value: (step, dialect, field, value) → (reason, fix) or None ----------------


def _nul_in_text(step, dialect, field, value):
    if isinstance(value, str) and dialect.rejects_nul_in_text and (
        "\x00" in value or (is_json(field) and "\\u0000" in value)
    ):
        return (f"the text contains a NUL character (\\x00), which {dialect.connection.display_name} does not store",
                "remove the NUL characters from the source row")
    return None


def _too_long_for_model(step, dialect, field, value):
    max_length = getattr(field, "max_length", None)
    if isinstance(value, str) and max_length and len(value) > max_length:
        return (f"value too long: {len(value)} characters for max_length {max_length}",
                "widen the column or clean the row")
    return None


def _four_byte_utf8_in_utf8mb3(step, dialect, field, value):
    if not isinstance(value, str) or not any(ord(char) > 0xFFFF for char in value):
        return None
    charset = dialect.column_charset(step.table, field.column)
    if charset and charset.lower() in ("utf8", "utf8mb3"):
        return (f"a 4-byte UTF-8 character (such as an emoji) does not fit the column's {charset} character set",
                f"convert {step.table} to utf8mb4 (ALTER TABLE {step.table} CONVERT TO CHARACTER SET utf8mb4)")
    return None


def _integer_out_of_range(step, dialect, field, value):
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    internal_type = field.get_internal_type()
    try:
        low, high = dialect.ops.integer_field_range(internal_type)
    except KeyError:
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        return (f"{value} is out of range for {internal_type} on {dialect.connection.display_name} ({low} to {high})",
                "use a wider integer field or clean the row")
    return None


def _too_many_digits_for_model(step, dialect, field, value):
    if not (isinstance(value, Decimal) and getattr(field, "max_digits", None) and value.is_finite()):
        return None
    whole = field.max_digits - field.decimal_places
    if _whole_digits(value) > whole:
        return (f"{value} has more than {whole} digits before the decimal point "
                f"(max_digits={field.max_digits}, decimal_places={field.decimal_places})",
                "widen the column or clean the row")
    return None


def _invalid_json(step, dialect, field, value):
    if not (is_json(field) and isinstance(value, str)):
        return None
    try:
        json.loads(value)
    except ValueError as exc:
        return (f"the source holds text that is not valid JSON ({exc})", "clean the row at the source")
    return None


def _too_long_for_column(step, dialect, field, value):
    """A text longer than the destination column, which is narrower than the model says."""
    if not (isinstance(value, str) and _holds_text(field)):
        return None
    column = _destination_column(dialect, step.table, field.column)
    size = getattr(column, "display_size", None)
    max_length = getattr(field, "max_length", None)
    if not size or size <= 0 or (max_length and size >= max_length) or len(value) <= size:
        return None
    model_says = f"max_length={max_length}" if max_length else "no length limit"
    return (f"value too long: {len(value)} characters, and the destination column "
            f"is varchar({size}) where the model says {model_says},",
            "widen the destination column to match the model (migrate it) or shorten the value")


def _too_many_digits_for_column(step, dialect, field, value):
    """A decimal with more whole digits than the destination column allows, narrower than the model."""
    if not (isinstance(value, Decimal) and value.is_finite() and getattr(field, "max_digits", None)):
        return None
    column = _destination_column(dialect, step.table, field.column)
    precision, scale = getattr(column, "precision", None), getattr(column, "scale", None)
    if precision is None or scale is None or (precision, scale) == (field.max_digits, field.decimal_places):
        return None
    if _whole_digits(value) <= precision - scale:
        return None
    return (f"{value} has more than {precision - scale} digits before the decimal point: the destination column "
            f"is numeric({precision},{scale}) where the model says "
            f"max_digits={field.max_digits}, decimal_places={field.decimal_places},",
            "widen the destination column to match the model (migrate it) or clean the row")


VALUE_RULES = (
    _nul_in_text, _too_long_for_model, _four_byte_utf8_in_utf8mb3, _integer_out_of_range,
    _too_many_digits_for_model, _invalid_json, _too_long_for_column, _too_many_digits_for_column,
)


# --- rules about the error: (step, dialect, row, prepared, exc) → (field, reason, fix) or None ---


def _unique_index_not_in_model(step, dialect, row, prepared, exc):
    """A duplicate in a unique index the destination has and the model does not declare."""
    name, columns = _violated_unique_index(step, dialect, str(exc))
    if not columns or frozenset(columns) in _model_unique_columns(step.model):
        return None
    if name in {constraint.name for constraint in step.model._meta.constraints}:
        return None
    by_column = {field.column: field for field in step.fields}
    fields = [by_column[column] for column in columns if column in by_column]
    if not fields:
        return None
    named = ", ".join(f"'{field.name}'" for field in fields)
    index = f"unique index {name!r}" if name else "a unique index"
    return (fields[0],
            f"another row already holds the same {named}: the destination has {index} on "
            f"({', '.join(columns)}), which is not in the model,",
            "drop the index at the destination or dedupe the rows at the source")


def _packet_too_large(step, dialect, row, prepared, exc):
    """A row bigger than one statement may be (MySQL's max_allowed_packet)."""
    sizes = [max(_byte_size(value), _byte_size(stored)) for value, stored in zip(row, prepared)]
    if not sizes or not dialect.refused_for_size(exc, sum(sizes)):
        return None
    largest = max(range(len(sizes)), key=sizes.__getitem__)
    return (step.fields[largest],
            f"the row (about {_megabytes(sum(sizes))}) is larger than one statement may be under the destination's "
            f"max_allowed_packet; its largest value, {_megabytes(sizes[largest])}, is",
            "raise max_allowed_packet on the destination server above the row's size, "
            "or lower DBCOPY_MAX_STATEMENT_BYTES if many smaller rows shared the statement")


ERROR_RULES = (_unique_index_not_in_model, _packet_too_large)


# --- helpers ---------------------------------------------------------------------------------


def _first_named_field(fields, detail):
    """Return the field whose column the error message names first (the FK column before its target)."""
    found = []
    for field in fields:
        match = re.search(rf"""['"`(]{re.escape(field.column)}['"`)]""", detail)
        if match:
            found.append((match.start(), field))
    return min(found, key=lambda item: item[0])[1] if found else None


def _schema(dialect, table):
    """Return ({column: FieldInfo}, {constraint name: details}) of a destination table, read once."""
    tables = _SCHEMAS.setdefault(dialect, {})
    if table not in tables:
        introspection = dialect.connection.introspection
        with dialect.connection.cursor() as cursor:
            columns = {info.name: info for info in introspection.get_table_description(cursor, table)}
            constraints = introspection.get_constraints(cursor, table)
        tables[table] = (columns, constraints)
    return tables[table]


def _destination_column(dialect, table, column):
    return _schema(dialect, table)[0].get(column)


def _violated_unique_index(step, dialect, message):
    """Return (index name or None, [columns]) of the unique index the error names, else (None, [])."""
    for pattern in _UNIQUE_INDEX_NAMES:
        match = pattern.search(message)
        if match:
            name = match.group("name")
            constraint = _schema(dialect, step.table)[1].get(name) or {}
            return name, list(constraint.get("columns") or [])
    match = _UNIQUE_COLUMNS.search(first_line(message))
    if match:
        qualified = [column.strip() for column in match.group("columns").split(",")]
        return None, [column.rsplit(".", 1)[-1] for column in qualified if column.rsplit(".", 1)[0] == step.table]
    return None, []


def _model_unique_columns(model):
    """Return the column sets the model declares unique (primary key, unique fields, constraints)."""
    meta = model._meta

    def columns(names):
        return frozenset(meta.get_field(name).column for name in names)

    found = {frozenset(field.column for field in pk_fields(model))}
    found |= {frozenset([field.column]) for field in meta.local_concrete_fields if field.unique}
    found |= {columns(names) for names in meta.unique_together}
    found |= {columns(constraint.fields) for constraint in meta.total_unique_constraints}
    return found


def _holds_text(field):
    return column_type_field(field).get_internal_type() in ("CharField", "TextField", "SlugField", "EmailField", "URLField",
                                          "FilePathField", "FileField", "ImageField")


def _whole_digits(value):
    return max(value.adjusted() + 1, 0)


def _byte_size(value):
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    return 8


def _megabytes(size):
    return f"{size / (1024 * 1024):.1f} MiB"
