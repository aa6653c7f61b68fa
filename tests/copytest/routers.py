"""A router that splits copytest models over several databases (used with settings override)."""

ROUTES = {
    "note": "pg_b",
    "alltypes": "mysql_b",
}
DEFAULT_TARGET = "sqlite_b"
FORBIDDEN = {"secret"}


class SplitRouter:
    def _target(self, model):
        if model._meta.app_label != "copytest":
            return None
        return ROUTES.get(model._meta.model_name, DEFAULT_TARGET)

    def db_for_read(self, model, **hints):
        return self._target(model)

    def db_for_write(self, model, **hints):
        return self._target(model)

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label != "copytest" or model_name is None:
            return None
        if model_name in FORBIDDEN:
            return False
        return db == ROUTES.get(model_name, DEFAULT_TARGET)


class SplitRouterAllowingSource(SplitRouter):
    """Same split, but the models are also allowed on ``sqlite_a`` (the copy's source)."""

    SOURCE = "sqlite_a"

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == "copytest" and model_name is not None and model_name not in FORBIDDEN and db == self.SOURCE:
            return True
        return super().allow_migrate(db, app_label, model_name, **hints)
