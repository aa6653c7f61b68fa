# Move a project from MySQL/MariaDB (`old`) to PostgreSQL (`new`) with dbcopy.
#
# `default` is whatever the running site uses: `old` until the cut-over, then `new`.
# Passwords come from the environment, never from this file.
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
# What differs on the way to PostgreSQL:
# - NUL characters: PostgreSQL refuses "\x00" in text columns; MySQL stores it. Find and clean
#   such values in the source first, e.g.
#   SELECT id FROM myapp_note WHERE LOCATE(CHAR(0), body) > 0;
#   UPDATE myapp_note SET body = REPLACE(body, CHAR(0), '') WHERE LOCATE(CHAR(0), body) > 0;
# - Read the source in utf8mb4: a "utf8" (3-byte) connection turns emoji into "?" on the way out,
#   and the copy would faithfully write the question marks.
# - Strict mode on the source matters for what is already stored: a database that ran without
#   STRICT_TRANS_TABLES may hold zero dates ('0000-00-00'), which PostgreSQL has no value for;
#   fix them (NULL or a real date) before copying.
# - Collations: PostgreSQL compares case- and accent-sensitively, so lookups such as
#   username="Anna" that matched "anna" on MySQL stop matching after the move (use iexact or a
#   case-insensitive collation). The copy itself cannot produce duplicates in this direction.
# - Datetimes: MySQL has no time-zone type. With USE_TZ = True Django stores UTC there; if the
#   old database holds local times instead, set DATABASES["old"]["TIME_ZONE"] to that zone so
#   they are read correctly. Old tables created as plain DATETIME hold whole seconds only.
# - Sequences: the copy keeps primary keys; dbcopy resets PostgreSQL's sequences afterwards so
#   new rows do not collide with copied ids.

import os

import dj_database_url

# Read 4-byte characters intact; strict mode for anything the site still writes to `old`.
MYSQL_OPTIONS = {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"}

DATABASES = {
    "old": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": os.environ.get("OLD_DB_NAME", "app"),
        "USER": os.environ.get("OLD_DB_USER", "app"),
        "PASSWORD": os.environ.get("OLD_DB_PASSWORD", ""),
        "HOST": os.environ.get("OLD_DB_HOST", "localhost"),
        "PORT": os.environ.get("OLD_DB_PORT", "3306"),
        "OPTIONS": MYSQL_OPTIONS,
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

# Or from URLs (OLD_DATABASE_URL=mysql://app@mysql:3306/app, NEW_DATABASE_URL=postgres://app@pg:5432/app):
if os.environ.get("OLD_DATABASE_URL") and os.environ.get("NEW_DATABASE_URL"):
    DATABASES["old"] = dj_database_url.parse(os.environ["OLD_DATABASE_URL"])
    DATABASES["old"].setdefault("OPTIONS", {}).update(MYSQL_OPTIONS)
    DATABASES["new"] = dj_database_url.parse(os.environ["NEW_DATABASE_URL"])

# The site keeps running on `old` until the cut-over; then point `default` at "new".
DATABASES["default"] = dict(DATABASES[os.environ.get("DEFAULT_DB", "old")])

# URLs also work directly on the command line; add the charset as a query parameter there:
#   python manage.py dbcopy copy --source "$OLD_DATABASE_URL?charset=utf8mb4" --dest "$NEW_DATABASE_URL" --no-input
