"""The specialised peers of the peers bench, as their users run them into a migrated Django database.

Each function writes what its tool needs under bench/out/ (a pgloader command file, a pgcopydb filter
file, a bash script) and returns the argv peers.py times. Every tool runs at its defaults, with only what
loading data into tables that `migrate` made (and half-filled) requires:

- leave `django_migrations` alone (the destination's own, written by its migrate);
- replace the content types and permissions migrate wrote by the source's (their ids are what the other
  tables point at): pgloader's `truncate` option, elsewhere an explicit emptying first, timed with the
  tool, as raw_copy.py does.

pgcopydb gets `PGOPTIONS=-c session_replication_role=replica`: `copy table-data` is the data step of a
clone that creates the foreign keys afterwards, and copies the biggest tables first, in parallel; into
a schema that already has them, every copy would otherwise fail its foreign-key check.
"""

import shlex
from urllib.parse import quote

from project.settings import DATABASES

# The rows `migrate` writes that the source's must replace, in an order MariaDB's DELETE accepts.
MIGRATE_ROWS = ("auth_permission", "django_content_type")
SKIPPED_TABLE = "django_migrations"

PGLOADER_FROM_MYSQL = """\
LOAD DATABASE
     FROM {source}
     INTO {dest}
WITH data only, truncate{options}
EXCLUDING TABLE NAMES MATCHING '{skipped}'
ALTER SCHEMA '{schema}' RENAME TO 'public';
"""
PGLOADER_FROM_SQLITE = """\
LOAD DATABASE
     FROM {source}
     INTO {dest}
WITH data only, truncate{options}
EXCLUDING TABLE NAMES LIKE '{skipped}';
"""


def url(alias, scheme):
    """Return the alias's database as a URL with this scheme (user, password, host, port, name)."""
    db = DATABASES[alias]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite://{db['NAME']}"  # an absolute path: sqlite:///…
    user = quote(db["USER"], safe="")
    if db["PASSWORD"]:
        user += ":" + quote(db["PASSWORD"], safe="")
    return f"{scheme}://{user}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def pgloader(source, dest, out_dir, name, prefetch_rows=None):
    """Write the pgloader command file (data only, into the migrated tables); return the argv.

    prefetch_rows: pgloader's own remedy when its heap runs out (default 100,000 rows per table in flight).
    """
    template = PGLOADER_FROM_SQLITE if DATABASES[source]["ENGINE"].endswith("sqlite3") else PGLOADER_FROM_MYSQL
    options = f", prefetch rows = {prefetch_rows}" if prefetch_rows else ""
    load = template.format(source=url(source, "mysql"), dest=url(dest, "postgresql"), skipped=SKIPPED_TABLE,
                           schema=DATABASES[source]["NAME"], options=options)
    path = out_dir / f"peers-{name}.load"
    path.write_text(load)
    return ["pgloader", str(path)]


def pgcopydb(source, dest, out_dir, name):
    """Write the filter (django_migrations' data left out) and the script; return the argv."""
    filters = out_dir / f"peers-{name}.filters"
    filters.write_text(f"[exclude-table-data]\npublic.{SKIPPED_TABLE}\n")
    copy = ["pgcopydb", "copy", "table-data", "--source", url(source, "postgres"), "--target", url(dest, "postgres"),
            "--dir", str(work_dir(out_dir, name)), "--filters", str(filters)]
    return _bash(out_dir, name, [
        _psql(dest, f"TRUNCATE {', '.join(MIGRATE_ROWS)} CASCADE"),
        "PGOPTIONS='-c session_replication_role=replica' " + shlex.join(copy),
    ])


def mydumper(source, dest, out_dir, name):
    """Return the argv of the script: empty migrate's rows, mydumper the data only, myloader it."""
    source_db, dump = DATABASES[source]["NAME"], work_dir(out_dir, name)
    dump_argv = ["mydumper", *_mysql_options(source), "-B", source_db, "--no-schemas",
                 "--regex", f"^(?!{source_db}\\.{SKIPPED_TABLE}$)", "-o", str(dump)]
    load_argv = ["myloader", *_mysql_options(dest), "-d", str(dump), "-s", source_db,
                 "-B", DATABASES[dest]["NAME"]]
    # mydumper 0.10 starts every file with /*!40101 SET NAMES binary*/;, and MariaDB then refuses the text of a
    # native uuid column ("Incorrect uuid value"): the files are switched to utf8mb4 (what they hold)
    # between the two tools, and that takes part in the time.
    names = f"sed -i 's|^/\\*!40101 SET NAMES binary\\*/;|/*!40101 SET NAMES utf8mb4*/;|' {shlex.quote(str(dump))}/*.sql"
    return _bash(out_dir, name, [_empty_migrate_rows(dest), shlex.join(dump_argv), names, shlex.join(load_argv)])


def mysqldump(source, dest, out_dir, name):
    """Return the argv of the script: empty migrate's rows, then mysqldump --no-create-info | mysql."""
    source_db = DATABASES[source]["NAME"]
    dump_argv = ["mysqldump", *_mysql_options(source), "--no-create-info",
                 f"--ignore-table={source_db}.{SKIPPED_TABLE}", source_db]
    load_argv = ["mysql", *_mysql_options(dest), DATABASES[dest]["NAME"]]
    return _bash(out_dir, name, [_empty_migrate_rows(dest), f"{shlex.join(dump_argv)} | {shlex.join(load_argv)}"])


def work_dir(out_dir, name):
    """Return the directory a tool dumps into or keeps its state in (emptied before every run)."""
    return out_dir / f"peers-{name}.d"


def _bash(out_dir, name, lines):
    path = out_dir / f"peers-{name}.sh"
    path.write_text("\n".join(["set -euo pipefail", *lines]) + "\n")
    return ["bash", str(path)]


def _psql(alias, sql):
    db = DATABASES[alias]
    return shlex.join(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", db["HOST"], "-p", str(db["PORT"]),
                       "-U", db["USER"], "-d", db["NAME"], "-c", sql])


def _mysql_options(alias):
    db = DATABASES[alias]
    password = [f"--password={db['PASSWORD']}"] if db["PASSWORD"] else []  # mysql, mysqldump and mydumper alike
    return ["-h", db["HOST"], "-P", str(db["PORT"]), "-u", db["USER"], *password]


def _empty_migrate_rows(alias):
    deletes = " ".join(f"DELETE FROM {table};" for table in MIGRATE_ROWS)
    return shlex.join(["mysql", *_mysql_options(alias), DATABASES[alias]["NAME"], "-e",
                       f"SET FOREIGN_KEY_CHECKS=0; {deletes}"])
