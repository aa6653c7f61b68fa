"""PostgreSQL: ``pg_a`` and ``pg_b`` (plus the SQLite ``default``).

Server: ``DBCOPY_TEST_PG_HOST`` (127.0.0.1), ``DBCOPY_TEST_PG_PORT`` (5432),
``DBCOPY_TEST_PG_USER`` (postgres), ``DBCOPY_TEST_PG_PASSWORD`` (empty).
"""

from .base import *  # noqa: F401,F403
from .base import DATABASES as _BASE_DATABASES
from .base import DB_PREFIX, env, with_test_name

PG_HOST = env("DBCOPY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = env("DBCOPY_TEST_PG_PORT", "5432")
PG_USER = env("DBCOPY_TEST_PG_USER", "postgres")
PG_PASSWORD = env("DBCOPY_TEST_PG_PASSWORD", "")


def pg_db(suffix):
    return with_test_name(
        {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": PG_HOST,
            "PORT": PG_PORT,
            "USER": PG_USER,
            "PASSWORD": PG_PASSWORD,
            "NAME": f"{DB_PREFIX}{suffix}",
            "OPTIONS": {"connect_timeout": 10},
        },
        f"test_{DB_PREFIX}{suffix}",
    )


PG_DATABASES = {"pg_a": pg_db("a"), "pg_b": pg_db("b")}

DATABASES = {**_BASE_DATABASES, **PG_DATABASES}
