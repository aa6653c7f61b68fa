# Split a monolith's database into one database per service, following a database router.
#
# `default` stays the monolith. Each service gets its own alias; the router below says which
# app lives where. Without --dest, dbcopy sends each model to `router.db_for_write(model)` and
# skips a model the router does not allow on that database (`allow_migrate` False).
# Cross-service foreign keys must be declared `db_constraint=False`: no database can enforce a
# key that points into another database. `dbcopy plan` lists them as warnings.
#
# Run, once the settings are in place:
#   python manage.py migrate --database users          # once per service alias:
#   python manage.py migrate --database orders         #   creates only that service's tables
#   python manage.py migrate --database catalog
#   python manage.py dbcopy plan --source default      # where each table goes, cross-DB relations
#   python manage.py dbcopy copy --source default --no-input
#   python manage.py dbcopy compare --source default   # exit status 0: every row is identical
#
# examples/run_demo.py in the dbcopy repository runs exactly this on a trading-platform demo.

import os

import dj_database_url

# --- settings.py ---------------------------------------------------------------------------

# One URL per database, from the environment: no password in the code. Examples:
#   MONOLITH_DATABASE_URL=postgres://app@db-main:5432/shop
#   USERS_DATABASE_URL=postgres://users_svc@db-users:5432/users
SERVICES = ["users", "orders", "catalog"]

DATABASES = {"default": dj_database_url.parse(os.environ.get("MONOLITH_DATABASE_URL", "sqlite:///monolith.sqlite3"))}
for _service in SERVICES:
    _url = os.environ.get(f"{_service.upper()}_DATABASE_URL", f"sqlite:///{_service}.sqlite3")
    DATABASES[_service] = dj_database_url.parse(_url)

DATABASE_ROUTERS = ["myproject.routers.ServiceRouter"]  # where you put the class below


# --- myproject/routers.py ------------------------------------------------------------------

# App label -> database after the split. Django's own apps go with the service that owns
# logins; apps missing here stay on the monolith only.
SERVICE_OF_APP = {
    "auth": "users",
    "admin": "users",
    "sessions": "users",
    "contenttypes": "users",
    "accounts": "users",
    "orders": "orders",
    "payments": "orders",
    "catalog": "catalog",
}

MONOLITH = "default"

# Generic foreign keys and the admin log store content type ids, so every database needs a
# django_content_type table of its own. dbcopy maps content types and permissions by natural
# key, so ids that differ between databases are fine.
EVERYWHERE = {"contenttypes"}


class ServiceRouter:
    """Send each app to its service database; allow everything on the monolith."""

    def db_for_read(self, model, **hints):
        return self._route(model, hints)

    def db_for_write(self, model, **hints):
        return self._route(model, hints)

    def allow_relation(self, obj1, obj2, **hints):
        # Cross-service relations are plain ids once split (db_constraint=False).
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == MONOLITH or app_label in EVERYWHERE:
            return True
        return SERVICE_OF_APP.get(app_label, MONOLITH) == db

    @staticmethod
    def _route(model, hints):
        # A loaded object keeps following the database it came from, so code that still
        # works on the monolith with .using("default") stays there for related lookups.
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        return SERVICE_OF_APP.get(model._meta.app_label)
