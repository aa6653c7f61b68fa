"""Settings of the benchmark: a persistent-identifier registry on PostgreSQL, copied to two targets.

Aliases: ``default`` is the source (PostgreSQL ``dbcopy_bench_src``); ``pg`` (PostgreSQL
``dbcopy_bench_pg``) and ``mariadb`` (MariaDB ``dbcopy_bench_my``) are the destinations.
bench/run.py drops and recreates all three on every run. The peers bench (peers.py) adds two
sources filled from ``default``: ``mariadb_src`` (MariaDB ``dbcopy_bench_my_src``) and ``sqlite_src``
(bench/out/peers-src.sqlite3). Where the servers live can be overridden with
BENCH_PG_HOST/PORT/USER/PASSWORD and BENCH_MYSQL_HOST/PORT/USER/PASSWORD.
"""

import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent


def env(name, default):
    """Return the environment variable, or the default when it is unset or empty."""
    return os.environ.get(name) or default


POSTGRES = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": env("BENCH_PG_HOST", "127.0.0.1"),
    "PORT": env("BENCH_PG_PORT", "5432"),
    "USER": env("BENCH_PG_USER", "postgres"),
    "PASSWORD": env("BENCH_PG_PASSWORD", ""),
}
MARIADB = {
    "ENGINE": "django.db.backends.mysql",
    "HOST": env("BENCH_MYSQL_HOST", "127.0.0.1"),
    "PORT": env("BENCH_MYSQL_PORT", "3306"),
    "USER": env("BENCH_MYSQL_USER", "root"),
    "PASSWORD": env("BENCH_MYSQL_PASSWORD", ""),
    "OPTIONS": {"charset": "utf8mb4"},
}

DATABASES = {
    "default": {**POSTGRES, "NAME": "dbcopy_bench_src"},
    "pg": {**POSTGRES, "NAME": "dbcopy_bench_pg"},
    "mariadb": {**MARIADB, "NAME": "dbcopy_bench_my"},
    # The peers bench reads from three vendors: these two are filled from `default`.
    "mariadb_src": {**MARIADB, "NAME": "dbcopy_bench_my_src"},
    "sqlite_src": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BENCH_DIR / "out" / "peers-src.sqlite3")},
}

SECRET_KEY = "dbcopy-bench-not-a-secret"  # Never served, never deployed.
DEBUG = False
ALLOWED_HOSTS = []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "registry",
    "dbcopy",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
