"""MySQL/MariaDB: immediate FK checks, strict mode, per-column charsets, AUTO_INCREMENT and id 0."""

from contextlib import contextmanager

from .base import Dialect


class MySQLDialect(Dialect):
    # InnoDB checks FKs row by row and cannot defer them; it can switch them off for the session.
    can_defer_constraints = True

    def prepare_session(self):
        # Strict mode turns silent truncation into errors; NO_AUTO_VALUE_ON_ZERO stores an explicit
        # id 0 as 0 instead of a fresh AUTO_INCREMENT value.
        self.execute(
            ["SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_TRANS_TABLES', "
             "'NO_AUTO_VALUE_ON_ZERO')"]
        )
        # Django reads sql_mode once, through a separate connection, so it would still refuse id 0:
        # tell it what this session's mode is.
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.sql_mode")
            modes = set(cursor.fetchone()[0].split(","))
        self.connection.__dict__["sql_mode"] = modes
        self.connection.features.__dict__["allows_auto_pk_0"] = "NO_AUTO_VALUE_ON_ZERO" in modes

    def column_charset(self, table, column):
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
                [table, column],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    @contextmanager
    def constraints_deferred(self, tables):
        # MySQL does not re-validate rows when checks come back on, so verify the tables afterwards.
        with self.connection.constraint_checks_disabled():
            yield
        self.check_constraints(tables)
