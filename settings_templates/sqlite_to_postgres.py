# Move a project from SQLite (`old`) to PostgreSQL (`new`) with dbcopy.
#
# `default` is whatever the running site uses: `old` until the cut-over, then `new`.
# The PostgreSQL password comes from the environment, never from this file.
#
# Run:
#   python manage.py migrate --database new             # same migrations as old: empty tables
#   python manage.py dbcopy plan --source old --dest new
#   python manage.py dbcopy copy --source old --dest new --no-input --report-json copy.json
#   python manage.py dbcopy compare --source old --dest new --report-json compare.json
# Exit status 0: every row identical; 1: mismatches or failed rows (see the report);
# 2: usage or pre-flight error (missing tables, schema drift, destination not empty).
# Re-running after a failure: add --truncate to empty the planned tables first.
#
# What SQLite let through that PostgreSQL refuses:
# - Over-long strings: SQLite ignores max_length (VARCHAR(20) stores any length), PostgreSQL
#   raises "value too long for type character varying(20)". Find them before copying, e.g.
#   SELECT id, length(name) FROM myapp_customer WHERE length(name) > 20;
# - NUL characters: PostgreSQL refuses "\x00" in text; SQLite stores it. Find them with
#   SELECT id FROM myapp_note WHERE instr(body, char(0)) > 0;
# - Loose types: SQLite columns accept any type (text in an integer column, more decimal places
#   or digits than max_digits/decimal_places allow); PostgreSQL rejects or rounds such values,
#   and `compare` reports the rounded ones.
# - Foreign keys SQLite never checked (rows written with foreign_keys off, or by raw SQL) point
#   nowhere; PostgreSQL's constraints reject them when the copy commits.
# - Datetimes: SQLite stores text without a time zone. With USE_TZ = True Django wrote UTC; if
#   the file holds local times, set DATABASES["old"]["TIME_ZONE"] to that zone.
# - Sequences: the copy keeps primary keys; dbcopy resets PostgreSQL's sequences afterwards so
#   new rows do not collide with copied ids.

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent  # as in a generated settings.py

DATABASES = {
    "old": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    },
    "new": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("NEW_DB_NAME", "app"),
        "USER": os.environ.get("NEW_DB_USER", "app"),
        "PASSWORD": os.environ.get("NEW_DB_PASSWORD", ""),
        "HOST": os.environ.get("NEW_DB_HOST", "localhost"),
        "PORT": os.environ.get("NEW_DB_PORT", "5432"),
    },
}

# Or from a URL (NEW_DATABASE_URL=postgres://app@pg:5432/app; the password may be left out of
# the URL and given as PGPASSWORD, which libpq reads itself):
if os.environ.get("NEW_DATABASE_URL"):
    DATABASES["new"] = dj_database_url.parse(os.environ["NEW_DATABASE_URL"])

# The site keeps running on `old` until the cut-over; then point `default` at "new".
DATABASES["default"] = dict(DATABASES[os.environ.get("DEFAULT_DB", "old")])

# URLs also work directly on the command line, without touching settings:
#   python manage.py dbcopy copy --source sqlite:///db.sqlite3 --dest "$NEW_DATABASE_URL" --no-input
