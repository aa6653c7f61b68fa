"""dbcopy knows which database it talks to: it asks the servers, never compares settings text.

* Another spelling of the source (localhost for 127.0.0.1, the default port left out or written,
  a URL for an alias, a relative path or a symlink for a SQLite file) is refused as --dest: exit 2,
  the source keeps every row.
* A SQLite file that does not exist is an error, for --source and --dest alike, and is not created.
* A server that is unreachable, or accepts the connection and never answers, is an exit 2 naming
  host and port (never the password) once the connect timeout runs out.
"""

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connections
from django.test import override_settings

from tests import helpers as h
from tests.test_urls import FAKE_PASSWORD, leaks

SECRET = "s3cret-pw"
OTHER_HOST = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}


def assert_refused(result, *needles):
    assert result.returncode == 2, f"expected exit status 2:\n{result}"
    assert "Traceback" not in result.output, str(result)
    for needle in needles:
        assert needle.lower() in result.output.lower(), f"{needle!r} not in the output:\n{result}"


def server_url(alias, host=None, port=True, password=""):
    """A URL for alias' test database, its host spelled `host`, its port written or left out."""
    cfg = connections[alias].settings_dict
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[h.alias_vendor(alias)]
    auth = quote(cfg["USER"], safe="")
    password = password or cfg.get("PASSWORD") or ""
    if password:
        auth += ":" + quote(password, safe="")
    netloc = host or cfg["HOST"]
    if port:
        netloc += f":{cfg['PORT']}"
    return f"{scheme}://{auth}@{netloc}/{cfg['NAME']}"


def other_host(alias):
    host = connections[alias].settings_dict["HOST"]
    if host not in OTHER_HOST:
        pytest.skip(f"{alias} is on {host}: no second spelling of that host is known")
    return OTHER_HOST[host]


def pg_password():
    # Trust authentication (the test server) accepts any password; a real one must not leak either.
    return connections["pg_a"].settings_dict.get("PASSWORD") or SECRET


def copy_truncating(source, dest, **options):
    return h.dbcopy("copy", "copytest", source=source, dest=dest, truncate=True, interactive=False, **options)


# --- the same database, spelled another way ------------------------------------------------------


def spellings():
    """(id, source, dest) where one side is the alias and the other a URL naming the same database."""
    return [
        ("pg-localhost-no-port", "pg_a", lambda: server_url("pg_a", other_host("pg_a"), port=False)),
        ("pg-localhost-port-password", "pg_a", lambda: server_url("pg_a", other_host("pg_a"), password=pg_password())),
        ("pg-url-as-source", lambda: server_url("pg_a", other_host("pg_a"), port=False), "pg_a"),
        ("mysql-localhost-socket", "mysql_a", lambda: server_url("mysql_a", other_host("mysql_a"), port=False)),
        ("mysql-no-port", "mysql_a", lambda: server_url("mysql_a", port=False)),
        ("mysql-url-as-source", lambda: server_url("mysql_a", other_host("mysql_a")), "mysql_a"),
    ]


def resolve(value):
    return value() if callable(value) else value


@pytest.mark.parametrize(
    "source,dest",
    [
        pytest.param(source, dest, id=name, marks=pytest.mark.unguarded_db("pg_a" if name.startswith("pg") else "mysql_a"))
        for name, source, dest in spellings()
    ],
)
def test_source_spelled_another_way_is_refused_and_keeps_its_rows(source, dest):
    alias = source if isinstance(source, str) else dest
    h.seed_core(alias)
    before = h.all_table_counts(alias)
    source, dest = resolve(source), resolve(dest)
    result = copy_truncating(source, dest)
    assert_refused(result, "same database")
    assert h.all_table_counts(alias) == before, "the source lost rows"
    assert not leaks(result.output, pg_password()), str(result)
    if "postgres" in (source + dest):
        assert not leaks(result.output, SECRET)


@pytest.mark.unguarded_db("sqlite_a")
@pytest.mark.parametrize("spelling", ["relative", "symlink"])
def test_sqlite_file_reached_by_another_path_is_refused(spelling, tmp_path):
    h.seed_core("sqlite_a")
    before = h.all_table_counts("sqlite_a")
    name = Path(connections["sqlite_a"].settings_dict["NAME"])
    if spelling == "relative":
        path = os.path.relpath(name)
        assert not os.path.isabs(path)
    else:
        path = tmp_path / "link-to-source.sqlite3"
        path.symlink_to(name)
    result = copy_truncating("sqlite_a", f"sqlite:///{path}")
    assert_refused(result, "same database")
    assert h.all_table_counts("sqlite_a") == before, "the source lost rows"


@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "pg_b"), h.pair("mysql_a", "mysql_b")])
def test_two_databases_on_one_server_are_not_the_same(source, dest):
    h.seed_core(source)
    h.assert_ok(h.dbcopy("copy", "copytest", source=source, dest=dest))
    h.assert_tables_equal(source, dest)


@pytest.mark.parametrize("source,dest", [h.url_pair("pg_a", "pg_b")])
def test_another_database_spelled_with_the_other_host_is_copied_to(source, dest):
    h.seed_core(source)
    result = h.dbcopy("copy", "copytest", source=source, dest=server_url(dest, other_host(dest), port=False))
    h.assert_ok(result)
    h.assert_tables_equal(source, dest)


# --- a SQLite file that is not there -------------------------------------------------------------


