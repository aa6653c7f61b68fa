"""`dbcopy import`: a dump written by `dbcopy export` is replayed into a destination through the copy
engine, and the destination then holds what the source holds (proved by `compare --checksum`). A
damaged, cut, foreign or newer dump is refused before anything is written; a dump that ends early
on standard input stops the import where it ended, and `--resume` from the whole file finishes it."""

import os
import pty
import re
import shlex
import signal
import subprocess
import tempfile
import time

import msgpack
import pytest
import zstandard

from dbcopy.fileformat import open_dump
from dbcopy.importer import SHADOW_ALIAS
from tests import helpers as h
from tests.copytest import models as m
from tests.test_export import PYTHON, command, environment
from tests.test_fileformat import column, copytest_entry, header_of, model_entry, write

# The import registers an alias of its own at run time (the dump's stand-in source): url_pair.
PAIRS = [h.url_pair(f"{s}_a", f"{d}_b") for s in h.VENDOR_ALIASES for d in h.VENDOR_ALIASES]


def export(source, path, *labels, **options):
    result = h.dbcopy("export", *labels, source=source, output=str(path), **options)
    h.assert_ok(result)
    return result


def import_(path, dest, *labels, **options):
    return h.dbcopy("import", str(path), *labels, dest=dest, **options)


def assert_same_content(source, dest, *labels):
    h.assert_ok(h.dbcopy("compare", *(labels or ("copytest",)), source=source, dest=dest, checksum=True))


def assert_fresh_ids_at(dest, source):
    """Rows created at the destination get ids past the imported ones (the sequences were reset)."""
    for model, values in ((m.Tag, {"name": "new at the destination"}), (m.Category, {"name": "new"}),
                          (m.AllTypes, {"text": "new", "data": {}})):
        highest = max(model._base_manager.using(source).values_list("pk", flat=True))
        created = model._base_manager.db_manager(dest).create(**values)
        assert created.pk > highest, f"{h.label(model)}: new row got id {created.pk}, the source's highest is {highest}"


def describe(proc, *streams):
    return f"exit {proc.returncode}\n" + "\n".join(s.decode() if isinstance(s, bytes) else s for s in streams)


def piped(source, dest, export_args=(), import_args=()):
    """Run `export -o - | import -` as two real processes joined by a pipe; return the exporter, its
    messages, the importer and its output."""
    exporter = subprocess.Popen(command("export", "--source", source, "-o", "-", *export_args),
                                cwd=h.REPO_DIR, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    importer = subprocess.Popen(command("import", "-", "--dest", dest, *import_args), cwd=h.REPO_DIR,
                                env=environment(), stdin=exporter.stdout, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    exporter.stdout.close()  # the importer holds the read end: the exporter sees it close
    out, err = importer.communicate(timeout=240)
    export_err = exporter.stderr.read()
    exporter.wait(timeout=60)
    exporter.stderr.close()
    return exporter, export_err.decode(), importer, (out + err).decode()


def run_import(*args, stdin=None):
    """Run the real `import` command; return (returncode, output)."""
    proc = subprocess.run(command("import", *args), cwd=h.REPO_DIR, env=environment(), input=stdin,
                          capture_output=True, timeout=240)
    return proc.returncode, (proc.stdout + proc.stderr).decode()


# --- every vendor pair -------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_dump_through_a_pipe_or_a_file_leaves_the_destination_holding_what_the_source_holds(
        source, dest, tmp_path):
    h.seed_core(source)

    exporter, export_err, importer, output = piped(source, dest, export_args=["copytest"])

    assert exporter.returncode == 0, describe(exporter, export_err)
    assert importer.returncode == 0, describe(importer, output)
    assert "Traceback" not in output, output
    assert_same_content(source, dest)

    path = tmp_path / "core.dbcopy"
    export(source, path, "copytest")
    result = import_(path, dest, truncate=True, report_json=tmp_path / "report.json")

    h.assert_ok(result)
    assert_same_content(source, dest)
    assert_fresh_ids_at(dest, source)
    assert re.search(r"Source snapshot: consistent: .+ \(when `dbcopy export` read the source on ", result.output), \
        result.output
    assert result.report["source"] == f"the dump {path}", result.report["source"]
    assert result.report["consistent"] is True and result.report["ok"] is True, result.report


def rewritten_in_reverse(path, target):
    """Write the dump at `path` again with its models in the reverse order (rows held in memory: a test's
    few rows), so that an import must read past each model's rows before it can write them."""
    with open_dump(path) as reader:
        header = reader.header
        sections = {s.label: [list(chunk) for chunk in s.chunks()] for s in reader.sections()}
    header["models"].reverse()
    target.write_bytes(write(header, sections))
    return target


@pytest.mark.parametrize("source,dest", [h.url_pair("pg_a", "mysql_b")])
def test_a_dump_whose_models_and_chunks_come_in_another_order_and_size_is_written_in_foreign_key_order(source, dest, tmp_path):
    h.seed_core(source)
    path = tmp_path / "core.dbcopy"
    export(source, path, "copytest", chunk_size=3)
    reversed_path = rewritten_in_reverse(path, tmp_path / "reversed.dbcopy")
    assert dump_order(reversed_path)[0] != dump_order(path)[0]

    # Chunks of 3 rows in the dump, written 7 at a time: the import's chunks need not be the export's.
    h.assert_ok(import_(reversed_path, dest, chunk_size=7))

    assert_same_content(source, dest)


# --- damage is refused before anything is written ----------------------------------------------

DAMAGE_PAIR = [h.url_pair("sqlite_a", "pg_b")]


def destination_state(dest):
    """Return what the destination holds: every table's row count, and the rows of a few tables."""
    return h.all_table_counts(dest), h.table_rows(m.Tag, dest), h.table_rows(m.Book, dest)


def assert_refused_before_writing(result, dest, before, says):
    assert result.returncode == 2, f"expected exit status 2:\n{result}"
    assert says in result.error, f"{says!r} not in the message:\n{result}"
    assert "Traceback" not in result.output, str(result)
    assert destination_state(dest) == before, f"the destination changed:\n{result}"


def cut_before_trailer(data):
    """Return the dump's bytes up to its trailer record, compressed without ending the frame: what
    an export stopped just before its trailer leaves behind."""
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(raw))
    unpacker.feed(raw)
    start = 0
    for record in unpacker:
        if isinstance(record, list) and record[:1] == ["T"]:
            break
        start = unpacker.tell()
    compressor = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    return compressor.compress(raw[:start]) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


