"""What every benchmark shares: migrate and reset a destination, run a command as a timed subprocess.

run.py (the copy methods) and sync_bench.py (the sync) time their commands the same way: each runs as
its own subprocess from the repository root, timed with a monotonic clock, its peak RSS from os.wait4.
"""

import datetime
import os
import shlex
import subprocess
import sys
import time
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


def measure(argv, log_path):
    """Run argv as a subprocess; return (seconds, peak RSS in MiB, exit status)."""
    env = dict(os.environ)
    if DATABASES[SOURCE]["PASSWORD"]:
        env["PGPASSWORD"] = DATABASES[SOURCE]["PASSWORD"]  # for psql
    with open(log_path, "w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=REPO_DIR, stdout=log, stderr=subprocess.STDOUT, env=env)
        # Linux reports the largest RSS of the process and of every descendant it waited for.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, process.returncode


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
