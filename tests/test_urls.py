"""--source / --dest given as database URLs; passwords never shown."""

import json
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connections

from tests import helpers as h

# Characters that must be percent-encoded in a URL: neither form may show up anywhere.
FAKE_PASSWORD = "S3cr3t:p@ss/w%rd"


def url_for(alias, password=None):
    """A database URL naming the *test* database of alias."""
    cfg = connections[alias].settings_dict
    vendor = h.alias_vendor(alias)
    if vendor == "sqlite":
        return "sqlite:///" + str(cfg["NAME"])  # NAME is absolute: sqlite:////abs/path
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[vendor]
    password = cfg.get("PASSWORD") if password is None else password
    auth = quote(cfg["USER"], safe="")
    if password:
        auth += ":" + quote(password, safe="")
    return f"{scheme}://{auth}@{cfg['HOST']}:{cfg['PORT']}/{cfg['NAME']}"


def leaks(text, password):
    """Whether the password shows up in text, raw or percent-encoded."""
    return any(form in text for form in {password, quote(password, safe="")})


def pg_password():
    # With trust authentication (the default test server) any password is accepted, so a
    # made-up one works; with a real password configured, that one is what must not leak.
    return settings.DATABASES["pg_b"].get("PASSWORD") or FAKE_PASSWORD


@pytest.mark.parametrize("source,dest", [h.url_pair("sqlite_a", "pg_b")])
def test_copy_to_url_with_password_never_prints_it(source, dest, report_path):
    h.seed_core(source)
    password = pg_password()
    dest_url = url_for(dest, password=password)
    assert quote(password, safe="") in dest_url
    result = h.dbcopy("copy", "copytest", source=url_for(source), dest=dest_url, chunk_size=5, report_json=report_path)
    h.assert_ok(result)
    h.assert_tables_equal(source, dest)
    assert not leaks(result.output, password), "password printed"
    report_text = report_path.read_text()
    assert not leaks(report_text, password), "password written to the JSON report"
    assert json.loads(report_text)["ok"] is True

    compared = h.dbcopy("compare", "copytest", source=url_for(source), dest=dest_url, report_json=report_path)
    assert compared.returncode == 0, str(compared)
    assert not leaks(compared.output, password) and not leaks(report_path.read_text(), password)

    planned = h.dbcopy("plan", "copytest", source=url_for(source), dest=dest_url)
    assert planned.returncode == 0, str(planned)
    assert not leaks(planned.output, password)


@pytest.mark.parametrize("source,dest", [h.url_pair("mysql_a", "pg_b")])
def test_unreachable_url_fails_without_printing_password(source, dest, report_path):
    h.seed_core(source)
    cfg = connections[dest].settings_dict
    bad = f"postgres://{quote(cfg['USER'])}:{quote(FAKE_PASSWORD, safe='')}@127.0.0.1:1/{cfg['NAME']}"
    result = h.dbcopy("copy", "copytest", source=source, dest=bad, report_json=report_path)
    assert result.returncode in (1, 2), str(result)
    assert "Traceback" not in result.output
    assert not leaks(result.output, FAKE_PASSWORD), str(result)
    if report_path.exists():
        assert not leaks(report_path.read_text(), FAKE_PASSWORD)
    assert all(n == 0 for n in h.row_counts(dest).values())
