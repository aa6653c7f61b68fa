"""`dbcopy <subcommand> --settings myproject.settings ...`: the management command as a console script."""

import os
import sys


def main(argv=None):
    """Run `manage.py dbcopy ...` with Django's own option handling (--settings, --pythonpath, -v)."""
    from django.core.management import ManagementUtility

    # Like manage.py, find the user's project in the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    argv = sys.argv[1:] if argv is None else argv
    ManagementUtility(["dbcopy", "dbcopy", *argv]).execute()


if __name__ == "__main__":
    main()
