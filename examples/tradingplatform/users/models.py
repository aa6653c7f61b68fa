"""Trader profiles: a django.contrib.auth User plus what the platform knows about the person."""

from django.conf import settings
from django.db import models

from tradingplatform.common import Timestamped


class Trader(Timestamped):
    """Hold the trading profile of one login."""

    class Risk(models.TextChoices):
        CONSERVATIVE = "conservative"
        BALANCED = "balanced"
        AGGRESSIVE = "aggressive"

    # Same database as auth.User after the split, so the constraint stays.
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trader")
    display_name = models.CharField(max_length=120)
    country = models.CharField(max_length=2)
    base_currency = models.CharField(max_length=3, default="USD")
    risk_profile = models.CharField(max_length=16, choices=Risk.choices, default=Risk.BALANCED)
    phone = models.CharField(max_length=32, blank=True)
    bio = models.TextField(blank=True)
    kyc_verified = models.BooleanField(default=False)

    def __str__(self):
        return self.display_name
