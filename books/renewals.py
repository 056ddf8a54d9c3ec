"""A term's renewal: the next term bills the plan's newest version, pinned on the subscription row
(a price change never reaches a term already running); a retired plan has no next term."""

from __future__ import annotations

from sqlmodel import Session, select

from foundation.contracts import RenewalAsk, RenewalTerms
from models.plans import HealthPlan, terms_of
from models.subscriptions import Subscription


def renewal_terms(session: Session, ask: RenewalAsk) -> RenewalTerms:
    """The next term's terms, its version pinned on the subscription row (unless the plan is retired)."""
    sub = session.exec(select(Subscription).where(Subscription.id == ask.subscription_id).with_for_update()).one()
    plan = session.get(HealthPlan, ask.plan_id)
    if plan is None:
        raise LookupError(f"unknown plan {ask.plan_id}")
    if plan.retired_at is not None:
        return RenewalTerms(plan=terms_of(plan), version=sub.plan_version, retired=True)
    sub.plan_version = plan.version
    session.add(sub)
    return RenewalTerms(plan=terms_of(plan), version=plan.version)
