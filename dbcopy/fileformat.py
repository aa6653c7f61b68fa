"""The dump file `dbcopy export` writes and `dbcopy import` reads: one zstandard frame of msgpack records.

Layout (README.md, "The dump file format", says it for other programs):

    header map            {"format": "dbcopy-dump", "version": 1, ..., "models": [...]}
    ["H", digest]         blake2b-128 of the header map's msgpack bytes as written
    per model, in header order:
      ["B", i]                      begin model i
      ["R", i, payload, digest]     a chunk: payload = msgpack bytes of [[value, ...], ...] (rows),
                                    digest = blake2b-128 of the payload
      ["E", i, rows, digest]        end: the model's row count, blake2b-128 of its chunks' digests
    ["T", {"rows": total, "models": [{"label", "rows", "digest"}, ...]}]

Values travel per column kind (dbcopy.digest.column_kind): no msgpack extension types. Every chunk
is verified before its rows are handed out, so a damaged file never yields a changed row; the
frame's content checksum (zstd) covers the whole stream once it ends.
"""

import datetime as dt
import hashlib
import sys
import uuid
from dataclasses import dataclass
from decimal import Decimal

import django
import msgpack
import zstandard
from django.apps import apps
from django.conf import settings
from django.db import connections

from . import __version__
from .aliases import describe
from .digest import column_kind
from .exceptions import ConfigError, DumpCorrupt, DumpTruncated, DumpValueError, DumpVersionError, NotADump
from .rows import key_value, pk_fields

FORMAT = "dbcopy-dump"
VERSION = 1
COMPRESSION_LEVEL = 3
DIGEST_BYTES = 16
KINDS = frozenset({"int", "bool", "text", "inet", "uuid", "decimal", "float", "date", "datetime", "time",
                   "duration", "binary", "json", "other"})
# A chunk whose payload grows past this is written as several records, so a reader never holds
# more than about this much of one chunk (a single row may still be larger).
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
# What the reader buffers at most for one record: a length beyond it can only be damage.
MAX_RECORD_BYTES = 2**31 - 1
READ_BYTES = zstandard.DECOMPRESSION_RECOMMENDED_INPUT_SIZE
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

TRUNCATED_HINT = (" — the export was interrupted or the file was cut short (a partial copy or download, a full "
                  "disk); export again")
DAMAGED_HINT = (" — the file changed after it was written (a flipped bit, a transfer in text mode, an edit); "
                "copy it again in binary mode or export again")


def _digest(data):
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


# --- the header --------------------------------------------------------------------------------


def build_header(plan, counts, consistency):
    """Return the header map of a dump of the plan's steps; counts: rows per step, as planned."""
    connection = connections[plan.source]
    return {
        "format": FORMAT,
        "version": VERSION,
        "dbcopy": __version__,
        "django": django.get_version(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"vendor": connection.vendor, "server": connection.display_name, "alias": describe(plan.source)},
        "consistent": consistency.consistent,
        "consistency": consistency.how,
        "use_tz": bool(settings.USE_TZ),
        "models": [model_header(step, counts[step]) for step in plan.steps],
        "groups": [list(plan.groups[group]) for group in sorted(plan.groups)],
    }


def model_header(step, rows):
    """Return a step's entry in the header: its table, columns in row order, planned rows, cycles."""
    keys = pk_fields(step.model)
    return {
        "label": step.label,
        "table": step.table,
        "columns": [column_header(field, field in keys) for field in step.fields],
        "rows": rows,
        "deferred": [field.name for field in step.deferred_fields],
        "group": step.group,
    }


def column_header(field, is_pk):
    return {
        "name": field.name,
        "attname": field.attname,
        "column": field.column,
        "kind": column_kind(field),
        "type": field.get_internal_type(),
        "null": bool(field.null),
        "pk": bool(is_pk),
    }


def check_header(header, labels=()):
    """Return what keeps the dump's models (those the labels select; all without labels) from fitting
    the models installed here: unknown models, other tables, missing, extra or retyped columns."""
    models = header["models"]
    problems = []
    chosen = models
    if labels:
        chosen = [m for m in models if any(selects(label, m["label"]) for label in labels)]
        held = ", ".join(m["label"] for m in models) or "no models"
        for label in labels:
            if not any(selects(label, m["label"]) for m in models):
                problems.append(f"{label}: the dump holds no such model (it holds {held})")
    for entry in chosen:
        problems += _model_problems(entry)
    return problems


