"""What the peers bench checks beyond the rows: sequences and the schema a data-only copy must leave alone.

A copy can hold every row and still leave the database worse off: a sequence (PostgreSQL) or
AUTO_INCREMENT (MariaDB) still at 1 makes the application's next insert collide with a copied id; a tool
that drops and recreates foreign keys, or disables triggers, can leave them changed. Both are remarks
next to the timing, not failures of the data.
"""

from dataset import connect, is_postgres
from project.settings import DATABASES

PG_SCHEMA_SQL = """
SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'triggers enabled', tgrelid::regclass::text, '', string_agg(DISTINCT tgenabled::text, '')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'public'::regnamespace GROUP BY tgrelid
"""
MARIADB_SCHEMA_SQL = """
SELECT 'constraint', TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE
FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %(db)s
UNION ALL
SELECT 'foreign key', TABLE_NAME, CONSTRAINT_NAME, CONCAT(REFERENCED_TABLE_NAME, ' ', UPDATE_RULE, ' ', DELETE_RULE)
FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %(db)s
UNION ALL
SELECT 'index', TABLE_NAME, INDEX_NAME, CONCAT(NON_UNIQUE, ' ', GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX))
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %(db)s GROUP BY TABLE_NAME, INDEX_NAME, NON_UNIQUE
"""


def schema(alias):
    """Return the alias's constraints, indexes and trigger states as a set of (kind, table, name, definition)."""
    connection = connect(alias)
    with connection.cursor() as cursor:
        if is_postgres(alias):
            cursor.execute(PG_SCHEMA_SQL)
        else:
            cursor.execute(MARIADB_SCHEMA_SQL, {"db": DATABASES[alias]["NAME"]})
        rows = {tuple(row) for row in cursor.fetchall()}
    connection.close()
    return rows


def schema_changes(before, after, shown=3):
    """Describe what differs between two schema() sets (the migrated destination, then after a copy)."""
    gone = sorted(before - after)
    added = sorted(after - before)
    if not gone and not added:
        return []
    names = [f"{kind} {table}.{name}".rstrip(".") for kind, table, name, _ in (gone + added)[:shown]]
    more = f" and {len(gone) + len(added) - shown} more" if len(gone) + len(added) > shown else ""
    return [f"schema changed ({len(gone)} definitions gone, {len(added)} new: {', '.join(names)}{more})"]


def sequence_lags(alias, tables):
    """Describe the tables whose next generated id is not above their largest id (the next insert collides)."""
    connection = connect(alias)
    lagging = []
    with connection.cursor() as cursor:
        for table, next_id in _next_ids(cursor, alias, tables).items():
            cursor.execute(f"SELECT MAX(id) FROM {_quote(alias, table)}")
            largest = cursor.fetchone()[0]
            if largest is not None and next_id <= largest:
                lagging.append((largest, f"{table} next id {next_id:,} ≤ largest {largest:,}"))
    connection.close()
    return [text for _, text in sorted(lagging, reverse=True)]  # the biggest tables first


def _next_ids(cursor, alias, tables):
    """Return {table: the id its sequence or AUTO_INCREMENT would give next} for the tables with an id."""
    if is_postgres(alias):
        cursor.execute(
            "SELECT table_name, pg_get_serial_sequence(quote_ident(table_name), 'id') FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'id'"
        )
        sequences = {table: sequence for table, sequence in cursor.fetchall() if table in tables and sequence}
        next_ids = {}
        for table, sequence in sequences.items():
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
            last_value, is_called = cursor.fetchone()
            next_ids[table] = last_value + 1 if is_called else last_value
        return next_ids
    cursor.execute(
        "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND AUTO_INCREMENT IS NOT NULL", [DATABASES[alias]["NAME"]]
    )
    return {table: next_id for table, next_id in cursor.fetchall() if table in tables}


def _quote(alias, name):
    return f'"{name}"' if is_postgres(alias) else f"`{name}`"
