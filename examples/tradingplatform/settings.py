"""Settings of the trading-platform demo: one monolith database plus one database per service.

`default` is the monolith the platform has always used. The five service databases are the
targets of the split; `routers.ServiceRouter` says which app lives where, and `dbcopy copy
--source default` (no --dest) follows it.
"""

from pathlib import Path

# Build every path from this file's location so the demo runs from any checkout.
EXAMPLES_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = EXAMPLES_DIR / "var"

SECRET_KEY = "demo-only-not-secret"  # Demo project: never served, never deployed.
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "tradingplatform.users",
    "tradingplatform.marketdata",
    "tradingplatform.trading",
    "tradingplatform.portfolio",
    "tradingplatform.notifications",
    "dbcopy",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tradingplatform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _sqlite(name):
    """Return the settings of the SQLite database var/<name>.sqlite3."""
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / f"{name}.sqlite3")}


SERVICE_DATABASES = ["users", "marketdata", "trading", "portfolio", "notifications"]

DATABASES = {"default": _sqlite("monolith")}
DATABASES.update({name: _sqlite(name) for name in SERVICE_DATABASES})
# A second marketdata database, filled through a file (`dbcopy export` on the monolith's side,
# `dbcopy import` on the service's) as a split does when the two databases cannot see each other.
# The router gives it marketdata's tables; no model is routed to it, so no copy or sync writes it.
DATABASES["marketdata_from_file"] = _sqlite("marketdata_from_file")

DATABASE_ROUTERS = ["tradingplatform.routers.ServiceRouter"]

# `dbcopy sync --since-field updated_at` reads only the rows changed since the destination's
# newest updated_at. These models have no updated_at, but they are append-only (a fill, a
# loaded bar or an admin log entry never changes once written), so the moment a row was
# written is cursor enough. Models with neither, such as auth_user and the many-to-many
# tables, are compared in full.
DBCOPY_SYNC_FIELDS = {
    "trading.Trade": "created_at",
    "marketdata.PriceBar": "created_at",
    "admin.LogEntry": "action_time",
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