def selects(label, model_label):
    """Return whether a command-line label ('app' or 'app.Model') names the model."""
    wanted, found = label.lower(), model_label.lower()
    return wanted == found or wanted == found.split(".", 1)[0]


def _model_problems(entry):
    from .plan import written_fields  # plan.py imports the dialects: keep this module light for readers

    label = entry["label"]
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return [f"{label}: no such model is installed in this project"]
    problems = []
    if model._meta.db_table != entry["table"]:
        problems.append(f"{label}: the dump's table is {entry['table']}, this project's is {model._meta.db_table}")
    here = {field.name: field for field in written_fields(model)}
    there = {column["name"]: column for column in entry["columns"]}
    extra = [name for name in there if name not in here]
    missing = [name for name in here if name not in there]
    if extra:
        problems.append(f"{label}: the dump has columns this project's model lacks: {', '.join(extra)}")
    if missing:
        problems.append(f"{label}: this project's model has fields the dump lacks: {', '.join(missing)}")
    for name, column in there.items():
        field = here.get(name)
        if field is not None and column_kind(field) != column["kind"]:
            problems.append(f"{label}.{name}: the dump holds {column['kind']} values, this project's field "
                            f"({field.get_internal_type()}) holds {column_kind(field)}")
    return problems


# --- values by column kind ---------------------------------------------------------------------

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND = dt.timedelta(microseconds=1)
_SCALARS = (type(None), bool, int, float, str, bytes)


class _Unencodable(Exception):
    """A value the column's kind cannot carry; reason says what it is."""

    def __init__(self, reason):
        self.reason = reason


