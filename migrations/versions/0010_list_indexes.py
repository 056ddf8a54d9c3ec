"""list indexes: every list's filter then its sort (created_at or name, then id), and the timeline's lookups

Each list pages by keyset (`operations/pages.py`): an index on (filter column, sort key, id) finds a
page by one index range whatever its depth. One line per index:

- ix_subscription_created: the unfiltered subscription list, newest first.
- ix_subscription_location_created: subscriptions of a location (and of a caller's reach).
- ix_subscription_status_created: subscriptions by status, in dunning (past_due), suspended.
- ix_subscription_client_created: a client's subscriptions.
- ix_subscription_plan_created: a plan's subscriptions.
- ix_subscription_next_due: subscriptions due in a window of days (due_after, due_before).
- ix_client_name: the client directory by name.
- ix_client_location_name: a location's clients by name.
- ix_client_name_trgm, ix_client_email_trgm: search for a piece of a name or email (pg_trgm GIN, where the server has pg_trgm).
- ix_invoice_created: the unfiltered invoice list (and days of issue).
- ix_invoice_location_created: a location's invoices.
- ix_invoice_client_created: a client's invoices.
- ix_invoice_status_created: invoices by status.
- ix_payment_created: the unfiltered payment list.
- ix_payment_location_created: a location's payments.
- ix_payment_client_created: a client's payments.
- ix_payment_status_created: payments by status (a rare one, such as unknown, without a long walk).
- ix_refund_created: the refund list (location and client come from the payment's primary key).
- ix_deposit_created: the unfiltered deposit list.
- ix_deposit_location_created: a location's deposits.
- ix_deposit_client_created: a client's deposits.
- ix_outbox_payload_invoice, ix_outbox_payload_payment: the events about an invoice or payment (timeline, audit trail).
- ix_outbox_incident_marks: open incidents (an incident event with no recovery or end after it on its stream).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMPOSITE = (
    ("ix_subscription_created", "subscription", "created_at, id"),
    ("ix_subscription_location_created", "subscription", "location_id, created_at, id"),
    ("ix_subscription_status_created", "subscription", "status, created_at, id"),
    ("ix_subscription_client_created", "subscription", "client_id, created_at, id"),
    ("ix_subscription_plan_created", "subscription", "plan_id, created_at, id"),
    ("ix_subscription_next_due", "subscription", "next_due_at"),
    ("ix_client_name", "client", "name, id"),
    ("ix_client_location_name", "client", "location_id, name, id"),
    ("ix_invoice_created", "invoice", "created_at, id"),
    ("ix_invoice_location_created", "invoice", "location_id, created_at, id"),
    ("ix_invoice_client_created", "invoice", "client_id, created_at, id"),
    ("ix_invoice_status_created", "invoice", "status, created_at, id"),
    ("ix_payment_created", "payment", "created_at, id"),
    ("ix_payment_location_created", "payment", "location_id, created_at, id"),
    ("ix_payment_client_created", "payment", "client_id, created_at, id"),
    ("ix_payment_status_created", "payment", "status, created_at, id"),
    ("ix_refund_created", "refund", "created_at, id"),
    ("ix_deposit_created", "deposit", "created_at, id"),
    ("ix_deposit_location_created", "deposit", "location_id, created_at, id"),
    ("ix_deposit_client_created", "deposit", "client_id, created_at, id"),
    ("ix_outbox_payload_invoice", "outbox_event", "(payload ->> 'invoice_id')"),
    ("ix_outbox_payload_payment", "outbox_event", "(payload ->> 'payment_id')"),
)
# The incident event and the status decisions that end it (operations/listing.py names them).
INCIDENT_MARKS = "'payment.incident', 'subscription.recovered', 'subscription.reactivated', 'subscription.cancelled', 'subscription.ended'"
TRIGRAM = (
    ("ix_client_name_trgm", "lower(name)"),
    ("ix_client_email_trgm", "lower(email)"),
)


def upgrade() -> None:
    for name, table, columns in COMPOSITE:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_outbox_incident_marks ON outbox_event (stream, id) WHERE type IN ({INCIDENT_MARKS})")
    # pg_trgm ships with PostgreSQL's contrib and is a trusted extension; a server without it (a
    # bare embedded build) keeps substring search correct, only unindexed.
    trigram = "".join(f" CREATE INDEX IF NOT EXISTS {name} ON client USING gin ({expression} gin_trgm_ops);" for name, expression in TRIGRAM)
    op.execute(
        "DO $$ BEGIN"
        " IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN"
        " CREATE EXTENSION IF NOT EXISTS pg_trgm;"
        f"{trigram}"
        " END IF; END $$"
    )


def downgrade() -> None:
    for name, _ in TRIGRAM:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP INDEX IF EXISTS ix_outbox_incident_marks")
    for name, _, _ in reversed(COMPOSITE):
        op.execute(f"DROP INDEX IF EXISTS {name}")
