from django.apps import AppConfig


class CopyTestConfig(AppConfig):
    name = "tests.copytest"
    label = "copytest"
    verbose_name = "dbcopy test models"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import signals  # noqa: F401  (connects the receivers)
