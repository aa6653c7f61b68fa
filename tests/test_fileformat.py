"""The dump file: every kind of value comes back as it was read, and a damaged, cut, foreign or
newer file is refused with a DumpError naming what is wrong — never a changed row."""

import datetime as dt
import io
import math
import random
import uuid
from decimal import Decimal

import msgpack
import pytest
import zstandard

from dbcopy import fileformat
from dbcopy.exceptions import (
    DbcopyError, DumpCorrupt, DumpError, DumpTruncated, DumpValueError, DumpVersionError, NotADump,
)
from dbcopy.fileformat import DumpReader, DumpWriter, check_header, model_header, open_dump, verify
from dbcopy.plan import Step, written_fields
from tests.copytest import models as m

UTC = dt.timezone.utc
PARIS_SUMMER = dt.timezone(dt.timedelta(hours=2))
KOLKATA = dt.timezone(dt.timedelta(hours=5, minutes=30))

# Per kind, awkward values (None first: every column is nullable).
AWKWARD = {
    "int": [None, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 7],
    "bool": [None, True, False, True, False, True, False],
    "float": [None, math.nan, math.inf, -math.inf, -0.0, 5e-324, 0.1 + 0.2],
    "text": [None, "", "emoji 🎉 and 𝄞 (4-byte UTF-8)", "ünïcødé\nmulti\tline", "x" * 100_000, "NUL\x00inside", "'\"\\"],
    "inet": [None, "192.168.0.1", "2001:db8::1", "::1", "10.0.0.0", "fe80::1", "0.0.0.0"],
    "uuid": [None, uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID("12345678-1234-5678-1234-567812345678"),
             uuid.UUID(int=1), uuid.UUID(int=2**64), uuid.UUID(int=42)],
    "decimal": [None, Decimal("123456789012345.678901234567890"), Decimal("-0.0001"), Decimal("0E-10"),
                Decimal("1.50"), Decimal("1E+30"), Decimal("-99999999999999999999999999999.9")],
    "date": [None, dt.date.min, dt.date.max, dt.date(1970, 1, 1), dt.date(1969, 12, 31), dt.date(2000, 2, 29),
             dt.date(1582, 10, 15)],
    "datetime": [None,
                 dt.datetime(1970, 1, 1, tzinfo=UTC),
                 dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                 dt.datetime(2024, 10, 27, 0, 30, 0, 500000, tzinfo=UTC),  # 02:30 in Paris, the fold hour
                 dt.datetime(2021, 3, 28, 1, 30, 15, 123456, tzinfo=UTC),  # the hour Paris skips
                 dt.datetime(1, 1, 1, tzinfo=UTC),
                 dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
    "time": [None, dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 0, 0, 1), dt.time(0, 0, 0, 1),
             dt.time(1, 2, 3), dt.time(13, 14, 15, 161718)],
    "duration": [None, dt.timedelta(0), dt.timedelta(days=-1, microseconds=1), dt.timedelta(microseconds=1),
                 dt.timedelta(days=400, seconds=5, microseconds=7), dt.timedelta(days=-106751991),
                 dt.timedelta(days=106751991)],
    "binary": [None, b"", b"\x00", b"\x00\x01\xfe\xffbinary\x00", bytes(range(256)), b"\x00" * 70_000, b"plain"],
    "json": [None, "null", '{"a": [1, 2.5, {"b": null}], "unicod\\u00e9": "\\ud83c\\udf89"}', '"string"', "42", "[]",
             '{"k": "v"}'],
    "other": [None, "text of its own type", b"raw bytes", 12345678901234, [1, "two", None, [3.5]],
              {"key": "value", "n": 1}, True],
}
KINDS = sorted(AWKWARD)
ROWS = len(AWKWARD["int"])


def column(name, kind, pk=False):
    return {"name": name, "attname": name, "column": name, "kind": kind, "type": "test", "null": not pk, "pk": pk}


def model_entry(label, columns, rows=None):
    return {"label": label, "table": label.replace(".", "_").lower(), "columns": columns, "rows": rows,
            "deferred": [], "group": None}


def header_of(models, use_tz=True, **changes):
    header = {
        "format": fileformat.FORMAT, "version": fileformat.VERSION, "dbcopy": "test", "django": "test",
        "created": "2026-01-01T00:00:00+00:00", "source": {"vendor": "test", "server": "test", "alias": "test"},
        "consistent": True, "consistency": "test", "use_tz": use_tz, "models": models, "groups": [],
    }
    header.update(changes)
    return header


