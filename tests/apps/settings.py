"""A Wagtail site as `wagtail start` makes it, plus its tutorial's blog, on four databases.

`default` (SQLite) is the source; `pg`, `mysql` and `back` (SQLite again) are the destinations of
a round trip SQLite → PostgreSQL → MariaDB → SQLite. The servers are the suite's (same variables);
the server databases are named dbcopy_[<tag>_]apps and the SQLite files live in the suite's folder.
"""

import os

from tests.settings.base import DB_PREFIX, SQLITE_DIR
from tests.settings.mysql import mysql_db
from tests.settings.postgresql import pg_db


def _sqlite(name):
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(SQLITE_DIR / f"apps_{name}.sqlite3"),
            "OPTIONS": {"timeout": 30}}


def _server(config):
    config = dict(config, NAME=f"{DB_PREFIX}apps")
    config.pop("TEST", None)
    return config


DATABASES = {
    "default": _sqlite("source"),
    "pg": _server(pg_db("apps")),
    "mysql": _server(mysql_db("apps", None)),
    "back": _sqlite("back"),
}
# `manage.py migrate` for one database makes it the default, as its own service's settings would.
if os.environ.get("DBCOPY_APPS_AS_DEFAULT"):
    DATABASES = {"default": DATABASES[os.environ["DBCOPY_APPS_AS_DEFAULT"]]}
# Pages are read through the router from whichever database a test points it at.
DATABASE_ROUTERS = ["tests.apps.routing.ReadFromRouter"]

INSTALLED_APPS = [
    "tests.apps.blog",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "dbcopy",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
ROOT_URLCONF = "tests.apps.urls"
# No cache: Wagtail caches site root paths, which would carry one database's answers into another's.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
SECRET_KEY = "dbcopy-apps-not-a-secret"
HASHID_FIELD_SALT = "dbcopy-apps-salt"
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "Europe/Paris"
STATIC_URL = "/static/"
WAGTAIL_SITE_NAME = "dbcopy apps"
WAGTAILADMIN_BASE_URL = "http://localhost"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
