"""The limit for PostgreSQL → PostgreSQL in the peers bench: binary `COPY … TO STDOUT | COPY … FROM STDIN`.

script() returns the bash script peers.py times: empty the destination's content types and permissions
(migrate's rows), then one `psql -c "COPY (SELECT …) TO STDOUT (FORMAT binary)" | psql -c "COPY … FROM
STDIN (FORMAT binary)"` pipe per table in foreign-key order (each pipe its own transaction, so every
table's deferred foreign keys are checked against the tables before it), then the sequences. The binary
format is PostgreSQL's cheapest: no value is turned into text and back. Both sides are migrated from the
same models, so the column types match, as binary COPY needs.
"""

from methods.raw_copy import SETVAL, _dependency_order, _schema, psql


def script(source, dest):
    """Return the bash script that copies every table of source into the migrated dest in binary."""
    tables, columns, needs = _schema(source)
    lines = ["set -euo pipefail", psql(dest, "TRUNCATE django_content_type, auth_permission CASCADE")]
    for table in _dependency_order(tables, needs):
        cols = ", ".join(f'"{c}"' for c in columns[table])
        copy_out = f'COPY (SELECT {cols} FROM "{table}") TO STDOUT (FORMAT binary)'
        copy_in = f'COPY "{table}" ({cols}) FROM STDIN (FORMAT binary)'
        lines.append(f"{psql(source, copy_out)} | {psql(dest, copy_in)}")
    sequences = " ".join(SETVAL.format(table) for table in tables if "id" in columns[table])
    lines.append(psql(dest, sequences))
    return "\n".join(lines) + "\n"
