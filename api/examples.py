"""Examples for the OpenAPI schema: one small vet clinic's books, shaped like the real rows.

Why one module: the answers nest each other (a page holds items, an enrollment a subscription), so
each example is written once here and composed, and every id, amount and day agrees across routes.
Money is integer cents; ids have the shapes `foundation.ids` gives them. No example holds a run of
13 to 19 digits (`foundation.card_numbers` would refuse it as a card number). Request examples are
also sent by the schema fuzz test's explicit phase, so each must be a request the API accepts as
well formed. `tests/api/test_openapi_examples.py` checks every example against its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LOCATION_ID = "loc_main"
CLIENT_ID = "cli_7c2e9a4b1f3d8e6a0b5c9d2f"
PET_ID = "pet_4b8e2d6f0a9c3e7b1d5f8a2c"
CARD_ID = "card_9d3f7b1e5a2c8f4d6b0e3a7c"
PLAN_ID = "plan_wellness_dog"
SUBSCRIPTION_ID = "sub_e3a7c1f9b5d2e8a4c6f0"
INVOICE_ID = "inv_5a8c2e6b9d3f7a1c4e8b2d6f"
PAYMENT_ID = "pay_8f2b6d0a4c7e1b5f9a3d7c2e"
REFUND_ID = "ref_2d6f0b4e8a1c5f9d3b7e0a4c"
REFUND_REQUEST_ID = "rfq_6b0d4f8a2c5e9b3d7f1a5c8e"
DEPOSIT_ID = "dep_1e5a9c3f7b0d4e8a2c6f9b3d"
EXTERNAL_ID = "b7e2c9a4-3f1d-5e8a-9c6b-2d4f8a1e7c3b"
SUBSCRIPTION_WORKFLOW = f"subscription:{SUBSCRIPTION_ID}"
CURSOR = "eyJrIjoiMjAyNi0xMi0wMVQxNTowMDowMCswMDowMCIsImlkIjoic3ViXyJ9"
MASKED = "************1111"
DUNNING = {"retry_offsets_days": [3, 7, 11, 15], "on_exhausted": "suspend"}


#: Each model's examples as written, by module and name: what `restore_examples` puts back.
_BY_MODEL: dict[str, list[Any]] = {}


def examples(*values: Any) -> Callable[[dict[str, Any], type[Any]], None]:
    """The `json_schema_extra` of a model: its examples, as OpenAPI 3.1 lists them (and remembered
    under the model's name for `restore_examples`)."""

    def add(schema: dict[str, Any], model: type[Any]) -> None:
        schema["examples"] = list(values)
        _BY_MODEL[f"{model.__module__}.{model.__qualname__}"] = list(values)

    return add


def restore_examples(spec: dict[str, Any]) -> None:
    """Put each component's examples back as written: FastAPI's `get_openapi` encodes the schema
    with exclude_none, which also drops every null of an example (a required `retired_at: null`
    would vanish and the example would no longer match its schema)."""
    by_name: dict[str, list[str]] = {}
    for path in _BY_MODEL:
        by_name.setdefault(path.rsplit(".", 1)[1], []).append(path)
    for key, schema in spec.get("components", {}).get("schemas", {}).items():
        if "examples" not in schema:
            continue
        qualified = key.replace("__", ".")  # FastAPI names a component module__path__Model when two models share a name
        paths = [qualified] if qualified in _BY_MODEL else by_name.get(key, [])
        if len(paths) == 1:
            schema["examples"] = _BY_MODEL[paths[0]]


def page(item: dict[str, Any]) -> dict[str, Any]:
    """A list's page of one item, with a cursor to the next page."""
    return {"items": [item], "next_cursor": CURSOR}


# ----------------------------------------------------------------- the clinic
LOCATION_IN = {
    "name": "Main Street Animal Hospital",
    "timezone": "America/Chicago",
    "gravity_oid": "1010100234",
    "allow_recurring_gravity": True,
    "charge_time": "09:00",
    "max_invoice_cents": 500000,
    "max_invoice_lines": 50,
}
LOCATION = {"id": LOCATION_ID, **LOCATION_IN}
LOCATION_SETTINGS_IN = {"charge_time": "08:30", "max_invoice_cents": 750000}
LOCATION_SETTINGS = {**LOCATION, "charge_time": "08:30", "max_invoice_cents": 750000, "subscriptions_notified": 0}
TERMINAL_IN = {"device_name": "FrontDesk-A920", "label": "Front desk, left"}
TERMINAL = {"id": "term_3c7e1a5d9b2f6c0e4a8d1b5f", "location_id": LOCATION_ID, **TERMINAL_IN}
CLIENT_IN = {"location_id": LOCATION_ID, "name": "Dana Whitfield", "email": "dana.whitfield@example.com"}
CLIENT = {"id": CLIENT_ID, **CLIENT_IN}
PET_IN = {"name": "Biscuit", "species": "dog"}
PET = {"id": PET_ID, "client_id": CLIENT_ID, **PET_IN}
HEALTH = {"status": "ok", "database": "ok"}

# ----------------------------------------------------------------- cards
CARD_IN = {
    "gravity_ref": "8c1e4a7d-2b5f-4e9c-a3d6-0f7b2e5a9c1d",
    "external_transaction_id": "d4a8e2c6-1f5b-4a9d-b3e7-6c0f2a8d4e1b",
    "masked_number": MASKED,
    "brand": "VS",
    "exp_month": 8,
    "exp_year": 2028,
    "is_default": True,
}
CARD = {
    "id": CARD_ID,
    "client_id": CLIENT_ID,
    "masked_number": MASKED,
    "brand": "VS",
    "exp_month": 8,
    "exp_year": 2028,
    "is_default": True,
    "disabled": False,
}
CARD_LIST = {"visible": True, "reason": None, "cards": [CARD]}
EXPIRING_CARDS = {"cards": [{"card": {**CARD, "exp_month": 12, "exp_year": 2026}, "subscription_id": SUBSCRIPTION_ID, "next_due_date": "2027-01-01"}]}

# ----------------------------------------------------------------- plans
SERVICES = [
    {"code": "EXAM", "name": "Wellness exam", "retail_cents": 6500, "quantity": 2},
    {"code": "DHPP", "name": "DHPP vaccine", "retail_cents": 3800, "quantity": 1},
]
TERMS = {
    "name": "Canine Wellness",
    "price_cents": 4500,
    "enrollment_fee_cents": 2500,
    "interval_months": 1,
    "term_months": 12,
    "auto_renew": True,
    "dunning": DUNNING,
    "proration_policy": "prorate",
    "cancellation_policy": "charge_redeemed",
}
PLAN_IN = {"location_id": LOCATION_ID, **TERMS, "services": SERVICES}
PLAN = {"id": PLAN_ID, "location_id": LOCATION_ID, **TERMS, "active": True, "version": 2, "retired_at": None, "services": SERVICES}
PLAN_TERMS_IN = {"price_cents": 4900}
RETIRED = {"plan": {**PLAN, "active": False, "retired_at": "2026-12-01T15:00:00Z"}, "live_subscriptions": 37}
PLAN_VERSIONS = {
    "plan_id": PLAN_ID,
    "current_version": 2,
    "retired_at": None,
    "versions": [
        {"version": 1, "effective_from": "2026-01-05T16:20:00Z", "effective_until": "2026-11-20T18:05:00Z", **TERMS, "subscriptions": 12},
        {"version": 2, "effective_from": "2026-11-20T18:05:00Z", "effective_until": None, **TERMS, "price_cents": 4900, "subscriptions": 25},
    ],
}

# ----------------------------------------------------------------- subscriptions
ENROLL_IN = {"client_id": CLIENT_ID, "pet_id": PET_ID, "plan_id": PLAN_ID, "location_id": LOCATION_ID, "start_date": "2026-12-01", "card_id": CARD_ID}
SUBSCRIPTION = {
    "id": SUBSCRIPTION_ID,
    "client_id": CLIENT_ID,
    "pet_id": PET_ID,
    "plan_id": PLAN_ID,
    "plan_version": 2,
    "location_id": LOCATION_ID,
    "card_id": CARD_ID,
    "start_date": "2026-12-01",
    "anchor_day": 1,
    "status": "active",
    "term_end": "2027-11-30",
    "cancel_at_term_end": False,
    "next_due_at": "2027-01-01T15:00:00Z",
    "cancelled_at": None,
}
SUBSCRIPTION_ITEM = {**SUBSCRIPTION, "created_at": "2026-12-01T15:00:02Z"}
ENROLLMENT = {"subscription_id": SUBSCRIPTION_ID, "workflow_id": SUBSCRIPTION_WORKFLOW, "created": True, "subscription": SUBSCRIPTION}
SUBSCRIPTION_VIEW = {
    "subscription_id": SUBSCRIPTION_ID,
    "status": "active",
    "plan_id": PLAN_ID,
    "card_id": CARD_ID,
    "next_cycle": 1,
    "next_due_at": "2027-01-01T15:00:00Z",
    "current_period_start": "2026-12-01",
    "current_period_end": "2026-12-31",
    "balance_cents": 0,
    "open_invoices": [],
    "history": [{"cycle_index": 0, "period_start": "2026-12-01", "invoice_id": INVOICE_ID, "outcome": "paid", "detail": "approved 7000"}],
    "cancel_at_term_end": False,
}
SUBSCRIPTION_OUT = {"subscription": SUBSCRIPTION, "workflow": SUBSCRIPTION_VIEW}
CANCEL_IN = {"mode": "term_end", "reason": "Moving out of state"}
CARD_CHANGE_IN = {"card_id": CARD_ID}
PLAN_CHANGE_IN = {"plan_id": "plan_wellness_dog_plus"}
REDEMPTION_IN = {"service_code": "EXAM"}
REDEMPTION = {
    "id": "red_0a4c8e2b6d9f3a7c1e5b8d2f",
    "subscription_id": SUBSCRIPTION_ID,
    "service_code": "EXAM",
    "retail_cents": 6500,
    "redeemed_at": "2026-12-14T17:42:00Z",
}
COMMAND = {"accepted": True, "status": "active", "message": "cancels at the end of the term on 2027-11-30"}

# ----------------------------------------------------------------- invoices and payments
INVOICE_SUMMARY = {
    "id": INVOICE_ID,
    "number": f"S-{SUBSCRIPTION_ID}-001",
    "kind": "subscription",
    "client_id": CLIENT_ID,
    "location_id": LOCATION_ID,
    "subscription_id": SUBSCRIPTION_ID,
    "period_start": "2026-12-01",
    "period_end": "2026-12-31",
    "status": "paid",
    "total_cents": 7000,
    "paid_cents": 7000,
    "due_at": "2026-12-01T15:00:00Z",
    "created_at": "2026-12-01T15:00:02Z",
}
PAYMENT = {
    "id": PAYMENT_ID,
    "method": "card_on_file",
    "purpose": "invoice",
    "attempt": 1,
    "status": "approved",
    "amount_cents": 7000,
    "approved_cents": 7000,
    "refunded_cents": 0,
    "decline_reason": None,
    "decline_class": None,
    "masked_number": MASKED,
    "brand": "VS",
    "created_at": "2026-12-01T15:00:03Z",
}
INVOICE = {
    **INVOICE_SUMMARY,
    "balance_cents": 0,
    "lines": [
        {"kind": "enrollment_fee", "description": "Enrollment fee", "amount_cents": 2500},
        {"kind": "plan_fee", "description": "Canine Wellness, December 2026", "amount_cents": 4500},
    ],
    "payments": [PAYMENT],
}
COUNTER_INVOICE_IN = {
    "client_id": CLIENT_ID,
    "location_id": LOCATION_ID,
    "lines": [
        {"description": "Exam, sick visit", "amount_cents": 8500, "kind": "service"},
        {"description": "Carprofen 75 mg, 30 tablets", "amount_cents": 4200, "kind": "product"},
    ],
}
COUNTER_INVOICE = {
    **INVOICE_SUMMARY,
    "id": "inv_9b3d7f1a5c8e2b6d0f4a8c3e",
    "number": "C-9b3d7f1a5c8e",
    "kind": "counter",
    "subscription_id": None,
    "period_start": None,
    "period_end": None,
    "status": "open",
    "total_cents": 12700,
    "paid_cents": 0,
    "due_at": None,
}
TERMINAL_PAYMENT_IN = {
    "location_id": LOCATION_ID,
    "device_name": "FrontDesk-A920",
    "invoice_id": COUNTER_INVOICE["id"],
    "save_card": True,
    "make_default": False,
}
TERMINAL_PAYMENT_ID = "pay_c1e5a9d3f7b2c6e0a4d8f2b6"
TERMINAL_STARTED = {
    "payment_id": TERMINAL_PAYMENT_ID,
    "workflow_id": f"terminal-payment:{TERMINAL_PAYMENT_ID}",
    "status_url": f"/terminal-payments/{TERMINAL_PAYMENT_ID}",
}
CANCELLATION_STARTED = {"payment_id": None, "workflow_id": f"invoice-cancellation:{COUNTER_INVOICE['id']}", "status_url": None}
TERMINAL_STATUS = {
    "payment_id": TERMINAL_PAYMENT_ID,
    "payment_status": "approved",
    "workflow": {
        "payment_id": TERMINAL_PAYMENT_ID,
        "state": "approved",
        "message": "approved at the counter",
        "outcome": {
            "payment_id": TERMINAL_PAYMENT_ID,
            "status": "approved",
            "approved_cents": 12700,
            "balance_cents": 0,
            "invoice_id": COUNTER_INVOICE["id"],
            "invoice_status": "paid",
            "subscription_id": None,
            "card_id": "card_5f9b3d7a1c4e8b2f6d0a3c7e",
            "deposit_id": None,
            "message": "approved",
        },
    },
}
TERMINAL_CANCELLED = {"accepted": True, "status": "cancelling", "message": "the terminal was asked to stop waiting for the card"}
DEPOSIT_IN = {"client_id": CLIENT_ID, "amount_cents": 6000, "card_id": CARD_ID}
DEPOSIT_PAYMENT_ID = "pay_e4a8c2f6b0d3e7a1c5f9b2d6"
DEPOSIT_OUT = {
    "payment_id": DEPOSIT_PAYMENT_ID,
    "status": "approved",
    "approved_cents": 6000,
    "deposit_id": DEPOSIT_ID,
    "message": "approved",
    "status_url": None,
}
DEPOSIT_RUNNING = {
    "payment_id": DEPOSIT_PAYMENT_ID,
    "status": "running",
    "approved_cents": 0,
    "deposit_id": None,
    "message": "still charging the card; poll status_url",
    "status_url": f"/card-deposits/{DEPOSIT_PAYMENT_ID}",
}
REFUND_IN = {"amount_cents": 2500, "reason": "Enrollment fee waived by the practice manager"}
REFUND_OUT = {
    "refund_request_id": REFUND_REQUEST_ID,
    "status": "done",
    "payment_id": PAYMENT_ID,
    "kind": "refund",
    "amount_cents": 2500,
    "refund_id": REFUND_ID,
    "message": "refunded",
    "status_url": f"/refunds/{REFUND_REQUEST_ID}",
}
REFUND_RUNNING = {
    "refund_request_id": REFUND_REQUEST_ID,
    "status": "running",
    "payment_id": None,
    "kind": None,
    "amount_cents": 0,
    "refund_id": None,
    "message": "still giving the money back; poll status_url",
    "status_url": f"/refunds/{REFUND_REQUEST_ID}",
}
INVOICE_CANCEL_IN = {"reason": "Charged twice at the front desk"}
POSTBACK_IN = {
    "externalTransactionId": EXTERNAL_ID,
    "uniqueTransId": "f3b7d1a5-c9e2-4b6f-8a0d-4e8c2a6f0b9d",
    "transactionType": "CreditSale",
    "resultStatus": "true",
    "resultMessage": "Approved",
    "amount": "70.00",
    "amountProcessed": "70.00",
    "maskedAccount": MASKED,
    "accountCardType": "VS",
}
POSTBACK_RECEIPT = {"status": "routed", "external_transaction_id": EXTERNAL_ID}
EVENTS = {
    "events": [
        {
            "id": 4812,
            "event_id": "c8e2a6d0-4b9f-5c3e-a7d1-5f9b3e7a1c4d",
            "type": "invoice.paid",
            "stream": f"subscription:{SUBSCRIPTION_ID}",
            "seq": 3,
            "payload": {"invoice_id": INVOICE_ID, "subscription_id": SUBSCRIPTION_ID, "amount_cents": 7000},
            "created_at": "2026-12-01T15:00:03Z",
        }
    ],
    "next_cursor": 4812,
    "has_more": False,
}

# ----------------------------------------------------------------- lists
PAYMENT_ITEM = {**PAYMENT, "invoice_id": INVOICE_ID, "client_id": CLIENT_ID, "location_id": LOCATION_ID, "subscription_id": SUBSCRIPTION_ID}
REFUND_ITEM = {
    "id": REFUND_ID,
    "payment_id": PAYMENT_ID,
    "invoice_id": INVOICE_ID,
    "kind": "refund",
    "status": "done",
    "amount_cents": 2500,
    "reason": "Enrollment fee waived by the practice manager",
    "created_at": "2026-12-03T19:12:40Z",
}
DEPOSIT_ITEM = {
    "id": DEPOSIT_ID,
    "client_id": CLIENT_ID,
    "location_id": LOCATION_ID,
    "payment_id": DEPOSIT_PAYMENT_ID,
    "amount_cents": 6000,
    "remaining_cents": 6000,
    "status": "held",
    "source": "deposit",
    "created_at": "2026-12-02T16:31:05Z",
}
_NO_STEP = {
    "invoice_id": None,
    "payment_id": None,
    "attempt": None,
    "amount_cents": None,
    "status": None,
    "reason": None,
    "event_type": None,
    "reference": None,
    "period_start": None,
    "period_end": None,
    "due_at": None,
}
TIMELINE = {
    "subscription_id": SUBSCRIPTION_ID,
    "workflow_id": SUBSCRIPTION_WORKFLOW,
    "run_ids_note": "the database records no run ids; `billing history subscription` reads them from Temporal",
    "items": [
        {
            **_NO_STEP,
            "at": "2026-12-01T15:00:02Z",
            "kind": "invoice",
            "summary": "invoice S-001 for 7000 cents",
            "workflow_id": SUBSCRIPTION_WORKFLOW,
            "run_id": None,
            "invoice_id": INVOICE_ID,
            "amount_cents": 7000,
            "status": "paid",
            "period_start": "2026-12-01",
            "period_end": "2026-12-31",
            "due_at": "2026-12-01T15:00:00Z",
        },
        {
            **_NO_STEP,
            "at": "2026-12-01T15:00:03Z",
            "kind": "charge_attempt",
            "summary": "attempt 1: approved 7000 cents",
            "workflow_id": SUBSCRIPTION_WORKFLOW,
            "run_id": None,
            "invoice_id": INVOICE_ID,
            "payment_id": PAYMENT_ID,
            "attempt": 1,
            "amount_cents": 7000,
            "status": "approved",
            "reference": EXTERNAL_ID,
        },
    ],
}

# ----------------------------------------------------------------- finance
_TALLY_ZERO = {"count": 0, "cents": 0}


def _figures(location_id: str, name: str) -> dict[str, Any]:
    return {
        "location_id": location_id,
        "name": name,
        "timezone": "America/Chicago",
        "billed": {"count": 412, "cents": 2043500},
        "voided": {"count": 3, "cents": 13500},
        "collected": {"count": 398, "cents": 1968000},
        "collected_by_method": {"card_on_file": {"count": 371, "cents": 1731000}, "terminal": {"count": 27, "cents": 237000}},
        "credit_applied": {"count": 4, "cents": 18000},
        "declined": {"count": 21, "cents": 94500},
        "declined_by_reason": {"insufficient_funds": {"count": 14, "cents": 63000}, "expired_card": {"count": 7, "cents": 31500}},
        "recovered": {"count": 11, "cents": 49500},
        "recovered_by_attempt": {"2": {"count": 8, "cents": 36000}, "3": {"count": 3, "cents": 13500}},
        "refunded": {"count": 5, "cents": 21000},
        "refunded_by_kind": {"refund": {"count": 4, "cents": 16500}, "void": {"count": 1, "cents": 4500}},
        "outstanding": {"count": 9, "cents": 40500},
        "deposits_taken": {"count": 6, "cents": 36000},
        "deposits_held": {"count": 4, "cents": 24000},
        "deferred": {"count": 18, "cents": 972000},
        "recognized": {"count": 52, "cents": 81000},
        "deferred_held": {"count": 47, "cents": 2511000},
    }


REPORT = {
    "from": "2026-11-01",
    "to": "2026-11-30",
    "generated_at": "2026-12-01T14:05:12Z",
    "currency": "USD",
    "amounts_in": "cents",
    "locations": [_figures(LOCATION_ID, "Main Street Animal Hospital")],
    "totals": {**_figures("ALL", "All locations"), "timezone": ""},
}
AUDIT = {
    "subject": "subscription",
    "id": SUBSCRIPTION_ID,
    "workflow_history_complete": True,
    "workflows": [
        {
            "workflow_id": SUBSCRIPTION_WORKFLOW,
            "workflow_type": "SubscriptionWorkflow",
            "run_ids": ["0193a1c2-7e4b-7c3d-9f2a-5b8e1d4c7a0f"],
            "status": "RUNNING",
        }
    ],
    "entries": [
        {
            "at": "2026-12-01T15:00:03Z",
            "source": "database",
            "kind": "payment",
            "summary": "approved 7000 cents on VS ************1111",
            "trigger": "",
            "workflow_id": SUBSCRIPTION_WORKFLOW,
            "run_id": None,
            "event_id": None,
            "invoice_id": INVOICE_ID,
            "payment_id": PAYMENT_ID,
            "attempt": 1,
            "amount_cents": 7000,
            "status": "approved",
            "reason": None,
            "external_transaction_id": EXTERNAL_ID,
            "reference": None,
            "payload": None,
        }
    ],
}
MOVEMENT = {
    "booked_on": "2026-12-01",
    "external_transaction_id": EXTERNAL_ID,
    "kind": "sale",
    "location_id": LOCATION_ID,
    "ours_cents": 7000,
    "gateway_cents": 7000,
    "status": "matched",
}
_DIFFERING = {**MOVEMENT, "external_transaction_id": "a9c3e7b1-5d2f-4a8c-b6e0-3f7d1b5a9e2c", "gateway_cents": 6500, "status": "differs"}
RECONCILIATION = {
    "from": "2026-12-01",
    "to": "2026-12-01",
    "date": "2026-12-01",
    "location_id": LOCATION_ID,
    "amounts_in": "cents",
    "gateway_listed": False,
    "checked": 2,
    "matched": 1,
    "double_charges": None,
    "reconciled": False,
    "totals": [
        {"kind": "sale", "ours_cents": 14000, "gateway_cents": 13500, "matched": False},
        {"kind": "void", "ours_cents": 0, "gateway_cents": 0, "matched": True},
        {"kind": "refund", "ours_cents": 0, "gateway_cents": 0, "matched": True},
    ],
    "differences": [_DIFFERING],
    "movements": [MOVEMENT, _DIFFERING],
}
BALANCES = {
    "period": "2026-11",
    "from": "2026-11-01",
    "to": "2026-11-30",
    "location_id": LOCATION_ID,
    "amounts_in": "cents",
    "accounts": [
        {"account": "gateway_clearing", "opening_cents": 184000, "debits_cents": 1968000, "credits_cents": 1947000, "closing_cents": 205000},
        {"account": "plan_revenue", "opening_cents": -8412000, "debits_cents": 21000, "credits_cents": 1152500, "closing_cents": -9543500},
    ],
}
_JOURNAL_LINE = {
    "date": "2026-12-01",
    "transaction_id": 90412,
    "account": "gateway_clearing",
    "debit_cents": 7000,
    "credit_cents": 0,
    "memo": "Card payment",
    "reference": PAYMENT_ID,
    "kind": "payment",
    "location_id": LOCATION_ID,
    "client_id": CLIENT_ID,
    "invoice_id": INVOICE_ID,
    "posted_at": "2026-12-01T15:00:03Z",
}
JOURNAL = {
    "date": "2026-12-01",
    "location_id": LOCATION_ID,
    "format": "QuickBooks Online journal entry import (one row per line; debit and credit in dollars)",
    "amounts_in": "cents",
    "transactions": 1,
    "debits_cents": 7000,
    "credits_cents": 7000,
    "lines": [_JOURNAL_LINE, {**_JOURNAL_LINE, "account": "accounts_receivable", "debit_cents": 0, "credit_cents": 7000}],
}

# The CSV answers, header and first rows (format=csv).
REPORT_CSV = (
    "from,to,location_id,location,metric,key,count,cents\r\n"
    "2026-11-01,2026-11-30,loc_main,Main Street Animal Hospital,billed,,412,2043500\r\n"
    "2026-11-01,2026-11-30,loc_main,Main Street Animal Hospital,collected,card_on_file,371,1731000\r\n"
)
AUDIT_CSV = (
    "at,source,kind,summary,trigger,workflow_id,run_id,event_id,invoice_id,payment_id,attempt,amount_cents,status,reason,external_transaction_id,reference\r\n"
    f"2026-12-01T15:00:03+00:00,database,payment,approved 7000 cents,,{SUBSCRIPTION_WORKFLOW},,,{INVOICE_ID},{PAYMENT_ID},1,7000,approved,,{EXTERNAL_ID},\r\n"
)
RECONCILIATION_CSV = (
    f"booked_on,external_transaction_id,kind,location_id,ours_cents,gateway_cents,status\r\n2026-12-01,{EXTERNAL_ID},sale,loc_main,7000,7000,matched\r\n"
)
BALANCES_CSV = (
    "period,location_id,account,opening_cents,debits_cents,credits_cents,closing_cents\r\n2026-11,loc_main,gateway_clearing,184000,1968000,1947000,205000\r\n"
)
JOURNAL_CSV = (
    "JournalDate,JournalNo,AccountName,Debits,Credits,Description,Reference,Location,Client,Invoice\r\n"
    f"2026-12-01,90412,gateway_clearing,70.00,,Card payment,{PAYMENT_ID},loc_main,{CLIENT_ID},{INVOICE_ID}\r\n"
    f"2026-12-01,90412,accounts_receivable,,70.00,Card payment,{PAYMENT_ID},loc_main,{CLIENT_ID},{INVOICE_ID}\r\n"
)
