"""What every benchmark shares: migrate and reset a destination, run a command as a timed subprocess.

run.py (the copy methods) and sync_bench.py (the sync) time their commands the same way: each runs as
its own subprocess from the repository root, timed with a monotonic clock, its peak RSS from os.wait4
(in a small launcher process, so that the benchmark's own memory is no floor under the figure).
"""

import datetime
import os
import shlex
import subprocess
import sys
from pathlib import Path

import dataset
from dataset import SOURCE
from project.settings import DATABASES

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
MANAGE = [sys.executable, "bench/manage.py"]


def migrate(alias):
    """Run `manage.py migrate` on the alias; stop the benchmark if it fails."""
    argv = [*MANAGE, "migrate", "--database", alias, "--no-input", "-v", "0"]
    completed = subprocess.run(argv, cwd=REPO_DIR, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed:\n{completed.stdout}{completed.stderr}")


def reset(target):
    """Drop, recreate and migrate the destination; let PostgreSQL write out what the last method left."""
    dataset.recreate(target)
    migrate(target)
    checkpoint(target)


def checkpoint(alias):
    """On PostgreSQL, write out the dirty buffers now, so the next timed command does not pay for them."""
    if not dataset.is_postgres(alias):
        return
    connection = dataset.connect(alias)
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    connection.close()


# Linux keeps a process's peak RSS across fork and exec: a command the benchmark starts itself would
# begin with the benchmark's own peak (Django, the rows content.py compared) as its floor. The launcher,
# a bare interpreter of a few MB, forks the command instead, times it and reports its peak RSS (that of
# the largest process of its tree, as wait4 gives it) on the file descriptor it is handed.
LAUNCHER = """\
import os, sys, time
report, argv = int(sys.argv[1]), sys.argv[2:]
started = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execvp(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
os.write(report, f"{time.monotonic() - started} {usage.ru_maxrss}".encode())
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def measure(argv, log_path):
    """Run argv as a subprocess; return (seconds, peak RSS in MiB, exit status)."""
    env = dict(os.environ)
    if DATABASES[SOURCE]["PASSWORD"]:
        env["PGPASSWORD"] = DATABASES[SOURCE]["PASSWORD"]  # for psql
    read_end, write_end = os.pipe()
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, str(write_end), *argv], cwd=REPO_DIR,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   pass_fds=(write_end,))  # no stdin: a crashed pgloader's debugger then exits
        os.close(write_end)
        process.wait()
    with os.fdopen(read_end) as report:
        seconds, max_rss_kib = report.read().split()
    return float(seconds), int(max_rss_kib) / 1024, process.returncode


def log_tail(log_path, lines=15):
    """Print the last lines of a command's log, indented, to show why it failed."""
    print(f"  last lines of {log_path.relative_to(REPO_DIR)}:")
    for line in log_path.read_text(errors="replace").splitlines()[-lines:]:
        print("    " + line)


def stamp_check(copied, source):
    """Say whether the identifiers' extreme timestamps arrived as stored, lost their microseconds, or changed."""
    if copied == source:
        return "kept"
    if None not in copied and all(abs(c - s) < datetime.timedelta(milliseconds=1) for c, s in zip(copied, source)):
        return "µs lost"
    return "re-stamped"
