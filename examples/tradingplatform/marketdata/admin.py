from django.contrib import admin

from .models import Exchange, Instrument, Option, PriceBar


@admin.register(Exchange)
class ExchangeAdmin(admin.ModelAdmin):
    list_display = ["mic", "name", "country", "timezone"]


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["symbol", "exchange", "asset_class", "currency", "is_active"]
    list_filter = ["asset_class", "exchange"]


@admin.register(Option)
class OptionAdmin(admin.ModelAdmin):
    list_display = ["symbol", "underlying", "right", "strike", "expiry"]


@admin.register(PriceBar)
class PriceBarAdmin(admin.ModelAdmin):
    list_display = ["instrument", "interval", "ts", "close", "volume"]
