"""SQLite only: ``default``, ``sqlite_a`` and ``sqlite_b`` (files under SQLITE_DIR)."""

from .base import *  # noqa: F401,F403
from .base import DATABASES as _BASE_DATABASES
from .base import sqlite_db

SQLITE_DATABASES = {
    "sqlite_a": sqlite_db("sqlite_a"),
    "sqlite_b": sqlite_db("sqlite_b"),
}

DATABASES = {**_BASE_DATABASES, **SQLITE_DATABASES}
