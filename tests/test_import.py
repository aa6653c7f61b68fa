"""`dbcopy import`: a dump written by `dbcopy export` is replayed into a destination through the copy
engine, and the destination then holds what the source holds (proved by `compare --checksum`)."""

import pytest

from tests import helpers as h

# The import registers an alias of its own at run time (the dump's stand-in source): url_pair.
PAIRS = [
    h.url_pair("sqlite_a", "pg_b"), h.url_pair("pg_a", "mysql_b"), h.url_pair("mysql_a", "sqlite_b"),
    h.url_pair("pg_a", "pg_b"), h.url_pair("sqlite_a", "mysql_b"), h.url_pair("mysql_a", "pg_b"),
]


def export(source, path, *labels, **options):
    result = h.dbcopy("export", *labels, source=source, output=str(path), **options)
    h.assert_ok(result)
    return result


@pytest.mark.parametrize("source,dest", PAIRS)
def test_a_dump_imported_holds_what_the_source_holds(source, dest, tmp_path):
    h.seed_core(source)
    path = tmp_path / "core.dbcopy"
    export(source, path, "copytest")
    h.assert_ok(h.dbcopy("import", str(path), dest=dest))
    h.assert_ok(h.dbcopy("compare", "copytest", source=source, dest=dest, checksum=True))
