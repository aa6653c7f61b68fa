"""One text per stored value, the same on every vendor: what digests hash (see digest.py).

integers and booleans as decimal text (0/1); decimals at the field's scale; floats by Python's repr
(shortest text that reads back the same double); datetimes as UTC microseconds since the epoch
(naive ones as they are); times as microseconds since midnight; durations as microseconds; dates as
YYYY-MM-DD; UUIDs as 32 lower-case hex digits; binary as lower-case hex; JSON re-serialised with
sorted keys; text as it is. A row is the concatenation of its columns, each NULL as "N" and each value
as "V<characters>:<text>" — or "V<text>;" for the kinds whose text never holds a ";" (numbers, times,
dates, UUIDs, hex), which spares the database a second conversion — so no two rows share a text; its
hash is the first 60 bits of the MD5 of that text's UTF-8 bytes, and a range's digest is the exact sum
of its rows' hashes.
"""

import datetime as dt
import decimal
import hashlib
import json
import uuid

_EPOCH = dt.datetime(1970, 1, 1)
_SQLITE_DECIMALS = decimal.Context(prec=15)  # SQLite keeps 15 significant digits, as Django reads them


def hash60(text):
    """Return the first 60 bits of the MD5 of the text's UTF-8 bytes."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:15], 16)


# Kinds whose canonical text is made of digits, "-", "." and hex digits only.
SHORT_KINDS = frozenset({"int", "bool", "decimal", "datetime", "time", "duration", "date", "uuid", "binary"})


def encoded(canonical, kind=None):
    """Return a column's part of the row text: "N" for NULL, "V<canonical>;" for a short kind, else
    "V<length>:<canonical>"."""
    if canonical is None:
        return "N"
    return f"V{canonical};" if kind in SHORT_KINDS else f"V{len(canonical)}:{canonical}"


def epoch_microseconds(value):
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def day_microseconds(value):
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


def decimal_text(value, places):
    if isinstance(value, float):
        value = _SQLITE_DECIMALS.create_decimal_from_float(value)
    quantized = decimal.Decimal(value).quantize(decimal.Decimal(1).scaleb(-places))
    return f"{quantized:f}"


def json_text(value):
    document = json.loads(value) if isinstance(value, (str, bytes, bytearray)) else value
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(kind, value, places=None):
    """Return the canonical text of a value as dbcopy reads it (stored form), None for NULL."""
    if value is None:
        return None
    if kind in ("int", "bool"):
        return str(int(value))
    if kind == "decimal":
        return decimal_text(value, places)
    if kind == "float":
        return repr(float(value))
    if kind == "datetime":
        return str(epoch_microseconds(value))
    if kind == "time":
        return str(day_microseconds(value))
    if kind == "duration":
        return str((value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds)
    if kind == "date":
        return value.isoformat()
    if kind == "uuid":
        return value.hex if isinstance(value, uuid.UUID) else str(value).replace("-", "").lower()
    if kind == "binary":
        return bytes(value).hex()
    if kind == "json":
        return json_text(value)
    return str(value)


# --- SQLite: what its digest SQL calls, registered on the connection -------------------------


def _sqlite_datetime(text):
    if text is None:
        return None
    return str(epoch_microseconds(dt.datetime.fromisoformat(str(text))))


def _sqlite_time(text):
    return None if text is None else str(day_microseconds(dt.time.fromisoformat(str(text))))


def _sqlite_decimal(value, places):
    return None if value is None else decimal_text(value if isinstance(value, (int, float)) else str(value), places)


def _sqlite_hash60(text):
    return None if text is None else hash60(text)


class _ExactSum:
    """SUM of 60-bit hashes without SQLite's 64-bit overflow: the result comes back as text."""

    def __init__(self):
        self.total = 0

    def step(self, value):
        if value is not None:
            self.total += value

    def finalize(self):
        return str(self.total)


def register_sqlite_functions(raw_connection):
    """Register the functions SQLite's digest SQL calls on a sqlite3 connection."""
    for name, arity, function in (
        ("dbcopy_datetime", 1, _sqlite_datetime), ("dbcopy_time", 1, _sqlite_time),
        ("dbcopy_decimal", 2, _sqlite_decimal), ("dbcopy_hash60", 1, _sqlite_hash60),
    ):
        raw_connection.create_function(name, arity, function, deterministic=True)
    raw_connection.create_aggregate("dbcopy_sum", 1, _ExactSum)