def awkward_model(label="test.AllKinds"):
    columns = [column("id", "int", pk=True)] + [column(f"c_{kind}", kind) for kind in KINDS]
    rows = [tuple([number] + [AWKWARD[kind][number] for kind in KINDS]) for number in range(ROWS)]
    return model_entry(label, columns, len(rows)), rows


def write(header, sections):
    """Return the bytes of a dump of header with {label: [chunk, ...]} rows."""
    out = io.BytesIO()
    writer = DumpWriter(out, header)
    for model in header["models"]:
        writer.begin(model["label"])
        for chunk in sections.get(model["label"], []):
            writer.write_rows(chunk)
        writer.end()
    writer.close()
    return out.getvalue()


def read(data):
    """Return ({label: rows}, header, trailer) of a dump's bytes."""
    reader = DumpReader(io.BytesIO(data))
    rows = {}
    for section in reader.sections():
        rows[section.label] = [row for chunk in section.chunks() for row in chunk]
    return rows, reader.header, reader.trailer


def read_until_error(data):
    """Read a dump as an importer would; return (the rows it handed out per label, the error raised)."""
    got = {}
    try:
        reader = DumpReader(io.BytesIO(data))
        for section in reader.sections():
            got[section.label] = []
            for chunk in section.chunks():
                got[section.label] += chunk
    except DumpError as exc:
        return got, exc
    return got, None


def same(expected, got):
    """Return whether two values are the same: equal, of one type, NaN for NaN, one UTC offset."""
    if isinstance(expected, (memoryview, bytearray)):
        expected = bytes(expected)
    if type(expected) is not type(got):
        return False
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(got)
    if isinstance(expected, float):
        return math.copysign(1, expected) == math.copysign(1, got) and expected == got
    if isinstance(expected, Decimal):
        return str(expected) == str(got)  # every digit and the exponent
    if isinstance(expected, dt.datetime):
        return expected == got and expected.utcoffset() == got.utcoffset()
    return expected == got


def assert_rows_same(expected, got, label=""):
    assert len(expected) == len(got), f"{label}: {len(got)} rows read, {len(expected)} written"
    for number, (want, have) in enumerate(zip(expected, got)):
        assert type(have) is tuple, f"{label} row {number} is a {type(have).__name__}, not a tuple"
        for position, (a, b) in enumerate(zip(want, have)):
            assert same(a, b), f"{label} row {number} column {position}: wrote {a!r}, read {b!r}"


def small_dump():
    """A dump of three models, several chunks each (the last model empty); return (bytes, rows per label)."""
    kinds_model, kinds_rows = awkward_model()
    tags = model_entry("test.Tag", [column("id", "int", pk=True), column("name", "text")], 9)
    empty = model_entry("test.Empty", [column("id", "uuid", pk=True)], 0)
    tag_rows = [(i, f"tag {i} ✓") for i in range(9)]
    header = header_of([kinds_model, tags, empty])
    data = write(header, {
        kinds_model["label"]: [kinds_rows[:3], kinds_rows[3:5], kinds_rows[5:]],
        "test.Tag": [tag_rows[:4], tag_rows[4:8], tag_rows[8:]],
    })
    return data, {kinds_model["label"]: kinds_rows, "test.Tag": tag_rows, "test.Empty": []}


def assert_prefix_of_written(got, written):
    """Rows handed out before an error are exactly the first rows written, never a changed one."""
    for label, rows in got.items():
        assert_rows_same(written[label][: len(rows)], rows, label)


# --- round trips -------------------------------------------------------------------------------


def test_every_kind_round_trips_awkward_values_exactly():
    model, rows = awkward_model()
    data = write(header_of([model]), {model["label"]: [rows]})

    got, header, trailer = read(data)

    assert_rows_same(rows, got[model["label"]], model["label"])
    assert [c["kind"] for c in header["models"][0]["columns"]] == ["int", *KINDS]
    assert trailer["rows"] == ROWS and trailer["models"][0]["rows"] == ROWS


def test_aware_datetimes_in_any_zone_come_back_as_the_same_instant_in_utc():
    model = model_entry("test.Moment", [column("id", "int", pk=True), column("at", "datetime")])
    moments = [dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS_SUMMER), dt.datetime(2021, 3, 28, 1, 30, 15, 123456,
                                                                                   tzinfo=KOLKATA)]
    data = write(header_of([model]), {"test.Moment": [[(i, at) for i, at in enumerate(moments)]]})

    got = read(data)[0]["test.Moment"]

    assert [at for _, at in got] == moments
    assert all(at.utcoffset() == dt.timedelta(0) for _, at in got)


