"""Session-wide plumbing: server probing, test-database creation, per-test aliases.

* Each test names the aliases it touches with
  ``@pytest.mark.django_db(transaction=True, databases=[...])`` (see ``helpers.pair``).
  pytest-django flushes exactly those aliases after the test (TransactionTestCase), and
  the flush re-creates content types / permissions / the default Site through
  post_migrate, exactly like a fresh ``migrate``.
* ``django_db_setup`` (overridden below) creates the test databases once per session,
  only for the aliases the collected tests use and whose server answers.
* A test that needs an unreachable server is *skipped* on a laptop (with a message that
  says which environment variables point the suite at a server) and *fails* when
  ``CI=true``.
"""

import os
import socket

import pytest
from django.conf import settings

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
# Real third-party apps run apart, with their own settings and venv: `make test-apps`.
collect_ignore = ["apps"]

_ENV_HINT = {
    "postgresql": "DBCOPY_TEST_PG_HOST / DBCOPY_TEST_PG_PORT / DBCOPY_TEST_PG_USER / DBCOPY_TEST_PG_PASSWORD",
    "mysql": "DBCOPY_TEST_MYSQL_HOST / DBCOPY_TEST_MYSQL_PORT / DBCOPY_TEST_MYSQL_USER / DBCOPY_TEST_MYSQL_PASSWORD",
}
_VENDOR_NAME = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB"}
_probe_cache = {}


def alias_vendor(alias):
    engine = settings.DATABASES[alias]["ENGINE"]
    for vendor in ("postgresql", "mysql", "sqlite3"):
        if engine.endswith(vendor):
            return "sqlite" if vendor == "sqlite3" else vendor
    return engine


def _probe(alias):
    """Return None if the alias' server answers, else a human-readable reason."""
    vendor = alias_vendor(alias)
    if vendor == "sqlite":
        return None
    cfg = settings.DATABASES[alias]
    host, port, user = cfg.get("HOST") or "127.0.0.1", cfg.get("PORT"), cfg.get("USER")
    key = (vendor, host, port, user)
    if key not in _probe_cache:
        reason = None
        try:
            if vendor == "postgresql":
                import psycopg2

                conn = psycopg2.connect(
                    host=host, port=int(port or 5432), user=user, password=cfg.get("PASSWORD") or None,
                    dbname="postgres", connect_timeout=5,
                )
            else:
                import MySQLdb

                conn = MySQLdb.connect(
                    host=host, port=int(port or 3306), user=user, password=cfg.get("PASSWORD") or "",
                    connect_timeout=5,
                )
            conn.close()
        except (ImportError, OSError, socket.error, Exception) as exc:  # noqa: BLE001
            reason = (
                f"{_VENDOR_NAME[vendor]} server not reachable at {host}:{port} as user {user!r} "
                f"({type(exc).__name__}: {str(exc).strip()}). "
                f"Point the tests at a server with {_ENV_HINT[vendor]}."
            )
        _probe_cache[key] = reason
    return _probe_cache[key]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "unguarded_db(*aliases): transactional access to the aliases without Django's per-test "
        "alias guard, for commands that register database URLs as run-time aliases; the "
        "aliases are flushed and the run-time aliases unregistered after the test.",
    )


def _marked_databases(item):
    unguarded = item.get_closest_marker("unguarded_db")
    if unguarded is not None:
        return list(unguarded.args)
    marker = item.get_closest_marker("django_db")
    if marker is None:
        return []
    databases = marker.kwargs.get("databases")
    if databases is None:
        return ["default"]
    if databases == "__all__":
        return list(settings.DATABASES)
    return list(databases)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for alias in _marked_databases(item):
        if alias not in settings.DATABASES:
            pytest.skip(f"database alias {alias!r} is not configured in {os.environ.get('DJANGO_SETTINGS_MODULE')}")
        reason = _probe(alias)
        if reason:
            if CI:
                _fail_in_call(item, f"CI=true and alias {alias!r} is unusable: {reason}")
                return
            pytest.skip(f"alias {alias!r}: {reason}")


def _fail_in_call(item, message):
    """Make the test FAIL (not error in setup, not skip) without touching the databases:
    drop its database marks, so no database fixture runs, and replace its body."""
    item.own_markers[:] = [mk for mk in item.own_markers if mk.name not in ("django_db", "unguarded_db")]

    def runtest():
        pytest.fail(message, pytrace=False)

    item.runtest = runtest


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_createdb):
    """Create the test databases once per session: only the aliases the collected tests
    request, and only those whose server answers (the others' tests skip or fail in
    pytest_runtest_setup)."""
    from django.core.management import call_command
    from django.test.utils import setup_databases, teardown_databases

    wanted = set()
    for item in request.session.items:
        wanted.update(_marked_databases(item))
    aliases = {a for a in wanted if a in settings.DATABASES and _probe(a) is None}
    keepdb = bool(django_db_keepdb and not django_db_createdb)

    with django_db_blocker.unblock():
        db_cfg = setup_databases(
            verbosity=0, interactive=False, keepdb=keepdb, aliases=aliases, serialized_aliases=set()
        )
        if keepdb:
            # A reused database may hold rows from an interrupted run.
            for alias in sorted(aliases):
                call_command("flush", database=alias, interactive=False, verbosity=0)

    yield sorted(aliases)

    if not keepdb:
        with django_db_blocker.unblock():
            try:
                teardown_databases(db_cfg, verbosity=0)
            except Exception as exc:  # noqa: BLE001
                request.node.warn(pytest.PytestWarning(f"Error when tearing down test databases: {exc!r}"))


@pytest.fixture(autouse=True)
def _unguarded_db(request):
    """Implements the unguarded_db marker (see pytest_configure)."""
    marker = request.node.get_closest_marker("unguarded_db")
    if marker is None:
        yield
        return
    from django.core.management import call_command
    from django.db import connections

    request.getfixturevalue("django_db_setup")
    blocker = request.getfixturevalue("django_db_blocker")
    configured = set(connections.settings)
    with blocker.unblock():
        try:
            yield
        finally:
            for alias in set(connections.settings) - configured:
                connections[alias].close()
                del connections[alias]
                connections.settings.pop(alias, None)
            for alias in marker.args:
                connections[alias].close()
                call_command("flush", database=alias, interactive=False, verbosity=0)


@pytest.fixture
def report_path(tmp_path):
    return tmp_path / "report.json"
