"""Default test settings: every backend at once.

Aliases: ``default`` (SQLite file), ``sqlite_a``, ``sqlite_b``, ``pg_a``, ``pg_b``,
``mysql_a``, ``mysql_b``.
"""

from .base import *  # noqa: F401,F403
from .base import DATABASES as _BASE_DATABASES
from .mysql import MYSQL_DATABASES
from .postgresql import PG_DATABASES
from .sqlite import SQLITE_DATABASES

DATABASES = {**_BASE_DATABASES, **SQLITE_DATABASES, **PG_DATABASES, **MYSQL_DATABASES}