def test_naive_datetimes_when_use_tz_is_false():
    model = model_entry("test.Naive", [column("id", "int", pk=True), column("at", "datetime")])
    rows = [(1, dt.datetime(1969, 12, 31, 23, 59, 59, 999999)), (2, dt.datetime(2038, 1, 19, 3, 14, 8, 654321))]

    got, header, _ = read(write(header_of([model], use_tz=False), {"test.Naive": [rows]}))

    assert header["use_tz"] is False
    assert_rows_same(rows, got["test.Naive"], "test.Naive")


def test_a_chunk_past_the_payload_limit_is_split_and_reads_back_whole(monkeypatch):
    monkeypatch.setattr(fileformat, "MAX_PAYLOAD_BYTES", 2_000)
    model = model_entry("test.Blob", [column("id", "int", pk=True), column("blob", "binary")])
    rows = [(i, bytes([i]) * 300) for i in range(40)]

    reader = DumpReader(io.BytesIO(write(header_of([model]), {"test.Blob": [rows]})))
    chunks = [chunk for section in reader.sections() for chunk in section.chunks()]

    assert len(chunks) > 1, "one write_rows() call past MAX_PAYLOAD_BYTES should become several chunks"
    assert_rows_same(rows, [row for chunk in chunks for row in chunk], "test.Blob")


def test_verify_returns_the_trailer_counts(tmp_path):
    data, written = small_dump()
    path = tmp_path / "data.dbcopy"
    path.write_bytes(data)

    assert verify(path) == {label: len(rows) for label, rows in written.items()}


def test_an_unread_section_is_verified_when_the_next_one_is_asked_for():
    data, written = small_dump()
    reader = DumpReader(io.BytesIO(data))
    labels = []
    for section in reader.sections():
        labels.append(section.label)  # rows left unread
    assert labels == list(written)
    assert reader.trailer["rows"] == sum(len(rows) for rows in written.values())


# --- values a dump refuses ---------------------------------------------------------------------


@pytest.mark.parametrize("kind,value,says", [
    ("date", "2024-01-01", "type str"),
    ("date", dt.datetime(2024, 1, 1), "type datetime"),
    ("datetime", dt.datetime(2024, 1, 1), "aware datetimes"),  # naive under USE_TZ = True
    ("decimal", 1.5, "type float"),
    ("uuid", "12345678123456781234567812345678", "type str"),
    ("time", dt.time(1, 2, tzinfo=UTC), "without a time zone"),
    ("other", (1, 2), "type tuple"),
    ("int", 2**64, "out of range"),
    ("duration", dt.timedelta(days=999_999_999), "cannot carry"),
])
def test_a_value_its_column_kind_cannot_carry_names_model_pk_and_field(kind, value, says):
    model = model_entry("test.Odd", [column("code", "text", pk=True), column("value", kind)])
    writer = DumpWriter(io.BytesIO(), header_of([model]))
    writer.begin("test.Odd")

    with pytest.raises(DumpValueError) as caught:
        writer.write_rows([("fine", None), ("bad-one", value)])

    message = str(caught.value)
    assert "test.Odd" in message and "pk='bad-one'" in message and "field 'value'" in message, message
    assert says in message, message
    assert caught.value.returncode == 1


# --- cut short ---------------------------------------------------------------------------------


def test_every_prefix_of_a_small_dump_reads_as_truncated_and_never_yields_a_wrong_row():
    data, written = small_dump()
    labels = list(written)
    for cut in range(len(data)):
        got, error = read_until_error(data[:cut])
        assert isinstance(error, DumpTruncated), f"cut at {cut} of {len(data)}: {error!r}"
        assert error.returncode == 2
        assert_prefix_of_written(got, written)
        if error.label is not None:
            assert error.label in str(error), str(error)
            assert error.rows == len(got.get(error.label, [])), f"cut at {cut}: {error}"
            unread = labels[labels.index(error.label) + 1:]
            assert not any(got.get(label) for label in unread), f"cut at {cut}: rows after {error.label} read"
    assert read_until_error(data)[1] is None