def _shown(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _refuse(value, expected):
    raise _Unencodable(f"holds {_shown(value)} (type {type(value).__name__}) where the column's values are {expected}")


def _encode_decimal(value):
    if type(value) is not Decimal:
        _refuse(value, "Decimals")
    return str(value)  # exact: every digit and the exponent


def _encode_date(value):
    if type(value) is not dt.date:
        _refuse(value, "dates")
    return value.toordinal() - _EPOCH_ORDINAL


def _datetime_encoder(aware):
    epoch = _EPOCH_UTC if aware else _EPOCH_NAIVE
    expected = "aware datetimes (USE_TZ = True)" if aware else "naive datetimes (USE_TZ = False)"

    def encode(value):
        if type(value) is not dt.datetime or (value.tzinfo is not None) != aware:
            _refuse(value, expected)
        return (value - epoch) // _MICROSECOND

    return encode


def _encode_time(value):
    if type(value) is not dt.time or value.tzinfo is not None:
        _refuse(value, "times of day without a time zone")
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


def _encode_duration(value):
    if type(value) is not dt.timedelta:
        _refuse(value, "timedeltas")
    return value // _MICROSECOND


def _encode_uuid(value):
    if type(value) is not uuid.UUID:
        _refuse(value, "UUIDs")
    return value.bytes


def _encode_binary(value):
    if type(value) is bytes:
        return value
    if type(value) in (memoryview, bytearray):
        return bytes(value)  # psycopg2 reads bytea as a memoryview
    _refuse(value, "bytes")


def _encode_other(value):
    """Keep a value of a column type dbcopy has no kind for, if it is plain data msgpack carries as it is."""
    if _is_plain(value):
        return value
    if type(value) in (memoryview, bytearray):
        return bytes(value)
    _refuse(value, "plain values (text, bytes, numbers, booleans, or lists and maps of them)")


def _is_plain(value):
    if type(value) in _SCALARS:
        return True
    if type(value) is list:
        return all(_is_plain(item) for item in value)
    if type(value) is dict:
        return all(_is_plain(k) and _is_plain(v) for k, v in value.items())
    return False


def _encoder(kind, aware):
    """Return the function turning a column's non-NULL values into msgpack values, or None to keep them."""
    if kind == "datetime":
        return _datetime_encoder(aware)
    return {
        "decimal": _encode_decimal, "date": _encode_date, "time": _encode_time, "duration": _encode_duration,
        "uuid": _encode_uuid, "binary": _encode_binary, "other": _encode_other,
    }.get(kind)


def _decode_time(value):
    seconds, microsecond = divmod(value, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return dt.time(hour, minute, second, microsecond)


def _decoder(kind, aware):
    """Return the function turning a column's msgpack values back into the values read, or None."""
    epoch = _EPOCH_UTC if aware else _EPOCH_NAIVE
    return {
        "decimal": Decimal,
        "date": lambda days: dt.date.fromordinal(days + _EPOCH_ORDINAL),
        "datetime": lambda micros: epoch + dt.timedelta(microseconds=micros),
        "time": _decode_time,
        "duration": lambda micros: dt.timedelta(microseconds=micros),
        "uuid": lambda raw: uuid.UUID(bytes=raw),
    }.get(kind)


def _converters(columns, make):
    return [(i, convert) for i, column in enumerate(columns) if (convert := make(column["kind"])) is not None]


# --- writing -----------------------------------------------------------------------------------


class DumpWriter:
    """Write a dump to a binary stream: the header at once, then begin(label), write_rows(rows)…,
    end() per model in header order, then close() for the trailer and the end of the frame.

    After a failure, stop writing (never close()): a stream without its trailer reads as truncated.
    """

    def __init__(self, stream, header, level=COMPRESSION_LEVEL):
        self.stream = stream
        self.compressor = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()
        self.packer = msgpack.Packer(use_bin_type=True)
        self.models = header["models"]
        self.aware = bool(header["use_tz"])
        self.bytes_written = 0
        self.finished = []  # {"label", "rows", "digest"} per ended model
        self.section = None
        packed = self.packer.pack(header)
        self._write(packed + self.packer.pack(["H", _digest(packed)]))

    def _write(self, data):
        compressed = self.compressor.compress(data)
        if compressed:
            self.stream.write(compressed)
            self.bytes_written += len(compressed)

    def begin(self, label):
        """Start the rows of the next model of the header, which must be `label`."""
        index = len(self.finished)
        if self.section is not None or index >= len(self.models) or self.models[index]["label"] != label:
            expected = self.models[index]["label"] if index < len(self.models) else "nothing more"
            raise ValueError(f"begin({label!r}): the header's next model is {expected}")
        self.section = _SectionWriter(index, self.models[index], self.aware)
        self._write(self.packer.pack(["B", index]))

    def write_rows(self, rows):
        """Write rows (tuples of values as RowReader reads them) of the current model; return how many."""
        section = self.section
        if not rows:
            return 0
        encoded = section.encode(rows)
        for part in self._payloads(section, rows, encoded):
            digest = _digest(part)
            section.digest.update(digest)
            self._write(self.packer.pack(["R", section.index, part, digest]))
        section.rows += len(rows)
        return len(rows)

    def _payloads(self, section, rows, encoded):
        """Return the msgpack bytes of the rows, split where one payload would pass MAX_PAYLOAD_BYTES."""
        try:
            payload = self.packer.pack(encoded)
        except (TypeError, ValueError, OverflowError):
            section.refuse_unpackable(rows, encoded, self.packer)
            raise
        if len(payload) <= MAX_PAYLOAD_BYTES or len(encoded) == 1:
            return [payload]
        half = len(encoded) // 2
        return (self._payloads(section, rows[:half], encoded[:half])
                + self._payloads(section, rows[half:], encoded[half:]))

    def end(self):
        """Finish the current model's rows; return its row count."""
        section, self.section = self.section, None
        digest = section.digest.digest()
        self._write(self.packer.pack(["E", section.index, section.rows, digest]))
        self.finished.append({"label": section.label, "rows": section.rows, "digest": digest})
        return section.rows

    def close(self):
        """Write the trailer and end the compressed frame (its checksum included); the stream stays open."""
        if self.section is not None or len(self.finished) != len(self.models):
            raise ValueError(f"close(): {len(self.finished)} of {len(self.models)} models were written")
        total = sum(model["rows"] for model in self.finished)
        self._write(self.packer.pack(["T", {"rows": total, "models": self.finished}]))
        tail = self.compressor.flush()
        self.stream.write(tail)
        self.bytes_written += len(tail)
        self.stream.flush()


class _SectionWriter:
    """One model's part of a DumpWriter: its encoders, row count and running digest."""

    def __init__(self, index, model, aware):
        self.index, self.label, self.columns = index, model["label"], model["columns"]
        self.pk_positions = [i for i, column in enumerate(self.columns) if column["pk"]]
        self.encoders = _converters(self.columns, lambda kind: _encoder(kind, aware))
        self.rows = 0
        self.digest = hashlib.blake2b(digest_size=DIGEST_BYTES)

    def encode(self, rows):
        """Return the rows as msgpack takes them (the rows themselves where no column needs converting)."""
        if not self.encoders:
            return rows
        encoded = []
        for row in rows:
            values = list(row)
            try:
                for position, encode in self.encoders:
                    value = values[position]
                    if value is not None:
                        values[position] = encode(value)
            except _Unencodable as exc:
                self.refuse(row, position, exc.reason)
            encoded.append(values)
        return encoded

    def refuse(self, row, position, reason):
        pk = key_value(tuple(row[i] for i in self.pk_positions)) if self.pk_positions else None
        raise DumpValueError(
            self.label, pk, self.columns[position]["name"], reason,
            f"clean the row at the source, or leave {self.label} out (--exclude) and move it with `dbcopy copy`",
        )

    def refuse_unpackable(self, rows, encoded, packer):
        """Raise DumpValueError for the first value msgpack cannot carry (a type, an int beyond 64 bits)."""
        for row, values in zip(rows, encoded):
            for position, value in enumerate(values):
                try:
                    packer.pack(value)
                except (TypeError, ValueError, OverflowError) as exc:
                    self.refuse(row, position, f"holds {_shown(value)} (type {type(value).__name__}), which a dump "
                                               f"column of kind {self.columns[position]['kind']} cannot carry: {exc}")


# --- reading -----------------------------------------------------------------------------------


class _Ended(Exception):
    """The input ended; frame_ended says whether the compressed frame had ended properly."""

    def __init__(self, frame_ended):
        self.frame_ended = frame_ended


class _Garbled(Exception):
    """The input cannot be what a writer wrote; reason says how."""

    def __init__(self, reason):
        self.reason = reason


class _Input:
    """Decompress a dump and unpack its objects one at a time, holding about one record in memory."""

    def __init__(self, stream):
        self.stream = stream
        self.decompressor = zstandard.ZstdDecompressor().decompressobj()
        self.unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_RECORD_BYTES)
        self.frame_ended = False
        self.captured = bytearray()  # the decompressed bytes, kept until the header is read
        self.first = b""

    def read_magic(self):
        """Return the first bytes of the file (up to 4) and decompress them."""
        while len(self.first) < len(ZSTD_MAGIC):
            block = self.stream.read(len(ZSTD_MAGIC) - len(self.first))
            if not block:
                break
            self.first += block
        if self.first == ZSTD_MAGIC:
            self._decompress(self.first)
        return self.first

    def next(self):
        """Return the next object; raise _Ended at the end of the file, _Garbled for damage."""
        while True:
            try:
                return self.unpacker.unpack()
            except msgpack.OutOfData:
                pass
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise _Garbled(f"its content cannot be unpacked ({exc})") from None
            if not self._feed():
                raise _Ended(self.frame_ended)

    def take_captured(self):
        """Return the bytes of the first object (the header) and stop keeping bytes."""
        captured, self.captured = bytes(self.captured[: self.unpacker.tell()]), None
        return captured

    def _feed(self):
        block = self.stream.read(READ_BYTES)
        if not block:
            return False
        if self.frame_ended:
            raise _Garbled("data follows the end of its compressed stream")
        self._decompress(block)
        return True

    def _decompress(self, block):
        try:
            data = self.decompressor.decompress(block)
        except zstandard.ZstdError as exc:
            raise _Garbled(f"its compressed stream is damaged ({exc})") from None
        if self.decompressor.eof:
            self.frame_ended = True
            if self.decompressor.unused_data:
                raise _Garbled("data follows the end of its compressed stream")
        if self.captured is not None:
            self.captured += data
        try:
            self.unpacker.feed(data)
        except msgpack.BufferFull:
            raise _Garbled("a record claims more bytes than any dbcopy writes") from None

    def finish(self):
        """Check that nothing follows the last record and that the frame (and its checksum) ended."""
        try:
            extra = self.next()
        except _Ended as end:
            if not end.frame_ended:
                raise
            return
        raise _Garbled(f"an object follows its trailer ({_shown(extra)})")


@dataclass
class _Place:
    """Where in the dump the reader is, for messages: where, what a cut there loses, the model and its
    rows read so far."""

    where: str
    lost: str = ""
    label: str | None = None
    rows: int | None = None


class DumpReader:
    """Read a dump from a binary stream: .header at once, then .sections() in header order.

    Every chunk is checked against its digest before its rows are handed out, every model against its
    count and digest at its end, the whole file against the trailer and the zstd checksum at the end.
    """

    def __init__(self, stream, name="the dump"):
        self.stream, self.name = stream, name
        self.input = _Input(stream)
        self.trailer = None
        self.ended = []  # {"label", "rows", "digest"} per model read to its end
        self.header = self._read_header()
        self.aware = bool(self.header["use_tz"])

    # --- errors ---

    def _next(self, place):
        try:
            return self.input.next()
        except _Ended as end:
            if end.frame_ended:
                raise self._damaged(place, "its records stop though its compressed stream ended") from None
            lost = f": {place.lost}" if place.lost else ""
            raise DumpTruncated(f"{self.name} ends {place.where}{lost}{TRUNCATED_HINT}", place.label, place.rows) from None
        except _Garbled as exc:
            raise self._damaged(place, exc.reason) from None

    def _damaged(self, place, reason):
        return DumpCorrupt(f"{self.name} is damaged {place.where}: {reason}{DAMAGED_HINT}", place.label)

    # --- the header ---

    def _read_header(self):
        first = self.input.read_magic()
        if not first:
            raise DumpTruncated(f"{self.name} is empty{TRUNCATED_HINT}")
        if first != ZSTD_MAGIC and not (len(first) < len(ZSTD_MAGIC) and ZSTD_MAGIC.startswith(first)):
            raise NotADump(f"{self.name} is not a dbcopy dump: it does not start with a zstandard frame "
                           f"(its first bytes are {first.hex(' ')}); dumps are written by `dbcopy export`")
        place = _Place("inside its header")
        header = self._next(place)
        header_bytes = self.input.take_captured()
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise NotADump(f"{self.name} is not a dbcopy dump: its content does not start with a dbcopy header")
        if header.get("version") != VERSION:
            raise DumpVersionError(
                f"{self.name} is a dbcopy dump of format version {header.get('version')!r} (written by dbcopy "
                f"{header.get('dbcopy')}); this dbcopy ({__version__}) reads version {VERSION}: import it with the "
                "dbcopy version that wrote it, or export again with this one"
            )
        record = self._next(place)
        if not (isinstance(record, list) and len(record) == 2 and record[0] == "H"):
            raise self._damaged(place, "the header's digest record is missing")
        if record[1] != _digest(header_bytes):
            raise self._damaged(place, "the header does not match its digest")
        self._check_models(header, place)
        return header

    def _check_models(self, header, place):
        """Refuse a header this reader cannot follow: entries missing, or a column kind it does not know."""
        try:
            models = [(model["label"], model["columns"]) for model in header["models"]]
            columns = [(label, column["name"], column["kind"]) for label, cols in models for column in cols]
            bool(header["use_tz"])
        except (KeyError, TypeError) as exc:
            raise self._damaged(place, f"its header lacks an entry ({exc!r})") from None
        for label, name, kind in columns:
            if kind not in KINDS:
                raise DumpVersionError(
                    f"{self.name}: column {label}.{name} has kind {kind!r}, which this dbcopy ({__version__}) "
                    f"does not know (written by dbcopy {header.get('dbcopy')}); import it with that version"
                )

    # --- the models ---

    def sections(self):
        """Yield a Section per model in header order; a section left unread is read (and verified) when
        the next one is asked for. After the last, read and verify the trailer."""
        models = self.header["models"]
        previous = None
        for index, model in enumerate(models):
            missing = len(models) - index - 1
            later = f" and {missing} later model{'s' if missing != 1 else ''}" if missing else ""
            after = f"after the rows of {previous}" if previous else "after its header"
            place = _Place(after, f"the rows of {model['label']}{later} are missing", model["label"], 0)
            record = self._next(place)
            if record != ["B", index]:
                raise self._damaged(place, f"found {_shown(record)} where the rows of {model['label']} begin")
            section = Section(self, index, model)
            yield section
            section.read_to_end()
            previous = model["label"]
        self._read_trailer(previous)

    def _read_trailer(self, last_label):
        after = f"after the rows of {last_label}" if last_label else "after its header"
        place = _Place(f"{after}, before its trailer",
                       "every model's rows are there, but nothing proves the export finished")
        record = self._next(place)
        if not (isinstance(record, list) and len(record) == 2 and record[0] == "T" and isinstance(record[1], dict)):
            raise self._damaged(place, f"found {_shown(record)} where its trailer belongs")
        self.trailer = record[1]
        if self.trailer.get("models") != self.ended or self.trailer.get("rows") != sum(s["rows"] for s in self.ended):
            raise self._damaged(_Place("in its trailer"), "the trailer's counts or digests differ from the rows read")
        try:
            self.input.finish()
        except _Ended:
            raise DumpTruncated(f"{self.name} ends after its trailer, before the end of its compressed stream "
                                f"(its checksum){TRUNCATED_HINT}") from None
        except _Garbled as exc:
            raise self._damaged(_Place("at its end"), exc.reason) from None


class Section:
    """One model's rows in a dump: .model_header (its header entry), .label, and .chunks()."""

    def __init__(self, reader, index, model_header):
        self.reader, self.index, self.model_header = reader, index, model_header
        self.label = model_header["label"]
        self.width = len(model_header["columns"])
        self.decoders = _converters(model_header["columns"], lambda kind: _decoder(kind, reader.aware))
        self.rows = 0
        self.done = False
        self.digest = hashlib.blake2b(digest_size=DIGEST_BYTES)

    def chunks(self):
        """Yield lists of row tuples, values as RowReader read them at the source (binary as bytes, aware
        datetimes in UTC), each chunk verified before it is yielded; at the model's end, check its row
        count and digest. A second call continues where the first stopped."""
        while not self.done:
            rows = self._next_chunk()
            if rows is not None:
                yield rows

    def read_to_end(self):
        """Read (and verify) what is left of the section without keeping it: digests and counts, the
        values left undecoded (a chunk that matches its digest holds what the export wrote)."""
        while not self.done:
            self._next_chunk(decode=False)

    def _place(self):
        planned = self.model_header.get("rows")
        of = f" (the header planned {planned:,})" if isinstance(planned, int) else ""
        return _Place(f"inside the rows of {self.label}, after {self.rows:,} rows{of}", "", self.label, self.rows)

    def _next_chunk(self, decode=True):
        """Return the next chunk's rows, or None after reading the model's end record."""
        place = self._place()
        record = self.reader._next(place)
        if isinstance(record, list) and len(record) == 4 and record[:2] == ["R", self.index]:
            return self._rows(record[2], record[3], place, decode)
        if isinstance(record, list) and len(record) == 4 and record[:2] == ["E", self.index]:
            self._end(record[2], record[3], place)
            return None
        raise self.reader._damaged(place, f"found {_shown(record)} where rows of {self.label} belong")

    def _rows(self, payload, digest, place, decode=True):
        if not isinstance(payload, bytes) or digest != _digest(payload):
            raise self.reader._damaged(place, "a chunk of its rows does not match its digest")
        self.digest.update(digest)
        try:
            rows = msgpack.unpackb(payload, raw=False, strict_map_key=False)
            decoded = self._decoded(rows) if decode else self._counted(rows)
        except (ValueError, TypeError, OverflowError, ArithmeticError, msgpack.UnpackException) as exc:
            raise self.reader._damaged(place, f"a chunk of its rows cannot be decoded ({exc})") from None
        self.rows += len(decoded)
        return decoded

    def _counted(self, rows):
        if not isinstance(rows, list):
            raise ValueError("a chunk is not a list of rows")
        return rows

    def _decoded(self, rows):
        if not isinstance(rows, list):
            raise ValueError("a chunk is not a list of rows")
        decoded = []
        for row in rows:
            if not isinstance(row, list) or len(row) != self.width:
                raise ValueError(f"a row has {len(row) if isinstance(row, list) else 'no'} values, not {self.width}")
            for position, decode in self.decoders:
                value = row[position]
                if value is not None:
                    row[position] = decode(value)
            decoded.append(tuple(row))
        return decoded

    def _end(self, rows, digest, place):
        if rows != self.rows:
            raise self.reader._damaged(place, f"its end record counts {rows!r} rows, {self.rows:,} were read")
        if digest != self.digest.digest():
            raise self.reader._damaged(place, "its rows do not match the model's digest (a chunk is missing or moved)")
        self.done = True
        self.reader.ended.append({"label": self.label, "rows": self.rows, "digest": digest})


class _DumpFile:
    """open_dump()'s context manager: the reader, and the file it closes."""

    def __init__(self, stream, name, owned):
        self.stream, self.owned = stream, owned
        try:
            self.reader = DumpReader(stream, name)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self.reader

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.owned:
            self.stream.close()


def open_dump(path):
    """Open a dump at `path` ("-": standard input); use as `with open_dump(path) as reader:`."""
    if str(path) == "-":
        return _DumpFile(sys.stdin.buffer, "the dump on standard input", owned=False)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the returned context manager
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a dump file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    return _DumpFile(stream, str(path), owned=True)


def verify(path):
    """Read the whole dump at `path`, verifying every chunk, model and the trailer, keeping no rows;
    return {label: rows} from its trailer, or raise a DumpError."""
    with open_dump(path) as reader:
        for section in reader.sections():
            section.read_to_end()
        return {model["label"]: model["rows"] for model in reader.trailer["models"]}
