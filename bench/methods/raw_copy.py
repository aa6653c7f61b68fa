"""The limit for PostgreSQL → PostgreSQL: `psql -c "COPY (SELECT …) TO STDOUT" | psql -c "COPY … FROM STDIN"`.

script() returns the bash script run.py times: empty the destination's content types and permissions
(migrate's rows), pipe every table in foreign-key order, then set the sequences. No Python touches a row.
"""

import shlex

from dataset import connect
from project.settings import DATABASES

# Move a table's sequence past its largest id, as dbcopy does, so the next insert gets a fresh one.
SETVAL = (
    """SELECT setval(pg_get_serial_sequence('"{0}"', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) """
    """FROM "{0}";"""
)


def psql(alias, sql):
    """Return the psql command line that runs one statement on the alias's database."""
    db = DATABASES[alias]
    return shlex.join([
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"],
        "-d", db["NAME"], "-c", sql,
    ])


def script(source, dest, binary=False):
    """Return the bash script that copies every table of source into the migrated dest (in COPY's
    binary format with binary=True)."""
    tables, columns, needs = _schema(source)
    form = " (FORMAT binary)" if binary else ""
    lines = ["set -euo pipefail", psql(dest, "TRUNCATE django_content_type, auth_permission CASCADE")]
    for table in _dependency_order(tables, needs):
        cols = ", ".join(f'"{c}"' for c in columns[table])
        copy_out = f'COPY (SELECT {cols} FROM "{table}") TO STDOUT{form}'
        copy_in = f'COPY "{table}" ({cols}) FROM STDIN{form}'
        lines.append(f"{psql(source, copy_out)} | {psql(dest, copy_in)}")
    sequences = " ".join(SETVAL.format(table) for table in tables if "id" in columns[table])
    lines.append(psql(dest, sequences))
    return "\n".join(lines) + "\n"


def _schema(alias):
    """Return the tables (django_migrations aside), their columns, and the tables each one references."""
    connection = connect(alias)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name <> 'django_migrations' ORDER BY table_name, ordinal_position"
        )
        columns = {}
        for table, column in cursor.fetchall():
            columns.setdefault(table, []).append(column)
        cursor.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint WHERE contype = 'f'"
        )
        needs = {}
        for table, target in cursor.fetchall():
            needs.setdefault(table.strip('"'), set()).add(target.strip('"'))
    connection.close()
    return sorted(columns), columns, needs


def _dependency_order(tables, needs):
    """Return the tables, each after the ones its foreign keys point at (self-references ignored)."""
    ordered, seen = [], set()

    def visit(table):
        if table in seen:
            return
        seen.add(table)
        for target in sorted(needs.get(table, ())):
            if target != table:
                visit(target)
        ordered.append(table)

    for table in tables:
        visit(table)
    return ordered
