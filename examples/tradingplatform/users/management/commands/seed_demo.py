"""Fill the monolith database with the demo's fake trading data."""

import time

from django.core.management.base import BaseCommand, CommandError

from tradingplatform.seeding import SEED, Seeder
from tradingplatform.users.models import Trader


class Command(BaseCommand):
    help = "Fill the monolith with a few thousand rows of deterministic fake trading data."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="Database to fill (default: the monolith).")
        parser.add_argument("--seed", type=int, default=SEED, help="Random seed; the same seed gives the same data.")

    def handle(self, *args, database, seed, **options):
        # Seeding twice would collide on unique usernames and symbols; say so plainly.
        if Trader.objects.using(database).exists():
            raise CommandError(
                f"Database {database!r} is already seeded; delete examples/var/ or run examples/run_demo.py."
            )
        started = time.monotonic()
        counts = Seeder(db=database, seed=seed).run()
        for label, count in counts.items():
            self.stdout.write(f"  {label:<36} {count:>6}")
        total = sum(counts.values())
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"Seeded {total} rows into {database!r} in {elapsed:.1f}s."))
