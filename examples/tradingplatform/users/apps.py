from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "tradingplatform.users"
    label = "users"
    verbose_name = "Users and trader profiles"
    default_auto_field = "django.db.models.BigAutoField"
