from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "tradingplatform.marketdata"
    label = "marketdata"
    verbose_name = "Market data"
    default_auto_field = "django.db.models.BigAutoField"
