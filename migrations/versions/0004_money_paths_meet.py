"""money paths meet: facts first (approvals above the request, every reported field), refunds that
draw on client credit, where credit came from, and a location's overpayment policy

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_CENTS = [("payment", "tip_cents"), ("payment", "surcharge_cents"), ("refund", "credit_cents")]


def upgrade() -> None:
    # An approval above the request (a tip or surcharge at the terminal) is a fact the books must take.
    op.drop_constraint("ck_payment_approved_le_amount", "payment", type_="check")
    op.add_column("payment", sa.Column("tip_cents", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("payment", sa.Column("surcharge_cents", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("payment", sa.Column("gateway_facts", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    # When the workflow made the attempt (its clock, simulated in the demo): the card networks'
    # reattempt limits count attempts by this moment.
    op.add_column("payment", sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_payment_card_attempted", "payment", ["card_id", "attempted_at"], unique=False)
    op.add_column("refund", sa.Column("credit_cents", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("refund", sa.Column("deposit_id", sa.Text(), sa.ForeignKey("deposit.id", ondelete="RESTRICT"), nullable=True))
    op.create_index(op.f("ix_refund_deposit_id"), "refund", ["deposit_id"], unique=False)
    op.create_check_constraint("ck_refund_credit_le_amount", "refund", "credit_cents <= amount_cents")
    op.add_column("deposit", sa.Column("source", sa.Text(), server_default="deposit", nullable=False))
    # "returning": credit no invoice needed that is being given back to the card; not spendable.
    op.drop_constraint("ck_deposit_status", "deposit", type_="check")
    op.create_check_constraint("ck_deposit_status", "deposit", "status IN ('held', 'used', 'refunded', 'returning')")
    op.create_check_constraint("ck_deposit_source", "deposit", "source IN ('deposit', 'overpayment', 'proration')")
    op.add_column("location", sa.Column("overpayment_policy", sa.Text(), server_default="give_back", nullable=False))
    op.create_check_constraint("ck_location_overpayment_policy", "location", "overpayment_policy IN ('give_back', 'keep_as_credit')")
    for table, column in NEW_CENTS:
        op.create_check_constraint(f"ck_{table}_{column}_nonneg", table, f"{column} >= 0")
    # Deliveries back off per event and park an event the receiver keeps refusing, so one bad event
    # holds back only its own stream, and only until it is parked.
    op.add_column("outbox_event", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox_event", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_outbox_undelivered", "outbox_event", ["stream", "id"], unique=False, postgresql_where=sa.text("delivered_at IS NULL AND parked_at IS NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_undelivered", table_name="outbox_event")
    op.drop_column("outbox_event", "parked_at")
    op.drop_column("outbox_event", "next_attempt_at")
    for table, column in NEW_CENTS:
        op.drop_constraint(f"ck_{table}_{column}_nonneg", table, type_="check")
    op.drop_constraint("ck_location_overpayment_policy", "location", type_="check")
    op.drop_column("location", "overpayment_policy")
    op.drop_constraint("ck_deposit_source", "deposit", type_="check")
    op.drop_column("deposit", "source")
    op.drop_constraint("ck_deposit_status", "deposit", type_="check")
    op.create_check_constraint("ck_deposit_status", "deposit", "status IN ('held', 'used', 'refunded')")
    op.drop_constraint("ck_refund_credit_le_amount", "refund", type_="check")
    op.drop_index(op.f("ix_refund_deposit_id"), table_name="refund")
    op.drop_column("refund", "deposit_id")
    op.drop_column("refund", "credit_cents")
    op.drop_index("ix_payment_card_attempted", table_name="payment")
    op.drop_column("payment", "attempted_at")
    op.drop_column("payment", "gateway_facts")
    op.drop_column("payment", "surcharge_cents")
    op.drop_column("payment", "tip_cents")
    op.create_check_constraint("ck_payment_approved_le_amount", "payment", "approved_cents <= amount_cents")
