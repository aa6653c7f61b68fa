from django.contrib import admin

from .models import Trader


@admin.register(Trader)
class TraderAdmin(admin.ModelAdmin):
    list_display = ["display_name", "country", "risk_profile", "kyc_verified", "created_at"]
    list_filter = ["risk_profile", "kyc_verified"]
