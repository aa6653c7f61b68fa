"""Custom field types with their own Python values and their own stored representations."""

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from decimal import Decimal

from django.conf import settings
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


class WrappedId:
    """An id as some apps hand it out (a hashid, a typed id): not an int, and not taken back as one."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, WrappedId) and self.value == other.value

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        return f"WrappedId({self.value!r})"


class WrappedAutoField(models.BigAutoField):
    """Like django-hashid-field's HashidAutoField: a read gives a WrappedId, which get_prep_value()
    refuses (it has no __int__), so the field cannot take back what it read. Plain ints are fine."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else WrappedId(value)


_SEAL_PREFIX = "sealed:"


def _keystream(key, nonce, length):
    blocks = (hashlib.sha256(key + nonce + n.to_bytes(4, "big")).digest() for n in range(length // 32 + 1))
    return b"".join(blocks)[:length]


def seal(text, key):
    """Encrypt text under key with a fresh nonce (a toy cipher with the shape of Fernet's output)."""
    nonce = secrets.token_bytes(12)
    plain = text.encode()
    cipher = bytes(a ^ b for a, b in zip(plain, _keystream(key, nonce, len(plain))))
    tag = hmac.new(key, nonce + cipher, hashlib.sha256).digest()[:16]
    return _SEAL_PREFIX + base64.b64encode(nonce + tag + cipher).decode()


def unseal(stored, key):
    """Decrypt what seal() made; raise ValueError for another key or a damaged text."""
    if not stored.startswith(_SEAL_PREFIX):
        raise ValueError(f"not a sealed text: {stored[:20]!r}")
    raw = base64.b64decode(stored[len(_SEAL_PREFIX):])
    nonce, tag, cipher = raw[:12], raw[12:28], raw[28:]
    if not hmac.compare_digest(tag, hmac.new(key, nonce + cipher, hashlib.sha256).digest()[:16]):
        raise ValueError("cannot unseal: another key, or a damaged text")
    return bytes(a ^ b for a, b in zip(cipher, _keystream(key, nonce, len(cipher)))).decode()


def seal_key():
    return settings.COPYTEST_SEAL_KEY.encode()


class SealedTextField(models.TextField):
    """Like an encrypted field (django-fernet-fields, django-encrypted-model-fields): decrypts on
    read and encrypts again, with a new nonce, on write, under settings.COPYTEST_SEAL_KEY. A copy
    through this layer stores another ciphertext, or fails where the key differs."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else unseal(value, seal_key())

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else seal(value, seal_key())
