"""URLs of the demo: only the admin, whose log entries the seed fills."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
