"""Say why a destination refused a row: which field, what rule, and how to fix it."""

import re
from decimal import Decimal

from .rows import is_json


def first_line(exc):
    """Return the first line of an exception's message (drivers add DETAIL/CONTEXT lines)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def explain_rejection(step, dialect, row, prepared, exc):
    """Return (field, reason, fix) for a row the destination refused.

    Check the usual suspects in the values first (the database's message often names no column), then
    look for a column named in the message itself.
    """
    for field, value, stored in zip(step.fields, row, prepared):
        for candidate in (value, stored):  # a custom field's value is an object until it is prepared
            found = _value_problem(step, dialect, field, candidate)
            if found:
                return (field, *found)
    message = first_line(exc)
    # PostgreSQL's CONTEXT quotes the data itself, which can look like any column name.
    detail = str(exc).split("CONTEXT:")[0]
    field = _first_named_field(step.fields, detail)
    if field is not None:
        return field, message, "fix the row at the source or the column at the destination"
    return None, message, "check the row against the destination's constraints"


def _value_problem(step, dialect, field, value):
    """Return (reason, fix) if the value breaks a rule of the destination column, else None."""
    vendor = dialect.connection.display_name
    if isinstance(value, str):
        if dialect.rejects_nul_in_text and ("\x00" in value or (is_json(field) and "\\u0000" in value)):
            return (f"the text contains a NUL character (\\x00), which {vendor} does not store",
                    "remove the NUL characters from the source row")
        max_length = getattr(field, "max_length", None)
        if max_length and len(value) > max_length:
            return (f"value too long: {len(value)} characters for max_length {max_length}",
                    "widen the column or clean the row")
        if any(ord(char) > 0xFFFF for char in value):
            charset = dialect.column_charset(step.table, field.column)
            if charset and charset.lower() in ("utf8", "utf8mb3"):
                return (f"a 4-byte UTF-8 character (such as an emoji) does not fit the column's {charset} "
                        "character set",
                        f"convert {step.table} to utf8mb4 (ALTER TABLE {step.table} CONVERT TO CHARACTER SET utf8mb4)")
    if isinstance(value, int) and not isinstance(value, bool):
        internal_type = field.get_internal_type()
        try:
            low, high = dialect.ops.integer_field_range(internal_type)
        except KeyError:
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            return (f"{value} is out of range for {internal_type} on {vendor} ({low} to {high})",
                    "use a wider integer field or clean the row")
    if isinstance(value, Decimal) and getattr(field, "max_digits", None) and value.is_finite():
        whole_digits = max(value.adjusted() + 1, 0)
        if whole_digits > field.max_digits - field.decimal_places:
            return (f"{value} has more than {field.max_digits - field.decimal_places} digits before the decimal "
                    f"point (max_digits={field.max_digits}, decimal_places={field.decimal_places})",
                    "widen the column or clean the row")
    return None


def _first_named_field(fields, detail):
    """Return the field whose column the error message names first (the FK column before its target)."""
    found = []
    for field in fields:
        match = re.search(rf"""['"`(]{re.escape(field.column)}['"`)]""", detail)
        if match:
            found.append((match.start(), field))
    return min(found, key=lambda item: item[0])[1] if found else None
