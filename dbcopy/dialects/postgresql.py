"""PostgreSQL: deferrable foreign keys, sequences behind serial/identity columns, no NUL in text."""

from .base import Dialect, atomic_with_deferred_checks


class PostgreSQLDialect(Dialect):
    can_defer_constraints = True
    rejects_nul_in_text = True

    def constraints_deferred(self, tables):
        # Django creates FKs DEFERRABLE INITIALLY DEFERRED; deferral lasts only until the transaction
        # ends, so the whole cycle is copied in one transaction.
        return atomic_with_deferred_checks(self, tables, before=["SET CONSTRAINTS ALL DEFERRED"])
