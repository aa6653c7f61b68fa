"""Brokerage accounts (with sub-accounts), orders and their fills."""

import uuid

from django.db import models

from tradingplatform.common import Timestamped, cross_service_fk


class Account(Timestamped):
    """Hold one brokerage account; sub-accounts point at their parent (self-FK)."""

    class Kind(models.TextChoices):
        CASH = "cash"
        MARGIN = "margin"
        SUB = "sub"

    class Status(models.TextChoices):
        OPEN = "open"
        FROZEN = "frozen"
        CLOSED = "closed"

    trader = cross_service_fk("users.Trader", related_name="accounts")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    number = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    balance = models.DecimalField(max_digits=18, decimal_places=2)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)

    def __str__(self):
        return self.number


class Order(Timestamped):
    """Hold one order sent to the market."""

    class Side(models.TextChoices):
        BUY = "buy"
        SELL = "sell"

    class Type(models.TextChoices):
        MARKET = "market"
        LIMIT = "limit"
        STOP = "stop"

    class Status(models.TextChoices):
        NEW = "new"
        PARTIAL = "partial"
        FILLED = "filled"
        CANCELLED = "cancelled"
        REJECTED = "rejected"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    instrument = cross_service_fk("marketdata.Instrument", related_name="orders")
    client_order_id = models.UUIDField(default=uuid.uuid4, unique=True)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=8, choices=Type.choices)
    quantity = models.DecimalField(max_digits=18, decimal_places=4)
    limit_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    time_in_force = models.CharField(max_length=3, default="DAY")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    submitted_at = models.DateTimeField()

    def __str__(self):
        return f"{self.side} {self.quantity} #{self.pk}"


class Trade(models.Model):
    """Hold one fill of an order."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    venue_trade_id = models.CharField(max_length=24, unique=True)
    price = models.DecimalField(max_digits=14, decimal_places=4)
    quantity = models.DecimalField(max_digits=18, decimal_places=4)
    fee = models.DecimalField(max_digits=12, decimal_places=4)
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
