"""What a run did, as data: one StepResult per step with a Status, and the run's own facts."""

import enum
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    """A step's outcome. A str subclass so reports and JSON keep the plain words ("ok", "failed")."""

    OK = "ok"
    MISMATCH = "mismatch"  # the step ran, but the two sides differ
    FAILED = "failed"
    BLOCKED = "blocked"  # not run: a step it depends on failed
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM arrived while it ran, or before it started
    SKIPPED = "skipped"  # left alone by the plan (proxy, router, …)

    def __str__(self):
        return self.value


# Statuses a run may end with and still exit 0.
SUCCESSFUL = frozenset({Status.OK, Status.SKIPPED})


@dataclass
class StepResult:
    step: object
    status: Status = Status.OK
    copied: int = 0
    message: str = ""
    seconds: float = 0.0
    dest_rows_before: int = 0  # rows the destination table already held (--append)
    method: str = ""  # "stream", "fast", "bulk_create", "remap" or "sync": how the rows travelled
    path: str = ""  # how the table streamed (dialect.stream_plan()), or why it went value by value
    counts: object = None  # sync only: inserted, updated, deleted, unchanged, gone, watermark
    retries: int = 0  # transient faults survived
    last_key: tuple | None = None  # the last source key committed at the destination (chunked paths)
    resumed_rows: int = 0  # rows an earlier, interrupted run had already copied (--resume)
    source_rows: int | None = None  # the source's rows as the run read them (its snapshot)
    # sync: the destination's rows as a digest of this run counted them, with the run's inserts and
    # deletes at that moment; while those stay the same, no second count is needed.
    dest_count: tuple | None = None
    # {attname: source rows holding a value} of the deferred FKs, where the reading counted them (an
    # import: its stand-in source holds no rows to count); None: count them at the source.
    source_deferred: dict | None = None
    blocked_by: str = ""  # label of the failed step this one depends on
    key_ranges: int = 1  # how many key ranges --jobs workers copied the table in (1: whole)

    @property
    def ok(self):
        return self.status is Status.OK


@dataclass
class Consistency:
    """Whether every table was read from one snapshot of the source, and if not, why."""

    consistent: bool
    how: str = ""  # what gave the snapshot, or why there was none

    def describe(self):
        return f"consistent: {self.how}" if self.consistent else f"not consistent: {self.how}"


@dataclass
class RunResult:
    results: list
    consistency: Consistency | None = None
    interrupted: int | None = None  # the signal number that stopped the run
    problems: list = field(default_factory=list)  # run-wide faults (sequence reset …), each a sentence

    def for_step(self, step):
        return next((r for r in self.results if r.step is step), None)

    @property
    def failed(self):
        return [r for r in self.results if r.status is Status.FAILED]

    @property
    def retries(self):
        return sum(r.retries for r in self.results)


class Timings:
    """Seconds a command spent in each of its phases, in the order they ran.

    whole_process: the process runs this command alone (manage.py, the console script), so "setup" is
    the time from the start of the process to the command's start (interpreter, imports, Django's
    setup, parsing) and "total" its age at the end; not for a command called from a program.
    """

    def __init__(self, whole_process=False):
        self.phases = {}
        self.whole_process = whole_process
        setup = seconds_since_process_start() if whole_process else None
        if setup is not None:
            self.phases["setup"] = setup

    @contextmanager
    def phase(self, name):
        """Add the time the block takes to the phase `name`."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.monotonic() - started

    def as_dict(self):
        """Return {phase: seconds}, then "total": the process' age now (where the system tells it)."""
        phases = {name: round(seconds, 3) for name, seconds in self.phases.items()}
        total = seconds_since_process_start() if self.whole_process else None
        if total is not None:
            phases["total"] = round(total, 3)
        return phases


def seconds_since_process_start():
    """Return the wall-clock seconds since this process started (Linux), or None where the system
    does not tell.

    The kernel's start time of the process and its uptime share one clock (ticks since boot), so the
    interpreter's start, imports and Django's setup are all counted, to 1/100 s.
    """
    try:
        with open("/proc/self/stat") as stat:
            # Field 22, starttime; the command name (field 2) may hold spaces, so count after its ")".
            started = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as uptime:
            now = float(uptime.read().split()[0])
        return max(0.0, now - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
