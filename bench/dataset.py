"""The benchmark's databases: create and drop them, fill the source with SQL, count rows on each side.

Only the databases named in project/settings.py are ever created or dropped.
"""

import datetime
import sqlite3
from pathlib import Path

import MySQLdb
import psycopg2

from project.settings import DATABASES

SOURCE = "default"
# Rows at SCALE=1; SCALE multiplies them. Users and groups stay as they are: a registry has a few
# dozen curators whatever its size.
FULL_SCALE = {"identifiers": 550_000, "targets": 550_000, "log_entries": 880_000}
USERS = 40


def is_postgres(alias):
    """Tell whether the alias is a PostgreSQL database."""
    return DATABASES[alias]["ENGINE"].endswith("postgresql")


class _SQLiteCursor(sqlite3.Cursor):
    """A sqlite3 cursor usable in `with`, as the servers' cursors are."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class _SQLiteConnection(sqlite3.Connection):
    def cursor(self, factory=_SQLiteCursor):
        return super().cursor(factory)


def is_sqlite(alias):
    """Tell whether the alias is a SQLite file."""
    return DATABASES[alias]["ENGINE"].endswith("sqlite3")


def connect(alias, server=False):
    """Open a DB-API connection to the alias's database (server=True: to the server, no database)."""
    db = DATABASES[alias]
    if is_sqlite(alias):
        return sqlite3.connect(db["NAME"], isolation_level=None, factory=_SQLiteConnection)  # autocommit
    if is_postgres(alias):
        connection = psycopg2.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
            dbname="postgres" if server else db["NAME"],
        )
        connection.autocommit = True
        return connection
    options = {"db": db["NAME"]} if not server else {}
    connection = MySQLdb.connect(
        host=db["HOST"], port=int(db["PORT"]), user=db["USER"], password=db["PASSWORD"], charset="utf8mb4", **options
    )
    connection.autocommit(True)
    with connection.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")
    return connection


def recreate(alias):
    """Drop the alias's database if it exists and create it empty."""
    name = DATABASES[alias]["NAME"]
    if is_sqlite(alias):
        drop(alias)
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        return  # SQLite creates the file on the first connection
    connection = connect(alias, server=True)
    with connection.cursor() as cursor:
        if is_postgres(alias):
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        else:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    connection.close()


def drop(alias):
    """Drop the alias's database if it exists."""
    name = DATABASES[alias]["NAME"]
    if is_sqlite(alias):
        for path in (Path(name), Path(name + "-journal"), Path(name + "-wal"), Path(name + "-shm")):
            path.unlink(missing_ok=True)
        return
    connection = connect(alias, server=True)
    with connection.cursor() as cursor:
        if is_postgres(alias):
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    connection.close()


def row_counts(scale):
    """Return the number of rows of each scaled table at this scale."""
    return {name: max(1, round(rows * scale)) for name, rows in FULL_SCALE.items()}


