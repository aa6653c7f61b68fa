# Move a project from PostgreSQL (`old`) to MySQL/MariaDB (`new`) with dbcopy.
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
# What differs on the MySQL side:
# - Character set: MySQL's "utf8" holds 3 bytes per character only; emoji and other 4-byte
#   characters need "utf8mb4" on the connection AND on the tables (create the database with
#   CHARACTER SET utf8mb4 before `migrate`).
# - Strict mode: without STRICT_TRANS_TABLES MySQL silently truncates over-long strings and
#   clips out-of-range numbers; with it the copy fails loudly on the offending rows instead.
# - Collations: the default utf8mb4 collations are case- and accent-insensitive, so values that
#   are distinct in PostgreSQL ("Anna"/"anna", "resume"/"résumé", and on PAD SPACE collations
#   "x"/"x ") collide on a unique index: a duplicate-key error. Find them before copying, e.g.
#   SELECT lower(username) FROM auth_user GROUP BY 1 HAVING count(*) > 1;
#   or give such fields `db_collation="utf8mb4_bin"` (a migration) before `migrate --database new`.
# - Datetimes: Django creates DATETIME(6), which keeps microseconds; a table created by hand as
#   plain DATETIME rounds them away and `compare` reports every such row. With USE_TZ = True
#   Django stores UTC in MySQL (no time-zone type), so timestamptz values arrive unchanged.
# - PostgreSQL-only fields (django.contrib.postgres ArrayField, HStoreField, ranges, CharField
#   without max_length) have no MySQL column type: `migrate --database new` stops on them.

import os

import dj_database_url

# utf8mb4: 4-byte characters; strict mode: errors instead of silent truncation.
MYSQL_OPTIONS = {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"}

DATABASES = {
    "old": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("OLD_DB_NAME", "app"),
        "USER": os.environ.get("OLD_DB_USER", "app"),
        "PASSWORD": os.environ.get("OLD_DB_PASSWORD", ""),
        "HOST": os.environ.get("OLD_DB_HOST", "localhost"),
        "PORT": os.environ.get("OLD_DB_PORT", "5432"),
    },
    "new": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": os.environ.get("NEW_DB_NAME", "app"),
        "USER": os.environ.get("NEW_DB_USER", "app"),
        "PASSWORD": os.environ.get("NEW_DB_PASSWORD", ""),
        "HOST": os.environ.get("NEW_DB_HOST", "localhost"),
        "PORT": os.environ.get("NEW_DB_PORT", "3306"),
        "OPTIONS": MYSQL_OPTIONS,
    },
}

# Or from URLs (OLD_DATABASE_URL=postgres://app@pg:5432/app, NEW_DATABASE_URL=mysql://app@mysql:3306/app):
if os.environ.get("OLD_DATABASE_URL") and os.environ.get("NEW_DATABASE_URL"):
    DATABASES["old"] = dj_database_url.parse(os.environ["OLD_DATABASE_URL"])
    DATABASES["new"] = dj_database_url.parse(os.environ["NEW_DATABASE_URL"])
    DATABASES["new"].setdefault("OPTIONS", {}).update(MYSQL_OPTIONS)

# The site keeps running on `old` until the cut-over; then point `default` at "new".
DATABASES["default"] = dict(DATABASES[os.environ.get("DEFAULT_DB", "old")])

# URLs also work directly on the command line; add the charset as a query parameter there:
#   python manage.py dbcopy copy --source "$OLD_DATABASE_URL" --dest "$NEW_DATABASE_URL?charset=utf8mb4" --no-input
