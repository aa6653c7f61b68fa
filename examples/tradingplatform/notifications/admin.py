from django.contrib import admin

from .models import Notification, PriceAlert


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "recipient", "channel", "kind", "read_at", "created_at"]
    list_filter = ["channel", "kind"]


@admin.register(PriceAlert)
class PriceAlertAdmin(admin.ModelAdmin):
    list_display = ["trader", "instrument", "condition", "threshold", "is_active"]
