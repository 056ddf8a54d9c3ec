"""Booking what the gateway approved, from its answer as either side of the Temporal boundary
carries it (the client's `TransactionResult`, the workflow's `GatewayResult`)."""

from __future__ import annotations

from sqlmodel import Session
from temporalio.exceptions import ApplicationError

from foundation.contracts import GatewayResult
from gravity.results import Outcome, TransactionResult
from models.billing import Invoice, Payment
from models.invoicing import Booking, record_approved


def approved_cents_of(result: TransactionResult | GatewayResult, payment: Payment) -> int:
    """What the approval took. A full approval that stated no amount took what was asked; a partial
    one that stated none cannot be booked by guessing, so it is an incident for a person."""
    if result.amount_stated:
        return result.approved_cents
    if str(getattr(result.outcome, "value", result.outcome)) == Outcome.PARTIAL.value:
        raise ApplicationError(
            f"Gravity approved part of {payment.external_transaction_id} without saying how much", type="GravityPermanent", non_retryable=True
        )
    return payment.amount_cents


def book_approval(session: Session, payment: Payment, result: TransactionResult | GatewayResult, *, invoice: Invoice | None = None) -> Booking:
    """`record_approved` with every fact the gateway reported (tip, surcharge, the whole answer)."""
    facts = result.facts() if isinstance(result, TransactionResult) else result.facts
    return record_approved(
        session,
        payment,
        invoice=invoice,
        approved_cents=approved_cents_of(result, payment),
        tip_cents=result.tip_cents,
        surcharge_cents=result.surcharge_cents,
        facts=dict(facts) or None,
        unique_trans_id=result.unique_trans_id,
        masked_number=result.masked_account,
        brand=result.card_brand,
        message=result.result_message,
    )
