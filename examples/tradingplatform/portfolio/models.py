"""Portfolios, their positions and traders' watchlists."""

from django.db import models

from tradingplatform.common import Timestamped, cross_service_fk


class Portfolio(Timestamped):
    """Group the positions a trader runs under one strategy."""

    trader = cross_service_fk("users.Trader", related_name="portfolios")
    account = cross_service_fk("trading.Account", null=True, blank=True, related_name="portfolios")
    name = models.CharField(max_length=120)
    strategy = models.CharField(max_length=200, blank=True)
    base_currency = models.CharField(max_length=3)

    def __str__(self):
        return self.name


class Position(Timestamped):
    """Hold what a portfolio owns of one instrument."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="positions")
    instrument = cross_service_fk("marketdata.Instrument", related_name="positions")
    quantity = models.DecimalField(max_digits=18, decimal_places=4)
    average_cost = models.DecimalField(max_digits=14, decimal_places=4)
    realized_pnl = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    opened_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["portfolio", "instrument"], name="position_unique_instrument")]


class Watchlist(Timestamped):
    """List the instruments a trader follows (many-to-many across services)."""

    owner = cross_service_fk("users.Trader", on_delete=models.CASCADE, related_name="watchlists")
    name = models.CharField(max_length=80)
    instruments = models.ManyToManyField("marketdata.Instrument", db_constraint=False, related_name="watchlists")

    def __str__(self):
        return self.name
