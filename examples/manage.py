#!/usr/bin/env python
"""Run Django management commands of the trading-platform demo from any directory."""

import os
import sys
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
REPO_DIR = EXAMPLES_DIR.parent


def main():
    """Put the demo project and this checkout's dbcopy on sys.path, then run the command."""
    # examples/ holds the `tradingplatform` package; the repository root holds `dbcopy`,
    # so the demo exercises the working copy even when dbcopy is not installed.
    sys.path[:0] = [str(EXAMPLES_DIR), str(REPO_DIR)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingplatform.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