def test_a_cut_inside_a_model_names_it_and_the_rows_read():
    model = model_entry("test.Tag", [column("id", "int", pk=True), column("name", "text")], 9)
    stream = io.BytesIO()
    writer = DumpWriter(stream, header_of([model]))
    writer.begin("test.Tag")
    writer.write_rows([(i, "x") for i in range(4)])
    stream.write(writer.compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))  # what a long export has written by then

    got, error = read_until_error(stream.getvalue())

    assert isinstance(error, DumpTruncated), repr(error)
    assert error.label == "test.Tag" and error.rows == 4 and got == {"test.Tag": [(i, "x") for i in range(4)]}
    assert "inside the rows of test.Tag, after 4 rows (the header planned 9)" in str(error), str(error)
    assert "export again" in str(error)


def larger_dump():
    """A dump of 20,000 rows of random bytes (incompressible: many zstd blocks); return (bytes, rows)."""
    noise = random.Random(10)
    model = model_entry("test.Big", [column("id", "int", pk=True), column("blob", "binary"), column("at", "datetime")])
    rows = [(i, noise.randbytes(100), dt.datetime(2020, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=i * 7919))
            for i in range(20_000)]
    chunks = [rows[i:i + 2_000] for i in range(0, len(rows), 2_000)]
    data = write(header_of([model]), {"test.Big": chunks})
    assert len(data) > 2_000_000
    return data, {"test.Big": rows}


def test_a_stride_through_a_larger_dump_reads_as_truncated_at_every_cut():
    data, written = larger_dump()
    for cut in range(0, len(data), 49_999):
        got, error = read_until_error(data[:cut])
        assert isinstance(error, DumpTruncated), f"cut at {cut} of {len(data)}: {error!r}"
        assert_prefix_of_written(got, written)


# --- damaged -----------------------------------------------------------------------------------


def test_a_flipped_bit_anywhere_is_refused_and_never_yields_a_wrong_row():
    data, written = small_dump()
    kinds, unchanged = set(), 0
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        got, error = read_until_error(bytes(damaged))
        assert_prefix_of_written(got, written)
        if error is None:
            # A bit zstd ignores (an unused flag, padding): the checksum proved the content unchanged.
            assert list(got) == list(written), f"flip at {position} of {len(data)}: models missing without an error"
            for label, rows in written.items():
                assert_rows_same(rows, got[label], f"flip at {position}: {label}")
            unchanged += 1
            continue
        assert error.returncode == 2
        kinds.add(type(error))
    # Almost every flip is damage; one in the frame's magic makes it no zstd file, one in a size
    # field can leave the decompressor waiting for bytes that never come.
    assert DumpCorrupt in kinds and kinds <= {DumpCorrupt, NotADump, DumpTruncated, DumpVersionError}, kinds
    assert unchanged < len(data) // 50, f"{unchanged} of {len(data)} flips went unnoticed"


def test_a_flipped_bit_deep_in_a_larger_dump_is_caught_in_its_chunk_before_the_end():
    data, written = larger_dump()
    for position in range(1_000, len(data), 49_999):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        got, error = read_until_error(bytes(damaged))
        assert isinstance(error, DumpCorrupt), f"flip at {position} of {len(data)}: {error!r}"
        assert_prefix_of_written(got, written)
        assert len(got["test.Big"]) < 20_000, "the damage was only noticed at the end"


def test_a_changed_row_is_caught_by_its_chunk_digest_before_it_is_handed_out():
    model = model_entry("test.Tag", [column("id", "int", pk=True), column("name", "text")])
    header = header_of([model])
    good = write(header, {"test.Tag": [[(1, "alpha")], [(2, "beta")]]})
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(good)
    changed = plain.replace(b"beta", b"bet4")
    assert changed != plain
    rewrapped = zstandard.ZstdCompressor(write_checksum=False).compress(changed)

    got, error = read_until_error(rewrapped)

    assert isinstance(error, DumpCorrupt), repr(error)
    assert got == {"test.Tag": [(1, "alpha")]}
    assert "test.Tag" in str(error) and "digest" in str(error), str(error)


def test_bytes_after_the_end_are_damage():
    data, _ = small_dump()
    got, error = read_until_error(data + b"\x00")
    assert isinstance(error, DumpCorrupt) and "follows the end" in str(error), repr(error)


# --- not a dump, or another version ------------------------------------------------------------


