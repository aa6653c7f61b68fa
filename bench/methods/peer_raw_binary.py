"""The limit for PostgreSQL → PostgreSQL in the peers bench: binary `COPY … TO STDOUT | COPY … FROM STDIN`.

script() returns the bash script peers.py times: empty the destination's content types and permissions
(migrate's rows), then one `psql -c "COPY (SELECT …) TO STDOUT (FORMAT binary)" | psql -c "COPY … FROM
STDIN (FORMAT binary)"` pipe per table in foreign-key order (each pipe its own transaction, so every
table's deferred foreign keys are checked against the tables before it), then the sequences. The binary
format is PostgreSQL's cheapest: no value is turned into text and back. Both sides are migrated from the
same models, so the column types match, as binary COPY needs.
"""

from methods import raw_copy


def script(source, dest):
    """Return the bash script that copies every table of source into the migrated dest in binary."""
    return raw_copy.script(source, dest, binary=True)
