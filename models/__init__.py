"""The system of record: SQLModel tables over PostgreSQL, and the ledger.

Importing this package registers every table on `SQLModel.metadata` (Alembic reads it from here).
Never import it from a workflow module: workflows reach the database only through activities.
"""

from models.access import ApiToken, AuditEntry
from models.billing import CreditApplication, Deposit, Invoice, InvoiceLine, Payment, Refund
from models.clinic import Client, Location, Pet, SavedCard, Terminal
from models.idempotency import ApiIdempotency
from models.ledger import Account, LedgerEntry, LedgerTransaction
from models.outbox import OutboxEvent, OutboxStream
from models.plans import HealthPlan, PlanService
from models.subscriptions import ServiceRedemption, Subscription

__all__ = [
    "Account",
    "ApiIdempotency",
    "ApiToken",
    "AuditEntry",
    "Client",
    "CreditApplication",
    "Deposit",
    "HealthPlan",
    "Invoice",
    "InvoiceLine",
    "LedgerEntry",
    "LedgerTransaction",
    "Location",
    "OutboxEvent",
    "OutboxStream",
    "Payment",
    "Pet",
    "PlanService",
    "Refund",
    "SavedCard",
    "ServiceRedemption",
    "Subscription",
    "Terminal",
]
