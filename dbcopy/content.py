"""Prove content, not just counts: digest each copied table on both sides and name the rows that differ.

Data only, as reconcile.py: one ContentCheck per step, which the reconciliation carries and report.py
prints. The digests themselves (ranges hashed inside each database, Python where a column has no
canonical SQL form across two vendors) are digest.py's.
"""

import enum
from dataclasses import dataclass

from django.db import DatabaseError

from .diagnose import first_line
from .digest import TableDigest
from .plan import REMAP
from .remap import read_remaps

# Differing rows named per model unless --show-diffs says otherwise; every one of them is counted.
DEFAULT_SHOWN = 10


class ContentStatus(str, enum.Enum):
    """What the digests say of a table's content. A str subclass so reports keep the plain words."""

    EQUAL = "equal"
    DIFFERS = "differs"
    NOT_CHECKED = "not checked"

    def __str__(self):
        return self.value


EQUAL, DIFFERS, NOT_CHECKED = ContentStatus.EQUAL, ContentStatus.DIFFERS, ContentStatus.NOT_CHECKED


@dataclass(frozen=True)
class ContentCheck:
    """The content of one table: equal, differing (how many rows, the first few named) or not checked (why)."""

    status: ContentStatus
    method: str | None = None  # "sql": digested inside the databases; "python": read and digested here
    python_reason: str | None = None
    differing_rows: int = 0
    differences: tuple = ()  # the first --show-diffs digest.Difference values
    reason: str = ""  # why it was not checked
    error: bool = False  # not checked because digesting failed (rather than left out on purpose)

    def as_dict(self):
        return {
            "status": str(self.status),
            "method": self.method,
            "python_reason": self.python_reason,
            "differing_rows": self.differing_rows,
            "differences": [
                {"pk": list(d.pk) if isinstance(d.pk, tuple) else d.pk, "fields": list(d.fields),
                 "missing": d.missing or None}
                for d in self.differences
            ],
            "reason": self.reason,
        }


def not_checked(reason):
    return ContentCheck(NOT_CHECKED, reason=reason)


class ContentChecker:
    """Digest the tables of one plan, with the content type maps read once (ids the copy translated).

    shown: how many differing rows to name per table (None: all); all of them are counted.
    """

    def __init__(self, plan, shown=DEFAULT_SHOWN):
        self.plan, self.shown = plan, DEFAULT_SHOWN if shown is None else shown
        self._remaps = None

    def remaps(self):
        if self._remaps is None:
            self._remaps = read_remaps(self.plan)
        return self._remaps

    def check(self, step):
        """Return the ContentCheck of one step's table; a database error is reported, not raised."""
        if step.kind == REMAP:
            return not_checked("matched by natural key: ids differ by design")
        try:
            # No snapshot here: the source may be digested in slices on connections of their own.
            digest = TableDigest(step, self.remaps(), source_session=_no_session)
        except (DatabaseError, NotImplementedError) as exc:
            return ContentCheck(NOT_CHECKED, reason=f"cannot digest the content: {first_line(exc)}", error=True)
        try:
            found, total = digest.differences(limit=self.shown)
        except (DatabaseError, NotImplementedError) as exc:
            return ContentCheck(NOT_CHECKED, digest.method, digest.python_reason,
                                reason=f"cannot digest the content: {first_line(exc)}", error=True)
        return ContentCheck(DIFFERS if total else EQUAL, digest.method, digest.python_reason, total, tuple(found))


def digest_methods(plan):
    """Return (step, method, python_reason) for every step a content check digests, without digesting.

    Reads the content type maps (read-only), as the check would.
    """
    remaps = read_remaps(plan)
    methods = []
    for step in plan.steps:
        if step.kind == REMAP:
            continue
        digest = TableDigest(step, remaps)
        methods.append((step, digest.method, digest.python_reason))
    return methods


def _no_session(dialect):
    """Leave a source connection as it is (compare and --verify read no snapshot)."""
