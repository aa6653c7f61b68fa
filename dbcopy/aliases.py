"""Turn --source/--dest values (aliases of settings.DATABASES or database URLs) into usable aliases."""

from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.db import connections

from .exceptions import ConfigError

# Defaults Django's ConnectionHandler.configure_settings gives aliases from settings.DATABASES;
# an alias registered at run time must carry them too.
_CONNECTION_DEFAULTS = {
    "ATOMIC_REQUESTS": False,
    "AUTOCOMMIT": True,
    "CONN_MAX_AGE": 0,
    "CONN_HEALTH_CHECKS": False,
    "OPTIONS": {},
    "TIME_ZONE": None,
    "NAME": "",
    "USER": "",
    "PASSWORD": "",
    "HOST": "",
    "PORT": "",
}
_TEST_DEFAULTS = {"CHARSET": None, "COLLATION": None, "MIGRATE": True, "MIRROR": None, "NAME": None}

# alias -> how to show it (a masked URL for aliases made from URLs)
_displays = {}


def is_url(value):
    """Return whether the value looks like a database URL rather than an alias."""
    return "://" in value


def mask_url(url):
    """Return the URL with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def resolve_alias(value, role):
    """Return the alias for --<role> VALUE, registering a URL as a new alias."""
    if not value:
        raise ConfigError(f"--{role} is required: an alias of settings.DATABASES or a database URL")
    if value in connections.settings:
        return value
    if not is_url(value):
        known = ", ".join(sorted(connections.settings))
        raise ConfigError(
            f"--{role} {value!r} is neither an alias of settings.DATABASES ({known}) nor a database URL "
            "such as postgres://user@host/name, mysql://user@host/name or sqlite:///path"
        )
    return register_url(value, alias=f"dbcopy_{role}")


def register_url(url, alias):
    """Register the database URL under the alias and return the alias."""
    try:
        config = dj_database_url.parse(url)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ConfigError(f"Cannot use database URL {mask_url(url)}: {exc}") from None
    for key, default in _CONNECTION_DEFAULTS.items():
        config.setdefault(key, default.copy() if isinstance(default, dict) else default)
    config.setdefault("TEST", dict(_TEST_DEFAULTS))
    if alias in connections.settings:
        connections[alias].close()
        del connections[alias]
    connections.settings[alias] = config
    _displays[alias] = mask_url(url)
    return alias


def describe_as(alias, text):
    """Describe the alias as `text` in messages and reports (an alias standing for something else)."""
    _displays[alias] = text


def is_url_alias(alias):
    """Return whether the alias was registered at run time from a database URL."""
    return alias in _displays


def describe(alias):
    """Return a password-free description of the alias for messages and reports."""
    if alias in _displays:
        return _displays[alias]
    config = connections.settings[alias]
    engine = config.get("ENGINE", "").rsplit(".", 1)[-1]
    name = config.get("NAME", "")
    host = config.get("HOST") or ""
    where = f"{host}/{name}" if host else str(name)
    return f"{alias} ({engine} {where})"


def same_database(alias_a, alias_b):
    """Return whether two aliases reach the same database, as their servers tell (not their settings).

    Raise ConfigError if either cannot be reached or names a SQLite file that does not exist.
    """
    if alias_a == alias_b:
        return True
    from .identity import database_identity  # identity.py describes aliases with this module

    return database_identity(alias_a) == database_identity(alias_b)
