"""Set up Django for the apps round trip and give it fresh, migrated databases."""

import os
import subprocess
import sys
from pathlib import Path

import django
import pytest

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.apps.settings"
django.setup()

from django.db import connections  # noqa: E402  (needs the settings above)

ALIASES = ("default", "pg", "mysql", "back")
REPO_DIR = Path(__file__).resolve().parents[2]


def recreate(alias):
    """Drop and create the alias' database (an SQLite file is removed), so migrate starts from nothing."""
    connection = connections[alias]
    name = connection.settings_dict["NAME"]
    connection.close()
    if connection.vendor == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(name + suffix):
                os.remove(name + suffix)
        return
    quoted = connection.ops.quote_name(name)
    charset = " CHARACTER SET utf8mb4" if connection.vendor == "mysql" else ""  # the session's collation too
    try:
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")
            cursor.execute(f"CREATE DATABASE {quoted}{charset}")
    except Exception as exc:  # noqa: BLE001  (which server, and how to point the run at another)
        pytest.fail(f"{connection.vendor} for '{alias}' is unreachable ({exc}); set DBCOPY_TEST_PG_* / "
                    "DBCOPY_TEST_MYSQL_* as for `make test`")


def migrate_as_default(alias):
    """Migrate the alias as a project's own `default` database, the way its service migrates it.

    Wagtail's data migrations assume that (create_permissions() without `using`, for one), so each
    database is migrated by a `manage.py migrate` whose settings make it the default.
    """
    env = dict(os.environ, DBCOPY_APPS_AS_DEFAULT=alias, DJANGO_SETTINGS_MODULE="tests.apps.settings")
    done = subprocess.run([sys.executable, "-m", "django", "migrate", "--no-input", "-v", "0"],
                          cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"migrating '{alias}' failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def migrated():
    """Every alias freshly migrated: Wagtail's migrations seed its root page, site, locale, groups…"""
    for alias in ALIASES:
        recreate(alias)
        migrate_as_default(alias)
    yield ALIASES
    for alias in ALIASES:
        connections[alias].close()
