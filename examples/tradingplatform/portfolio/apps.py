from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "tradingplatform.portfolio"
    label = "portfolio"
    verbose_name = "Portfolios and positions"
    default_auto_field = "django.db.models.BigAutoField"
