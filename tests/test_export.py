"""`dbcopy export`: the dump holds, row for row, what the copy would read from the source, in
foreign-key order; `-o -` carries the dump alone; an interrupted or failed export leaves no file."""

import os
import pty
import signal
import subprocess
import sys
import time

import pytest

from dbcopy.dialects import dialect_for
from dbcopy.export import build_export_plan
from dbcopy.fileformat import open_dump
from dbcopy.plan import relation_target
from dbcopy.rows import RowReader
from tests import helpers as h
from tests.copytest import models as m
from tests.test_fileformat import assert_rows_same

PYTHON = sys.executable
SETTINGS = "tests.settings.all_backends"


def source_param(alias):
    return pytest.param(alias, marks=h.db_mark(alias), id=alias)


VENDORS = [source_param(alias) for alias in ("sqlite_a", "pg_a", "mysql_a")]


def command(*args):
    """Return the argv of the real command, as a user types it."""
    return [PYTHON, "-m", "django", "dbcopy", *args, "--settings", SETTINGS]


def environment():
    env = dict(os.environ, DBCOPY_TEST_USE_TEST_NAMES="1", PYTHONUNBUFFERED="1", COLUMNS="200")
    env.pop("DJANGO_SETTINGS_MODULE", None)  # --settings on the command line decides
    return env


def source_rows(step):
    """Return the step's rows as the copy reads them from its source."""
    reader = RowReader(step.model, step.source, step.fields)
    return [row for chunk in reader.chunks(500) for row in chunk]


def dump_rows(reader):
    """Return {label: rows} of every section of an open dump."""
    return {section.label: [row for chunk in section.chunks() for row in chunk] for section in reader.sections()}


def assert_dump_holds_the_source(reader, source, labels):
    plan = build_export_plan(source, labels)
    read = dump_rows(reader)
    assert list(read) == [step.label for step in plan.steps], "the dump's models are not the plan's, in its order"
    for step in plan.steps:
        assert_rows_same(source_rows(step), read[step.label], step.label)
    return read


def with_float_extremes(alias):
    """Store NaN and ±Infinity in AllTypes.ratio where the source's vendor keeps them."""
    dialect = dialect_for(alias)
    pks = list(m.AllTypes.objects.using(alias).order_by("pk").values_list("pk", flat=True))
    if dialect.stores_float_nan:
        m.AllTypes.objects.using(alias).filter(pk=pks[0]).update(ratio=float("nan"))
    if dialect.stores_float_infinity:
        m.AllTypes.objects.using(alias).filter(pk=pks[1]).update(ratio=float("inf"))
        m.AllTypes.objects.using(alias).filter(pk=pks[2]).update(ratio=float("-inf"))


# --- what the dump holds -----------------------------------------------------------------------


@pytest.mark.parametrize("source", VENDORS)
def test_the_dump_holds_row_for_row_what_the_copy_reads_from_the_source(source, tmp_path):
    h.seed_core(source)
    with_float_extremes(source)
    path = tmp_path / "data.dbcopy"

    result = h.dbcopy("export", "copytest", source=source, output=str(path), chunk_size=5)

    h.assert_ok(result)
    with open_dump(path) as reader:
        header = reader.header
        read = assert_dump_holds_the_source(reader, source, ["copytest"])
    assert header["source"]["vendor"] == h.connections[source].vendor
    assert header["consistent"] is True, header["consistency"]
    assert header["use_tz"] is True
    planned = {model["label"]: model["rows"] for model in header["models"]}
    assert planned == {label: len(rows) for label, rows in read.items()}
    assert planned["copytest.Book"] == 14 and planned["copytest.AllTypes"] == 7
    # Content types travel as an ordinary table, every column, for the importer to match by natural key.
    content_types = next(model for model in header["models"] if model["label"] == "contenttypes.ContentType")
    assert [c["name"] for c in content_types["columns"]] == ["id", "app_label", "model"]
    assert "Exported" in result.output and "copytest.Book" in result.output, result.output
    assert "password" not in str(header["source"]).lower()


@h.db_mark("sqlite_a")
def test_models_come_in_foreign_key_order_with_cycles_recorded():
    plan = build_export_plan("sqlite_a", ["copytest"])
    position = {step.model: index for index, step in enumerate(plan.steps)}
    for step in plan.steps:
        for field in step.fields:
            if not field.is_relation or field in step.deferred_fields:
                continue
            target = relation_target(field)
            if target in position and target is not step.model and not (
                step.group is not None and plan.steps[position[target]].group == step.group
            ):
                assert position[target] < position[step.model], f"{step.label}.{field.name} before its target"
    deferred = {step.label: [f.name for f in step.deferred_fields] for step in plan.steps if step.deferred_fields}
    assert deferred["copytest.Category"] == ["parent"], deferred


@pytest.mark.parametrize("source", [source_param("sqlite_a")])
def test_labels_and_exclude_choose_the_models(source, tmp_path):
    h.seed_core(source)
    chosen, rest = tmp_path / "chosen.dbcopy", tmp_path / "rest.dbcopy"

    picked = h.dbcopy("export", "copytest.Book", "copytest.Tag", source=source, output=str(chosen))
    excluded = h.dbcopy("export", "copytest", source=source, output=str(rest), exclude=["copytest.Book"])

    h.assert_ok(picked)
    h.assert_ok(excluded)
    with open_dump(chosen) as reader:
        assert {model["label"] for model in reader.header["models"]} == {
            "copytest.Book", "copytest.Book_tags", "copytest.Tag"}
    assert "copytest.Book.publisher → copytest.Publisher: copytest.Publisher is not exported" in picked.output
    with open_dump(rest) as reader:
        labels = {model["label"] for model in reader.header["models"]}
    assert "copytest.Book" not in labels and "copytest.Book_tags" not in labels
    assert {"copytest.Tag", "copytest.Author", "copytest.Publisher"} <= labels


