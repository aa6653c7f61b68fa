"""Fill the monolith with a few thousand rows of deterministic, realistic trading data.

Every write names its database explicitly (`using(db)`): the project's router sends each
model to its service database, and before the split all data lives in the monolith.
"""

import json
import random
import uuid
from collections import defaultdict
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connections, transaction
from faker import Faker

from tradingplatform.marketdata.models import Exchange, Instrument, Option, PriceBar
from tradingplatform.notifications.models import Notification, PriceAlert
from tradingplatform.portfolio.models import Portfolio, Position, Watchlist
from tradingplatform.trading.models import Account, Order, Trade
from tradingplatform.users.models import Trader

SEED = 20240611
# A fixed "now" keeps the data identical from run to run and always in the past.
NOW = datetime(2026, 6, 30, 20, 0, tzinfo=timezone.utc)
CENT = Decimal("0.01")
TICK = Decimal("0.0001")

LOCALE_OF_COUNTRY = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "JP": "ja_JP"}
CURRENCY_OF_COUNTRY = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "JP": "JPY"}
EXCHANGES = [
    ("XNYS", "New York Stock Exchange", "US", "America/New_York"),
    ("XNAS", "Nasdaq Stock Market", "US", "America/New_York"),
    ("XLON", "London Stock Exchange", "GB", "Europe/London"),
    ("XETR", "Deutsche Börse Xetra", "DE", "Europe/Berlin"),
    ("XTKS", "Tokyo Stock Exchange", "JP", "Asia/Tokyo"),
]
STRATEGIES = [
    "Dividend growth", "Momentum", "Covered calls", "Mean reversion", "Long-term core",
    "Small-cap value", "Pairs trading", "Earnings drift", "Index tracking",
]


