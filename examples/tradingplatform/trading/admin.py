from django.contrib import admin

from .models import Account, Order, Trade


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["number", "trader", "kind", "currency", "balance", "status"]
    list_filter = ["kind", "status"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "instrument", "side", "order_type", "quantity", "status", "submitted_at"]
    list_filter = ["status", "side", "order_type"]


@admin.register(Trade)
class TradeAdmin(admin.ModelAdmin):
    list_display = ["venue_trade_id", "order", "price", "quantity", "executed_at"]
