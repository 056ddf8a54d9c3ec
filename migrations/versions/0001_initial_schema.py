"""initial schema: clinics, plans, subscriptions, invoices, payments, refunds, credit, ledger, outbox

Beyond what autogenerate writes: a CHECK on every cents column (autogenerate drops column-level
CHECKs), and the deferred trigger that refuses an unbalanced ledger transaction at commit.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 18:19:07.441898
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


NONNEGATIVE_CENTS = [
    ("health_plan", "price_cents"),
    ("health_plan", "enrollment_fee_cents"),
    ("plan_service", "retail_cents"),
    ("invoice", "total_cents"),
    ("invoice", "paid_cents"),
    ("service_redemption", "retail_cents"),
    ("invoice_line", "amount_cents"),
    ("payment", "amount_cents"),
    ("payment", "approved_cents"),
    ("payment", "refunded_cents"),
    ("deposit", "amount_cents"),
    ("deposit", "remaining_cents"),
    ("refund", "amount_cents"),
    ("credit_application", "amount_cents"),
]

LEDGER_BALANCE_FUNCTION = """
CREATE FUNCTION ledger_transaction_must_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
BEGIN
    SELECT COALESCE(SUM(amount_cents), 0) INTO total
      FROM ledger_entry WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: entries sum to % cents',
            NEW.transaction_id, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
"""

LEDGER_BALANCE_TRIGGER = """
CREATE CONSTRAINT TRIGGER ledger_entry_balanced
AFTER INSERT OR UPDATE OR DELETE ON ledger_entry
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION ledger_transaction_must_balance();
"""

LEDGER_IS_APPEND_ONLY = """
CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: post a reversing transaction instead'
        USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_transaction
FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
"""


def _add_database_rules() -> None:
    for table, column in NONNEGATIVE_CENTS:
        op.create_check_constraint(f"ck_{table}_{column}_nonneg", table, f"{column} >= 0")
    op.create_check_constraint("ck_plan_service_quantity", "plan_service", "quantity > 0")
    op.create_check_constraint("ck_payment_attempt", "payment", "attempt >= 1")
    op.create_check_constraint("ck_ledger_entry_nonzero", "ledger_entry", "amount_cents <> 0")
    op.execute(LEDGER_BALANCE_FUNCTION)
    op.execute(LEDGER_BALANCE_TRIGGER)
    op.execute(LEDGER_IS_APPEND_ONLY)


def _drop_database_rules() -> None:
    op.execute("DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry")
    op.execute("DROP TRIGGER IF EXISTS ledger_transaction_append_only ON ledger_transaction")
    op.execute("DROP FUNCTION IF EXISTS ledger_is_append_only()")
    op.execute("DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_entry")
    op.execute("DROP FUNCTION IF EXISTS ledger_transaction_must_balance()")


def upgrade() -> None:
    op.create_table(
        "location",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("gravity_oid", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("allow_recurring_gravity", sa.Boolean(), nullable=False),
        sa.Column("charge_time", sa.Time(), server_default="09:00", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_location_gravity_oid"), "location", ["gravity_oid"], unique=False)
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("stream", "seq", name="uq_outbox_stream_seq"),
    )
    op.create_index(op.f("ix_outbox_event_type"), "outbox_event", ["type"], unique=False)
    op.create_table(
        "client",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_client_location_id"), "client", ["location_id"], unique=False)
    op.create_table(
        "health_plan",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("enrollment_fee_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("interval_months", sa.SmallInteger(), nullable=False),
        sa.Column("term_months", sa.SmallInteger(), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("dunning", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("proration_policy", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("cancellation_policy", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("cancellation_policy IN ('charge_redeemed', 'refund_unused', 'none')", name="ck_health_plan_cancellation"),
        sa.CheckConstraint("proration_policy IN ('prorate', 'next_cycle')", name="ck_health_plan_proration"),
        sa.CheckConstraint("interval_months IN (1, 12)", name="ck_health_plan_interval"),
        sa.CheckConstraint("term_months >= interval_months", name="ck_health_plan_term"),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_health_plan_location_id"), "health_plan", ["location_id"], unique=False)
    op.create_table(
        "terminal",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("device_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("location_id", "device_name", name="uq_terminal_device"),
    )
    op.create_index(op.f("ix_terminal_location_id"), "terminal", ["location_id"], unique=False)
    op.create_table(
        "pet",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("species", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_pet_client_id"), "pet", ["client_id"], unique=False)
    op.create_table(
        "plan_service",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("plan_id", sa.Text(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("retail_cents", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["health_plan.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "code", name="uq_plan_service_code"),
    )
    op.create_index(op.f("ix_plan_service_plan_id"), "plan_service", ["plan_id"], unique=False)
    op.create_table(
        "saved_card",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("gravity_ref", sa.Text(), nullable=False),
        sa.Column("masked_number", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("brand", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("exp_month", sa.SmallInteger(), nullable=False),
        sa.Column("exp_year", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "fingerprint", name="uq_saved_card_fingerprint"),
        sa.UniqueConstraint("gravity_ref"),
    )
    op.create_index(op.f("ix_saved_card_client_id"), "saved_card", ["client_id"], unique=False)
    op.create_index(op.f("ix_saved_card_location_id"), "saved_card", ["location_id"], unique=False)
    op.create_index("uq_saved_card_one_default", "saved_card", ["client_id"], unique=True, postgresql_where=sa.text("is_default AND NOT disabled"))
    op.create_table(
        "subscription",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("pet_id", sa.Text(), nullable=False),
        sa.Column("plan_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("card_id", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("anchor_day", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("term_end", sa.Date(), nullable=True),
        sa.Column("cancel_at_term_end", sa.Boolean(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'active', 'past_due', 'suspended', 'paused', 'cancelled', 'ended')", name="ck_subscription_status"),
        sa.CheckConstraint("anchor_day BETWEEN 1 AND 31", name="ck_subscription_anchor_day"),
        sa.ForeignKeyConstraint(["card_id"], ["saved_card.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["pet_id"], ["pet.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["plan_id"], ["health_plan.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_subscription_card_id"), "subscription", ["card_id"], unique=False)
    op.create_index(op.f("ix_subscription_client_id"), "subscription", ["client_id"], unique=False)
    op.create_index(op.f("ix_subscription_location_id"), "subscription", ["location_id"], unique=False)
    op.create_index(op.f("ix_subscription_pet_id"), "subscription", ["pet_id"], unique=False)
    op.create_index(op.f("ix_subscription_plan_id"), "subscription", ["plan_id"], unique=False)
    op.create_index(op.f("ix_subscription_status"), "subscription", ["status"], unique=False)
    op.create_table(
        "invoice",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=True),
        sa.Column("cycle_key", sa.Text(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("(kind = 'subscription') = (cycle_key IS NOT NULL)", name="ck_invoice_cycle_key"),
        sa.CheckConstraint("kind IN ('subscription', 'counter', 'settlement', 'proration')", name="ck_invoice_kind"),
        sa.CheckConstraint("status IN ('open', 'paid', 'void')", name="ck_invoice_status"),
        sa.CheckConstraint("paid_cents <= total_cents", name="ck_invoice_not_overpaid"),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cycle_key"),
        sa.UniqueConstraint("number"),
    )
    op.create_index(op.f("ix_invoice_client_id"), "invoice", ["client_id"], unique=False)
    op.create_index(op.f("ix_invoice_location_id"), "invoice", ["location_id"], unique=False)
    op.create_index(op.f("ix_invoice_status"), "invoice", ["status"], unique=False)
    op.create_index(op.f("ix_invoice_subscription_id"), "invoice", ["subscription_id"], unique=False)
    op.create_table(
        "service_redemption",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=False),
        sa.Column("service_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("retail_cents", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_service_redemption_subscription_id"), "service_redemption", ["subscription_id"], unique=False)
    op.create_table(
        "invoice_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoice.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_invoice_line_invoice_id"), "invoice_line", ["invoice_id"], unique=False)
    op.create_table(
        "payment",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("external_transaction_id", sa.Text(), nullable=False),
        sa.Column("attempt_key", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=True),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=True),
        sa.Column("card_id", sa.Text(), nullable=True),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("approved_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("refunded_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("decline_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("decline_class", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("result_message", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("gravity_unique_trans_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("masked_number", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("brand", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("method IN ('card_on_file', 'terminal', 'credit')", name="ck_payment_method"),
        sa.CheckConstraint("status IN ('pending', 'approved', 'declined', 'unknown', 'voided', 'refunded', 'failed')", name="ck_payment_status"),
        sa.CheckConstraint("approved_cents <= amount_cents", name="ck_payment_approved_le_amount"),
        sa.CheckConstraint("refunded_cents <= approved_cents", name="ck_payment_refunded_le_approved"),
        sa.ForeignKeyConstraint(["card_id"], ["saved_card.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoice.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("attempt_key"),
        sa.UniqueConstraint("external_transaction_id"),
    )
    op.create_index(op.f("ix_payment_card_id"), "payment", ["card_id"], unique=False)
    op.create_index(op.f("ix_payment_client_id"), "payment", ["client_id"], unique=False)
    op.create_index(op.f("ix_payment_invoice_id"), "payment", ["invoice_id"], unique=False)
    op.create_index("ix_payment_invoice_status", "payment", ["invoice_id", "status"], unique=False)
    op.create_index(op.f("ix_payment_location_id"), "payment", ["location_id"], unique=False)
    op.create_index(op.f("ix_payment_subscription_id"), "payment", ["subscription_id"], unique=False)
    op.create_table(
        "deposit",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("remaining_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('held', 'used', 'refunded')", name="ck_deposit_status"),
        sa.CheckConstraint("remaining_cents <= amount_cents", name="ck_deposit_remaining_le_amount"),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["payment_id"], ["payment.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_deposit_client_id"), "deposit", ["client_id"], unique=False)
    op.create_index(op.f("ix_deposit_location_id"), "deposit", ["location_id"], unique=False)
    op.create_index(op.f("ix_deposit_payment_id"), "deposit", ["payment_id"], unique=False)
    op.create_table(
        "ledger_transaction",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("memo", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=True),
        sa.Column("invoice_id", sa.Text(), nullable=True),
        sa.Column("payment_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoice.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["location_id"], ["location.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["payment_id"], ["payment.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index(op.f("ix_ledger_transaction_client_id"), "ledger_transaction", ["client_id"], unique=False)
    op.create_index(op.f("ix_ledger_transaction_invoice_id"), "ledger_transaction", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_ledger_transaction_location_id"), "ledger_transaction", ["location_id"], unique=False)
    op.create_index(op.f("ix_ledger_transaction_payment_id"), "ledger_transaction", ["payment_id"], unique=False)
    op.create_table(
        "refund",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("external_transaction_id", sa.Text(), nullable=False),
        sa.Column("attempt_key", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("gravity_unique_trans_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('void', 'refund')", name="ck_refund_kind"),
        sa.CheckConstraint("status IN ('pending', 'done', 'failed', 'unknown')", name="ck_refund_status"),
        sa.CheckConstraint("amount_cents > 0", name="ck_refund_positive"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoice.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["payment_id"], ["payment.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("attempt_key"),
        sa.UniqueConstraint("external_transaction_id"),
    )
    op.create_index(op.f("ix_refund_invoice_id"), "refund", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_refund_payment_id"), "refund", ["payment_id"], unique=False)
    op.create_table(
        "credit_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deposit_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name="ck_credit_application_positive"),
        sa.ForeignKeyConstraint(["deposit_id"], ["deposit.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoice.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_credit_application_deposit_id"), "credit_application", ["deposit_id"], unique=False)
    op.create_index(op.f("ix_credit_application_invoice_id"), "credit_application", ["invoice_id"], unique=False)
    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["transaction_id"], ["ledger_transaction.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ledger_entry_account"), "ledger_entry", ["account"], unique=False)
    op.create_index(op.f("ix_ledger_entry_transaction_id"), "ledger_entry", ["transaction_id"], unique=False)
    _add_database_rules()


def downgrade() -> None:
    _drop_database_rules()
    op.drop_index(op.f("ix_ledger_entry_transaction_id"), table_name="ledger_entry")
    op.drop_index(op.f("ix_ledger_entry_account"), table_name="ledger_entry")
    op.drop_table("ledger_entry")
    op.drop_index(op.f("ix_credit_application_invoice_id"), table_name="credit_application")
    op.drop_index(op.f("ix_credit_application_deposit_id"), table_name="credit_application")
    op.drop_table("credit_application")
    op.drop_index(op.f("ix_refund_payment_id"), table_name="refund")
    op.drop_index(op.f("ix_refund_invoice_id"), table_name="refund")
    op.drop_table("refund")
    op.drop_index(op.f("ix_ledger_transaction_payment_id"), table_name="ledger_transaction")
    op.drop_index(op.f("ix_ledger_transaction_location_id"), table_name="ledger_transaction")
    op.drop_index(op.f("ix_ledger_transaction_invoice_id"), table_name="ledger_transaction")
    op.drop_index(op.f("ix_ledger_transaction_client_id"), table_name="ledger_transaction")
    op.drop_table("ledger_transaction")
    op.drop_index(op.f("ix_deposit_payment_id"), table_name="deposit")
    op.drop_index(op.f("ix_deposit_location_id"), table_name="deposit")
    op.drop_index(op.f("ix_deposit_client_id"), table_name="deposit")
    op.drop_table("deposit")
    op.drop_index(op.f("ix_payment_subscription_id"), table_name="payment")
    op.drop_index(op.f("ix_payment_location_id"), table_name="payment")
    op.drop_index("ix_payment_invoice_status", table_name="payment")
    op.drop_index(op.f("ix_payment_invoice_id"), table_name="payment")
    op.drop_index(op.f("ix_payment_client_id"), table_name="payment")
    op.drop_index(op.f("ix_payment_card_id"), table_name="payment")
    op.drop_table("payment")
    op.drop_index(op.f("ix_invoice_line_invoice_id"), table_name="invoice_line")
    op.drop_table("invoice_line")
    op.drop_index(op.f("ix_service_redemption_subscription_id"), table_name="service_redemption")
    op.drop_table("service_redemption")
    op.drop_index(op.f("ix_invoice_subscription_id"), table_name="invoice")
    op.drop_index(op.f("ix_invoice_status"), table_name="invoice")
    op.drop_index(op.f("ix_invoice_location_id"), table_name="invoice")
    op.drop_index(op.f("ix_invoice_client_id"), table_name="invoice")
    op.drop_table("invoice")
    op.drop_index(op.f("ix_subscription_status"), table_name="subscription")
    op.drop_index(op.f("ix_subscription_plan_id"), table_name="subscription")
    op.drop_index(op.f("ix_subscription_pet_id"), table_name="subscription")
    op.drop_index(op.f("ix_subscription_location_id"), table_name="subscription")
    op.drop_index(op.f("ix_subscription_client_id"), table_name="subscription")
    op.drop_index(op.f("ix_subscription_card_id"), table_name="subscription")
    op.drop_table("subscription")
    op.drop_index("uq_saved_card_one_default", table_name="saved_card", postgresql_where=sa.text("is_default AND NOT disabled"))
    op.drop_index(op.f("ix_saved_card_location_id"), table_name="saved_card")
    op.drop_index(op.f("ix_saved_card_client_id"), table_name="saved_card")
    op.drop_table("saved_card")
    op.drop_index(op.f("ix_plan_service_plan_id"), table_name="plan_service")
    op.drop_table("plan_service")
    op.drop_index(op.f("ix_pet_client_id"), table_name="pet")
    op.drop_table("pet")
    op.drop_index(op.f("ix_terminal_location_id"), table_name="terminal")
    op.drop_table("terminal")
    op.drop_index(op.f("ix_health_plan_location_id"), table_name="health_plan")
    op.drop_table("health_plan")
    op.drop_index(op.f("ix_client_location_id"), table_name="client")
    op.drop_table("client")
    op.drop_index(op.f("ix_outbox_event_type"), table_name="outbox_event")
    op.drop_table("outbox_event")
    op.drop_index(op.f("ix_location_gravity_oid"), table_name="location")
    op.drop_table("location")
