"""Make the monolith move on like the live platform: a few minutes of orders, fills, reads and edits."""

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tradingplatform.activity import Activity
from tradingplatform.seeding import SEED
from tradingplatform.users.models import Trader


class Command(BaseCommand):
    help = (
        "Apply five minutes of deterministic platform activity to the monolith: new orders, fills, "
        "notifications and price bars, order status changes, deleted notifications, watchlist edits, "
        "a renamed group. Each run continues the platform's clock from the newest row."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="Database to change (default: the monolith).")
        parser.add_argument("--seed", type=int, default=SEED, help="Random seed; the same seed gives the same changes.")
        parser.add_argument("--report-json", metavar="PATH", help="Also write the counts per model as JSON to PATH.")

    def handle(self, *args, database, seed, report_json, **options):
        if not Trader.objects.using(database).exists():
            raise CommandError(f"Database {database!r} holds no demo data; run `manage.py seed_demo` first.")
        started = time.monotonic()
        changes, start, end = Activity(db=database, seed=seed).run()
        self.stdout.write(f"Platform clock: {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC")
        self.stdout.write(f"  {'model':<36} {'inserted':>8} {'updated':>8} {'deleted':>8}")
        for label, counts in changes.items():
            cells = " ".join(f"{counts[what] or '':>8}" for what in ("inserted", "updated", "deleted"))
            self.stdout.write(f"  {label:<36} {cells}")
        total = sum(sum(counts.values()) for counts in changes.values())
        if report_json:
            document = {"database": database, "start": start.isoformat(), "end": end.isoformat(), "models": changes}
            Path(report_json).write_text(json.dumps(document, indent=2) + "\n")
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"Changed {total} rows in {database!r} in {elapsed:.1f}s."))
