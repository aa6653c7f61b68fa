"""A custom field type with its own Python value and its own stored representation."""

import json
import uuid
from decimal import Decimal

from django.db import models


class Money:
    """Python-side value: amount + currency.  Stored as ``"<cents>|<CUR>"``, e.g. ``"1234|EUR"``."""

    __slots__ = ("amount", "currency")

    def __init__(self, amount, currency):
        self.amount = Decimal(amount)
        self.currency = currency

    def __eq__(self, other):
        return isinstance(other, Money) and (self.amount, self.currency) == (other.amount, other.currency)

    def __hash__(self):
        return hash((self.amount, self.currency))

    def __repr__(self):
        return f"Money({self.amount!s}, {self.currency!r})"

    def to_db(self):
        cents = int((self.amount * 100).to_integral_value())
        return f"{cents}|{self.currency}"

    @classmethod
    def parse(cls, text):
        cents, currency = text.split("|")
        return cls(Decimal(cents) / 100, currency)


class MoneyField(models.CharField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 32)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return Money.parse(value)

    def to_python(self, value):
        if value is None or isinstance(value, Money):
            return value
        return Money.parse(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, Money):
            return value.to_db()
        # Already the stored representation.
        Money.parse(value)
        return value


class BlockStreamField(models.Field):
    """Like Wagtail's StreamField: stored as JSON (internal type "JSONField") without subclassing
    JSONField, and reading a value gives every block stored without an "id" a fresh random one, as
    Wagtail's StreamValue does. A copy that goes through this Python layer changes the document."""

    def get_internal_type(self):
        return "JSONField"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        blocks = json.loads(value) if isinstance(value, str) else value
        return [dict(block, id=block.get("id") or str(uuid.uuid4())) for block in blocks]

    def get_prep_value(self, value):
        return None if value is None else json.dumps(value)
