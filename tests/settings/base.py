"""Shared settings for the dbcopy test-suite.

Every backend module (``sqlite``, ``postgresql``, ``mysql``) builds on this one and adds
its own two aliases; ``all_backends`` (the default, see pyproject.toml) combines them.

Where the servers live can be overridden with environment variables:

* PostgreSQL: ``DBCOPY_TEST_PG_HOST`` / ``_PORT`` / ``_USER`` / ``_PASSWORD``
* MySQL/MariaDB: ``DBCOPY_TEST_MYSQL_HOST`` / ``_PORT`` / ``_USER`` / ``_PASSWORD``
* SQLite files: ``DBCOPY_TEST_SQLITE_DIR`` (default: ``<tmp>/dbcopy-tests-<uid>[-<tag>]``)
* Server database names: ``DBCOPY_TEST_DB_TAG`` (default none) keeps parallel runs apart

``DBCOPY_TEST_USE_TEST_NAMES=1`` makes every alias point straight at its *test* database
(``TEST["NAME"]``); the suite sets it for the subprocesses it starts, so that a command
typed exactly as a user would (``--source pg_a --dest mysql_b``) reaches the databases the
tests created and seeded.
"""

import os
import tempfile
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]


def env(name, default=""):
    value = os.environ.get(name)
    return default if value in (None, "") else value


# Parallel runs on one machine (several checkouts, a developer's helpers) keep their server
# databases apart with a tag: DBCOPY_TEST_DB_TAG=x names them dbcopy_x_a, test_dbcopy_x_a, ...
DB_TAG = env("DBCOPY_TEST_DB_TAG", "")
DB_PREFIX = f"dbcopy_{DB_TAG}_" if DB_TAG else "dbcopy_"

USE_TEST_NAMES = env("DBCOPY_TEST_USE_TEST_NAMES", "0").lower() not in ("0", "false", "no", "")

_uid = os.getuid() if hasattr(os, "getuid") else "user"
SQLITE_DIR = Path(env("DBCOPY_TEST_SQLITE_DIR", os.path.join(tempfile.gettempdir(), f"dbcopy-tests-{_uid}" + (f"-{DB_TAG}" if DB_TAG else ""))))
SQLITE_DIR.mkdir(parents=True, exist_ok=True)


def with_test_name(config, test_name, **test_options):
    """Attach an explicit TEST NAME (and options); optionally point NAME at it."""
    config = dict(config)
    # DEPENDENCIES=[]: the aliases do not need ``default`` to be created first, so a run
    # can create just the aliases its tests use.
    config["TEST"] = {"NAME": test_name, "DEPENDENCIES": [], **test_options}
    if USE_TEST_NAMES:
        config["NAME"] = test_name
    return config


def sqlite_db(alias):
    # Files, not :memory:, so that a subprocess (the real command line) can open them.
    return with_test_name(
        {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_DIR / f"{alias}.sqlite3"),
            "OPTIONS": {"timeout": 30},
        },
        str(SQLITE_DIR / f"test_dbcopy_{alias}.sqlite3"),
    )


SECRET_KEY = "dbcopy-test-suite-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

USE_TZ = True
# Not UTC on purpose: a copy that drops or re-interprets UTC offsets shows up as a shift.
TIME_ZONE = "Europe/Paris"
USE_I18N = True
LANGUAGE_CODE = "en-us"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
    "dbcopy",
    "tests.copytest",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

SITE_ID = 1
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# copytest has a real migration (syncdb cannot create an FK from an unmigrated app to
# django_content_type); its version-dependent models are conditional there too.
MIGRATION_MODULES = {}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DATABASES = {"default": sqlite_db("default")}
DATABASE_ROUTERS = []
# The key of copytest's SealedTextField (an encrypted-style field): a copy must never need it.
COPYTEST_SEAL_KEY = "copytest-seal-key"
