from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "tradingplatform.trading"
    label = "trading"
    verbose_name = "Trading: accounts, orders, fills"
    default_auto_field = "django.db.models.BigAutoField"
