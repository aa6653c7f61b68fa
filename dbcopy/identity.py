"""Ask each database which database it is, so that no spelling of the source passes for another one.

Settings text cannot tell `localhost` from `127.0.0.1`, a default port written from one left out, an
alias from a URL or a relative SQLite path from a symlink; the servers can (see each dialect's
`server_identity()`).
"""

import os
from dataclasses import dataclass
from urllib.parse import quote

from django.apps import apps
from django.db import connections, router

from . import conf
from .aliases import describe, is_url_alias, same_database
from .dialects import dialect_for
from .exceptions import ConfigError


@dataclass(frozen=True)
class DatabaseIdentity:
    """What a database says of itself: two aliases with equal identities are one database."""

    vendor: str
    key: tuple


# alias -> (the settings dict it was read from, a fingerprint of that dict, DatabaseIdentity)
_identities = {}


def database_identity(alias):
    """Return the identity of the alias' database, asking its server once per alias and process.

    Raise ConfigError, before anything is written, if the server cannot be reached or a SQLite
    database file does not exist (connecting to a missing file would create an empty database).
    """
    settings_dict = connections.settings[alias]
    fingerprint = _fingerprint(settings_dict)
    cached = _identities.get(alias)
    # A URL alias (dbcopy_source, dbcopy_dest) is registered anew for every run: a cached
    # identity counts only for the very settings it was read from.
    if cached is not None and cached[0] is settings_dict and cached[1] == fingerprint:
        return cached[2]
    identity = DatabaseIdentity(connections[alias].vendor, tuple(_ask_server(alias)))
    _identities[alias] = (settings_dict, fingerprint, identity)
    return identity


def _fingerprint(settings_dict):
    return tuple(str(settings_dict.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME", "USER"))


def _ask_server(alias):
    connection = connections[alias]
    try:
        return dialect_for(alias).server_identity()
    except FileNotFoundError as exc:
        raise ConfigError(missing_file_message(alias, exc.filename)) from None
    except Exception as exc:  # every driver has its own error types
        if connection.connection is None:
            raise ConfigError(connection_failure(alias, exc)) from None
        raise ConfigError(
            f"Cannot tell which database {describe(alias)} is: {error_reason(alias, exc)}. dbcopy asks every "
            "database who it is so that it never writes into its own source; grant the user access to it"
        ) from None


def missing_file_message(alias, path):
    """Return the error for a SQLite database file that does not exist."""
    if is_url_alias(alias):
        create = "create and migrate it first (`python manage.py migrate --database <alias>` with an alias for it)"
    else:
        create = f"create it with `python manage.py migrate --database {alias}` first"
    return (
        f"SQLite database file {os.path.abspath(path)} does not exist ({describe(alias)}); dbcopy does not "
        f"create databases: check the path, or {create}"
    )


# --- connecting --------------------------------------------------------------------------------


def set_connect_timeout(alias, seconds, override=False):
    """Make the alias' driver give up connecting after `seconds`.

    A connect timeout the alias' OPTIONS already hold is kept unless override is true (the user
    typed --connect-timeout). Vendors without a network connection (SQLite) are left alone.
    """
    option = dialect_for(alias).connect_timeout_option
    if option is None:
        return
    settings_dict = connections.settings[alias]
    options = settings_dict.get("OPTIONS") or {}
    if option in options and not override:
        return
    # Every connection to the alias, in any thread, is made from this settings dict.
    settings_dict["OPTIONS"] = {**options, option: seconds}


def connect_timeout(alias):
    """Return the connect timeout the alias' driver will use, or None."""
    option = dialect_for(alias).connect_timeout_option
    return (connections.settings[alias].get("OPTIONS") or {}).get(option) if option else None


def server_address(alias):
    """Return host:port the alias connects to (None for a database without a server)."""
    default_port = dialect_for(alias).default_port
    if default_port is None:
        return None
    settings_dict = connections.settings[alias]
    host = settings_dict.get("HOST") or "localhost"
    if host.startswith("/"):
        return host  # a Unix socket
    port = settings_dict.get("PORT") or default_port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connection_failure(alias, exc):
    """Return the message for a failed connection: which database, where, why, and what to check."""
    described = describe(alias)
    where = server_address(alias)
    at = f" at {where}" if where and where not in described else ""
    timeout = connect_timeout(alias)
    waited = f" (connect timeout {timeout} s, --connect-timeout)" if timeout else ""
    return (
        f"Cannot connect to {described}{at}: {error_reason(alias, exc)}{waited}. "
        "Check the host, port and credentials, and that the server is running"
    )


def error_reason(alias, exc):
    """Return the first line of a driver error, with the alias' password masked."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    password = str(connections.settings[alias].get("PASSWORD") or "")
    if password:
        for form in {password, quote(password, safe="")}:
            reason = reason.replace(form, "***")
    return reason


def open_databases(source, dest=None, connect_timeout=None):
    """Connect to the source and the destination, and refuse a destination that is the source.

    connect_timeout: seconds the user asked for (it overrides OPTIONS); None keeps a timeout the
    OPTIONS set, else DBCOPY_CONNECT_TIMEOUT. Without a dest, every alias the router sends a model
    to gets the timeout too (the plan identifies those as it meets them).
    """
    seconds = connect_timeout if connect_timeout is not None else conf.get("CONNECT_TIMEOUT")
    for alias in dict.fromkeys([source, dest] if dest else [source, *sorted(router_destinations())]):
        set_connect_timeout(alias, seconds, override=connect_timeout is not None)
    database_identity(source)
    if dest and same_database(source, dest):
        raise ConfigError(
            f"--source {describe(source)} and --dest {describe(dest)} are one and the same database; "
            "dbcopy never writes into its source: choose another destination"
        )


def router_destinations():
    """Return every alias the database router sends some installed model to."""
    return {router.db_for_write(model) for model in apps.get_models(include_auto_created=True)}
