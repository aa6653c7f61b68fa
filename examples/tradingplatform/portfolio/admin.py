from django.contrib import admin

from .models import Portfolio, Position, Watchlist


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["name", "trader", "account", "base_currency"]


@admin.register(Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = ["portfolio", "instrument", "quantity", "average_cost", "realized_pnl"]


@admin.register(Watchlist)
class WatchlistAdmin(admin.ModelAdmin):
    list_display = ["name", "owner"]