# Every value is derived from the row number g and random() (seeded, so runs are alike): DOI, ARK
# and Handle identifiers, URLs at real repositories, JSON metadata with non-ASCII titles (and an
# emoji, which MariaDB takes only in utf8mb4), version-4 UUIDs (MariaDB's UUID type refuses
# values whose version and variant bits RFC 4122 does not define), timestamps spread over years and all at least a
# week old, so a copy that re-stamps auto_now fields shows.
GENERATE_SQL = """
SELECT setseed(0.42);

INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
SELECT g, '!' || md5('user' || g), now() - g * interval '13 hours', g = 1,
       'curator' || lpad(g::text, 3, '0'),
       (ARRAY['Ada', 'Bjørn', 'Chloé', 'Dmitri', 'Émile', 'Fatima', 'Grace', 'Hiroshi'])[1 + g %% 8],
       (ARRAY['Lovelace', 'Müller', 'Nakamura', 'O''Brien', 'Silva', 'Zhang'])[1 + g %% 6],
       'curator' || g || '@registry.example.org', true, g %% 10 <> 0,
       timestamptz '2012-01-01' + g * interval '41 days'
FROM generate_series(1, %(users)s) g;

INSERT INTO auth_group (id, name) VALUES (1, 'curators'), (2, 'auditors');
INSERT INTO auth_group_permissions (id, group_id, permission_id)
SELECT row_number() OVER (ORDER BY p.id), CASE WHEN p.codename LIKE 'view_%%' THEN 2 ELSE 1 END, p.id
FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
WHERE ct.app_label IN ('registry', 'admin');
INSERT INTO auth_user_groups (id, user_id, group_id)
SELECT g, g, 1 + (g %% 5 = 0)::int FROM generate_series(2, %(users)s) g;
INSERT INTO auth_user_user_permissions (id, user_id, permission_id)
SELECT row_number() OVER (), u, p.id
FROM generate_series(2, 6) u, auth_permission p WHERE p.codename = 'view_logentry';

INSERT INTO registry_identifier (id, scheme, value, uuid, metadata, active, created_at, updated_at)
SELECT g,
       scheme,
       CASE scheme
           WHEN 'doi' THEN '10.' || (5000 + g %% 997) || '/'
                           || (ARRAY['zenodo.', 'dryad.', 'm9.figshare.', 'ds-'])[1 + g %% 4] || g
           WHEN 'ark' THEN 'ark:/' || (12025 + g %% 89) || '/b' || to_hex(g * 7919)
           ELSE '20.500.' || (11820 + g %% 53) || '/' || g
       END,
       overlay(overlay(md5('identifier' || g) placing '4' from 13)
               placing substr('89ab', 1 + (g %% 4)::int, 1) from 17)::uuid,
       jsonb_build_object(
           'title', (ARRAY['Données de suivi', 'Survey of', 'Müller et al. measurements of',
                           '東京 sensor readings,', 'Ocean temperature 🌊'])[1 + g %% 5] || ' batch ' || g,
           'creators', jsonb_build_array(jsonb_build_object(
               'name', (ARRAY['Lovelace, Ada', 'Nakamura, Hiroshi', 'Silva, Fatima'])[1 + g %% 3],
               'orcid', '0000-000' || (g %% 10) || '-' || lpad((g %% 9973)::text, 4, '0') || '-0001')),
           'publisher', (ARRAY['Zenodo', 'Dryad', 'figshare', 'Institut Pasteur'])[1 + g %% 4],
           'publication_year', 1995 + g %% 30,
           'resource_type', (ARRAY['Dataset', 'Text', 'Software', 'Image'])[1 + g %% 4],
           'keywords', jsonb_build_array('bench', 'g' || (g %% 100)),
           'size_bytes', (r1 * 1e9)::bigint),
       g %% 17 <> 0,
       created,
       created + (now() - interval '7 days' - created) * r2
FROM (
    SELECT g, r1, r2,
           CASE WHEN g %% 10 < 6 THEN 'doi' WHEN g %% 10 < 9 THEN 'ark' ELSE 'handle' END AS scheme,
           timestamptz '2012-01-01' + (now() - interval '7 days' - timestamptz '2012-01-01') * r1 AS created
    FROM (SELECT g, random() AS r1, random() AS r2 FROM generate_series(1::bigint, %(identifiers)s) g) AS r
) AS s;

INSERT INTO registry_target (id, identifier_id, url, status_code, checked_at)
SELECT g,
       1 + (g * 48271) %% %(identifiers)s,
       'https://' || (ARRAY['zenodo.org/records/', 'datadryad.org/stash/dataset/', 'figshare.com/articles/dataset/',
                            'data.example.org/files/', 'repository.example.edu/handle/'])[1 + g %% 5]
       || g || CASE WHEN g %% 3 = 0 THEN '?version=' || (1 + g %% 4) ELSE '' END,
       CASE WHEN r < 0.80 THEN 200 WHEN r < 0.85 THEN 301 WHEN r < 0.88 THEN 302 WHEN r < 0.95 THEN 404
            WHEN r < 0.97 THEN 410 WHEN r < 0.98 THEN 500 END,
       CASE WHEN r < 0.98 THEN now() - interval '7 days' - interval '400 days' * random() END
FROM (SELECT g, random() AS r FROM generate_series(1::bigint, %(targets)s) g) AS s;

INSERT INTO django_admin_log (id, action_time, user_id, content_type_id, object_id, object_repr, action_flag,
                              change_message)
SELECT g,
       timestamptz '2012-01-01' + (now() - interval '7 days' - timestamptz '2012-01-01') * random(),
       1 + g %% %(users)s,
       ct.id,
       o.id::text,
       left(o.repr, 200),
       flag,
       CASE flag WHEN 1 THEN '[{"added": {}}]'
                 WHEN 2 THEN CASE s.model WHEN 'target' THEN '[{"changed": {"fields": ["Url", "Status code"]}}]'
                             ELSE (ARRAY['[{"changed": {"fields": ["Metadata"]}}]',
                                         '[{"changed": {"fields": ["Active", "Metadata"]}}]'])[1 + g %% 2] END
                 ELSE '' END
FROM (SELECT g, CASE WHEN g %% 20 = 0 THEN 3 WHEN g %% 4 = 0 THEN 1 ELSE 2 END AS flag,
             CASE WHEN g %% 5 = 0 THEN 'target' ELSE 'identifier' END AS model
      FROM generate_series(1::bigint, %(log_entries)s) g) AS s
JOIN django_content_type ct ON ct.app_label = 'registry' AND ct.model = s.model
JOIN LATERAL (
    SELECT i.id, i.value AS repr FROM registry_identifier i
    WHERE s.model = 'identifier' AND i.id = 1 + (s.g * 7) %% %(identifiers)s
    UNION ALL
    SELECT t.id, t.url FROM registry_target t
    WHERE s.model = 'target' AND t.id = 1 + (s.g * 13) %% %(targets)s
) AS o ON true;
"""

