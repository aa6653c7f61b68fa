"""Make the monolith move on the way the live platform would, a few minutes' worth, deterministically.

After the split the monolith keeps running until the cutover, so the service databases fall
behind: new orders and fills arrive, open orders fill or get cancelled, notifications are read
and purged, the nightly job loads price bars, traders log in and edit their watchlists, ops
renames a permission group. `dbcopy sync` then brings the service databases back in step.

The platform's clock continues from the newest timestamp already in the monolith (the seed's
fixed "now" is 2026-06-30 20:00 UTC; some notifications were read the next day), so every row
this writes is newer than anything copied before, whatever the wall clock says, and a run on
the freshly seeded monolith always makes the same changes with the same timestamps. Each run
starts where the previous one ended, like the real platform's next five minutes.

Every write names the monolith explicitly (`using(db)`): the project's router sends each model
to its service database. Timestamps are written explicitly as well: `bulk_create()` would stamp
auto_now/auto_now_add columns with the wall clock, so inserted rows are re-stamped with
`bulk_update()` (which does not call pre_save) and changed rows carry their new `updated_at`.
"""

import random
import uuid
from collections import defaultdict
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Max

from tradingplatform.marketdata.models import Instrument, PriceBar
from tradingplatform.notifications.models import Notification, PriceAlert
from tradingplatform.portfolio.models import Watchlist
from tradingplatform.seeding import CENT, NOW, SEED, TICK
from tradingplatform.trading.models import Account, Order, Trade
from tradingplatform.users.models import Trader

WINDOW = timedelta(minutes=5)  # how much platform time one run covers
FIRST_NAMES = ["Amara", "Bastian", "Chiara", "Dev", "Elin", "Farah", "Goran", "Hana", "Ilya", "Joon"]
LAST_NAMES = ["Okafor", "Lindqvist", "Moreau", "Nakamura", "Patel", "Quinn", "Rossi", "Schmidt", "Tanaka"]

# Every (model, DateTimeField) the clock must stay ahead of.
STAMPS = [
    (Trader, "updated_at"), (User, "date_joined"), (User, "last_login"), (Instrument, "updated_at"),
    (PriceBar, "created_at"), (Account, "updated_at"), (Order, "updated_at"), (Trade, "created_at"),
    (Watchlist, "updated_at"), (PriceAlert, "updated_at"), (Notification, "updated_at"),
    (LogEntry, "action_time"),
]