# --- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("source", [source_param("pg_a")])
def test_dash_writes_only_the_dump_to_stdout_of_the_real_command(source, tmp_path):
    h.seed_core(source)
    proc = subprocess.run(command("export", "copytest", "--source", source, "-o", "-", "-v", "2"),
                          cwd=h.REPO_DIR, env=environment(), capture_output=True, timeout=240)

    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout[:4] == b"\x28\xb5\x2f\xfd", proc.stdout[:200]
    messages = proc.stderr.decode()
    assert "Exported" in messages and "exported copytest.Book" in messages and "Traceback" not in messages, messages
    path = tmp_path / "piped.dbcopy"
    path.write_bytes(proc.stdout)
    with open_dump(path) as reader:
        assert_dump_holds_the_source(reader, source, ["copytest"])


@pytest.mark.parametrize("source", [source_param("sqlite_a")])
def test_dash_refuses_a_terminal(source):
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(command("export", "copytest", "--source", source, "-o", "-"), cwd=h.REPO_DIR,
                              env=environment(), stdout=terminal, stderr=subprocess.PIPE, timeout=240)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 2, proc.stderr.decode()
    assert "standard output is a terminal" in proc.stderr.decode()


@pytest.mark.parametrize("source", [source_param("sqlite_a")])
def test_options_export_does_not_take_are_refused(source, tmp_path):
    path = str(tmp_path / "data.dbcopy")
    cases = {
        "--dest applies to": dict(dest="sqlite_b"),
        "--jobs applies to": dict(jobs=2),
        "--truncate applies to": dict(truncate=True),
        "--checksum applies to": dict(checksum=True),
    }
    for says, options in cases.items():
        result = h.dbcopy("export", "copytest", source=source, output=path, **options)
        assert result.returncode == 2 and says in result.error, f"{options}: {result}"
    missing = h.dbcopy("export", "copytest", source=source)
    assert missing.returncode == 2 and "export needs -o PATH" in missing.error, str(missing)
    nowhere = h.dbcopy("export", "copytest", source=source, output=str(tmp_path / "no" / "such" / "dir" / "x"))
    assert nowhere.returncode == 2 and "cannot create a file" in nowhere.error, str(nowhere)
    copy = h.dbcopy("copy", "copytest", source=source, dest="sqlite_b", output=path)
    assert copy.returncode == 2 and "--output applies to `dbcopy export` only" in copy.error, str(copy)
    assert not os.path.exists(path)


# --- a run that does not finish ----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@h.db_mark("sqlite_a")
def test_an_interrupted_export_leaves_no_file_and_keeps_an_earlier_one(signum, tmp_path):
    source = "sqlite_a"
    m.Tag.objects.using(source).bulk_create(m.Tag(name=f"tag {i}") for i in range(20_000))
    m.ContentTypeSetting.objects.using(source).create(
        content_type=h.ContentType.objects.db_manager(source).get_for_model(m.Tag))
    path = tmp_path / "data.dbcopy"
    path.write_bytes(b"an earlier dump")
    out = tmp_path / "out.txt"
    with open(out, "wb") as stdout:
        # One row per chunk: content types first, then 20,000 chunks of tags, long enough to interrupt.
        proc = subprocess.Popen(
            command("export", "copytest.Tag", "copytest.ContentTypeSetting", "--source", source, "-o", str(path),
                    "--chunk-size", "1", "-v", "2"),
            cwd=h.REPO_DIR, env=environment(), stdout=stdout, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"exported contenttypes.ContentType" in out.read_bytes(), proc, out)
        proc.send_signal(signum)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    output = out.read_bytes().decode()
    assert proc.returncode == 128 + signum, output
    assert f"Export interrupted by {signal.Signals(signum).name}: nothing was written to {path}" in output, output
    assert "Traceback" not in output, output
    assert path.read_bytes() == b"an earlier dump"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.dbcopy", "out.txt"], "a partial file was left"


def wait_for(condition, proc, out, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the export ended before it could be interrupted:\n{out.read_bytes().decode()}"
        assert time.monotonic() < deadline, f"the export never got going:\n{out.read_bytes().decode()}"
        time.sleep(0.05)


@pytest.mark.parametrize("source", [source_param("sqlite_a")])
def test_a_failed_export_names_the_row_and_leaves_no_file(source, tmp_path):
    h.seed_core(source)
    bad = m.AllTypes.objects.using(source).order_by("pk").values_list("pk", flat=True)[3]
    h.sql_for(source, f"UPDATE copytest_alltypes SET moment = 'not a date' WHERE id = {bad}")
    path = tmp_path / "data.dbcopy"

    result = h.dbcopy("export", "copytest", source=source, output=str(path))

    assert result.returncode == 1, str(result)
    assert f"copytest.AllTypes pk={bad}" in result.error and "moment" in result.error, result.error
    assert list(tmp_path.iterdir()) == [], "a failed export left a file"

