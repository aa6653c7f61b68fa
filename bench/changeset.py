"""The change set the sync benchmark applies to the source: about 1 % of its rows, as a day of use would.

What changes, as a share of each table at the run's scale (so SCALE sizes it):

| kind | share | how |
| --- | ---: | --- |
| Identifier updated | 0.5 % | new title in the metadata, `active` flipped, `updated_at = now()` (what auto_now does) |
| Identifier inserted | 0.25 % | new DOIs, created and updated now, each with one new Target |
| Identifier deleted | 0.25 % | with their Targets (the foreign key would refuse otherwise); their admin history stays, as Django keeps it |
| Target edited | 1 % | URL moved to a mirror, status code and `checked_at` changed: the table has no timestamp |
| LogEntry inserted | one per identifier change | the admin's change, addition and deletion entries (no `updated_at` either) |

Rows are picked by an md5 of a seed and their id, so every run on the same scale changes the same rows.
Everything runs in one transaction on the PostgreSQL source; the row counts come from the statements.
"""

from dataset import USERS, connect, row_counts

SEED = "sync-bench-1"
# Share of the identifiers (of the targets for target_edits) each kind of change picks.
SHARES = {"updated": 0.005, "inserted": 0.0025, "deleted": 0.0025, "target_edits": 0.01}
# The prefix of the inserted identifiers' values: unique, and how the later statements find them.
NEW_PREFIX = f"10.5555/{SEED}."

PICK_SQL = """
CREATE TEMPORARY TABLE bench_picked ON COMMIT DROP AS
SELECT id, CASE WHEN n <= %(updated)s THEN 'update' ELSE 'delete' END AS change
FROM (SELECT id, row_number() OVER (ORDER BY md5(%(seed)s || ':identifier:' || id), id) AS n
      FROM registry_identifier) AS ranked
WHERE n <= %(updated)s + %(deleted)s
"""

LOG_SQL = """
INSERT INTO django_admin_log (action_time, user_id, content_type_id, object_id, object_repr, action_flag,
                              change_message)
SELECT now(), 1 + mod(i.id, %(users)s),
       (SELECT id FROM django_content_type WHERE app_label = 'registry' AND model = 'identifier'),
       i.id::text, left(i.value, 200), {flag}, {message}
FROM registry_identifier i
WHERE {where}
"""
PICKED = "i.id IN (SELECT id FROM bench_picked WHERE change = '{}')"
NEW = "starts_with(i.value, %(prefix)s)"

# (kind, statement): run in this order, each kind counted from the statement's row count.
STATEMENTS = [
    ("pick", PICK_SQL),
    ("Identifier updated", """
        UPDATE registry_identifier i
        SET metadata = jsonb_set(i.metadata, '{title}', to_jsonb((i.metadata ->> 'title') || ' — révisé')),
            active = NOT i.active,
            updated_at = now()
        WHERE """ + PICKED.format("update")),
    ("LogEntry inserted", LOG_SQL.format(
        flag=2, message="""'[{"changed": {"fields": ["Active", "Metadata"]}}]'""", where=PICKED.format("update"))),
    ("Target edited", """
        UPDATE registry_target t
        SET url = 'https://mirror.example.org/' || substr(t.url, 9),
            status_code = CASE WHEN t.status_code = 200 THEN 404 ELSE 200 END,
            checked_at = now()
        WHERE t.id IN (
            SELECT id FROM registry_target
            WHERE identifier_id NOT IN (SELECT id FROM bench_picked WHERE change = 'delete')
            ORDER BY md5(%(seed)s || ':target:' || id), id
            LIMIT %(target_edits)s)"""),
    ("LogEntry inserted", LOG_SQL.format(flag=3, message="''", where=PICKED.format("delete"))),
    ("Target deleted", """
        DELETE FROM registry_target
        WHERE identifier_id IN (SELECT id FROM bench_picked WHERE change = 'delete')"""),
    ("Identifier deleted", """
        DELETE FROM registry_identifier WHERE id IN (SELECT id FROM bench_picked WHERE change = 'delete')"""),
    ("Identifier inserted", """
        INSERT INTO registry_identifier (scheme, value, uuid, metadata, active, created_at, updated_at)
        SELECT 'doi', %(prefix)s || g,
               overlay(overlay(md5(%(seed)s || ':uuid:' || g) placing '4' from 13)
                       placing substr('89ab', 1 + mod(g, 4), 1) from 17)::uuid,
               jsonb_build_object('title', 'Nouvelles mesures 🌱 ' || g, 'publisher', 'Zenodo',
                                  'publication_year', 2026, 'resource_type', 'Dataset'),
               true, now(), now()
        FROM generate_series(1, %(inserted)s) AS g"""),
    ("Target inserted", """
        INSERT INTO registry_target (identifier_id, url, status_code, checked_at)
        SELECT i.id, 'https://zenodo.org/records/new-' || i.id, NULL, NULL
        FROM registry_identifier i WHERE """ + NEW),
    ("LogEntry inserted", LOG_SQL.format(flag=1, message="""'[{"added": {}}]'""", where=NEW)),
]


def sizes(scale):
    """Return how many rows of each kind the change set picks at this scale."""
    counts = row_counts(scale)
    return {
        kind: max(1, round(counts["targets" if kind == "target_edits" else "identifiers"] * share))
        for kind, share in SHARES.items()
    }


def apply(alias, scale):
    """Apply the change set to the alias (the PostgreSQL source) in one transaction; return rows per kind."""
    params = {**sizes(scale), "seed": SEED, "prefix": NEW_PREFIX, "users": USERS}
    changed = {}
    connection = connect(alias)
    connection.autocommit = False
    try:
        with connection.cursor() as cursor:
            for kind, sql in STATEMENTS:
                cursor.execute(sql, params)
                if kind != "pick":
                    changed[kind] = changed.get(kind, 0) + cursor.rowcount
        connection.commit()
    finally:
        connection.close()
    return changed

