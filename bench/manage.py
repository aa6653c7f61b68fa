#!/usr/bin/env python
"""Run Django management commands of the benchmark project from any directory."""

import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent


def setup_path():
    """Put the benchmark project and this checkout's dbcopy first on sys.path."""
    # bench/ holds `project` and `registry`; the repository root holds `dbcopy`, so the
    # benchmark measures the working copy even when dbcopy is not installed.
    sys.path[:0] = [str(BENCH_DIR), str(REPO_DIR)]
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"


def main():
    """Run the command given on the command line."""
    setup_path()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
