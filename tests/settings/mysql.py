"""MySQL / MariaDB: ``mysql_a`` and ``mysql_b`` (plus the SQLite ``default``).

Server: ``DBCOPY_TEST_MYSQL_HOST`` (127.0.0.1), ``DBCOPY_TEST_MYSQL_PORT`` (3306),
``DBCOPY_TEST_MYSQL_USER`` (root), ``DBCOPY_TEST_MYSQL_PASSWORD`` (empty).
"""

from .base import *  # noqa: F401,F403
from .base import DATABASES as _BASE_DATABASES
from .base import DB_PREFIX, env, with_test_name

MYSQL_HOST = env("DBCOPY_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = env("DBCOPY_TEST_MYSQL_PORT", "3306")
MYSQL_USER = env("DBCOPY_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = env("DBCOPY_TEST_MYSQL_PASSWORD", "")


def mysql_db(suffix, collation):
    return with_test_name(
        {
            "ENGINE": "django.db.backends.mysql",
            "HOST": MYSQL_HOST,
            "PORT": MYSQL_PORT,
            "USER": MYSQL_USER,
            "PASSWORD": MYSQL_PASSWORD,
            "NAME": f"{DB_PREFIX}{suffix}",
            "OPTIONS": {
                "charset": "utf8mb4",
                # Strict mode: over-long values are errors, not silent truncation.
                "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
                "connect_timeout": 10,
            },
        },
        f"test_{DB_PREFIX}{suffix}",
        CHARSET="utf8mb4",
        COLLATION=collation,
    )


# mysql_a (a source in the tests) sorts case- and accent-insensitively, so keyset paging
# over CharField pks meets an order that differs from Python's; mysql_b (a destination)
# is binary, so values that differ only by case never collide there.
MYSQL_DATABASES = {
    "mysql_a": mysql_db("a", "utf8mb4_unicode_ci"),
    "mysql_b": mysql_db("b", "utf8mb4_bin"),
}

DATABASES = {**_BASE_DATABASES, **MYSQL_DATABASES}
