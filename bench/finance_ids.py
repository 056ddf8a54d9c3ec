"""The engine's derived ids (`foundation.ids`), made without building `uuid.UUID` objects.

The finance seed derives millions of them; `uuid.uuid5` spends most of its time constructing the
object, not hashing. The strings are the same as `foundation.ids` makes (a test pins that), so the
seeded rows carry exactly the ids the engine would have written.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date

from foundation import ids

_ENGINE = ids._NAMESPACE.bytes
_EVENTS = uuid.NAMESPACE_URL.bytes


def _uuid5(namespace: bytes, name: str) -> str:
    digest = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def external_id(attempt_key: str) -> str:
    """`foundation.ids.external_id`."""
    return _uuid5(_ENGINE, attempt_key)


def event_id_for(dedupe_key: str) -> str:
    """`foundation.ids.event_id_for`."""
    return _uuid5(_EVENTS, f"event:{dedupe_key}")


def subscription_id_for(enrollment: str) -> str:
    """`foundation.ids.subscription_id_for`."""
    return "sub_" + external_id(enrollment).replace("-", "")[:20]


def invoice_id_for_cycle(subscription_id: str, period_start: date) -> str:
    """`foundation.ids.invoice_id_for_cycle`."""
    return "inv_" + external_id(ids.cycle_key(subscription_id, period_start)).replace("-", "")[:24]


def row_id(prefix: str, external_transaction_id: str) -> str:
    """`foundation.ids.payment_id_for` and its kin: a prefix and the first 24 hex digits."""
    return prefix + external_transaction_id.replace("-", "")[:24]
