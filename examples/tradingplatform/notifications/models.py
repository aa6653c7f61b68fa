"""Messages sent to traders and the price alerts that trigger some of them."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from tradingplatform.common import Timestamped, cross_service_fk


class PriceAlert(Timestamped):
    """Watch one instrument's price for a trader."""

    class Condition(models.TextChoices):
        ABOVE = "above"
        BELOW = "below"

    trader = cross_service_fk("users.Trader", on_delete=models.CASCADE, related_name="price_alerts")
    instrument = cross_service_fk("marketdata.Instrument", on_delete=models.CASCADE, related_name="price_alerts")
    condition = models.CharField(max_length=5, choices=Condition.choices)
    threshold = models.DecimalField(max_digits=14, decimal_places=4)
    is_active = models.BooleanField(default=True)
    triggered_at = models.DateTimeField(null=True, blank=True)


class Notification(Timestamped):
    """Hold one message to a user about any object (generic foreign key)."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        PUSH = "push"
        SMS = "sms"
        IN_APP = "in_app"

    recipient = cross_service_fk(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    body = models.TextField()
    # Every database holds its own django_content_type table (see routers.EVERYWHERE),
    # so this key stays local and keeps its constraint.
    content_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL)
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("content_type", "object_id")
    read_at = models.DateTimeField(null=True, blank=True)
