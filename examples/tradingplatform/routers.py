"""Route each service's models to its own database; keep `default` as the whole monolith.

How the split works: `dbcopy copy --source default` (without --dest) asks
`router.db_for_write(model)` where each model goes, and skips a model when
`router.allow_migrate_model(alias, model)` is False on that alias. So this router
answers like the post-split platform would: every model lives in its service database.

The monolith still has to be written before the split (the seed does that). Rather
than switching the router on and off with an environment variable, the seeding code
names the monolith explicitly with `.using("default")` / `db_manager("default")`. The
only thing the router must do for it is keep related lookups and M2M writes on the
database the instance came from, hence the `instance` hint below.
"""

# Which database each app lives in after the split. Django's own apps go with the users
# service, which owns logins, sessions, permissions and the admin log.
SERVICE_OF_APP = {
    "users": "users",
    "auth": "users",
    "admin": "users",
    "sessions": "users",
    "contenttypes": "users",
    "marketdata": "marketdata",
    "trading": "trading",
    "portfolio": "portfolio",
    "notifications": "notifications",
}

MONOLITH = "default"

# Databases given the same tables as a service database, though no model is routed to them: the demo's
# marketdata database filled through a file, compared with the one `dbcopy copy` filled.
SAME_TABLES_AS = {"marketdata_from_file": "marketdata"}

# Generic foreign keys (notifications → any object) and the admin store content type ids,
# so every database needs its own django_content_type table.
EVERYWHERE = {"contenttypes"}


class ServiceRouter:
    """Send each app to its service database; allow everything on the monolith."""

    def db_for_read(self, model, **hints):
        """Read from the instance's own database if there is one, else the service's."""
        return self._route(model, hints)

    def db_for_write(self, model, **hints):
        """Write to the instance's own database if there is one, else the service's."""
        return self._route(model, hints)

    def allow_relation(self, obj1, obj2, **hints):
        """Allow relations across services: they are plain ids once split (db_constraint=False)."""
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        """Create an app's tables on the monolith and on its own service database (or a copy of it) only."""
        if db == MONOLITH or app_label in EVERYWHERE:
            return True
        return SERVICE_OF_APP.get(app_label, MONOLITH) == SAME_TABLES_AS.get(db, db)

    @staticmethod
    def _route(model, hints):
        """Return the database of a saved instance, else the service database of the model."""
        # Objects loaded from the monolith keep following it: `trader.user`,
        # `watchlist.instruments.add(...)` and friends stay on `default` while seeding.
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        return SERVICE_OF_APP.get(model._meta.app_label)
