"""Errors dbcopy raises; the management command maps each family to an exit status."""


class DbcopyError(Exception):
    """Base class of every error dbcopy reports to the user."""


class ConfigError(DbcopyError):
    """A source/destination or option the user gave cannot be used (exit status 2)."""


class PlanError(DbcopyError):
    """The models cannot be planned: unknown labels, unbreakable cycles (exit status 2)."""


class PreflightError(DbcopyError):
    """The destination is not ready for the copy; nothing was written (exit status 2)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class CopyError(DbcopyError):
    """A row could not be written to the destination (exit status 1)."""

    def __init__(self, label, dest, pk=None, field=None, reason="", fix=""):
        self.label, self.dest, self.pk, self.field = label, dest, pk, field
        self.reason, self.fix = reason, fix
        where = f" pk={pk!r}" if pk is not None else ""
        in_field = f" in field '{field}'" if field else ""
        hint = f" — {fix}" if fix else ""
        super().__init__(f"Could not copy {label}{where} to '{dest}': {reason}{in_field}{hint}")