@pytest.mark.unguarded_db("sqlite_b")
def test_missing_sqlite_source_is_an_error_and_not_created(tmp_path):
    missing = tmp_path / "no-such-source.sqlite3"
    before = h.all_table_counts("sqlite_b")
    result = copy_truncating(f"sqlite:///{missing}", "sqlite_b")
    assert_refused(result, str(missing), "does not exist", "migrate")
    assert not missing.exists(), "dbcopy created the missing source file"
    assert h.all_table_counts("sqlite_b") == before


@pytest.mark.unguarded_db("sqlite_a")
def test_missing_sqlite_destination_is_an_error_and_not_created(tmp_path):
    h.seed_core("sqlite_a")
    before = h.all_table_counts("sqlite_a")
    missing = tmp_path / "no-such-dest.sqlite3"
    relative = os.path.relpath(missing)
    for subcommand in ("copy", "plan"):
        result = h.dbcopy(subcommand, "copytest", source="sqlite_a", dest=f"sqlite:///{relative}")
        assert_refused(result, str(missing), "does not exist", "migrate")
        assert not missing.exists(), f"dbcopy {subcommand} created the missing destination file"
    assert h.all_table_counts("sqlite_a") == before


# --- servers that do not answer ------------------------------------------------------------------


@pytest.fixture
def silent_server():
    """A TCP port on 127.0.0.1 that accepts connections and never says a word; yields (port, accepted)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 nothing listens on (connections are refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.timeout(90)
@pytest.mark.unguarded_db("sqlite_b")
@pytest.mark.parametrize("scheme", ["postgres", "mysql"])
def test_silent_server_is_an_error_naming_host_and_port(scheme, silent_server):
    port, accepted = silent_server
    result = copy_truncating(f"{scheme}://u:{SECRET}@127.0.0.1:{port}/x", "sqlite_b", connect_timeout=2)
    assert_refused(result, f"127.0.0.1:{port}", "connect timeout 2 s")
    assert accepted, "the driver never reached the silent server"
    assert not leaks(result.output, SECRET), str(result)


@pytest.mark.timeout(90)
@pytest.mark.unguarded_db("sqlite_a")
@pytest.mark.parametrize("scheme", ["postgres", "mysql"])
def test_silent_destination_is_an_error_and_the_source_is_untouched(scheme, silent_server):
    port, accepted = silent_server
    h.seed_core("sqlite_a")
    before = h.all_table_counts("sqlite_a")
    password = quote(FAKE_PASSWORD, safe="")
    result = copy_truncating("sqlite_a", f"{scheme}://u:{password}@127.0.0.1:{port}/x", connect_timeout=2)
    assert_refused(result, f"127.0.0.1:{port}")
    assert accepted, "the driver never reached the silent server"
    assert not leaks(result.output, FAKE_PASSWORD), str(result)
    assert h.all_table_counts("sqlite_a") == before


@pytest.mark.unguarded_db("sqlite_b")
@pytest.mark.parametrize("scheme", ["postgres", "mysql"])
def test_refused_connection_is_an_error_naming_host_and_port(scheme, closed_port):
    result = copy_truncating(f"{scheme}://u:{SECRET}@127.0.0.1:{closed_port}/x", "sqlite_b")
    assert_refused(result, f"127.0.0.1:{closed_port}")
    assert not leaks(result.output, SECRET), str(result)


@pytest.mark.timeout(90)
@pytest.mark.unguarded_db("sqlite_b")
def test_connect_timeout_in_the_url_options_is_kept_unless_the_option_is_given(silent_server):
    port, _ = silent_server
    url = f"postgres://u@127.0.0.1:{port}/x?connect_timeout=2"
    assert_refused(copy_truncating(url, "sqlite_b"), f"127.0.0.1:{port}", "connect timeout 2 s")
    slow = f"postgres://u@127.0.0.1:{port}/x?connect_timeout=600"
    assert_refused(copy_truncating(slow, "sqlite_b", connect_timeout=3), "connect timeout 3 s")


@pytest.mark.timeout(90)
@pytest.mark.unguarded_db("sqlite_b")
def test_dbcopy_connect_timeout_setting_is_the_default(silent_server):
    port, _ = silent_server
    with override_settings(DBCOPY_CONNECT_TIMEOUT=2):
        result = copy_truncating(f"mysql://u@127.0.0.1:{port}/x", "sqlite_b")
    assert_refused(result, f"127.0.0.1:{port}", "connect timeout 2 s")


@pytest.mark.unguarded_db("sqlite_a", "sqlite_b")
def test_connect_timeout_must_be_positive():
    assert_refused(copy_truncating("sqlite_a", "sqlite_b", connect_timeout=0), "--connect-timeout must be at least 1")


@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True, databases=["pg_b"])
def test_silent_server_as_typed_exits_2(silent_server):
    port, accepted = silent_server
    before = h.all_table_counts("pg_b")
    env = dict(os.environ, DBCOPY_TEST_USE_TEST_NAMES="1", PYTHONUNBUFFERED="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [
            sys.executable, "-m", "django", "dbcopy", "copy", "copytest", "--settings", "tests.settings.all_backends",
            "--source", f"postgres://u:{SECRET}@127.0.0.1:{port}/x", "--dest", "pg_b",
            "--connect-timeout", "2", "--truncate", "--no-input",
        ],
        cwd=h.REPO_DIR, env=env, capture_output=True, text=True, timeout=90,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output and f"127.0.0.1:{port}" in output, output
    assert SECRET not in output, output
    assert accepted
    assert h.all_table_counts("pg_b") == before
