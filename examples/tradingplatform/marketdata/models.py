"""Exchanges, instruments (options inherit from instruments) and daily price bars."""

from django.db import models

from tradingplatform.common import Timestamped


class Exchange(Timestamped):
    """Hold one trading venue."""

    mic = models.CharField("market identifier code", max_length=4, unique=True)
    name = models.CharField(max_length=120)
    country = models.CharField(max_length=2)
    timezone = models.CharField(max_length=40)

    def __str__(self):
        return self.mic


class Instrument(Timestamped):
    """Hold one tradable instrument; derivatives point at their underlying (self-FK)."""

    class AssetClass(models.TextChoices):
        EQUITY = "equity"
        ETF = "etf"
        OPTION = "option"

    exchange = models.ForeignKey(Exchange, on_delete=models.PROTECT, related_name="instruments")
    symbol = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    asset_class = models.CharField(max_length=8, choices=AssetClass.choices)
    currency = models.CharField(max_length=3)
    isin = models.CharField(max_length=12, null=True, blank=True, unique=True)
    tick_size = models.DecimalField(max_digits=10, decimal_places=4)
    lot_size = models.PositiveIntegerField(default=1)
    underlying = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="derivatives")
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["exchange", "symbol"], name="instrument_unique_symbol")]

    def __str__(self):
        return f"{self.symbol}.{self.exchange_id}"


class Option(Instrument):
    """Hold the contract terms of an option (multi-table inheritance from Instrument)."""

    class Right(models.TextChoices):
        CALL = "C"
        PUT = "P"

    right = models.CharField(max_length=1, choices=Right.choices)
    strike = models.DecimalField(max_digits=14, decimal_places=4)
    expiry = models.DateField()
    multiplier = models.PositiveIntegerField(default=100)


class PriceBar(models.Model):
    """Hold one OHLCV bar of an instrument."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="bars")
    interval = models.CharField(max_length=4, default="1d")
    ts = models.DateTimeField("bar open time")
    open = models.DecimalField(max_digits=14, decimal_places=4)
    high = models.DecimalField(max_digits=14, decimal_places=4)
    low = models.DecimalField(max_digits=14, decimal_places=4)
    close = models.DecimalField(max_digits=14, decimal_places=4)
    volume = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instrument", "interval", "ts"], name="pricebar_unique_ts")]
