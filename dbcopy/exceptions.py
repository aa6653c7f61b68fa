"""Errors dbcopy raises; each family carries the exit status the command ends with."""


class DbcopyError(Exception):
    """Base class of every error dbcopy reports to the user."""

    returncode = 1


class ConfigError(DbcopyError):
    """A source/destination or option the user gave cannot be used (exit status 2)."""

    returncode = 2


class PlanError(DbcopyError):
    """The models cannot be planned: unknown labels, unbreakable cycles (exit status 2)."""

    returncode = 2


class DestinationLocked(DbcopyError):
    """Another dbcopy copy or sync is writing to the destination; nothing was written (exit status 3)."""

    returncode = 3


class Interrupted(DbcopyError):
    """SIGINT or SIGTERM arrived: the run stopped after the current chunk (exit status 128 + signal)."""

    def __init__(self, signum):
        import signal

        self.signum = signum
        self.returncode = 128 + signum
        super().__init__(f"Interrupted by {signal.Signals(signum).name}")


class ParentFailed(DbcopyError):
    """A table loaded while the tables its foreign keys need still loaded, and one of those failed."""

    def __init__(self, blocker):
        self.blocker = blocker
        super().__init__(f"{blocker}, which the table refers to, failed")


class SourceFault(DbcopyError):
    """Reading the source failed (a database error, not a row the destination refused)."""

    def __init__(self, alias, error):
        self.alias, self.error = alias, error
        super().__init__(f"reading from '{alias}' failed: {error}")


class PreflightError(DbcopyError):
    """The destination is not ready for the copy; nothing was written (exit status 2)."""

    returncode = 2

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


class SourceRowError(CopyError):
    """A row could not be read: a value its database holds cannot be turned into the field's value
    (text that is not UTF-8, a decimal beyond max_digits, a date that is no date) (exit status 1)."""

    def __init__(self, label, source, pk=None, field=None, reason="", fix=""):
        self.label, self.source, self.dest, self.pk, self.field = label, source, None, pk, field
        self.reason, self.fix = reason, fix
        where = f" pk={pk!r}" if pk is not None else ""
        in_field = f"field '{field}' " if field else ""
        hint = f" — {fix}" if fix else ""
        DbcopyError.__init__(self, f"Could not read {label}{where} from '{source}': {in_field}{reason}{hint}")


class DumpError(DbcopyError):
    """A dump file cannot be read as written: not a dump, another format version, cut short or damaged
    (exit status 2)."""

    returncode = 2


class NotADump(DumpError):
    """The file is not a dbcopy dump at all (no zstandard frame, or another program's data)."""


class DumpVersionError(DumpError):
    """The dump was written in a format version this dbcopy does not read."""


class DumpTruncated(DumpError):
    """The dump ends before its trailer; `label` names the model whose rows were cut (None: before any)."""

    def __init__(self, message, label=None, rows=None):
        self.label, self.rows = label, rows
        super().__init__(message)


class DumpCorrupt(DumpError):
    """Bytes of the dump changed after it was written (a checksum or a digest does not match)."""

    def __init__(self, message, label=None):
        self.label = label
        super().__init__(message)


class DumpMismatch(DumpError):
    """The dump's models do not match the models installed in this project; nothing was written."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("The dump does not fit this project's models:\n" + "\n".join(f"  {p}" for p in self.problems))


class DumpValueError(DbcopyError):
    """A value read from the source has no place in a dump column of its kind (exit status 1)."""

    def __init__(self, label, pk, field, reason, fix=""):
        self.label, self.pk, self.field, self.reason, self.fix = label, pk, field, reason, fix
        hint = f" — {fix}" if fix else ""
        super().__init__(f"Could not export {label} pk={pk!r}: field '{field}' {reason}{hint}")
