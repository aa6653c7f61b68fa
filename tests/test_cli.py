"""The real command line, as a user types it, in a subprocess.

The subprocesses get ``DBCOPY_TEST_USE_TEST_NAMES=1``, which makes the aliases of
``tests.settings.all_backends`` point at the test databases this session created.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import helpers as h
from tests.copytest import models as m
from tests.test_urls import url_for

PYTHON = sys.executable
CONSOLE_SCRIPT = Path(sys.executable).with_name("dbcopy")
SETTINGS = "tests.settings.all_backends"


def run(argv, timeout=240):
    env = dict(os.environ, DBCOPY_TEST_USE_TEST_NAMES="1", PYTHONUNBUFFERED="1", COLUMNS="200")
    env.pop("DJANGO_SETTINGS_MODULE", None)  # --settings on the command line decides
    proc = subprocess.run(argv, cwd=h.REPO_DIR, env=env, capture_output=True, text=True, timeout=timeout)
    return proc


def describe(proc):
    return f"$ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_python_m_django_copy_as_typed(source, dest, tmp_path):
    h.seed_core(source)
    report = tmp_path / "report.json"
    proc = run([
        PYTHON, "-m", "django", "dbcopy", "copy", "--source", source, "copytest",
        "--settings", SETTINGS, "--dest", dest, "--no-input", "--chunk-size", "4", "--report-json", str(report),
    ])
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    assert "copytest.Book" in proc.stdout + proc.stderr, f"output does not mention the copied models:\n{describe(proc)}"
    data = json.loads(report.read_text())
    assert data["ok"] is True and data["command"] == "copy"
    h.assert_tables_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "mysql_b")])
def test_console_script_with_urls_copy_then_compare(source, dest):
    """``.venv/bin/dbcopy`` from the project directory, URLs instead of aliases."""
    assert CONSOLE_SCRIPT.exists(), f"console script {CONSOLE_SCRIPT} not installed"
    h.seed_core(source)
    src_url, dst_url = url_for(source), url_for(dest)
    common = ["--settings", SETTINGS, "--source", src_url, "--dest", dst_url]

    copy = run([str(CONSOLE_SCRIPT), "copy", "copytest", *common, "--no-input"])
    assert copy.returncode == 0, describe(copy)
    assert "Traceback" not in copy.stdout + copy.stderr
    h.assert_tables_equal(source, dest)

    same = run([str(CONSOLE_SCRIPT), "compare", *common, "copytest"])
    assert same.returncode == 0, describe(same)

    m.Book.tags.through.objects.using(dest).filter(pk=m.Book.tags.through.objects.using(dest).order_by("pk").first().pk).delete()
    differ = run([str(CONSOLE_SCRIPT), "compare", "copytest", *common])
    assert differ.returncode == 1, describe(differ)
    assert "copytest.Book_tags" in differ.stdout + differ.stderr, describe(differ)
    assert "Traceback" not in differ.stdout + differ.stderr


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "sqlite_b")])
def test_command_line_usage_errors_exit_2(source, dest):
    h.seed_core(source)
    before_source = h.row_counts(source)
    cases = {
        "--truncate with --append": [
            PYTHON, "-m", "django", "dbcopy", "copy", "copytest", "--settings", SETTINGS,
            "--source", source, "--dest", dest, "--truncate", "--append", "--no-input",
        ],
        "unknown alias": [
            str(CONSOLE_SCRIPT), "copy", "copytest", "--settings", SETTINGS, "--source", "nope_alias", "--dest", dest, "--no-input",
        ],
        "same source and dest": [
            str(CONSOLE_SCRIPT), "copy", "copytest", "--settings", SETTINGS, "--source", source, "--dest", source, "--truncate", "--no-input",
        ],
        "unknown subcommand": [str(CONSOLE_SCRIPT), "frobnicate", "--settings", SETTINGS, "--source", source],
    }
    problems = []
    for name, argv in cases.items():
        proc = run(argv)
        if proc.returncode != 2:
            problems.append(f"{name}: expected exit 2\n{describe(proc)}")
        elif "Traceback" in proc.stdout + proc.stderr:
            problems.append(f"{name}: traceback printed\n{describe(proc)}")
    assert not problems, "\n\n".join(problems)
    assert "nope_alias" in run(cases["unknown alias"]).stderr
    assert all(n == 0 for n in h.row_counts(dest).values()), "something was written to the destination"
    assert h.row_counts(source) == before_source, "the refused copy changed the source"


@pytest.mark.parametrize("source,dest", [h.pair("sqlite_a", "pg_b")])
def test_truncate_prompt_answered_no_deletes_nothing(source, dest):
    """Without --no-input, --truncate asks first; answering "no" leaves everything as it was."""
    h.seed_core(source)
    m.Tag.objects.using(dest).create(name="keep me")
    before = h.all_table_counts(dest)
    env = dict(os.environ, DBCOPY_TEST_USE_TEST_NAMES="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [PYTHON, "-m", "django", "dbcopy", "copy", "copytest", "--settings", SETTINGS, "--source", source, "--dest", dest, "--truncate"],
        cwd=h.REPO_DIR, env=env, input="no\n", capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    assert h.all_table_counts(dest) == before, "rows changed although the prompt was answered no"
    assert list(m.Tag.objects.using(dest).values_list("name", flat=True)) == ["keep me"]