@pytest.mark.parametrize("content", [
    b"PK\x03\x04 a zip file",
    b'{"model": "copytest.book", "pk": 1}',
    b"\x1f\x8b\x08\x00 gzip",
])
def test_a_file_that_is_no_zstd_frame_is_not_a_dump(content):
    with pytest.raises(NotADump, match="not a dbcopy dump") as caught:
        DumpReader(io.BytesIO(content))
    assert caught.value.returncode == 2


def test_a_zstd_file_of_other_content_is_not_a_dump():
    content = zstandard.ZstdCompressor().compress(msgpack.packb({"format": "something else"}))
    with pytest.raises(NotADump, match="does not start with a dbcopy header"):
        DumpReader(io.BytesIO(content))


def test_an_empty_file_reads_as_truncated():
    with pytest.raises(DumpTruncated, match="is empty"):
        DumpReader(io.BytesIO(b""))


def test_a_newer_format_version_is_refused_naming_both_versions():
    model = model_entry("test.Tag", [column("id", "int", pk=True)])
    data = write(header_of([model], version=2, dbcopy="9.0"), {})
    with pytest.raises(DumpVersionError) as caught:
        DumpReader(io.BytesIO(data))
    message = str(caught.value)
    assert "format version 2" in message and "dbcopy 9.0" in message and "reads version 1" in message, message
    assert caught.value.returncode == 2


def test_an_unknown_column_kind_is_refused_as_a_version_error():
    model = model_entry("test.Tag", [column("id", "int", pk=True), column("shape", "geometry")])
    data = write(header_of([model]), {})
    with pytest.raises(DumpVersionError, match="test.Tag.shape has kind 'geometry'"):
        DumpReader(io.BytesIO(data))


def test_open_dump_names_a_missing_file(tmp_path):
    with pytest.raises(DbcopyError, match="no such file") as caught:
        open_dump(tmp_path / "missing.dbcopy")
    assert caught.value.returncode == 2


# --- the header against this project's models -------------------------------------------------


def copytest_entry(model, rows=0):
    return model_header(Step(model, "default", "default", written_fields(model)), rows)


def test_a_header_of_this_projects_models_fits():
    header = header_of([copytest_entry(m.AllTypes), copytest_entry(m.Book), copytest_entry(m.Book.tags.through)])
    assert check_header(header) == []
    assert check_header(header, ["copytest"]) == []
    assert check_header(header, ["copytest.Book"]) == []


def test_the_header_records_kinds_types_and_keys_of_the_columns():
    entry = copytest_entry(m.AllTypes, rows=7)
    columns = {c["name"]: c for c in entry["columns"]}
    assert entry["label"] == "copytest.AllTypes" and entry["table"] == "copytest_alltypes" and entry["rows"] == 7
    assert columns["id"]["pk"] is True and columns["uuid"]["pk"] is False
    assert {name: columns[name]["kind"] for name in ("uuid", "amount", "moment", "blob", "data", "ip", "ratio")} == {
        "uuid": "uuid", "amount": "decimal", "moment": "datetime", "blob": "binary", "data": "json", "ip": "inet",
        "ratio": "float",
    }
    assert columns["amount"]["type"] == "DecimalField" and columns["maybe"]["null"] is True


def test_a_header_for_other_models_names_every_difference():
    renamed = copytest_entry(m.Author)
    renamed["table"] = "legacy_author"
    retyped = copytest_entry(m.Tag)
    next(c for c in retyped["columns"] if c["name"] == "name")["kind"] = "int"
    reshaped = copytest_entry(m.Publisher)
    reshaped["columns"] = [c for c in reshaped["columns"] if c["name"] != "name"] + [column("founded", "date")]
    header = header_of([renamed, retyped, reshaped, model_entry("shop.Order", [column("id", "int", pk=True)])])

    problems = check_header(header)

    text = "\n".join(problems)
    assert "copytest.Author: the dump's table is legacy_author, this project's is copytest_author" in text, text
    assert "copytest.Tag.name: the dump holds int values" in text and "holds text" in text, text
    assert "copytest.Publisher: the dump has columns this project's model lacks: founded" in text, text
    assert "copytest.Publisher: this project's model has fields the dump lacks: name" in text, text
    assert "shop.Order: no such model is installed in this project" in text, text
    assert len(problems) == 5, problems


def test_labels_the_dump_does_not_hold_are_named():
    header = header_of([copytest_entry(m.Book)])
    problems = check_header(header, ["copytest.Author", "auth"])
    assert len(problems) == 2 and all("the dump holds no such model (it holds copytest.Book)" in p for p in problems)
