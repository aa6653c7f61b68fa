"""DBCOPY_* settings with their defaults, read lazily so tests can override them."""

from django.conf import settings

DEFAULTS = {
    # Rows read and written per keyset chunk; one destination transaction per chunk.
    "CHUNK_SIZE": 2000,
    # Tables whose destination rows `migrate` itself creates and that are copied by primary key,
    # replacing what migrate put there (the default Site is example.com with id 1).
    "SEEDED_MODELS": ("sites.Site",),
    # With --jobs above 1, a table holding at least this many source rows (and an integer primary key)
    # is copied as up to --jobs key ranges at once, each its own stream or chunks and transactions.
    "SPLIT_ROWS": 100_000,
    # Upper bound for one multi-row INSERT, so MySQL's max_allowed_packet never rejects a batch.
    "MAX_STATEMENT_BYTES": 4 * 1024 * 1024,
    # Seconds a driver may take to connect (PostgreSQL, MySQL) before dbcopy reports the server
    # unreachable; a connect_timeout in an alias' OPTIONS takes precedence, --connect-timeout over both.
    "CONNECT_TIMEOUT": 10,
    # Search indexes whose tables an app shapes per database vendor (other columns, other types):
    # copied between two databases of one vendor, skipped across vendors, with the command that
    # rebuilds them from the copied rows.
    "SEARCH_INDEX_MODELS": {
        "wagtailsearch.IndexEntry": "python manage.py update_index",
        "wagtailsearch.SQLiteFTSIndexEntry": "python manage.py update_index",
        "modelsearch.IndexEntry": "python manage.py rebuild_modelsearch_index",
        "modelsearch.SQLiteFTSIndexEntry": "python manage.py rebuild_modelsearch_index",
    },
}


def get(name):
    """Return setting DBCOPY_<name>, or its default."""
    return getattr(settings, f"DBCOPY_{name}", DEFAULTS[name])