class Activity:
    """Apply one deterministic burst of platform activity to the monolith and count what changed."""

    def __init__(self, db="default", seed=SEED):
        self.db = db
        self.start = self.clock_start()
        # Seeded by the start instant too, so a second run makes new (non-colliding) changes.
        self.rng = random.Random(f"{seed}:{self.start.isoformat()}")
        self.changes = defaultdict(lambda: {"inserted": 0, "updated": 0, "deleted": 0})
        self.inserted = defaultdict(set)  # model -> pks of the rows this run inserted
        self.account_delta = defaultdict(Decimal)  # account id -> cash moved by this run's fills

    # --- helpers -------------------------------------------------------------------------------

    def clock_start(self):
        """Return the first whole minute after the newest timestamp in the monolith (or the seed's now)."""
        newest = NOW
        for model, field in STAMPS:
            value = model._base_manager.using(self.db).aggregate(newest=Max(field))["newest"]
            if value is not None and value > newest:
                newest = value
        return newest.replace(second=0, microsecond=0) + timedelta(minutes=1)

    def at(self):
        """Return a random instant within this run's five minutes."""
        return self.start + timedelta(microseconds=self.rng.randrange(int(WINDOW.total_seconds() * 1e6)))

    def count(self, model, what, n=1):
        """Record n rows of model inserted, updated or deleted."""
        self.changes[model._meta.label][what] += n

    def objects(self, model):
        """Return model's manager on the monolith."""
        return model._base_manager.using(self.db)

    def insert(self, model, objs, stamps=None):
        """Bulk-insert objs, then give them their platform-clock timestamps (a list of dicts)."""
        objs = self.objects(model).bulk_create(objs)
        if stamps:
            for obj, values in zip(objs, stamps):
                for name, value in values.items():
                    setattr(obj, name, value)
            self.objects(model).bulk_update(objs, list(stamps[0]))
        self.count(model, "inserted", len(objs))
        self.inserted[model].update(obj.pk for obj in objs)
        return objs

    def update(self, model, objs, fields):
        """Write fields of the changed objs (bulk_update keeps the updated_at they carry).

        A row this run inserted and then changed again counts once, as inserted: that is
        what the service databases, which never saw its first version, will receive.
        """
        if objs:
            self.objects(model).bulk_update(objs, fields)
            self.count(model, "updated", len([obj for obj in objs if obj.pk not in self.inserted[model]]))

    # --- the steps -----------------------------------------------------------------------------

    def run(self):
        """Make every change in one transaction; return ({model label: counts}, start, end)."""
        with transaction.atomic(using=self.db):
            self.load_prices()
            self.traders_log_in()
            self.trader_signs_up()
            self.new_orders()
            self.orders_progress()
            self.book_cash()
            self.alerts_trigger()
            self.notifications_read_and_purged()
            self.nightly_bars()
            self.watchlists_edited()
            self.instruments_delisted()
            self.support_group_renamed()
        return dict(sorted(self.changes.items())), self.start, self.start + WINDOW

    def load_prices(self):
        """Remember a reference price per instrument: its last fill, else its last daily close."""
        self.price = {}
        for instrument_id, close in self.objects(PriceBar).order_by("ts", "pk").values_list("instrument_id", "close"):
            self.price[instrument_id] = close
        fills = self.objects(Trade).order_by("executed_at", "pk").values_list("order__instrument_id", "price")
        self.price.update(dict(fills))
        self.instruments = list(self.objects(Instrument).filter(is_active=True).order_by("pk"))
        self.instruments = [i for i in self.instruments if i.pk in self.price]
        self.trader_of_user = dict(self.objects(Trader).values_list("user_id", "pk"))
        self.user_of_trader = {t: u for u, t in self.trader_of_user.items()}
        self.order_type = ContentType.objects.db_manager(self.db).get_for_model(Order)

    def traders_log_in(self):
        """Eight traders log in: auth_user has no updated_at, so the sync compares it in full."""
        users = list(self.objects(User).filter(is_staff=False).order_by("pk"))
        for user in self.rng.sample(users, 8):
            user.last_login = self.at()
            self.update(User, [user], ["last_login"])

    def trader_signs_up(self):
        """One new trader: a login, a profile, a cash account and a watchlist."""
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        username = f"{first}.{last}{self.rng.randint(10, 99)}".lower()
        while self.objects(User).filter(username=username).exists():
            username += str(self.rng.randint(0, 9))
        joined = self.at()
        # Every demo user has the same password; reuse its hash instead of hashing again.
        password = self.objects(User).order_by("pk").values_list("password", flat=True).first()
        (user,) = self.insert(User, [User(
            username=username, password=password, email=f"{username}@example.net", first_name=first,
            last_name=last, date_joined=joined, last_login=joined + timedelta(seconds=40),
        )])
        (trader,) = self.insert(Trader, [Trader(
            user=user, display_name=f"{first} {last}", country="GB", base_currency="GBP",
            risk_profile=Trader.Risk.BALANCED, kyc_verified=False,
        )], [{"created_at": joined + timedelta(seconds=5), "updated_at": joined + timedelta(seconds=5)}])
        self.user_of_trader[trader.pk] = user.pk
        opened = joined + timedelta(seconds=30)
        self.insert(Account, [Account(
            trader=trader, kind=Account.Kind.CASH, currency="GBP", balance=Decimal("0.00"),
            number=f"TP{self.rng.randrange(10**9):09d}-{self.rng.randint(10, 99)}",
            name=f"{first} {last} – Cash",
        )], [{"created_at": opened, "updated_at": opened}])
        (watchlist,) = self.insert(Watchlist, [Watchlist(owner=trader, name="Ideas")],
                                   [{"created_at": opened, "updated_at": opened}])
        Through = Watchlist.instruments.through
        picks = self.rng.sample(self.instruments, 6)
        self.insert(Through, [Through(watchlist=watchlist, instrument=i) for i in picks])

    def new_orders(self):
        """Forty new orders; most fill at once, a few stay open, some are cancelled or rejected."""
        accounts = list(self.objects(Account).filter(status=Account.Status.OPEN).order_by("pk"))
        orders, stamps = [], []
        for _ in range(40):
            account, instrument = self.rng.choice(accounts), self.rng.choice(self.instruments)
            order_type = self.rng.choices(Order.Type.values, weights=[45, 45, 10])[0]
            status = self.rng.choices(Order.Status.values, weights=[20, 10, 55, 10, 5])[0]
            if instrument.asset_class == Instrument.AssetClass.OPTION:
                quantity = self.rng.randint(1, 20)
            else:
                quantity = self.rng.choice([5, 10, 25, 50, 100]) * instrument.lot_size
            price = self.price[instrument.pk]
            limit = None if order_type == Order.Type.MARKET else self.tick(price * self.uniform(0.98, 1.02))
            submitted = self.at()
            orders.append(Order(
                account=account, instrument=instrument, side=self.rng.choice(Order.Side.values),
                order_type=order_type, client_order_id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
                quantity=Decimal(quantity), limit_price=limit, time_in_force=self.rng.choice(["DAY", "GTC"]),
                status=status, submitted_at=submitted,
            ))
            updated = submitted if status == Order.Status.NEW else submitted + timedelta(milliseconds=self.rng.randint(5, 900))
            stamps.append({"created_at": submitted, "updated_at": updated})
        orders = self.insert(Order, orders, stamps)
        for order in orders:
            if order.status in (Order.Status.FILLED, Order.Status.PARTIAL):
                self.fill(order, order.quantity if order.status == Order.Status.FILLED else order.quantity / 2,
                          order.submitted_at)

    def orders_progress(self):
        """Earlier open orders move on: new ones fill, part-fill or are cancelled (three by ops, in the admin)."""
        earlier = self.objects(Order).filter(created_at__lt=self.start).order_by("pk")
        waiting = list(earlier.filter(status=Order.Status.NEW))
        partial = list(earlier.filter(status=Order.Status.PARTIAL))
        changed = []
        for order, status in zip(self.rng.sample(waiting, 20), [Order.Status.FILLED] * 12 + [Order.Status.PARTIAL] * 3
                                 + [Order.Status.CANCELLED] * 5):
            order.status, order.updated_at = status, self.at()
            if status != Order.Status.CANCELLED:
                self.fill(order, order.quantity if status == Order.Status.FILLED else order.quantity / 2, order.updated_at)
            changed.append(order)
        for order in self.rng.sample(partial, 5):
            order.status, order.updated_at = Order.Status.FILLED, self.at()
            self.fill(order, order.quantity / 2, order.updated_at)
            changed.append(order)
        self.update(Order, changed, ["status", "updated_at"])
        # Ops cancelled the last three of the cancellations through the admin, which logs them.
        staff = self.objects(User).get(username="ops.kim")
        cancelled = [o for o in changed if o.status == Order.Status.CANCELLED][-3:]
        self.insert(LogEntry, [LogEntry(
            user=staff, content_type=self.order_type, object_id=str(o.pk), object_repr=str(o)[:200],
            action_flag=CHANGE, change_message='[{"changed": {"fields": ["Status"]}}]', action_time=o.updated_at,
        ) for o in cancelled])

    def fill(self, order, quantity, at):
        """Insert the fill of quantity of order at about `at` and its 'order filled' notification."""
        reference = order.limit_price or self.price[order.instrument_id]
        price = self.tick(reference * self.uniform(0.998, 1.002))
        quantity = Decimal(quantity).quantize(TICK)
        executed = at + timedelta(milliseconds=self.rng.randint(5, 4000))
        fee = (price * quantity * Decimal("0.0005")).quantize(TICK)
        mic = self.objects(Instrument).filter(pk=order.instrument_id).values_list("exchange__mic", flat=True).get()
        self.insert(Trade, [Trade(
            order=order, venue_trade_id=f"{mic}-{self.rng.getrandbits(48):012x}", price=price, quantity=quantity,
            fee=fee, executed_at=executed,
        )], [{"created_at": executed + timedelta(milliseconds=self.rng.randint(1, 400))}])
        sign = -1 if order.side == Order.Side.BUY else 1
        self.account_delta[order.account_id] += sign * price * quantity - fee
        trader = self.objects(Account).filter(pk=order.account_id).values_list("trader_id", flat=True).get()
        symbol = self.objects(Instrument).filter(pk=order.instrument_id).values_list("symbol", flat=True).get()
        sent = executed + timedelta(seconds=2)
        self.notify(self.user_of_trader[trader], "order_filled",
                    f"Order filled: {order.side} {quantity.normalize()} {symbol}",
                    f"{quantity.normalize()} at {price.normalize()}.", order, sent)

    def notify(self, user_id, kind, title, body, subject, at):
        """Insert one in-app notification about subject, sent at `at`."""
        self.insert(Notification, [Notification(
            recipient_id=user_id, kind=kind, title=title[:200], body=body, channel=Notification.Channel.IN_APP,
            content_type=ContentType.objects.db_manager(self.db).get_for_model(subject), object_id=subject.pk,
        )], [{"created_at": at, "updated_at": at}])

    def book_cash(self):
        """Move the cash of every account whose orders filled in this run."""
        accounts = list(self.objects(Account).filter(pk__in=self.account_delta).order_by("pk"))
        for account in accounts:
            account.balance = (account.balance + self.account_delta[account.pk]).quantize(CENT)
            account.updated_at = self.at()
        self.update(Account, accounts, ["balance", "updated_at"])

    def alerts_trigger(self):
        """Four active price alerts trigger: the alert changes and a notification goes out."""
        active = list(self.objects(PriceAlert).filter(is_active=True).order_by("pk"))
        alerts = self.rng.sample(active, 4)
        for alert in alerts:
            alert.is_active, alert.triggered_at = False, self.at()
            alert.updated_at = alert.triggered_at
            symbol = self.objects(Instrument).filter(pk=alert.instrument_id).values_list("symbol", flat=True).get()
            self.notify(self.user_of_trader[alert.trader_id], "price_alert",
                        f"{symbol} is {alert.condition} {alert.threshold.normalize()}", "Your price alert triggered.",
                        alert, alert.triggered_at + timedelta(seconds=1))
        self.update(PriceAlert, alerts, ["is_active", "triggered_at", "updated_at"])

    def notifications_read_and_purged(self):
        """Ten unread notifications are read; fifteen read long ago are purged (deleted)."""
        unread = list(self.objects(Notification).filter(read_at__isnull=True, created_at__lt=self.start).order_by("pk"))
        read = self.rng.sample(unread, 10)
        for note in read:
            note.read_at = note.updated_at = self.at()
        self.update(Notification, read, ["read_at", "updated_at"])
        old = self.objects(Notification).filter(read_at__lt=self.start - timedelta(days=90)).order_by("pk")
        purge = self.rng.sample(list(old.values_list("pk", flat=True)), 15)
        deleted, _ = self.objects(Notification).filter(pk__in=purge).delete()
        self.count(Notification, "deleted", deleted)

    def nightly_bars(self):
        """Load the daily bar of every session since the last one, for each instrument that has bars."""
        last = self.objects(PriceBar).aggregate(last=Max("ts"))["last"].date()
        sessions = []
        day = last + timedelta(days=1)
        while day + timedelta(days=1) <= self.start.date():  # a session's bar exists once it has closed
            if day.weekday() < 5:
                sessions.append(day)
            day += timedelta(days=1)
        closes = {}
        for instrument_id, close in self.objects(PriceBar).order_by("ts", "pk").values_list("instrument_id", "close"):
            closes[instrument_id] = close
        bars, stamps = [], []
        for instrument_id in sorted(closes):
            price = closes[instrument_id]
            for day in sessions:
                close = max(price * self.uniform(0.97, 1.03), Decimal("0.5"))
                high = max(price, close) * self.uniform(1.0, 1.01)
                low = min(price, close) * self.uniform(0.99, 1.0)
                bars.append(PriceBar(
                    instrument_id=instrument_id, interval="1d", ts=datetime.combine(day, time(0, 0), tzinfo=timezone.utc),
                    open=self.tick(price), high=self.tick(high), low=self.tick(low), close=self.tick(close),
                    volume=int(self.rng.lognormvariate(12, 1.2)),
                ))
                stamps.append({"created_at": self.at()})
                price = close
        if bars:
            self.insert(PriceBar, bars, stamps)

    def watchlists_edited(self):
        """Traders add ten instruments to their watchlists and drop six (the M2M table has no timestamps)."""
        Through = Watchlist.instruments.through
        links = list(self.objects(Through).order_by("pk").values_list("pk", "watchlist_id", "instrument_id"))
        dropped = self.rng.sample(links, 6)
        deleted, _ = self.objects(Through).filter(pk__in=[pk for pk, _, _ in dropped]).delete()
        self.count(Through, "deleted", deleted)
        taken = {(w, i) for _, w, i in links}
        watchlists = list(self.objects(Watchlist).order_by("pk").values_list("pk", flat=True))
        added = []
        while len(added) < 10:
            pair = (self.rng.choice(watchlists), self.rng.choice(self.instruments).pk)
            if pair not in taken:
                taken.add(pair)
                added.append(Through(watchlist_id=pair[0], instrument_id=pair[1]))
        self.insert(Through, added)

    def instruments_delisted(self):
        """Two stocks are delisted (is_active goes false; updated_at moves)."""
        stocks = [i for i in self.instruments if i.asset_class != Instrument.AssetClass.OPTION]
        delisted = self.rng.sample(stocks, 2)
        for instrument in delisted:
            instrument.is_active, instrument.updated_at = False, self.at()
        self.update(Instrument, delisted, ["is_active", "updated_at"])

    def support_group_renamed(self):
        """Ops renames the support group and lets it edit notifications: auth tables have no timestamps."""
        group = self.objects(Group).filter(name="support").first()
        if group is None:  # renamed by an earlier run
            return
        group.name = "client-support"
        self.update(Group, [group], ["name"])
        permission = self.objects(Permission).get(codename="change_notification")
        Through = Group.permissions.through
        self.insert(Through, [Through(group_id=group.pk, permission_id=permission.pk)])

    # --- numbers -------------------------------------------------------------------------------

    def uniform(self, low, high):
        """Return a seeded random Decimal factor between low and high."""
        return Decimal(str(round(self.rng.uniform(low, high), 6)))

    @staticmethod
    def tick(value):
        """Round a price to the instruments' four decimal places."""
        return Decimal(value).quantize(TICK)