class Seeder:
    """Build the demo data set step by step, remembering the timestamps each row should keep."""

    def __init__(self, db="default", seed=SEED, log=print):
        Faker.seed(seed)
        self.fake = Faker(list(LOCALE_OF_COUNTRY.values()))
        self.rng = random.Random(seed)
        self.db = db
        self.log = log
        # model -> [(obj, created_at, updated_at or None)]; applied after every insert
        # because auto_now/auto_now_add overwrite whatever the object held when saved.
        self.history = defaultdict(list)
        self.price = {}  # instrument id -> last known price
        self.symbols, self.isins = set(), set()

    # --- helpers -------------------------------------------------------------------

    def when(self, start, end=NOW):
        """Return a random aware datetime between start and end."""
        span = max((end - start).total_seconds(), 1)
        return start + timedelta(seconds=self.rng.uniform(0, span))

    def days_ago(self, low, high):
        """Return a random datetime between `high` and `low` days before NOW."""
        return self.when(NOW - timedelta(days=high), NOW - timedelta(days=low))

    def remember(self, model, obj, created, updated=None):
        """Set and record the timestamps obj must end up with; updated defaults to a later instant."""
        if updated is None and any(f.name == "updated_at" for f in model._meta.fields):
            updated = self.when(created) if self.rng.random() < 0.6 else created
        self.history[model].append((obj, created, updated))
        self.restore([obj], {id(obj): (created, updated)})

    def insert(self, model, objs):
        """Bulk-insert objs into the monolith and return them with their primary keys."""
        objs = model.objects.using(self.db).bulk_create(objs, batch_size=500)
        # Saving stamped "now" on the objects; put the intended values back so later
        # steps (an account opened after its trader joined) build on them.
        self.restore(objs, {id(obj): (c, u) for obj, c, u in self.history.get(model, ())})
        return objs

    @staticmethod
    def restore(objs, stamps):
        """Set created_at/updated_at of objs from stamps, a dict id(obj) -> (created, updated)."""
        for obj in objs:
            if id(obj) in stamps:
                obj.created_at, updated = stamps[id(obj)]
                if updated is not None:
                    obj.updated_at = updated

    def money(self, value, quantum=CENT):
        """Round value to a Decimal with the given quantum."""
        return Decimal(str(value)).quantize(quantum)

    # --- the steps -----------------------------------------------------------------

    def run(self):
        """Create every row in one transaction and return the row count per model."""
        with transaction.atomic(using=self.db):
            self.seed_users()
            self.seed_marketdata()
            self.seed_trading()
            self.seed_portfolio()
            self.seed_notifications()
            self.seed_admin_log()
            self.backdate()
        return self.counts()

    def seed_users(self):
        """Create the staff, ~50 traders with their profiles, and two permission groups."""
        # Hash once (PBKDF2 per user would take seconds) with a seeded salt, so reruns match.
        salt = "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=22))
        password = make_password("demo-password", salt=salt)
        staff = [self.new_user(password, name=n, staff=True) for n in ("admin", "ops.kim", "ops.ruiz")]
        staff[0].is_superuser = True
        self.staff = self.insert(User, staff)
        countries = self.rng.choices(list(LOCALE_OF_COUNTRY), weights=[45, 20, 15, 10, 10], k=50)
        users = self.insert(User, [self.new_user(password) for _ in countries])
        self.traders = self.insert(Trader, [self.new_trader(u, c) for u, c in zip(users, countries)])
        self.user_of_trader = {t.pk: t.user_id for t in self.traders}
        self.seed_groups(users)

    def new_user(self, password, name=None, staff=False):
        """Return an unsaved auth User who joined some time in the last three years."""
        fake = self.fake["en_US"]
        joined = self.days_ago(200, 3 * 365)
        username = name or fake.unique.user_name()
        return User(
            username=username, password=password, email=f"{username}@{fake.free_email_domain()}",
            first_name=fake.first_name(), last_name=fake.last_name(), is_staff=staff,
            date_joined=joined, last_login=self.when(joined) if self.rng.random() < 0.9 else None,
        )

    def new_trader(self, user, country):
        """Return an unsaved Trader profile for user, written in the trader's locale."""
        fake = self.fake[LOCALE_OF_COUNTRY[country]]
        bio = fake.sentence(nb_words=12)
        if self.rng.random() < 0.2:
            bio += " 📈🚀"  # 4-byte characters: a faithful copy must keep them
        trader = Trader(
            user=user, display_name=fake.name(), country=country, base_currency=CURRENCY_OF_COUNTRY[country],
            risk_profile=self.rng.choice(Trader.Risk.values), phone=fake.phone_number()[:32],
            bio=bio, kyc_verified=self.rng.random() < 0.85,
        )
        self.remember(Trader, trader, user.date_joined + timedelta(minutes=self.rng.randint(2, 90)))
        return trader

    def seed_groups(self, users):
        """Create the risk-desk and support groups; permissions come from `migrate`."""
        perms = Permission.objects.using(self.db)
        risk = Group.objects.using(self.db).create(name="risk-desk")
        risk.permissions.set(perms.filter(content_type__app_label__in=["trading", "portfolio"]))
        support = Group.objects.using(self.db).create(name="support")
        support.permissions.set(perms.filter(codename__startswith="view_"))
        for user in self.staff[1:]:
            user.groups.add(risk, support)
        for user in self.rng.sample(users, 5):
            user.groups.add(support)

    def seed_marketdata(self):
        """Create 5 exchanges, ~240 stocks and ETFs, ~60 options and ~3600 daily bars."""
        self.exchanges = self.insert(Exchange, [self.new_exchange(*row) for row in EXCHANGES])
        stocks = self.insert(Instrument, [self.new_stock(ex) for ex in self.exchanges for _ in range(48)])
        self.price.update({i.pk: self.rng.uniform(8, 480) * (100 if i.currency == "JPY" else 1) for i in stocks})
        us_stocks = [i for i in stocks if i.exchange.country == "US" and i.asset_class == "equity"]
        options = [self.save_option(u) for u in self.rng.sample(us_stocks, 60)]
        self.instruments = stocks + options
        self.seed_bars(self.rng.sample(stocks, 60), sessions=60)

    def new_exchange(self, mic, name, country, tz):
        """Return an unsaved Exchange listed on the platform years ago."""
        exchange = Exchange(mic=mic, name=name, country=country, timezone=tz)
        self.remember(Exchange, exchange, self.days_ago(1100, 1500))
        return exchange

    def new_stock(self, exchange):
        """Return an unsaved equity or ETF with a unique symbol on exchange."""
        fake = self.fake[LOCALE_OF_COUNTRY[exchange.country]]
        etf = self.rng.random() < 0.15
        symbol = self.unique_symbol(exchange)
        currency = CURRENCY_OF_COUNTRY[exchange.country]
        instrument = Instrument(
            exchange=exchange, symbol=symbol, currency=currency,
            name=f"{fake.company()} {'UCITS ETF' if etf else 'Ord. Shares'}",
            asset_class=Instrument.AssetClass.ETF if etf else Instrument.AssetClass.EQUITY,
            isin=self.unique_isin(exchange.country),
            tick_size=Decimal("1") if currency == "JPY" else CENT,
            lot_size=100 if currency == "JPY" else 1, is_active=self.rng.random() < 0.95,
        )
        self.remember(Instrument, instrument, self.days_ago(400, 1000))
        return instrument

    def unique_symbol(self, exchange):
        """Return a ticker not yet used on exchange (numeric codes in Tokyo, letters elsewhere)."""
        while True:
            if exchange.country == "JP":
                symbol = str(self.rng.randint(1300, 9999))
            else:
                symbol = "".join(self.rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=self.rng.randint(2, 4)))
            if (exchange.mic, symbol) not in self.symbols:
                self.symbols.add((exchange.mic, symbol))
                return symbol

    def unique_isin(self, country):
        """Return an ISIN-shaped identifier not yet used."""
        while True:
            body = "".join(self.rng.choices("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", k=9))
            isin = f"{country}{body}{self.rng.randint(0, 9)}"
            if isin not in self.isins:
                self.isins.add(isin)
                return isin

    def save_option(self, underlying):
        """Save one listed option on underlying (multi-table inheritance cannot bulk-insert)."""
        right = self.rng.choice(Option.Right.values)
        spot = self.price[underlying.pk]
        strike = self.money(round(spot * self.rng.uniform(0.8, 1.2) / 5) * 5 or 5)
        expiry = (NOW + timedelta(days=self.rng.randint(-60, 300))).date()
        option = Option.objects.using(self.db).create(
            exchange=underlying.exchange, underlying=underlying, asset_class=Instrument.AssetClass.OPTION,
            symbol=f"{underlying.symbol}{expiry:%y%m%d}{right}{int(strike * 1000):08d}",
            name=f"{underlying.symbol} {expiry:%d %b %y} {strike} {'Call' if right == 'C' else 'Put'}",
            currency=underlying.currency, tick_size=CENT, right=right, strike=strike, expiry=expiry,
            is_active=expiry >= NOW.date(),
        )
        # The option's timestamps live in the parent table, so the parent's manager back-dates them.
        self.remember(Instrument, option, self.days_ago(100, 400))
        self.price[option.pk] = max(spot * self.rng.uniform(0.01, 0.12), 0.05)
        return option

    def seed_bars(self, instruments, sessions):
        """Create `sessions` daily bars per instrument from a seeded random walk."""
        days = self.trading_days(sessions)
        bars = []
        for instrument in instruments:
            price = self.price[instrument.pk]
            for day in days:
                bar, price = self.new_bar(instrument, day, price)
                bars.append(bar)
            self.price[instrument.pk] = price
        self.insert(PriceBar, bars)

    def trading_days(self, count):
        """Return the last `count` weekdays before NOW, oldest first."""
        days, day = [], NOW.date()
        while len(days) < count:
            day -= timedelta(days=1)
            if day.weekday() < 5:
                days.append(day)
        return days[::-1]

    def new_bar(self, instrument, day, price):
        """Return an unsaved daily bar and the closing price it ends on."""
        close = max(price * (1 + self.rng.gauss(0.0004, 0.018)), 0.5)
        high = max(price, close) * (1 + abs(self.rng.gauss(0, 0.006)))
        low = min(price, close) * (1 - abs(self.rng.gauss(0, 0.006)))
        opened = datetime.combine(day, time(0, 0), tzinfo=timezone.utc)
        bar = PriceBar(
            instrument=instrument, interval="1d", ts=opened, open=self.money(price, TICK),
            high=self.money(high, TICK), low=self.money(low, TICK), close=self.money(close, TICK),
            volume=int(self.rng.lognormvariate(12, 1.2)),
        )
        # Bars are loaded by a nightly job a few hours after the session closes.
        self.remember(PriceBar, bar, opened + timedelta(hours=22, seconds=self.rng.randint(0, 7200)))
        return bar, close

    def seed_trading(self):
        """Create accounts and sub-accounts, ~1500 orders and their fills."""
        parents = [self.new_account(t) for t in self.traders for _ in range(self.rng.choice([1, 1, 2]))]
        parents = self.insert(Account, parents)
        margin = [a for a in parents if a.kind == Account.Kind.MARGIN]
        children = [self.new_account(a.trader, parent=a) for a in self.rng.sample(margin, len(margin) // 2)]
        self.accounts = parents + self.insert(Account, children)
        self.trader_of_account = {a.pk: a.trader_id for a in self.accounts}
        live = [a for a in self.accounts if a.status != Account.Status.CLOSED]
        self.orders = self.insert(Order, [self.new_order(self.rng.choice(live)) for _ in range(1500)])
        self.insert(Trade, [fill for order in self.orders for fill in self.new_fills(order)])

    def new_account(self, trader, parent=None):
        """Return an unsaved cash or margin account, or a sub-account of parent."""
        kind = Account.Kind.SUB if parent else self.rng.choice([Account.Kind.CASH, Account.Kind.MARGIN])
        opened = self.when(parent.created_at if parent else trader.created_at)
        status = self.rng.choices(Account.Status.values, weights=[90, 4, 6])[0]
        account = Account(
            trader=trader, parent=parent, kind=kind, currency=trader.base_currency,
            number=f"TP{self.rng.randrange(10**9):09d}-{self.rng.randint(10, 99)}",
            name=f"{trader.display_name} – {Account.Kind(kind).label}",
            balance=self.money(self.rng.lognormvariate(9.5, 1.1)), status=status,
        )
        self.remember(Account, account, opened)
        return account

    def new_order(self, account):
        """Return an unsaved order of account on a random instrument."""
        instrument = self.rng.choice(self.instruments)
        order_type = self.rng.choices(Order.Type.values, weights=[45, 45, 10])[0]
        status = self.rng.choices(Order.Status.values, weights=[10, 8, 60, 17, 5])[0]
        is_option = instrument.asset_class == Instrument.AssetClass.OPTION
        if is_option:
            quantity = self.rng.randint(1, 20)
        else:
            quantity = self.rng.choice([5, 10, 25, 50, 100, 200, 500]) * instrument.lot_size
        price = self.price[instrument.pk]
        limit = None if order_type == Order.Type.MARKET else self.money(price * self.rng.uniform(0.97, 1.03), TICK)
        submitted = self.days_ago(0.1, 180)
        order = Order(
            account=account, instrument=instrument, side=self.rng.choice(Order.Side.values), order_type=order_type,
            client_order_id=uuid.UUID(int=self.rng.getrandbits(128), version=4), quantity=Decimal(quantity),
            limit_price=limit,
            time_in_force=self.rng.choice(["DAY", "DAY", "GTC", "IOC"]), status=status, submitted_at=submitted,
        )
        # Untouched orders were never updated; the others changed when they filled or died.
        updated = submitted if status == Order.Status.NEW else submitted + timedelta(seconds=self.rng.randint(1, 3600))
        self.remember(Order, order, submitted, updated)
        return order

    def new_fills(self, order):
        """Return the unsaved fills of a filled (1–3 fills) or partially filled (1 fill) order."""
        if order.status not in (Order.Status.FILLED, Order.Status.PARTIAL):
            return []
        count = 1 if order.status == Order.Status.PARTIAL else self.rng.choice([1, 1, 2, 3])
        filled = order.quantity / 2 if order.status == Order.Status.PARTIAL else order.quantity
        fills, at = [], order.submitted_at
        for n in range(count):
            at += timedelta(milliseconds=self.rng.randint(5, 90_000))
            reference = order.limit_price or Decimal(str(self.price[order.instrument_id]))
            price = (reference * Decimal(str(self.rng.uniform(0.995, 1.005)))).quantize(TICK)
            quantity = (filled / count).quantize(TICK)
            trade = Trade(
                order=order, venue_trade_id=f"{order.instrument.exchange.mic}-{self.rng.getrandbits(48):012x}",
                price=price, quantity=quantity, fee=(price * quantity * Decimal("0.0005")).quantize(TICK),
                executed_at=at,
            )
            self.remember(Trade, trade, at + timedelta(milliseconds=self.rng.randint(1, 400)))
            fills.append(trade)
        return fills

    def seed_portfolio(self):
        """Create one or two portfolios per trader with their positions, and watchlists."""
        accounts_of = defaultdict(list)
        for account in self.accounts:
            accounts_of[account.trader_id].append(account)
        portfolios = [
            self.new_portfolio(t, accounts_of[t.pk]) for t in self.traders for _ in range(self.rng.choice([1, 1, 2]))
        ]
        self.portfolios = self.insert(Portfolio, portfolios)
        self.insert(Position, [p for portfolio in self.portfolios for p in self.new_positions(portfolio)])
        self.seed_watchlists()

    def new_portfolio(self, trader, accounts):
        """Return an unsaved portfolio of trader, booked on one of the trader's accounts."""
        strategy = self.rng.choice(STRATEGIES)
        portfolio = Portfolio(
            trader=trader, account=self.rng.choice(accounts) if accounts else None, strategy=strategy,
            name=f"{strategy} ({trader.display_name})", base_currency=trader.base_currency,
        )
        self.remember(Portfolio, portfolio, self.when(trader.created_at))
        return portfolio

    def new_positions(self, portfolio):
        """Return 3–8 unsaved positions of portfolio in distinct instruments."""
        positions = []
        for instrument in self.rng.sample(self.instruments, self.rng.randint(3, 8)):
            opened = self.when(portfolio.created_at)
            position = Position(
                portfolio=portfolio, instrument=instrument, opened_at=opened,
                quantity=Decimal(self.rng.randint(1, 60) * instrument.lot_size),
                average_cost=self.money(self.price[instrument.pk] * self.rng.uniform(0.8, 1.1), TICK),
                realized_pnl=self.money(self.rng.gauss(0, 1500)),
            )
            self.remember(Position, position, opened)
            positions.append(position)
        return positions

    def seed_watchlists(self):
        """Create a watchlist per trader and fill the many-to-many table in one insert."""
        watchlists = []
        for trader in self.traders:
            name = self.rng.choice(["Watching", "Earnings week", "Ideas", "Tech", "Income"])
            watchlist = Watchlist(owner=trader, name=name)
            self.remember(Watchlist, watchlist, self.when(trader.created_at))
            watchlists.append(watchlist)
        Through = Watchlist.instruments.through
        links = [
            Through(watchlist=w, instrument=i)
            for w in self.insert(Watchlist, watchlists)
            for i in self.rng.sample(self.instruments, self.rng.randint(4, 15))
        ]
        self.insert(Through, links)

    def seed_notifications(self):
        """Create ~150 price alerts and ~700 notifications about orders, alerts and accounts."""
        alerts = self.insert(PriceAlert, [self.new_alert(self.rng.choice(self.traders)) for _ in range(150)])
        filled = [o for o in self.orders if o.status == Order.Status.FILLED]
        notes = [self.note_for_order(o) for o in self.rng.sample(filled, 450)]
        notes += [self.note_for_alert(a) for a in alerts if a.triggered_at]
        notes += [self.note_for_account(a) for a in self.rng.sample(self.accounts, 60)]
        notes += [self.note_security(self.rng.choice(self.traders)) for _ in range(120)]
        self.insert(Notification, notes)

    def new_alert(self, trader):
        """Return an unsaved price alert, a third of them already triggered."""
        instrument = self.rng.choice(self.instruments)
        condition = self.rng.choice(PriceAlert.Condition.values)
        factor = self.rng.uniform(1.05, 1.2) if condition == "above" else self.rng.uniform(0.8, 0.95)
        created = self.when(trader.created_at)
        triggered = self.when(created) if self.rng.random() < 0.33 else None
        alert = PriceAlert(
            trader=trader, instrument=instrument, condition=condition, is_active=triggered is None,
            threshold=self.money(self.price[instrument.pk] * factor, TICK), triggered_at=triggered,
        )
        self.remember(PriceAlert, alert, created, triggered or created)
        return alert

    def new_note(self, user_id, kind, title, body, subject, at):
        """Return an unsaved notification about subject, read by the user in most cases."""
        read = at + timedelta(minutes=self.rng.randint(1, 4000)) if self.rng.random() < 0.6 else None
        note = Notification(
            recipient_id=user_id, kind=kind, title=title[:200], body=body, read_at=read,
            channel=self.rng.choice(Notification.Channel.values), subject=subject,
        )
        self.remember(Notification, note, at, read or at)
        return note

    def note_for_order(self, order):
        """Return the 'order filled' notification of order."""
        user = self.user_of_trader[self.trader_of_account[order.account_id]]
        title = f"Order filled: {order.side} {order.quantity.normalize()} {order.instrument.symbol}"
        at = order.submitted_at + timedelta(seconds=90)
        return self.new_note(user, "order_filled", title, self.fake["en_US"].sentence(), order, at)

    def note_for_alert(self, alert):
        """Return the notification sent when alert triggered."""
        title = f"{alert.instrument.symbol} is {alert.condition} {alert.threshold.normalize()}"
        user = self.user_of_trader[alert.trader_id]
        return self.new_note(user, "price_alert", title, self.fake["en_US"].sentence(), alert, alert.triggered_at)

    def note_for_account(self, account):
        """Return a margin call or statement notification about account."""
        kind = "margin_call" if account.kind == Account.Kind.MARGIN else "statement"
        title = f"{kind.replace('_', ' ').capitalize()} for account {account.number}"
        user = self.user_of_trader[account.trader_id]
        return self.new_note(user, kind, title, self.fake["en_US"].paragraph(), account, self.days_ago(1, 90))

    def note_security(self, trader):
        """Return a 'new sign-in' notification that is about no object."""
        fake = self.fake["en_US"]
        body = f"New sign-in from {fake.city()} ({fake.ipv4_public()}) using {fake.user_agent()}"
        title = "New sign-in to your account"
        return self.new_note(trader.user_id, "security", title, body, None, self.days_ago(0, 120))

    def seed_admin_log(self):
        """Create ~40 admin log entries by the staff on real accounts, orders, instruments and traders."""
        targets = [
            (a, "Status") for a in self.rng.sample(self.accounts, 12)
        ] + [(o, "Status") for o in self.rng.sample(self.orders, 12)] + [
            (i, "Is active") for i in self.rng.sample(self.instruments, 8)
        ] + [(t, "Kyc verified") for t in self.rng.sample(self.traders, 10)]
        self.insert(LogEntry, [self.new_log_entry(obj, field) for obj, field in targets])

    def new_log_entry(self, obj, field):
        """Return an unsaved admin LogEntry recording a change (or the creation) of obj."""
        # LogEntryManager.log_action() is deprecated from Django 5.1, so build the row directly.
        content_type = ContentType.objects.db_manager(self.db).get_for_model(obj, for_concrete_model=False)
        added = self.rng.random() < 0.2
        return LogEntry(
            user=self.rng.choice(self.staff), content_type=content_type, object_id=str(obj.pk),
            object_repr=str(obj)[:200], action_flag=ADDITION if added else CHANGE,
            change_message=json.dumps([{"added": {}}] if added else [{"changed": {"fields": [field]}}]),
            action_time=self.days_ago(0, 200),
        )

    def backdate(self):
        """Write the remembered past created_at/updated_at values over the save-time stamps."""
        connection = connections[self.db]
        quote = connection.ops.quote_name
        for model, rows in self.history.items():
            names = ["created_at"] + (["updated_at"] if rows[0][2] is not None else [])
            fields = [model._meta.get_field(name) for name in names]
            owner = fields[0].model._meta  # an Option's stamps live in its parent Instrument's table
            sql = (f"UPDATE {quote(owner.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "
                   f"WHERE {quote(owner.pk.column)} = %s")
            params = [
                [field.get_db_prep_save(value, connection) for field, value in zip(fields, stamps)] + [obj.pk]
                for obj, *stamps in rows
            ]
            # One statement executed per row, values prepared by the fields themselves: bulk_update()
            # builds a CASE expression per row and took half of the seed's time. No save() runs,
            # so auto_now does not overwrite the values again.
            with connection.cursor() as cursor:
                cursor.executemany(sql, params)

    def counts(self):
        """Return {model label: row count} of everything seeded."""
        models = [User, Group, Trader, Exchange, Instrument, Option, PriceBar, Account, Order, Trade,
                  Portfolio, Position, Watchlist, Watchlist.instruments.through, PriceAlert, Notification, LogEntry]
        return {m._meta.label: m.objects.using(self.db).count() for m in models}