SEQUENCE_TABLES = [
    "auth_user", "auth_group", "auth_group_permissions", "auth_user_groups", "auth_user_user_permissions",
    "registry_identifier", "registry_target", "django_admin_log",
]


def generate(scale):
    """Fill the migrated source with the registry at this scale; return the rows per scaled table."""
    counts = row_counts(scale)
    connection = connect(SOURCE)
    with connection.cursor() as cursor:
        cursor.execute(GENERATE_SQL, {**counts, "users": USERS})
        for table in SEQUENCE_TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
                f"FROM {table}", [table]
            )
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    return counts


def source_tables():
    """Return the source's tables that hold model rows (every table but django_migrations)."""
    connection = connect(SOURCE)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' AND table_name <> 'django_migrations' ORDER BY table_name"
        )
        tables = [row[0] for row in cursor.fetchall()]
    connection.close()
    return tables


def count_rows(alias, tables):
    """Return {table: row count} on the alias (None for a table that is missing there)."""
    connection = connect(alias)
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            quoted = f'"{table}"' if is_postgres(alias) else f"`{table}`"
            try:
                cursor.execute(f"SELECT COUNT(*) FROM {quoted}")
                counts[table] = cursor.fetchone()[0]
            except (psycopg2.Error, MySQLdb.Error, sqlite3.Error):
                counts[table] = None
    connection.close()
    return counts


def timestamps(alias):
    """Return the identifiers' earliest and latest created_at/updated_at, as naive UTC datetimes."""
    connection = connect(alias)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MIN(created_at), MAX(created_at), MIN(updated_at), MAX(updated_at) FROM registry_identifier"
        )
        row = cursor.fetchone()
    connection.close()
    return tuple(_naive_utc(value) for value in row)


def _naive_utc(value):
    if value is not None and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value