@pytest.mark.parametrize("source,dest", DAMAGE_PAIR)
def test_a_file_cut_short_anywhere_is_refused_before_anything_is_written(source, dest, tmp_path):
    h.seed_core(source)
    h.seed_core(dest)  # rows a --truncate would delete
    whole = tmp_path / "whole.dbcopy"
    export(source, whole, "copytest", chunk_size=5)
    data = whole.read_bytes()
    before = destination_state(dest)
    # Inside the zstd frame header, inside the dump's header, through the rows, inside the checksum.
    cuts = sorted({1, 6, 20, *(len(data) * i // 8 for i in range(1, 8)), len(data) - 2})
    assert len(cuts) >= 10, cuts

    for cut in cuts:
        path = tmp_path / f"cut-{cut}.dbcopy"
        path.write_bytes(data[:cut])
        result = import_(path, dest, truncate=True)
        assert_refused_before_writing(result, dest, before, "export again")
        assert re.search(r"\bends\b|is empty", result.error), result.error

    path = tmp_path / "no-trailer.dbcopy"
    path.write_bytes(cut_before_trailer(data))
    result = import_(path, dest, truncate=True)
    assert_refused_before_writing(result, dest, before, "before its trailer")

    # Standard input cannot be verified first: every row arrives, and the missing trailer is reported.
    code, output = run_import("-", "--dest", dest, "--truncate", "--no-input", stdin=path.read_bytes())
    assert code == 1 and "before its trailer" in output and "Traceback" not in output, output
    assert "Import finished with problems: the rows written are as the dump holds them" in output, output
    assert_same_content(source, dest)


@pytest.mark.parametrize("source,dest", DAMAGE_PAIR)
def test_a_flipped_byte_is_refused_before_anything_is_written(source, dest, tmp_path):
    h.seed_core(source)
    h.seed_core(dest)
    whole = tmp_path / "whole.dbcopy"
    export(source, whole, "copytest", chunk_size=5)
    data = bytearray(whole.read_bytes())
    data[len(data) // 2] ^= 0x10
    path = tmp_path / "flipped.dbcopy"
    path.write_bytes(bytes(data))
    before = destination_state(dest)

    result = import_(path, dest, truncate=True)

    assert_refused_before_writing(result, dest, before, "is damaged")


def tag_entry(**changes):
    entry = copytest_entry(m.Tag, rows=1)
    entry.update(changes)
    return entry


def crafted(tmp_path, models, sections, **header_changes):
    """Write a dump of the given header entries and {label: [chunk, ...]}; return its path."""
    path = tmp_path / "crafted.dbcopy"
    path.write_bytes(write(header_of(models, **header_changes), sections))
    return path


UNFIT_DUMPS = {
    # id: (header entries, sections, header changes, what the message says)
    "another-format-version": (
        [tag_entry()], {"copytest.Tag": [[(1, "crafted")]]}, {"version": 2, "dbcopy": "9.9"},
        "dbcopy dump of format version 2 (written by dbcopy 9.9)"),
    "a-model-this-project-lacks": (
        [tag_entry(), model_entry("shop.Order", [column("id", "int", pk=True)], rows=1)],
        {"copytest.Tag": [[(1, "crafted")]], "shop.Order": [[(1,)]]}, {},
        "shop.Order: no such model is installed in this project"),
    "a-column-the-model-lacks": (
        [tag_entry(columns=tag_entry()["columns"] + [column("colour", "text")])],
        {"copytest.Tag": [[(1, "crafted", "red")]]}, {},
        "copytest.Tag: the dump has columns this project's model lacks: colour"),
    "a-field-the-dump-lacks": (
        [tag_entry(columns=[c for c in tag_entry()["columns"] if c["name"] != "name"])],
        {"copytest.Tag": [[(1,)]]}, {},
        "copytest.Tag: this project's model has fields the dump lacks: name"),
    "another-table": (
        [tag_entry(table="legacy_tag")], {"copytest.Tag": [[(1, "crafted")]]}, {},
        "copytest.Tag: the dump's table is legacy_tag, this project's is copytest_tag"),
    "content-types-the-dump-lacks": (
        [copytest_entry(m.TaggedItem, rows=1)], {"copytest.TaggedItem": [[(1, 7, 1, "crafted")]]}, {},
        "copytest.TaggedItem.content_type: its ids of contenttypes.ContentType can only be translated"),
    "another-use-tz": (
        [tag_entry()], {"copytest.Tag": [[(1, "crafted")]]}, {"use_tz": False},
        "the dump's datetimes are naive (USE_TZ = False), this project's are aware"),
}


@pytest.mark.parametrize("case", list(UNFIT_DUMPS))
@pytest.mark.parametrize("source,dest", DAMAGE_PAIR)
def test_a_dump_that_does_not_fit_this_project_is_refused_before_anything_is_written(source, dest, case, tmp_path):
    models, sections, changes, says = UNFIT_DUMPS[case]
    path = crafted(tmp_path, models, sections, **changes)
    m.Tag.objects.using(dest).bulk_create(m.Tag(name=f"there before {i}") for i in range(3))
    before = destination_state(dest)

    result = import_(path, dest, truncate=True)

    assert_refused_before_writing(result, dest, before, says)


@pytest.mark.parametrize("source,dest", DAMAGE_PAIR)
def test_a_file_that_is_no_dump_is_refused(source, dest, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"id,name\n1,tag\n")
    before = destination_state(dest)
    assert_refused_before_writing(import_(path, dest, truncate=True), dest, before, "is not a dbcopy dump")
    missing = import_(tmp_path / "missing.dbcopy", dest)
    assert missing.returncode == 2 and "no such file" in missing.error, str(missing)


@pytest.mark.parametrize("source,dest", DAMAGE_PAIR)
def test_standard_input_that_is_a_terminal_is_refused(source, dest):
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(command("import", "-", "--dest", dest), cwd=h.REPO_DIR, env=environment(),
                              stdin=terminal, capture_output=True, timeout=240)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 2, describe(proc, proc.stdout, proc.stderr)
    assert b"standard input is a terminal" in proc.stderr, proc.stderr


@pytest.mark.parametrize("source,dest", DAMAGE_PAIR)
def test_a_header_that_does_not_fit_is_refused_on_standard_input_before_anything_is_written(source, dest, tmp_path):
    models, sections, changes, says = UNFIT_DUMPS["a-column-the-model-lacks"]
    data = crafted(tmp_path, models, sections, **changes).read_bytes()
    m.Tag.objects.using(dest).bulk_create(m.Tag(name=f"there before {i}") for i in range(3))
    before = destination_state(dest)

    code, output = run_import("-", "--dest", dest, "--truncate", "--no-input", stdin=data)

    assert code == 2, output
    assert says in output and "Traceback" not in output, output
    assert destination_state(dest) == before


# --- a dump cut short on standard input --------------------------------------------------------

MANY_TAGS = 20_000


def seed_with_many_tags(alias):
    """The test app's rows, and a Tag table big enough to stop (or be stopped) in the middle of."""
    h.seed_core(alias)
    m.Tag.objects.using(alias).bulk_create(m.Tag(name=f"many {i:05d}") for i in range(MANY_TAGS))


def dump_order(path):
    with open_dump(path) as reader:
        return [model["label"] for model in reader.header["models"]]


def assert_holds_a_prefix_of_the_source(model, source, dest):
    """Return how many rows dest holds: the source's first rows in key order, none missing between."""
    at_source = list(model._base_manager.using(source).order_by("pk").values_list("pk", "name"))
    at_dest = list(model._base_manager.using(dest).order_by("pk").values_list("pk", "name"))
    assert at_dest == at_source[:len(at_dest)], f"{h.label(model)}: not a prefix of the source's rows"
    return len(at_dest)


@pytest.mark.parametrize("source,dest", [h.url_pair("pg_a", "mysql_b")])
def test_a_dump_cut_short_on_standard_input_stops_where_it_ends_and_resume_from_the_file_finishes(
        source, dest, tmp_path):
    seed_with_many_tags(source)
    whole = tmp_path / "whole.dbcopy"
    export(source, whole, "copytest", chunk_size=500)
    data = whole.read_bytes()

    code, output = run_import("-", "--dest", dest, "--chunk-size", "100", stdin=data[:len(data) // 2])

    assert code == 1, output
    assert "Traceback" not in output, output
    assert "ends inside the rows of copytest.Tag" in output, output
    order = dump_order(whole)
    stop = order.index("copytest.Tag")
    for label in order[:stop]:
        model = h.apps.get_model(label)
        if model is not h.ContentType:  # matched by natural key, not copied
            assert model._base_manager.using(dest).count() == model._base_manager.using(source).count(), label
    written = assert_holds_a_prefix_of_the_source(m.Tag, source, dest)
    assert 0 < written < MANY_TAGS and written % 100 == 0, f"{written} rows: not whole chunks"
    for label in order[stop + 1:]:
        assert h.apps.get_model(label)._base_manager.using(dest).count() == 0, f"{label} was written"
    found = re.search(r"python -m django dbcopy import (.+)", output)
    assert found and "--resume" in found.group(1), output

    resumed = import_(whole, dest, resume=True, report_json=tmp_path / "report.json")

    h.assert_ok(resumed)
    assert resumed.entry("copytest.Tag")["resumed_rows"] == written, resumed.entry("copytest.Tag")
    assert_same_content(source, dest)


# --- Ctrl-C --------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.url_pair("sqlite_a", "pg_b")])
def test_ctrl_c_stops_after_the_chunk_says_how_to_continue_and_resume_finishes(source, dest, tmp_path):
    seed_with_many_tags(source)
    whole = tmp_path / "whole.dbcopy"
    export(source, whole, "copytest")
    proc = subprocess.Popen(command("import", str(whole), "--dest", dest, "--chunk-size", "50", "-v", "2"),
                            cwd=h.REPO_DIR, env=environment(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    seen = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        seen.append(line)
        found = re.match(r"\s+copytest\.Tag: ([\d,]+) rows", line)
        if found and int(found.group(1).replace(",", "")) >= 500:
            proc.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, "the import never reached copytest.Tag"
    output = "".join(seen) + proc.communicate(timeout=120)[0]

    assert proc.returncode == 130, output
    assert "Traceback" not in output, output
    written = assert_holds_a_prefix_of_the_source(m.Tag, source, dest)
    assert 0 < written < MANY_TAGS and written % 50 == 0, written
    found = re.search(r"To continue: (.+)", output)
    assert found, output
    argv = [PYTHON, *shlex.split(found.group(1))[1:]]
    assert "import" in argv and str(whole) in argv and "--resume" in argv, argv

    resumed = subprocess.run(argv, cwd=h.REPO_DIR, env=environment(), capture_output=True, text=True, timeout=240)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_same_content(source, dest)


# --- which models -------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.url_pair("mysql_a", "sqlite_b")])
def test_labels_and_exclude_pick_models_from_the_dump(source, dest, tmp_path):
    h.seed_core(source)
    path = tmp_path / "all.dbcopy"
    export(source, path, "copytest")

    picked = import_(path, dest, "copytest.Tag", "copytest.Category", report_json=tmp_path / "picked.json")

    h.assert_ok(picked)
    imported = {e["model"] for e in picked.report["models"] if e["status"] == "ok"}
    assert imported == {"copytest.Tag", "copytest.Category"}, imported
    assert m.Book.objects.using(dest).count() == 0
    assert_same_content(source, dest, "copytest.Tag", "copytest.Category")

    rest = import_(path, dest, "copytest", exclude=["copytest.Tag", "copytest.Category", "copytest.Book_tags",
                                                    "copytest.Review"], append=True)

    h.assert_ok(rest)
    assert m.Review.objects.using(dest).count() == 0 and m.Book.tags.through.objects.using(dest).count() == 0
    excluded = ["copytest.Review", "copytest.Book_tags"]
    h.assert_ok(h.dbcopy("compare", "copytest", source=source, dest=dest, checksum=True, exclude=excluded))


@pytest.mark.parametrize("source,dest", [h.url_pair("sqlite_a", "pg_b")])
def test_a_label_the_dump_does_not_hold_is_refused_naming_it(source, dest, tmp_path):
    h.seed_core(source)
    path = tmp_path / "tags.dbcopy"
    export(source, path, "copytest.Tag")

    result = import_(path, dest, "copytest.Tag", "copytest.Book")

    assert result.returncode == 2, str(result)
    assert "copytest.Book: the dump holds no such model" in result.error, result.error
    assert m.Tag.objects.using(dest).count() == 0


@pytest.mark.parametrize("source,dest", [h.url_pair("sqlite_a", "pg_b")])
def test_a_through_table_the_export_left_out_is_left_out(source, dest, tmp_path):
    h.seed_core(source)
    path = tmp_path / "no-through.dbcopy"
    export(source, path, "copytest.Tag", "copytest.Book", "copytest.Publisher", "copytest.Author",
           "copytest.Currency", exclude=["copytest.Book_tags"])

    result = import_(path, dest, report_json=tmp_path / "report.json")

    h.assert_ok(result)
    assert result.entry("copytest.Book_tags")["status"] == "skipped", result.entry("copytest.Book_tags")
    assert m.Book.objects.using(dest).count() == 14 and m.Book.tags.through.objects.using(dest).count() == 0


@pytest.mark.unguarded_db("sqlite_a", "default", "sqlite_b", "pg_b", "mysql_b")
def test_without_dest_the_router_places_each_model_and_content_types_are_matched_at_each(settings, tmp_path):
    source = "sqlite_a"
    h.seed_core(source)
    path = tmp_path / "routed.dbcopy"
    export(source, path, "copytest.TaggedItem", "copytest.Note", "copytest.AllTypes", "contenttypes")
    settings.DATABASE_ROUTERS = ["tests.copytest.routers.SplitRouter"]

    result = h.dbcopy("import", str(path), report_json=tmp_path / "report.json")

    h.assert_ok(result)
    matched = [e["dest"] for e in result.report["models"] if e["model"] == "contenttypes.ContentType"]
    assert sorted(matched) == ["default", "sqlite_b"], matched
    for model, dest in ((m.Note, "pg_b"), (m.AllTypes, "mysql_b"), (m.TaggedItem, "sqlite_b")):
        assert h.diff_tables(model, source, dest) == [], h.label(model)


@pytest.mark.parametrize("dest,skipped", [("pg_b", True), ("sqlite_b", False)], ids=["other-vendor", "same-vendor"])
@pytest.mark.unguarded_db("sqlite_a", "pg_b", "sqlite_b")
def test_a_search_index_is_left_out_across_vendors_as_a_copy_leaves_it_out(dest, skipped, settings, tmp_path):
    source = "sqlite_a"
    settings.DBCOPY_SEARCH_INDEX_MODELS = {"copytest.FreeText": "python manage.py rebuild_freetext"}
    m.FreeText.objects.using(source).create(title="indexed", body="body")
    path = tmp_path / "index.dbcopy"
    export(source, path, "copytest.FreeText", "copytest.Tag")

    result = import_(path, dest, report_json=tmp_path / "report.json")

    h.assert_ok(result)
    entry = result.entry("copytest.FreeText")
    if skipped:
        assert entry["status"] == "skipped" and "rebuild_freetext" in entry["reason"], entry
        assert m.FreeText.objects.using(dest).count() == 0
    else:
        assert entry["status"] == "ok" and m.FreeText.objects.using(dest).count() == 1, entry


# --- rows the destination refuses ----------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.url_pair("sqlite_a", "pg_b"), h.url_pair("sqlite_a", "mysql_b")])
def test_a_row_the_destination_refuses_is_named_with_model_pk_field_and_fix(source, dest, tmp_path, monkeypatch):
    for pk in range(1, 9):  # SQLite keeps a title past max_length; PostgreSQL and strict MariaDB refuse it
        m.FreeText.objects.using(source).create(pk=pk, title="far too long for ten" if pk == 5 else f"row {pk}",
                                                body=f"body {pk}")
    path = tmp_path / "freetext.dbcopy"
    export(source, path, "copytest.FreeText")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the stand-in source and the spools go

    result = import_(path, dest, chunk_size=2, report_json=tmp_path / "report.json")

    assert result.returncode == 1, str(result)
    assert "Traceback" not in result.output, str(result)
    assert re.search(r"copytest\.FreeText pk=5\b.*'title'.*widen the column or clean the row", result.output), \
        result.output
    assert result.entry("copytest.FreeText")["status"] == "failed"
    assert sorted(m.FreeText.objects.using(dest).values_list("pk", flat=True)) == [1, 2, 3, 4]
    # The failed run left neither the stand-in's alias nor its file behind.
    assert SHADOW_ALIAS not in h.connections.settings
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("source,dest", [h.url_pair("sqlite_a", "pg_b")])
def test_the_report_names_the_dump_and_never_a_password(source, dest, tmp_path):
    m.Tag.objects.using(source).bulk_create(m.Tag(name=f"tag {i}") for i in range(3))
    path = tmp_path / "tags.dbcopy"
    export(source, path, "copytest.Tag")
    settings = h.connections[dest].settings_dict
    url = f"postgres://{settings['USER']}:s3cret@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"

    result = import_(path, url, report_json=tmp_path / "report.json")

    h.assert_ok(result)
    assert result.report["source"] == f"the dump {path}" and result.report["command"] == "import"
    assert "s3cret" not in result.output and "s3cret" not in (tmp_path / "report.json").read_text()
    assert m.Tag.objects.using(dest).count() == 3


@pytest.mark.parametrize("source,dest", [h.url_pair("pg_a", "mysql_b")])
def test_append_onto_a_row_holding_the_same_unique_value_names_the_row(source, dest, tmp_path):
    h.seed_core(source)
    path = tmp_path / "tags.dbcopy"
    export(source, path, "copytest.Tag")
    clash = m.Tag.objects.using(source).order_by("pk")[3]
    m.Tag.objects.using(dest).create(pk=10_000, name=clash.name)

    result = import_(path, dest, append=True)

    assert result.returncode == 1, str(result)
    assert re.search(rf"copytest\.Tag pk={clash.pk}\b.*in field 'name' — \w", result.output), result.output


# --- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,dest", [h.url_pair("sqlite_a", "pg_b")])
def test_options_import_does_not_take_are_refused(source, dest, tmp_path):
    h.seed_core(source)
    path = tmp_path / "data.dbcopy"
    export(source, path, "copytest.Tag")
    cases = {
        "--jobs applies to": dict(jobs=2),
        "--source applies to": dict(source=source),
        "--output applies to `dbcopy export` only": dict(output=str(tmp_path / "x.dbcopy")),
        "--checksum applies to": dict(checksum=True),
    }
    for says, options in cases.items():
        result = import_(path, dest, **options)
        assert result.returncode == 2 and says in result.error, f"{options}: {result}"
    for dump in ("-", str(path)):  # no terminal here to answer on
        confirm = h.dbcopy("import", dump, dest=dest, truncate=True, interactive=True)
        assert confirm.returncode == 2 and "--no-input" in confirm.error, str(confirm)
    nothing = h.dbcopy("import", dest=dest)
    assert nothing.returncode == 2 and "import needs the dump to read" in nothing.error, str(nothing)
    assert m.Tag.objects.using(dest).count() == 0


@pytest.mark.parametrize("source,dest", [h.url_pair("mysql_a", "pg_b")])
def test_truncate_replaces_the_destinations_rows(source, dest, tmp_path):
    h.seed_core(source)
    h.seed_core(dest)
    m.Tag.objects.using(dest).create(name="only at the destination")
    path = tmp_path / "data.dbcopy"
    export(source, path, "copytest")

    refused = import_(path, dest)
    assert refused.returncode == 2 and "--truncate" in refused.error, str(refused)

    h.assert_ok(import_(path, dest, truncate=True))
    assert_same_content(source, dest)
